"""Accuracy evaluation: metrics, joint maps, dataset loaders, reports and the regression gate.

Modules (nothing is imported here, so ``import instanthmr.evaluation`` costs nothing):

- :mod:`.metrics` numpy metrics (MPJPE, PA-MPJPE, PVE, W/WA-MPJPE, RTE, acceleration, jitter,
  foot sliding, PCK, OKS, detection precision/recall/F1).
- :mod:`.joints` MHR70 -> COCO17, LSP14/J14, H36M17 and SMPL24 maps.
- :mod:`.coco` (pycocotools), :mod:`.threedpw`, :mod:`.emdb` (with :mod:`.smpl`),
  :mod:`.folder` dataset loaders; :mod:`.runner` runs a pipeline over them and scores it;
  :mod:`.report` writes JSON and Markdown.
- :mod:`.oracle` the analytic oracle model; :mod:`.synthetic` the regression gate.

See ``docs/evaluation.md``.
"""

"""Model definition and ONNX export (the optional ``export`` extra: torch, timm, onnxscript).

- :mod:`instanthmr.export.model`: the project's PyTorch definition of InstantHMR
  (RepViT-M1.5 backbone, query decoder, heads), parameter and FLOP counts, RepViT fusion.
- :mod:`instanthmr.export.hmr_export`: :func:`~instanthmr.export.hmr_export.export_hmr_onnx`,
  the release-format ONNX export with metadata and an onnxruntime parity check.
- :mod:`instanthmr.export.standin` (with :mod:`~instanthmr.export.standin_joints`): builds
  the stand-in model the package ships, MediaPipe's BlazePose in the InstantHMR contract
  (needs onnx and onnxruntime only, no torch).

Nothing is imported here, so ``import instanthmr.export`` works without torch; import the
submodules when the extra is installed (``pip install -e .[export]``).
"""

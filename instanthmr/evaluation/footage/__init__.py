"""Quality figures on real footage: tracking, carried boxes, live mode, world frame, export.

No ground truth is needed: each figure compares the pipeline with itself (a stride-1 run,
the detector on every frame) or with physical facts (people walk at 0.8-1.8 m/s, a walking
foot touches the ground). ``tools/quality.py`` runs them on a video and writes the numbers
and pictures of ``docs/quality.md``.

- :mod:`.runs` runs a pipeline over a clip (:func:`~.runs.run_clip`) and the detector
  alone on every frame (:func:`~.runs.detect_every_frame`).
- :mod:`.tracks` persons per frame, tracks, fragmentation, swaps (:func:`~.tracks.track_stats`).
- :mod:`.carried` carried boxes and joints against the detector and a stride-1 run
  (:func:`~.carried.compare_runs`).
- :mod:`.live` detector runs by reason (:func:`~.live.detector_runs`).
- :mod:`.world` camera height and pitch, walking speeds, foot height
  (:func:`~.world.world_stats`).
- :mod:`.animation` BVH and glTF of the walkers, read back by bvhio and pygltflib.
- :mod:`.figures` the pictures (matplotlib, imported only there).
"""

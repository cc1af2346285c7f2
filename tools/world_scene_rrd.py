"""Dev tool: record the synthetic world scene to an ``.rrd`` (for docs/img/world.png).

Three walkers of ``tests/world_scene.py`` (4 s, 1 cm joint noise) go through a real
``WorldTracker`` (online estimate) and the project's ``RerunSink``; the recording's blueprint
shows only the world view, with the eye beside the scene. The stick figures are the test
scene's, not a model's output. Screenshot it with ``tools/screenshot_viewer.py``::

    python tools/world_scene_rrd.py /tmp/world.rrd
    /tmp/venv-shot/bin/python tools/screenshot_viewer.py /tmp/world.rrd --out docs/img/world.png \\
        --size 1200,800 --wait 200
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the .rrd to write")
    args = parser.parse_args()
    os.environ.setdefault("RERUN_ANALYTICS", "0")
    import rerun as rr
    import rerun.blueprint as rrb
    from world_scene import default_walkers, frames

    from instanthmr.results import FrameResult
    from instanthmr.sinks.rerun_sink import RerunSink
    from instanthmr.world import WorldFrame, WorldTracker

    camera = WorldFrame.from_camera(2.5, 20.0, 3.0)
    rec = rr.RecordingStream("instanthmr", recording_id="world-scene")
    rec.save(args.out)
    eye = rrb.EyeControls3D(position=[9.0, 3.5, 1.0], look_target=[0.0, 1.2, -4.5],
                            eye_up=[0.0, 1.0, 0.0])  # fmt: skip
    view = rrb.Spatial3DView(name="world", origin="/ground", eye_controls=eye)
    rr.send_blueprint(rrb.Blueprint(view, collapse_panels=True), recording=rec)
    sink = RerunSink(rec, send_blueprint=False, world=True)
    stage = WorldTracker()
    w, h = 320, 240
    for i, (t, persons, _) in enumerate(frames(camera, default_walkers(), 120, noise=0.01)):
        persons, world = stage.update([p.replace(image_size=(w, h)) for p in persons], t)
        frame = FrameResult(persons, i, (w, h), timestamp=t, world=world)
        sink.log_frame(np.full((h, w, 3), 40, np.uint8), frame)
    rec.flush()
    rec.disconnect()
    print(f"wrote {args.out}: camera {world.camera_height:.3f} m, pitch {world.pitch_deg:.2f} deg")


if __name__ == "__main__":
    main()

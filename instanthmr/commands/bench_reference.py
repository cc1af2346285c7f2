"""``bench --reference DIR``: time the reference pipeline in the same run, for a ratio.

The reference is a checkout of mohamdev/InstantHMR (the code this project replaces). It is
not a dependency and none of its code is copied here: the bench only *shells out* to a
timing script (``--reference-script``, kept with the benchmark notes, not in this package) with
``REF_REPO=DIR``, the same HMR file, the same video, the RF-DETR variant and the stride,
and reads the one summary line the script prints::

    reference variant=nano stride=8 frames=60 wall p50 73.1 ms mean 81.3 ms -> 12.29 FPS;
    persons/frame 1.00; detector ms mean 35.2

The script builds the reference's own ``PosePipeline`` with a random-init RF-DETR that
reports one person per frame (as our ``--det-confidence 0 --max-persons 1``), and times
``predict`` over frames decoded beforehand.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

_LINE = re.compile(
    r"wall p50 (?P<p50>[\d.]+) ms mean (?P<mean>[\d.]+) ms -> (?P<fps>[\d.]+) FPS; "
    r"persons/frame (?P<persons>[\d.]+); detector ms mean (?P<det>[\d.]+|nan)"
)


def check_reference(repo: str | os.PathLike[str], script: str | os.PathLike[str] | None) -> Path:
    """The timing script's path, after checking the checkout and the script exist."""
    root = Path(repo)
    if not (root / "instanthmr").is_dir():
        raise FileNotFoundError(
            f"--reference {root}: not a checkout of the reference InstantHMR (no instanthmr/ "
            "package in it); clone https://github.com/mohamdev/InstantHMR there"
        )
    if script is None:
        raise FileNotFoundError(
            "--reference needs --reference-script PATH: the script that times the reference"
        )
    path = Path(script)
    if not path.is_file():
        raise FileNotFoundError(
            f"reference timing script not found: {path}; pass --reference-script PATH"
        )
    return path


def run_reference(
    repo: str | os.PathLike[str],
    script: Path,
    video: str,
    model: str,
    variant: str,
    stride: int,
    frames: int,
    timeout_s: float = 1800.0,
) -> dict[str, Any]:
    """Run the reference once; its FPS, wall-time p50/mean, persons and detector ms."""
    cmd = [sys.executable, str(script), video, model, variant, str(stride), str(frames)]
    env = {**os.environ, "REF_REPO": str(Path(repo).resolve())}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
    match = _LINE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        tail = (proc.stderr or proc.stdout)[-1500:]
        raise RuntimeError(
            f"the reference run failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}"
        )
    return {
        "fps": float(match["fps"]),
        "wall_ms_p50": float(match["p50"]),
        "wall_ms_mean": float(match["mean"]),
        "persons_per_frame": float(match["persons"]),
        "detector_ms_mean": float(match["det"]),
        "frames": frames,
    }

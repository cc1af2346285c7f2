"""The regression gate ``instanthmr eval synthetic``: geometry tripwires, not accuracy.

It drives the real :class:`~instanthmr.pipeline.PosePipeline` (crops, CLIFF vector, one
onnxruntime run per frame, tracking, One-Euro smoothing) with the analytic oracle model
(:mod:`instanthmr.evaluation.oracle`) on a generated clip whose ground truth is known in
closed form, and checks the outputs against thresholds written below:

- A bright Gaussian blob moves at constant velocity across a 640x480 frame; the person box
  follows it, off-centre on purpose. The oracle puts MHR70 joint k at the blob plus a
  per-joint offset (a 10x7 grid in the crop, so every joint sits at its own place), scaled
  by the crop side. Ground truth: ``blob + offset_k * side / 2`` pixels.
- ``cam_trans`` and ``joints_3d`` are linear in the CLIFF vector; the gate computes the
  CLIFF vector of the ground-truth box from the contract's formula itself.
- The ground-truth camera is the contract's virtual pinhole ``f = sqrt(W^2 + H^2)``,
  principal point at the image centre.
- Joint maps are checked by name: the ground truth of each target joint is built from
  ``skeleton`` names and the documented derived-joint rules, independently of the maps'
  index matrices.

Checks (thresholds in :data:`THRESHOLDS`), each naming what it guards:

- ``joints_2d_max_px`` (crop maps, joint maps): the worst 2D error of any mapped joint
  (COCO17, LSP14, H36M17, SMPL24) on any frame, unsmoothed.
- ``joints_3d_max_mm`` (CLIFF, joint maps): the worst camera-frame 3D error, unsmoothed.
- ``cam_trans_max_mm`` (CLIFF): the worst root-translation error, unsmoothed.
- ``reprojection_max_px`` (camera): camera-frame joints projected with each person's
  focal length and principal point, against the same joints through the ground-truth camera.
- ``smoothing_lag_frames`` (smoothing): how many frames the smoothed 2D joints trail the
  moving blob (default presets: about 0.6 frame).
- ``mpjpe_mm`` and ``pa_mpjpe_mm`` (the metrics themselves): H36M17 MPJPE/PA-MPJPE of the
  unsmoothed run, which must be ~0.

Passing says the geometry is intact; it says nothing about how well a real model poses
people. CI runs it through ``tests/test_eval_gate.py``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..skeleton import JOINT_INDEX, NUM_JOINTS
from . import joints as jm
from .metrics import mpjpe, pa_mpjpe
from .oracle import CAM_OFFSET, build_oracle, cliff_weights

SIZE = (640, 480)
FPS = 30.0
THRESHOLDS: dict[str, float] = {
    "joints_2d_max_px": 0.1,
    "joints_3d_max_mm": 0.05,
    "cam_trans_max_mm": 0.05,
    "reprojection_max_px": 0.05,
    "smoothing_lag_frames": 1.0,
    "mpjpe_mm": 0.05,
    "pa_mpjpe_mm": 0.05,
}
GUARDS: dict[str, str] = {
    "joints_2d_max_px": "crop maps, joint maps",
    "joints_3d_max_mm": "CLIFF vector, joint maps",
    "cam_trans_max_mm": "CLIFF vector",
    "reprojection_max_px": "camera (focal length, principal point)",
    "smoothing_lag_frames": "smoothing lag",
    "mpjpe_mm": "MPJPE, H36M17 map",
    "pa_mpjpe_mm": "PA-MPJPE, H36M17 map",
}


def gate_offsets() -> np.ndarray:
    """(70, 2) oracle joint offsets (normalised crop units) on a 10x7 grid, 0.1 apart, so
    that any two joints are at least 0.1 * side / 2 pixels apart (~11 px here)."""
    k = np.arange(NUM_JOINTS)
    return np.stack([(k % 10 - 4.5) * 0.1, (k // 10 - 3.0) * 0.1], axis=1).astype(np.float32)


@dataclass
class Clip:
    """The generated clip and its ground truth."""

    images: list[np.ndarray]
    boxes: np.ndarray  # (F, 4) xyxy
    centres: np.ndarray  # (F, 2) blob centre, pixels
    velocity: np.ndarray  # (2,) pixels per frame
    timestamps: np.ndarray  # (F,) seconds


def make_clip(frames: int = 40, size: tuple[int, int] = SIZE, sigma: float = 8.0) -> Clip:
    """A blob moving at constant velocity; its box is 150x190 px, off-centre by (6, -9)."""
    w, h = size
    velocity = np.array([4.0, 1.5])
    centres = np.array([180.0, 200.0]) + np.arange(frames)[:, None] * velocity
    if np.any(centres[-1] > np.array([w - 120, h - 120])):
        raise ValueError(f"{frames} frames run the blob out of the {w}x{h} frame; use fewer")
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    images = []
    for x0, y0 in centres:
        v = 255 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = np.round(v).astype(np.uint8)
        images.append(img)
    box_c = centres + np.array([6.0, -9.0])
    half = np.array([75.0, 95.0])
    boxes = np.concatenate([box_c - half, box_c + half], axis=1)
    return Clip(images, boxes, centres, velocity, np.arange(frames) / FPS)


def expected(clip: Clip, size: tuple[int, int] = SIZE) -> dict[str, np.ndarray]:
    """Closed-form ground truth: 2D joints (F, 70, 2), camera-frame joints (F, 70, 3),
    cam_trans (F, 3), focal length and principal point."""
    w, h = size
    b = clip.boxes
    longer = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    side = 1.2 * longer
    j2d = clip.centres[:, None, :] + gate_offsets()[None] * side[:, None, None] / 2
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    cliff = np.stack([2 * cx / w - 1, 2 * cy / h - 1, longer / max(w, h)], axis=1)
    cam = cliff + CAM_OFFSET
    local = (cliff @ cliff_weights()["joints_3d"].astype(np.float64)).reshape(-1, NUM_JOINTS, 3)
    return {
        "joints_2d": j2d,
        "joints_3d_cam": local + cam[:, None],
        "cam_trans": cam,
        "focal": np.float64(np.hypot(w, h)),
        "principal_point": np.array([w / 2, h / 2]),
    }


def _named(joints70: np.ndarray, name: str) -> np.ndarray:
    """A joint by MHR70 name or derived-joint rule, from names only (not the map matrices)."""
    if name in JOINT_INDEX:
        return joints70[..., JOINT_INDEX[name], :]
    return np.mean([_named(joints70, part) for part in jm.DERIVED[name]], axis=0)


def by_name(joints70: np.ndarray, target: jm.JointMap) -> np.ndarray:
    """Ground truth of every available joint of ``target``, built from names."""
    cols = [_named(joints70, s.name) for s in target.sources if s.kind != "none"]
    return np.stack(cols, axis=-2)


@dataclass
class GateCheck:
    """One check: its value, its threshold and what it guards."""

    name: str
    value: float
    threshold: float
    guards: str

    @property
    def passed(self) -> bool:
        """Value finite and at most the threshold."""
        return bool(np.isfinite(self.value) and self.value <= self.threshold)


@dataclass
class GateResult:
    """All checks of one gate run."""

    checks: list[GateCheck] = field(default_factory=list)
    frames: int = 0

    @property
    def passed(self) -> bool:
        """Every check passed."""
        return all(c.passed for c in self.checks)

    def failed(self) -> list[str]:
        """Names of the failed checks."""
        return [c.name for c in self.checks if not c.passed]

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {"passed": self.passed, "frames": self.frames, "checks": [
            {"name": c.name, "value": c.value, "threshold": c.threshold, "guards": c.guards,
             "passed": c.passed} for c in self.checks]}  # fmt: skip

    def markdown(self) -> str:
        """A Markdown table of the checks."""
        rows = ["| check | value | threshold | guards | result |", "|---|---|---|---|---|"]
        rows += [f"| {c.name} | {c.value:.4g} | {c.threshold:g} | {c.guards} | "
                 f"{'pass' if c.passed else '**FAIL**'} |" for c in self.checks]  # fmt: skip
        verdict = "PASSED" if self.passed else f"FAILED: {', '.join(self.failed())}"
        return "\n".join([f"Synthetic regression gate ({self.frames} frames): {verdict}", "",
                          *rows])  # fmt: skip


def _run(pipe: Any, clip: Clip, smooth: bool) -> dict[str, np.ndarray]:
    pipe.reset()
    out: dict[str, list] = {"joints_2d": [], "joints_3d_cam": [], "cam_trans": [],
                            "focal": [], "pp": []}  # fmt: skip
    for i, (img, box) in enumerate(zip(clip.images, clip.boxes, strict=True)):
        res = pipe.predict(img, boxes=box[None], frame_index=i,
                           timestamp=float(clip.timestamps[i]), smooth=smooth)  # fmt: skip
        if len(res) != 1:
            raise AssertionError(f"frame {i}: expected 1 person, the pipeline returned {len(res)}")
        p = res[0]
        out["joints_2d"].append(p.joints_2d)
        out["joints_3d_cam"].append(p.joints_3d_cam)
        out["cam_trans"].append(p.cam_trans)
        out["focal"].append(p.focal_length)
        out["pp"].append(p.principal_point)
    return {k: np.asarray(v, np.float64) for k, v in out.items()}


def _project(points: np.ndarray, focal: np.ndarray, pp: np.ndarray) -> np.ndarray:
    f = np.asarray(focal, np.float64).reshape(-1, *([1] * (points.ndim - 1)))
    return points[..., :2] / points[..., 2:3] * f + pp.reshape(-1, *([1] * (points.ndim - 2)), 2)


def evaluate_gate(
    raw: dict[str, np.ndarray],
    smoothed: dict[str, np.ndarray],
    clip: Clip,
    size: tuple[int, int] = SIZE,
) -> GateResult:
    """Compare two pipeline runs (unsmoothed, smoothed) with the closed-form ground truth."""
    gt = expected(clip, size)
    maps = (jm.COCO17, jm.LSP14, jm.H36M17, jm.SMPL24)
    err2d = max(
        float(np.abs(m(raw["joints_2d"])[:, m.available] - by_name(gt["joints_2d"], m)).max())
        for m in maps
    )
    err3d = max(
        float(np.linalg.norm(m(raw["joints_3d_cam"])[:, m.available]
                             - by_name(gt["joints_3d_cam"], m), axis=-1).max())
        for m in maps
    ) * 1000  # fmt: skip
    root = float(np.linalg.norm(raw["cam_trans"] - gt["cam_trans"], axis=-1).max()) * 1000
    reproj_pred = _project(raw["joints_3d_cam"], raw["focal"], raw["pp"])
    reproj_gt = _project(raw["joints_3d_cam"], np.full(len(clip.boxes), gt["focal"]),
                         np.tile(gt["principal_point"], (len(clip.boxes), 1)))  # fmt: skip
    reproj = float(np.abs(reproj_pred - reproj_gt).max())
    # lag: the component of (truth - smoothed) along the motion, in frames (after warm-up)
    v = clip.velocity
    lead = (gt["joints_2d"] - smoothed["joints_2d"])[5:] @ v / (v @ v)
    lag = float(np.mean(lead))
    h36_pred = jm.H36M17(raw["joints_3d_cam"])[:, jm.H36M17.available]
    h36_gt = by_name(gt["joints_3d_cam"], jm.H36M17)
    hips = tuple(int(np.flatnonzero(jm.H36M17.available == i)[0]) for i in jm.HIPS["h36m17"])
    values = {
        "joints_2d_max_px": err2d,
        "joints_3d_max_mm": err3d,
        "cam_trans_max_mm": root,
        "reprojection_max_px": reproj,
        "smoothing_lag_frames": lag,
        "mpjpe_mm": float(mpjpe(h36_pred, h36_gt, hips=hips).mean()),
        "pa_mpjpe_mm": float(pa_mpjpe(h36_pred, h36_gt).mean()),
    }
    checks = [GateCheck(k, v, THRESHOLDS[k], GUARDS[k]) for k, v in values.items()]
    return GateResult(checks, frames=len(clip.boxes))


def run_gate(frames: int = 40, workdir: str | Path | None = None) -> GateResult:
    """Build the oracle, run the real pipeline on the generated clip twice (unsmoothed and
    smoothed) and check the outputs. Returns the result; never raises on a failed check."""
    from ..pipeline import PosePipeline  # the pipeline pulls in onnxruntime: import on use

    clip = make_clip(frames)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "oracle-gate.onnx"
        onnx.save(build_oracle(offsets=gate_offsets()), path)
        pipe = PosePipeline(path, device="cpu", detector=None, threads=1)
        raw = _run(pipe, clip, smooth=False)
        smoothed = _run(pipe, clip, smooth=True)
    return evaluate_gate(raw, smoothed, clip)

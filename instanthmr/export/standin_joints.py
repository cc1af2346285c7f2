"""The 70 MHR70 joints of the stand-in, as fixed linear rules over BlazePose's 33 landmarks.

"Real" joints are BlazePose landmarks of the same anatomical point: the face points, the
shoulders, elbows, wrists, hips, knees, ankles and heels, and the big toe tips (BlazePose's
"foot index", the tip of the foot). The others are "approximated", placed from real
landmarks by the rules below (each a weighted sum with weights adding up to 1, so the same
rule works in pixels and in metres): the neck (mid-shoulders), the small toe tips, the 40
finger joints, the olecranon and cubital fossa (elbow surface points) and the acromion
(shoulder surface point). :data:`REAL_JOINTS` goes into the model file's metadata, and
evaluation uses those only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeleton import JOINT_NAMES, NUM_JOINTS

NUM_LANDMARKS = 33  # BlazePose's body landmarks; 33-38 are its ROI helpers
_PAIRED = ("shoulder", "elbow", "hip", "knee", "ankle", "heel", "wrist")

LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
"""BlazePose's 33 body landmarks, in its order (left and right are the person's own)."""
_LM = {n: i for i, n in enumerate(LANDMARKS)}


@dataclass(frozen=True)
class JointRule:
    """One MHR70 joint as a weighted sum of BlazePose landmarks (weights sum to 1)."""

    name: str
    weights: tuple[tuple[str, float], ...]
    real: bool
    how: str


def _same(name: str, landmark: str | None = None) -> JointRule:
    lm = landmark or name
    return JointRule(name, ((lm, 1.0),), True, f"landmark {_LM[lm]} {lm}")


def _along(name: str, base: str, origin: str, k: float, how: str) -> JointRule:
    """``base + k (base - origin)``: a point on the line from ``origin`` through ``base``."""
    if k == 0:
        return JointRule(name, ((base, 1.0),), False, how)
    return JointRule(name, ((base, 1.0 + k), (origin, -k)), False, how)


def _hand(side: str) -> list[JointRule]:
    """Finger joints from the wrist and BlazePose's index, pinky and thumb knuckles.

    The index and pinky landmarks sit on the knuckles (MCP): they are the third joints of
    those fingers; the middle and ring knuckles lie a third and two thirds of the way
    between them. Each finger then continues along wrist -> knuckle with fixed phalanx
    fractions of the palm length. The thumb landmark is taken as the thumb's MCP.
    """
    w, i, p, t = (f"{side}_{x}" for x in ("wrist", "index", "pinky", "thumb"))
    rules = []
    phal = {"index": 1.0, "middle": 1.05, "ring": 0.95, "pinky": 0.8}
    knuckle = {"index": ((i, 1.0),), "middle": ((i, 2 / 3), (p, 1 / 3)),
               "ring": ((i, 1 / 3), (p, 2 / 3)), "pinky": ((p, 1.0),)}  # fmt: skip
    # thumb: tip, first (IP), second (MCP = the landmark), third (CMC), from the wrist.
    thumb = {"tip": 1.1, "first_joint": 0.6, "second_joint": 0.0, "third_joint": -0.7}
    for part, k in thumb.items():
        how = (f"landmark {_LM[t]} {t}, taken as the thumb's MCP" if k == 0
               else f"{t} + {k:g} ({t} - {w})")  # fmt: skip
        rules.append(_along(f"{side}_thumb_{part}", t, w, k, how))
    for finger, scale in phal.items():
        kn = knuckle[finger]
        for part, frac in (("tip", 1.0), ("first_joint", 0.75), ("second_joint", 0.45),
                           ("third_joint", 0.0)):  # fmt: skip
            k = frac * scale
            weights = [(lm, c * (1.0 + k)) for lm, c in kn] + ([(w, -k)] if k else [])
            base = " + ".join(f"{c:.3g} {lm}" for lm, c in kn)
            how = f"knuckle K = {base}" + (f"; K + {k:.3g} (K - {w})" if k else "")
            rules.append(JointRule(f"{side}_{finger}_{part}", tuple(weights), False, how))
    return rules


def _elbow_points(side: str) -> list[JointRule]:
    """Olecranon and cubital fossa: 15% of the way from the elbow towards / away from the
    midpoint of shoulder and wrist (the inside and the outside of the bend)."""
    e, s, w = f"{side}_elbow", f"{side}_shoulder", f"{side}_wrist"
    k = 0.15
    out = ((e, 1 + k), (s, -k / 2), (w, -k / 2))
    inside = ((e, 1 - k), (s, k / 2), (w, k / 2))
    return [
        JointRule(f"{side}_olecranon", out, False, f"{e} + {k} ({e} - mid({s}, {w}))"),
        JointRule(f"{side}_cubital_fossa", inside, False, f"{e} + {k} (mid({s}, {w}) - {e})"),
    ]


def _acromion(side: str) -> JointRule:
    """Shoulder, moved outwards (12% of the shoulder width) and up (6% of the trunk)."""
    other = "right" if side == "left" else "left"
    s, o, h = f"{side}_shoulder", f"{other}_shoulder", f"{side}_hip"
    weights = ((s, 1 + 0.12 + 0.06), (o, -0.12), (h, -0.06))
    how = f"{s} + 0.12 ({s} - {o}) + 0.06 ({s} - {h})"
    return JointRule(f"{side}_acromion", weights, False, how)


def _rules() -> dict[str, JointRule]:
    rules = [
        *(_same(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")),
        *(_same(f"{s}_{j}") for j in _PAIRED for s in ("left", "right")),
        *(_same(f"{s}_big_toe_tip", f"{s}_foot_index") for s in ("left", "right")),
        *(_along(f"{s}_small_toe_tip", f"{s}_foot_index", f"{s}_heel", -0.2,
                 f"{s}_foot_index + 0.2 ({s}_heel - {s}_foot_index)")
          for s in ("left", "right")),
        *_hand("left"), *_hand("right"),
        *_elbow_points("left"), *_elbow_points("right"),
        _acromion("left"), _acromion("right"),
        JointRule("neck", (("left_shoulder", 0.5), ("right_shoulder", 0.5)), False,
                  "mid(left_shoulder, right_shoulder)"),
    ]
    return {r.name: r for r in rules}


JOINTS: tuple[JointRule, ...] = tuple(_rules()[n] for n in JOINT_NAMES)
"""The 70 MHR70 joints, in the contract's order, each as a rule over the landmarks."""
REAL_JOINTS: tuple[str, ...] = tuple(r.name for r in JOINTS if r.real)


def joint_matrix() -> np.ndarray:
    """(70, 33) float32: MHR70 joints = this @ BlazePose landmarks (each row sums to 1)."""
    m = np.zeros((NUM_JOINTS, NUM_LANDMARKS), np.float64)
    for j, rule in enumerate(JOINTS):
        for lm, c in rule.weights:
            m[j, _LM[lm]] += c
    return m.astype(np.float32)

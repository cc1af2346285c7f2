"""What kind of HMR model a run used, and the label everything that shows results carries.

A model file says what it is in its ONNX metadata: ``model_kind`` (the stand-in writes
``standin-blazepose``), or the older flag ``instanthmr_random_init=true`` of random-init
exports. A file that says neither, like the released ``instanthmr.onnx`` (which has no
custom metadata), is taken as InstantHMR. :func:`kind_of` reads it;
:attr:`ModelKind.notice` is the one warning every surface shows for a model that is not
InstantHMR: the demo's banner and summary, the results files' header (``model_kind``,
``model_notice``), the Rerun recording, the app page and the BVH / glTF files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

META_MODEL_KIND = "model_kind"
META_RANDOM_INIT_KEYS = ("instanthmr_random_init", "random_init")

INSTANTHMR = "instanthmr"
RANDOM_INIT = "random-init"
STANDIN = "standin-blazepose"

GET_INSTANTHMR = (
    "Get InstantHMR: `hf download momolesang/InstantHMR instanthmr.onnx --local-dir models/` "
    "on a machine with internet access, then --model models/instanthmr.onnx"
)


@dataclass(frozen=True)
class ModelKind:
    """One kind of HMR model file.

    Attributes:
        name: the ``model_kind`` value (``instanthmr``, ``random-init``, ``standin-blazepose``).
        title: a short human name.
        tag: a few capital letters for tight places (box labels); "" for InstantHMR.
        notice: the warning shown wherever results are shown or saved; None for InstantHMR.
    """

    name: str
    title: str
    tag: str
    notice: str | None

    @property
    def is_instanthmr(self) -> bool:
        """True for InstantHMR weights (no label needed)."""
        return self.notice is None


KINDS: dict[str, ModelKind] = {
    INSTANTHMR: ModelKind(INSTANTHMR, "InstantHMR", "", None),
    RANDOM_INIT: ModelKind(
        RANDOM_INIT, "random-init InstantHMR export", "RANDOM-INIT",
        "RANDOM-INIT MODEL: the poses are MEANINGLESS (random weights: for plumbing and speed "
        "checks only). This is not the trained InstantHMR. " + GET_INSTANTHMR + ".",
    ),
    STANDIN: ModelKind(
        STANDIN, "stand-in, MediaPipe BlazePose GHUM 3D", "STAND-IN",
        "STAND-IN MODEL, NOT InstantHMR: MediaPipe's BlazePose GHUM 3D (Apache-2.0) in the "
        "InstantHMR contract. Its body joints are BlazePose's; the neck, fingers, small toes "
        "and elbow/shoulder surface points are approximated; it has no body model "
        "(mhr_params and shape_params are zeros). Never judge or time InstantHMR by it. "
        + GET_INSTANTHMR + ".",
    ),
}  # fmt: skip


def kind_of(metadata: Mapping[str, str]) -> ModelKind:
    """The kind a model file's metadata declares (InstantHMR when it declares none).

    An unknown ``model_kind`` is an error naming the known ones: a label that cannot be
    shown must not silently become "InstantHMR".
    """
    name = metadata.get(META_MODEL_KIND, "").strip()
    if not name:
        random = any(metadata.get(k, "").lower() == "true" for k in META_RANDOM_INIT_KEYS)
        name = RANDOM_INIT if random else INSTANTHMR
    if name not in KINDS:
        raise ValueError(
            f"the model file declares model_kind={name!r}; known kinds: {', '.join(KINDS)}"
        )
    return KINDS[name]


def run_header(hmr: Any) -> dict[str, Any]:
    """What results files and recordings state about the HMR model of a run: ``model_kind``,
    ``model_file`` (the name only) and ``model_notice`` (None for InstantHMR)."""
    kind: ModelKind = hmr.model_kind
    return {
        "model_kind": kind.name,
        "model_file": Path(hmr.model_path).name,
        "model_notice": kind.notice,
    }


def file_note(run: Mapping[str, Any] | None) -> str | None:
    """One line for a file that has no header of its own (a BVH comment, a glTF asset
    note): None for InstantHMR or when the run is unknown, else the model and its notice."""
    kind = header_kind(run)
    if kind.is_instanthmr:
        return None
    name = (run or {}).get("model_file") or "?"
    return " ".join(f"Made by InstantHMR with {name} ({kind.title}). {kind.notice}".split())


def header_kind(header: Mapping[str, Any] | None) -> ModelKind:
    """The :class:`ModelKind` a :func:`run_header` names; InstantHMR for None (no header)."""
    if not header or not header.get("model_kind"):
        return KINDS[INSTANTHMR]
    return kind_of({META_MODEL_KIND: str(header["model_kind"])})

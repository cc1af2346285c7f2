"""The InstantHMR model contract: input and output names, shapes and dtypes, and the variants.

A model file is checked against this at load. Every difference is collected and reported
together in one :class:`ContractError`, so a user fixing an export sees all problems at
once. :func:`read_signature` is where the loader decides, once per file, which of the
variants users meet it is (docs/architecture.md, "Model files the loader accepts"):

- inputs and outputs bound by name, or by shape when the names are generic;
- float16 inputs or outputs (cast at the boundary by the model code);
- a fixed batch axis (the model code runs chunks of that size, padding the last);
- metadata ``image_size`` (or fixed spatial input dimensions): the crop size;
- metadata ``cliff_focal``: the focal-aware CLIFF vector;
- the 4-output "MHR-only" layout without ``joints_3d``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import UserError

CONTRACT_VERSION = "1.0"
CROP_SIZE = 224
BATCH = "N"  # a dynamic axis


@dataclass(frozen=True)
class TensorSpec:
    """Expected name, shape and dtype of one model input or output.

    ``shape`` holds ints for fixed sizes and :data:`BATCH` for the dynamic batch axis.
    ``dtype`` is the onnxruntime type string, e.g. ``"tensor(float)"``.
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "tensor(float)"


HMR_INPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("image", (BATCH, 3, CROP_SIZE, CROP_SIZE)),
    TensorSpec("cliff_cond", (BATCH, 3)),
)
HMR_OUTPUTS: tuple[TensorSpec, ...] = (
    TensorSpec("mhr_params", (BATCH, 204)),
    TensorSpec("shape_params", (BATCH, 45)),
    TensorSpec("cam_trans", (BATCH, 3)),
    TensorSpec("joints_2d", (BATCH, 70, 2)),
    TensorSpec("joints_3d", (BATCH, 70, 3)),
)

# Keys written into the ONNX metadata by tools/export_onnx.py.
META_CONTRACT_VERSION = "instanthmr_contract_version"
META_SOURCE_HASH = "instanthmr_source_sha256"
META_RANDOM_INIT = "instanthmr_random_init"
META_ARCHITECTURE = "instanthmr_architecture"
META_PARAMS = "instanthmr_params"
META_GFLOP = "instanthmr_gflop"
# Keys upstream's newer files carry (our exports write them too, so round trips are tested).
META_CLIFF_FOCAL = "cliff_focal"  # present (and not "false"/"0"): focal-aware CLIFF vector
META_IMAGE_SIZE = "image_size"  # the crop size the network was trained at, e.g. "288"


class ContractError(UserError, ValueError):
    """A model file does not match the contract. ``differences`` lists every mismatch."""

    def __init__(self, model: str, differences: Sequence[str]) -> None:
        self.model = model
        self.differences = list(differences)
        lines = "\n".join(f"  - {d}" for d in self.differences)
        super().__init__(
            f"model {model} does not match the InstantHMR contract v{CONTRACT_VERSION} "
            f"({len(self.differences)} difference(s)):\n{lines}\n"
            "Re-export it with `python tools/export_onnx.py` or use the released "
            "instanthmr.onnx from the Hugging Face Hub (momolesang/InstantHMR)."
        )


class UnsupportedModelError(UserError, ValueError):
    """A model file this install cannot run as asked: a variant that needs an optional part
    that is missing, or an option that does not apply to the file. The message says what
    the file is and what to do."""


class NodeArgLike(Protocol):
    """What onnxruntime's ``NodeArg`` offers: a name, a shape and a type string."""

    name: str
    shape: Sequence[int | str | None]
    type: str


def _dims_differ(expected: int | str, actual: int | str | None) -> bool:
    if expected == BATCH:
        # Dynamic batch: a symbolic name or None. A fixed size would break batching.
        return isinstance(actual, int)
    return actual != expected


def _describe_shape(shape: Sequence[int | str | None]) -> str:
    return "(" + ", ".join("N" if not isinstance(d, int) else str(d) for d in shape) + ")"


def compare(kind: str, expected: Sequence[TensorSpec], actual: Sequence[NodeArgLike]) -> list[str]:
    """Differences between expected specs and a model's actual inputs or outputs."""
    diffs: list[str] = []
    by_name = {a.name: a for a in actual}
    for spec in expected:
        arg = by_name.get(spec.name)
        if arg is None:
            diffs.append(f"missing {kind} {spec.name!r} {_describe_shape(spec.shape)}")
            continue
        shape = list(arg.shape)
        if len(shape) != len(spec.shape):
            diffs.append(
                f"{kind} {spec.name!r} has rank {len(shape)} {_describe_shape(shape)}, "
                f"expected rank {len(spec.shape)} {_describe_shape(spec.shape)}"
            )
        else:
            for axis, (e, a) in enumerate(zip(spec.shape, shape, strict=True)):
                if _dims_differ(e, a):
                    want = "a dynamic batch axis" if e == BATCH else str(e)
                    diffs.append(
                        f"{kind} {spec.name!r} axis {axis} is {a}, expected {want} "
                        f"(shape {_describe_shape(spec.shape)})"
                    )
        if arg.type != spec.dtype:
            diffs.append(f"{kind} {spec.name!r} has dtype {arg.type}, expected {spec.dtype}")
    known = {s.name for s in expected}
    for a in actual:
        if a.name not in known:
            diffs.append(f"unexpected {kind} {a.name!r} {_describe_shape(list(a.shape))}")
    return diffs


def check_io(
    model: str,
    inputs: Sequence[NodeArgLike],
    outputs: Sequence[NodeArgLike],
    expected_inputs: Sequence[TensorSpec] = HMR_INPUTS,
    expected_outputs: Sequence[TensorSpec] = HMR_OUTPUTS,
) -> None:
    """Raise :class:`ContractError` listing every difference; return None when all match.

    Extra outputs are reported too: a renamed output shows up as one missing and one
    unexpected name.
    """
    diffs = compare("input", expected_inputs, inputs) + compare("output", expected_outputs, outputs)
    if diffs:
        raise ContractError(model, diffs)


# --------------------------------------------------------------------------- variants
FLOAT_TYPES = ("tensor(float)", "tensor(float16)")
FULL = "full"
MHR_ONLY = "mhr_only"
_FALSE = {"0", "false", "no", "off", "none"}
_SIZE = re.compile(r"^\[?\s*(\d+)\s*(?:[,x×]\s*(\d+)\s*)?\]?$")


@dataclass(frozen=True)
class HMRSignature:
    """What :func:`read_signature` decided about one HMR model file.

    Attributes:
        inputs: contract input name (``image``, ``cliff_cond``) -> the graph's input name.
        outputs: contract output name -> the graph's output name (no ``joints_3d`` in
            the MHR-only layout).
        dtypes: graph input/output name -> onnxruntime type string (float or float16).
        image_size: the square crop size every crop is made at.
        batch: the fixed batch size of the graph, or None for a dynamic batch axis.
        cliff_focal: True for a focal-aware CLIFF vector (metadata ``cliff_focal``).
        layout: ``full`` (the five contract outputs) or ``mhr_only`` (four, no joints_3d).
        bound_by: ``name`` or ``shape`` (generic output names).
        notes: one short line per variant met (for logs and the doctor).
    """

    inputs: dict[str, str]
    outputs: dict[str, str]
    dtypes: dict[str, str] = field(default_factory=dict)
    image_size: int = CROP_SIZE
    batch: int | None = None
    cliff_focal: bool = False
    layout: str = FULL
    bound_by: str = "name"
    notes: tuple[str, ...] = ()

    @property
    def mhr_only(self) -> bool:
        """True for the 4-output layout whose 3D keypoints come from the MHR rig."""
        return self.layout == MHR_ONLY


def parse_image_size(value: str) -> int | None:
    """The crop size of metadata ``image_size`` ("288", "288,288", "[288, 288]", "288x288");
    None when it is not a square size in pixels."""
    match = _SIZE.match(value.strip())
    if not match:
        return None
    h, w = int(match[1]), int(match[2] or match[1])
    return h if h == w and h > 0 else None


def cliff_focal_flag(metadata: Mapping[str, str]) -> bool:
    """True when metadata ``cliff_focal`` is present and not a false value ("0", "false")."""
    value = metadata.get(META_CLIFF_FOCAL)
    return value is not None and value.strip().lower() not in _FALSE


def _shape(arg: NodeArgLike) -> list[int | str | None]:
    return list(arg.shape)


def _bind_inputs(inputs: Sequence[NodeArgLike], diffs: list[str]) -> dict[str, NodeArgLike]:
    by_name = {a.name: a for a in inputs}
    if {"image", "cliff_cond"} <= set(by_name):
        for a in inputs:
            if a.name not in ("image", "cliff_cond"):
                diffs.append(f"unexpected input {a.name!r} {_describe_shape(_shape(a))}")
        return {"image": by_name["image"], "cliff_cond": by_name["cliff_cond"]}
    ranks = {len(_shape(a)): a for a in inputs}
    if len(inputs) == 2 and set(ranks) == {4, 2}:  # generic names: the image is the 4-D one
        return {"image": ranks[4], "cliff_cond": ranks[2]}
    for name, spec in (("image", HMR_INPUTS[0]), ("cliff_cond", HMR_INPUTS[1])):
        if name not in by_name:
            diffs.append(f"missing input {name!r} {_describe_shape(spec.shape)}")
    for a in inputs:
        if a.name not in ("image", "cliff_cond"):
            diffs.append(f"unexpected input {a.name!r} {_describe_shape(_shape(a))}")
    return {k: by_name[k] for k in ("image", "cliff_cond") if k in by_name}


def _bind_outputs(
    outputs: Sequence[NodeArgLike], diffs: list[str]
) -> tuple[dict[str, NodeArgLike], str, str]:
    """Contract name -> output, the layout and how they were bound."""
    specs = {s.name: s for s in HMR_OUTPUTS}
    names = [a.name for a in outputs]
    mhr_only_names = set(specs) - {"joints_3d"}
    if any(n in specs for n in names):  # named outputs: bind by name
        layout = MHR_ONLY if set(names) == mhr_only_names else FULL
        expected = mhr_only_names if layout == MHR_ONLY else set(specs)
        by_name = {a.name: a for a in outputs}
        for name in specs:
            if name in expected and name not in by_name:
                diffs.append(f"missing output {name!r} {_describe_shape(specs[name].shape)}")
        for a in outputs:
            if a.name not in expected:
                diffs.append(f"unexpected output {a.name!r} {_describe_shape(_shape(a))}")
        return {k: by_name[k] for k in expected if k in by_name}, layout, "name"
    found: dict[str, NodeArgLike] = {}  # generic names: bind by the per-person shape
    for a in outputs:
        tail = _shape(a)[1:]
        match = [s.name for s in HMR_OUTPUTS if list(s.shape[1:]) == tail]
        if not match:
            diffs.append(
                f"output {a.name!r} {_describe_shape(_shape(a))} has no contract output's "
                "shape (outputs without contract names are bound by shape)"
            )
        elif match[0] in found:
            diffs.append(
                f"outputs {found[match[0]].name!r} and {a.name!r} both have the shape of "
                f"{match[0]!r} {_describe_shape(specs[match[0]].shape)}"
            )
        else:
            found[match[0]] = a
    layout = MHR_ONLY if set(found) == mhr_only_names and len(outputs) == 4 else FULL
    expected = mhr_only_names if layout == MHR_ONLY else set(specs)
    for name in specs:
        if name in expected and name not in found:
            diffs.append(
                f"no output has the shape of {name!r} {_describe_shape(specs[name].shape)} "
                "(outputs without contract names are bound by shape)"
            )
    return found, layout, "shape"


def _check_tensor(kind: str, role: str, arg: NodeArgLike, spec: TensorSpec, diffs: list[str],
                  batches: dict[str, int | None], spatial: bool = False) -> None:  # fmt: skip
    shape = _shape(arg)
    label = f"{kind} {arg.name!r}" + (f" ({role})" if arg.name != role else "")
    if len(shape) != len(spec.shape):
        diffs.append(
            f"{label} has rank {len(shape)} {_describe_shape(shape)}, expected rank "
            f"{len(spec.shape)} {_describe_shape(spec.shape)}"
        )
        return
    batches[arg.name] = shape[0] if isinstance(shape[0], int) else None
    for axis in range(1, len(shape)):
        if spatial and axis >= 2:
            continue  # the crop size is checked by read_signature
        if shape[axis] != spec.shape[axis]:
            diffs.append(
                f"{label} axis {axis} is {shape[axis]}, expected {spec.shape[axis]} "
                f"(shape {_describe_shape(spec.shape)})"
            )
    if arg.type not in FLOAT_TYPES:
        diffs.append(f"{label} has dtype {arg.type}, expected tensor(float) or tensor(float16)")


def _image_size(image: NodeArgLike | None, metadata: Mapping[str, str],
                diffs: list[str]) -> int:  # fmt: skip
    raw = metadata.get(META_IMAGE_SIZE)
    meta = parse_image_size(raw) if raw is not None else None
    if raw is not None and meta is None:
        diffs.append(f"metadata {META_IMAGE_SIZE}={raw!r} is not a square crop size in pixels")
    dims = _shape(image)[2:] if image is not None and len(_shape(image)) == 4 else []
    fixed = [d for d in dims if isinstance(d, int)]
    if len(fixed) == 2 and fixed[0] != fixed[1]:
        diffs.append(f"input {image.name!r} is {fixed[0]}x{fixed[1]}; crops are square")  # type: ignore[union-attr]
        return CROP_SIZE
    if fixed and meta is not None and fixed[0] != meta:
        diffs.append(
            f"input {image.name!r} is {fixed[0]} px square but metadata "  # type: ignore[union-attr]
            f"{META_IMAGE_SIZE} says {meta}"
        )
    return fixed[0] if fixed else meta or CROP_SIZE


def read_signature(
    model: str,
    inputs: Sequence[NodeArgLike],
    outputs: Sequence[NodeArgLike],
    metadata: Mapping[str, str] | None = None,
) -> HMRSignature:
    """Decide which InstantHMR variant a loaded file is; :class:`ContractError` lists every
    difference when it is none of them.

    Args:
        model: the file's name, for messages.
        inputs, outputs: the session's ``get_inputs()`` / ``get_outputs()``.
        metadata: the file's custom metadata (``image_size``, ``cliff_focal``, ...).
    """
    metadata = metadata or {}
    diffs: list[str] = []
    ins = _bind_inputs(inputs, diffs)
    outs, layout, bound_by = _bind_outputs(outputs, diffs)
    batches: dict[str, int | None] = {}
    for role, arg in ins.items():
        spec = HMR_INPUTS[0] if role == "image" else HMR_INPUTS[1]
        _check_tensor("input", role, arg, spec, diffs, batches, spatial=role == "image")
    specs = {s.name: s for s in HMR_OUTPUTS}
    for role, arg in outs.items():
        _check_tensor("output", role, arg, specs[role], diffs, batches)
    size = _image_size(ins.get("image"), metadata, diffs)
    fixed = {b for b in batches.values() if b is not None}
    dynamic = [n for n, b in batches.items() if b is None]
    if len(fixed) > 1 or (fixed and dynamic):
        listed = ", ".join(f"{n}: {b if b is not None else 'N'}" for n, b in batches.items())
        diffs.append(f"the batch axes disagree ({listed}); expected one size or all dynamic")
    if diffs:
        raise ContractError(model, diffs)
    batch = next(iter(fixed)) if fixed else None
    dtypes = {a.name: a.type for a in (*ins.values(), *outs.values())}
    focal = cliff_focal_flag(metadata)
    notes = [f"{bound_by}-bound outputs"] if bound_by == "shape" else []
    if any(t == "tensor(float16)" for t in dtypes.values()):
        notes.append("float16 I/O (cast at the boundary)")
    if batch is not None:
        notes.append(f"fixed batch {batch} (chunks padded to it)")
    if size != CROP_SIZE:
        notes.append(f"{size} px crops")
    if focal:
        notes.append("focal-aware CLIFF")
    if layout == MHR_ONLY:
        notes.append("MHR-only layout (no joints_3d)")
    return HMRSignature(
        inputs={k: a.name for k, a in ins.items()},
        outputs={k: a.name for k, a in outs.items()},
        dtypes=dtypes, image_size=size, batch=batch, cliff_focal=focal, layout=layout,
        bound_by=bound_by, notes=tuple(notes),
    )  # fmt: skip

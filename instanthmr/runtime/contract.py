"""The InstantHMR model contract: input and output names, shapes and dtypes.

A model file is checked against this at load. Every difference is collected and reported
together in one :class:`ContractError`, so a user fixing an export sees all problems at
once. See ``docs/architecture.md`` and the spec the project is built against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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

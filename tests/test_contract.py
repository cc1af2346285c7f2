"""The model contract is validated at load: one ContractError lists every difference."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto
from onnx_builders import N, build_io_model, build_oracle, contract_io

from instanthmr.hmr.model import HMRModel
from instanthmr.runtime.contract import ContractError


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


def _load(path: Path) -> HMRModel:
    return HMRModel(path, device="cpu", warmup=False)


def test_good_file_loads(tmp_path: Path) -> None:
    ins, outs = contract_io()
    model = _load(_save(build_io_model(ins, outs), tmp_path / "good.onnx"))
    assert model.provider == "CPUExecutionProvider"
    oracle = _load(_save(build_oracle(), tmp_path / "oracle.onnx"))
    assert oracle.model_session.output_names[3] == "joints_2d"


def _variant(tmp_path: Path, name: str, edit) -> Path:
    ins, outs = contract_io()
    ins, outs = [list(x) for x in ins], [list(x) for x in outs]
    edit(ins, outs)
    return _save(build_io_model([tuple(x) for x in ins], [tuple(x) for x in outs]),
                 tmp_path / f"{name}.onnx")  # fmt: skip


def _rename_output(ins, outs):
    outs[3][0] = "keypoints_2d"


def _missing_input(ins, outs):
    del ins[1]


def _wrong_rank(ins, outs):
    outs[4][1] = [N, 210]


def _not_square(ins, outs):
    ins[0][1] = [N, 3, 256, 192]


def _wrong_dtype(ins, outs):
    ins[1][2] = TensorProto.DOUBLE


def _mixed_batch(ins, outs):
    ins[1][1] = [1, 3]  # only cliff_cond's batch is fixed


def _two_channels(ins, outs):
    ins[0][1] = [N, 2, 224, 224]


def _extra_output(ins, outs):
    outs.append(("heatmaps", [N, 70, 56, 56], TensorProto.FLOAT))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_rename_output, ["missing output 'joints_2d'", "unexpected output 'keypoints_2d'"]),
        (_missing_input, ["missing input 'cliff_cond'"]),
        (_wrong_rank, ["output 'joints_3d' has rank 2"]),
        (_not_square, ["input 'image' is 256x192; crops are square"]),
        (_two_channels, ["input 'image' axis 1 is 2, expected 3"]),
        (_wrong_dtype, ["input 'cliff_cond' has dtype tensor(double), expected tensor(float)"]),
        (_mixed_batch, ["the batch axes disagree (image: N, cliff_cond: 1"]),
        (_extra_output, ["unexpected output 'heatmaps'"]),
    ],
)
def test_each_mismatch_is_refused_and_named(tmp_path: Path, edit, expected: list[str]) -> None:
    path = _variant(tmp_path, edit.__name__, edit)
    with pytest.raises(ContractError) as err:
        _load(path)
    msg = str(err.value)
    for text in expected:
        assert text in msg, msg
    assert path.name in msg


def test_every_difference_is_listed_at_once(tmp_path: Path) -> None:
    def edit(ins, outs):
        _rename_output(ins, outs)
        _two_channels(ins, outs)
        _wrong_dtype(ins, outs)
        _mixed_batch(ins, outs)

    with pytest.raises(ContractError) as err:
        _load(_variant(tmp_path, "many", edit))
    # renamed = missing + unexpected; the channel axis; the dtype; the batch axes
    assert len(err.value.differences) == 5, err.value.differences


def test_truncated_file_gets_a_clear_error(tmp_path: Path) -> None:
    good = _save(build_oracle(), tmp_path / "full.onnx")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated"):
        _load(cut)

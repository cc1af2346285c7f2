"""What a model file is (architecture, size, precision, pinned or not), on small graphs."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx_builders import build_oracle, with_float16_io, with_metadata

from instanthmr.hmr import identity
from instanthmr.hmr.identity import file_precision, model_facts, weight_count
from instanthmr.hmr.pinned import PinnedFile, sha256_of


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, path)
    return path


def test_our_metadata_names_the_architecture(tmp_path: Path) -> None:
    model = with_metadata(build_oracle(), instanthmr_architecture="released",
                          instanthmr_params="39962081", instanthmr_gflop="13.451")  # fmt: skip
    facts = model_facts(_save(model, tmp_path / "m.onnx"))
    assert (facts.architecture, facts.params, facts.gflop) == ("released", 39962081, 13.451)
    assert facts.source == "metadata" and facts.precision == "fp32" and not facts.pinned
    line = facts.line()
    assert "architecture released, 39.96 M params, 13.45 GFLOP/person, fp32" in line
    assert "not the published file" in line


def test_a_file_without_metadata_is_unknown_with_its_weight_count(tmp_path: Path) -> None:
    model = build_oracle()
    facts = model_facts(_save(model, tmp_path / "o.onnx"))
    assert facts.architecture == "unknown" and facts.gflop is None
    assert facts.params == weight_count(model) > 3 * 204  # the oracle's weight matrices


def test_the_pinned_file_is_recognised_by_size_and_hash(tmp_path, monkeypatch) -> None:
    path = _save(build_oracle(), tmp_path / "instanthmr.onnx")  # no metadata, like the release
    pin = PinnedFile("momolesang/InstantHMR", "instanthmr.onnx", "0" * 40,
                     path.stat().st_size, sha256_of(path))  # fmt: skip
    monkeypatch.setattr(identity, "RELEASED", pin)
    facts = model_facts(path)
    assert facts.pinned and facts.architecture == "released" and facts.source == "pinned hash"
    assert facts.params == identity.RELEASED_PARAMS and facts.gflop == identity.RELEASED_GFLOP
    assert "the pinned published file" in facts.line()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: build_oracle(), "fp32"),
        (lambda: with_float16_io(build_oracle()), "float16 I/O"),
        (lambda: _fp16_weights(build_oracle()), "fp16 weights, float32 I/O"),
    ],
)
def test_file_precision(make, expected: str) -> None:
    assert file_precision(make()) == expected


def _fp16_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True)

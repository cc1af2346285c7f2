"""Result exporters: every format round-trips through read_results, empty frames included."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from instanthmr.results import FrameResult, PersonResult, StageTimings
from instanthmr.sinks.exporters import (
    CSV_COLUMNS,
    SUPPORTED_SUFFIXES,
    VERSION,
    open_exporter,
    read_results,
)
from instanthmr.skeleton import JOINT_NAMES

SIZE = (640, 480)


def _person(rng: np.random.Generator, track_id: int) -> PersonResult:
    return PersonResult(
        bbox=rng.uniform(0, 400, 4), score=float(rng.uniform()),
        joints_2d=rng.uniform(0, 640, (70, 2)), joints_3d_local=rng.normal(0, 0.5, (70, 3)),
        cam_trans=rng.normal([0, 0, 5], 1), mhr_params=rng.normal(size=204),
        shape_params=rng.normal(size=45), focal_length=800.0,
        principal_point=[320.0, 240.0], image_size=SIZE, track_id=track_id,
    )  # fmt: skip


def _frames() -> list[FrameResult]:
    rng = np.random.default_rng(0)
    return [
        FrameResult(
            [_person(rng, 1), _person(rng, 7)],
            0,
            SIZE,
            StageTimings(detect=12.5, hmr=3.25, total=16.0),
            True,
            0.0,
        ),
        FrameResult([], 1, SIZE, StageTimings(total=1.5), False, 0.1),  # nobody in view
        FrameResult([_person(rng, -1)], 2, SIZE, StageTimings(), False, None),
        FrameResult([], 3, SIZE, StageTimings(), True, 0.3),  # empty last frame
    ]


def _assert_same(got: list[FrameResult], want: list[FrameResult]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.frame_index, g.image_size, g.detector_ran) == (
            w.frame_index,
            w.image_size,
            w.detector_ran,
        )
        assert (g.timestamp is None) == (w.timestamp is None)
        if w.timestamp is not None:
            assert g.timestamp == pytest.approx(w.timestamp)
        assert g.timings.as_dict() == pytest.approx(w.timings.as_dict())
        assert len(g) == len(w)
        np.testing.assert_array_equal(g.track_ids, w.track_ids)
        for gp, wp in zip(g, w, strict=True):
            for name in (
                "bbox",
                "joints_2d",
                "joints_3d_local",
                "cam_trans",
                "mhr_params",
                "shape_params",
                "principal_point",
            ):
                np.testing.assert_allclose(
                    getattr(gp, name), getattr(wp, name), rtol=1e-6, atol=1e-6, err_msg=name
                )
            np.testing.assert_allclose(gp.joints_3d_cam, wp.joints_3d_cam, atol=1e-5)
            assert gp.score == pytest.approx(wp.score, rel=1e-6)
            assert gp.focal_length == pytest.approx(wp.focal_length)
            assert gp.image_size == wp.image_size


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    frames = _frames()
    path = tmp_path / f"out{suffix}"
    with open_exporter(path) as exp:
        for f in frames:
            exp.write(f)
    assert path.is_file() and not (tmp_path / f"out{suffix}.partial").exists()
    _assert_same(read_results(path), frames)


def test_jsonl_header_has_joint_names_and_units(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with open_exporter(path) as exp:
        exp.write(_frames()[0])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    header = lines[0]
    assert header["type"] == "header" and header["joint_names"] == list(JOINT_NAMES)
    assert header["units"]["joints_3d_cam"] == "metres" and header["units"]["bbox"] == "pixels"
    persons = [x for x in lines if x["type"] == "person"]
    assert [p["track_id"] for p in persons] == [1, 7]
    assert np.asarray(persons[0]["joints_3d_cam"]).shape == (70, 3)


def test_npz_metadata_and_arrays(tmp_path: Path) -> None:
    path = tmp_path / "r.npz"
    with open_exporter(path) as exp:
        for f in _frames():
            exp.write(f)
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["metadata"]))
        assert meta["joint_names"] == list(JOINT_NAMES)
        assert data["joints_2d"].shape == (3, 70, 2) and data["frame_index"].shape == (4,)
        assert data["person_frame"].tolist() == [0, 0, 2]
        assert np.isnan(data["timestamp"][2])


RUN = {"model_kind": "instanthmr", "model_file": "instanthmr.onnx", "model_notice": None,
       "detector": {"name": "YOLOX-nano (embedded)", "kind": "yolox"}}  # fmt: skip


@pytest.mark.parametrize("suffix", [".jsonl", ".npz", ".csv"])
def test_results_name_the_detector_that_made_them(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"r{suffix}"
    with open_exporter(path, run=RUN) as exp:
        for f in _frames():
            exp.write(f)
    if suffix == ".jsonl":
        assert json.loads(path.read_text().splitlines()[0])["detector"] == RUN["detector"]
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            assert json.loads(str(data["metadata"]))["detector"] == RUN["detector"]
    else:
        first = path.read_text().splitlines()[0]
        assert "; model_file: instanthmr.onnx; detector: YOLOX-nano (embedded); units:" in first
    _assert_same(read_results(path), _frames())  # still reads back
    plain = tmp_path / f"plain{suffix}"
    with open_exporter(plain) as exp:
        exp.write(_frames()[0])
    if suffix == ".jsonl":
        assert json.loads(plain.read_text().splitlines()[0])["detector"] is None  # not told


def test_csv_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with open_exporter(path) as exp:
        for f in _frames():
            exp.write(f)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# instanthmr-results") and "metres" in lines[0]
    header = lines[1].split(",")
    assert header == list(CSV_COLUMNS)
    for col in (
        "joints_2d.nose.x",
        "joints_3d_cam.neck.z",
        "bbox.x1",
        "track_id",
        "mhr_params.203",
        "shape_params.44",
    ):
        assert col in header
    assert len(lines) == 2 + 2 + 1 + 1 + 1  # header lines, 2 + empty + 1 + empty rows


def test_empty_run_round_trips(tmp_path: Path) -> None:
    for suffix in SUPPORTED_SUFFIXES:
        path = tmp_path / f"none{suffix}"
        open_exporter(path).close()
        assert read_results(path) == []


def test_unknown_suffix_lists_supported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.jsonl.*\.npz.*\.csv"):
        open_exporter(tmp_path / "out.parquet")
    with pytest.raises(ValueError, match="unsupported"):
        read_results(tmp_path / "out.txt")


def test_jsonl_flushes_per_frame_and_crash_keeps_old_file(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("previous good export\n")
    frames = _frames()
    exp = open_exporter(path)
    exp.write(frames[0])
    exp.write(frames[1])
    # Simulated crash: the exporter is never closed. The old file is untouched and the
    # partial file already holds both frames, readable as they are.
    assert path.read_text() == "previous good export\n"
    _assert_same(read_results(exp.partial_path), frames[:2])
    # A torn last line (crash in the middle of a write) is skipped.
    with open(exp.partial_path, "a") as fh:
        fh.write('{"type": "frame", "frame_ind')
    _assert_same(read_results(exp.partial_path), frames[:2])
    exp.close()
    _assert_same(read_results(path), frames[:2])


def test_write_after_close_and_wrong_type(tmp_path: Path) -> None:
    exp = open_exporter(tmp_path / "r.csv")
    with pytest.raises(TypeError, match="FrameResult"):
        exp.write({"persons": []})  # type: ignore[arg-type]
    exp.close()
    with pytest.raises(RuntimeError, match="closed"):
        exp.write(FrameResult())


def test_reader_rejects_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text('{"a": 1}\n')
    with pytest.raises(ValueError, match="not an InstantHMR results file"):
        read_results(path)


def _write_csv(tmp_path: Path) -> Path:
    path = tmp_path / "out.csv"
    with open_exporter(path) as exp:
        for frame in _frames():
            exp.write(frame)
    return path


def test_csv_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = _write_csv(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f" v{VERSION};", " v9;", 1), encoding="utf-8")
    with pytest.raises(ValueError, match="format version 9"):
        read_results(path)


def test_csv_bad_number_names_the_file_and_row(tmp_path: Path) -> None:
    path = _write_csv(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cells = lines[3].split(",")  # row 4 of the file: the second data row
    cells[CSV_COLUMNS.index("shape_params.44")] = "oops"
    lines[3] = ",".join(cells)
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=r"out\.csv:4: .*oops"):  # file:line: problem
        read_results(path)

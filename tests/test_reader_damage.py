"""Results readers on damaged files (issue 21, class 3): skip mode never crashes, skips and
counts every damaged record and returns every intact one; strict mode names the file, the
line and what was wrong. Then a seeded, time-bounded fuzz over JSONL, CSV and NPZ: random
truncations, byte flips and deleted keys give records back, or one clear error, never
another exception.

The files are written by the real exporters from a real world-stage run
(tests/world_scene.py: walkers, a fitted ground plane), so every field is exercised.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from world_scene import default_walkers, frames

from instanthmr.results import FrameResult, StageTimings
from instanthmr.sinks.exporters import open_exporter, read_results
from instanthmr.world import WorldFrame, WorldTracker

N_FRAMES = 16
FUZZ_SECONDS = 12.0  # per format; the loop stops at this budget (the seed fixes the cases)


def _frames() -> list[FrameResult]:
    stage = WorldTracker()
    camera = WorldFrame.from_camera(2.5, 20.0, 3.0)
    out = []
    scene = frames(camera, default_walkers()[:2], N_FRAMES, noise=0.005)
    for i, (t, persons, _) in enumerate(scene):
        persons, world = stage.update(persons, t)
        if i == 5:  # an empty frame in the middle
            persons, world = [], dataclasses.replace(world, persons=())
        out.append(FrameResult(persons, i, (640, 480), StageTimings(total=2.0), True, t, world))
    return out


@pytest.fixture(scope="module")
def original() -> list[FrameResult]:
    return _frames()


def _write(path: Path, frames_: list[FrameResult]) -> Path:
    with open_exporter(path) as exporter:
        for f in frames_:
            exporter.write(f)
    return path


def _same(got: FrameResult, want: FrameResult) -> bool:
    return (
        got.frame_index == want.frame_index
        and len(got) == len(want)
        and all(
            np.allclose(g.joints_2d, w.joints_2d, atol=1e-3) and g.track_id == w.track_id
            for g, w in zip(got.persons, want.persons, strict=True)
        )
    )


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def _put(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines))


def _skip(path: Path, caplog: pytest.LogCaptureFixture) -> tuple[list[FrameResult], str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        got = read_results(path, errors="skip")
    return got, " ".join(r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- JSONL cases
def _person_line(lines: list[bytes], frame_index: int) -> int:
    for i, raw in enumerate(lines):
        if raw.strip() and json.loads(raw).get("type") == "person" and json.loads(raw)[
                "frame_index"] == frame_index:  # fmt: skip
            return i
    raise AssertionError(frame_index)


def _frame_line(lines: list[bytes], frame_index: int) -> int:
    for i, raw in enumerate(lines):
        rec = json.loads(raw) if raw.strip() else {}
        if rec.get("type") == "frame" and rec["frame_index"] == frame_index:
            return i
    raise AssertionError(frame_index)


def test_jsonl_garbled_key_strict_names_file_line_and_key(tmp_path, original, caplog) -> None:
    path = _write(tmp_path / "r.jsonl", original)
    lines = _lines(path)
    i = _person_line(lines, 7)
    lines[i] = lines[i].replace(b'"track_id"', b'"trakc_id"')  # still valid JSON
    _put(path, lines)
    with pytest.raises(ValueError) as err:
        read_results(path)
    assert str(err.value).startswith(f"{path}:{i + 1}: ")
    assert "missing key 'track_id'" in str(err.value)
    got, warned = _skip(path, caplog)
    assert [f.frame_index for f in got] == [k for k in range(N_FRAMES) if k != 7]
    assert all(_same(g, original[g.frame_index]) for g in got)
    assert "skipped 1 bad records" in warned and f"line {i + 1}" in warned


def test_jsonl_skip_missing_key_in_a_frame_line(tmp_path, original, caplog) -> None:
    path = _write(tmp_path / "r.jsonl", original)
    lines = _lines(path)
    i = _frame_line(lines, 3)
    rec = json.loads(lines[i])
    del rec["num_persons"]
    lines[i] = json.dumps(rec).encode()
    _put(path, lines)
    got, warned = _skip(path, caplog)  # was: KeyError: 'num_persons'
    assert [f.frame_index for f in got] == [k for k in range(N_FRAMES) if k != 3]
    assert "missing key 'num_persons'" in warned
    with pytest.raises(ValueError, match=rf"r\.jsonl:{i + 1}: .*missing key 'num_persons'"):
        read_results(path)


def test_jsonl_binary_bytes(tmp_path, original, caplog) -> None:
    path = _write(tmp_path / "r.jsonl", original)
    lines = _lines(path)
    i = _person_line(lines, 9)
    lines[i] = lines[i][:30] + b"\xff\xfe\x00\x81" + lines[i][34:]
    _put(path, lines)
    got, warned = _skip(path, caplog)  # was: UnicodeDecodeError
    assert [f.frame_index for f in got] == [k for k in range(N_FRAMES) if k != 9]
    assert "not UTF-8" in warned
    with pytest.raises(ValueError, match=rf"r\.jsonl:{i + 1}: not UTF-8 text"):
        read_results(path)


@pytest.mark.parametrize("damage", ["cut", "garbled-type", "garbled-format", "deleted"])
def test_jsonl_damaged_header_keeps_the_records(tmp_path, original, caplog, damage) -> None:
    path = _write(tmp_path / "r.jsonl", original)
    lines = _lines(path)
    header = lines[0]
    lines[0] = {
        "cut": header[: len(header) // 2],
        "garbled-type": header.replace(b'"type"', b'"tpye"'),
        "garbled-format": header.replace(b"instanthmr-results", b"instanthmr-resulst"),
        "deleted": b"",
    }[damage]
    _put(path, lines)
    got, warned = _skip(path, caplog)  # was: the whole file refused
    assert [f.frame_index for f in got] == list(range(N_FRAMES))
    assert all(_same(g, w) for g, w in zip(got, original, strict=True))
    assert "skipped 1 bad records" in warned
    with pytest.raises(ValueError, match=r"r\.jsonl:[12][: ]"):  # file and line
        read_results(path)


def test_jsonl_foreign_file_is_refused_in_skip_mode_too(tmp_path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"input": "a.mp4", "status": "done"}\n{"input": "b.mp4"}\n')
    with pytest.raises(ValueError, match=r"manifest\.jsonl:1: not an InstantHMR results file"):
        read_results(path, errors="skip")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.jsonl is empty"):
        read_results(empty, errors="skip")


# ----------------------------------------------------------------------------- CSV cases
def test_csv_binary_bytes_and_missing_cells(tmp_path, original, caplog) -> None:
    path = _write(tmp_path / "r.csv", original)
    lines = _lines(path)
    rows = {i: int(raw.split(b",")[0]) for i, raw in enumerate(lines) if i >= 2 and raw}
    a = next(i for i, f in rows.items() if f == 4)
    b = next(i for i, f in rows.items() if f == 11)
    lines[a] = lines[a][:50] + b"\x80\x81\xfe" + lines[a][53:]
    lines[b] = b",".join(lines[b].split(b",")[:-3])  # three cells short
    _put(path, lines)
    got, warned = _skip(path, caplog)  # was: UnicodeDecodeError for the whole file
    assert [f.frame_index for f in got] == [k for k in range(N_FRAMES) if k not in (4, 11)]
    assert all(_same(g, original[g.frame_index]) for g in got)
    assert "not UTF-8" in warned and "cells, expected" in warned
    with pytest.raises(ValueError, match=rf"r\.csv:{a + 1}: not UTF-8 text"):
        read_results(path)


@pytest.mark.parametrize("line", [0, 1])
def test_csv_damaged_comment_or_header_row_keeps_the_rows(tmp_path, original, caplog, line):
    path = _write(tmp_path / "r.csv", original)
    lines = _lines(path)
    garbled = lines[line].replace(b"instanthmr", b"instanthrm")
    lines[line] = garbled.replace(b"frame_index", b"frmae_index")
    _put(path, lines)
    got, warned = _skip(path, caplog)
    assert [f.frame_index for f in got] == list(range(N_FRAMES))
    assert "skipped 1 bad records" in warned
    with pytest.raises(ValueError, match=rf"r\.csv:{line + 1}: "):  # file and line
        read_results(path)


# ----------------------------------------------------------------------------- the fuzz
def _mutate_text(data: bytes, rng: np.random.Generator, suffix: str) -> tuple[bytes, str]:
    kind = rng.choice(["truncate", "flip", "delete-key"])
    if kind == "truncate":
        return data[: int(rng.integers(0, len(data)))], kind
    if kind == "flip":
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            buf[int(rng.integers(0, len(buf)))] ^= 1 << int(rng.integers(0, 8))
        return bytes(buf), kind
    lines = data.split(b"\n")
    i = int(rng.integers(0, len(lines) - 1))
    if suffix == ".jsonl":
        rec = json.loads(lines[i])
        rec.pop(list(rec)[int(rng.integers(0, len(rec)))])
        lines[i] = json.dumps(rec).encode()
    else:
        cells = lines[i].split(b",")
        del cells[int(rng.integers(0, len(cells)))]
        lines[i] = b",".join(cells)
    return b"\n".join(lines), kind


def _mutate_npz(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    kind = rng.choice(["truncate", "flip", "delete-key"])
    if kind != "delete-key":
        return _mutate_text(data, rng, ".npz")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = z.namelist()
        drop = names[int(rng.integers(0, len(names)))]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as w:
            for n in names:
                if n != drop:
                    w.writestr(n, z.read(n))
    return out.getvalue(), kind


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".npz"])
def test_fuzz_records_back_or_one_clear_error(tmp_path, original, suffix) -> None:
    good = _write(tmp_path / f"good{suffix}", original).read_bytes()
    rng = np.random.default_rng(21)
    path = tmp_path / f"fuzzed{suffix}"
    outcomes: dict[str, int] = {}
    deadline = time.monotonic() + FUZZ_SECONDS
    cases = 0
    while time.monotonic() < deadline and cases < 400:
        cases += 1
        data, kind = _mutate_npz(good, rng) if suffix == ".npz" else _mutate_text(
            good, rng, suffix)  # fmt: skip
        path.write_bytes(data)
        for errors in ("strict", "skip"):
            try:
                got = read_results(path, errors=errors)
            except ValueError as exc:  # one clear error: it names the file
                assert str(path) in str(exc), (kind, errors, exc)
                assert "\n" not in str(exc).strip(), exc
                outcomes[f"{errors} refused"] = outcomes.get(f"{errors} refused", 0) + 1
                continue
            # any other exception type fails the test here, with the case that caused it
            assert isinstance(got, list) and all(isinstance(f, FrameResult) for f in got)
            assert all(0 <= f.frame_index < 2**31 for f in got), kind
            outcomes[f"{errors} read"] = outcomes.get(f"{errors} read", 0) + 1
            if kind == "delete-key" and errors == "skip" and suffix != ".npz":
                # one record lost at most, and the rest come back as written
                assert len(got) >= N_FRAMES - 2, (kind, len(got))
                assert all(_same(g, original[g.frame_index]) for g in got)
    assert cases >= 20, f"only {cases} fuzz cases ran in {FUZZ_SECONDS} s"
    assert outcomes.get("skip read", 0) > 0, outcomes  # skip mode does give records back

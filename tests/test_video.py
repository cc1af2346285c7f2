"""Annotated video: drawing skeletons/boxes/labels and writing an mp4 that reads back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from instanthmr.results import FrameResult, PersonResult
from instanthmr.sinks.video import AnnotatedVideoWriter, draw_results, track_color
from instanthmr.skeleton import BODY_EDGES, GROUP_COLORS, JOINT_INDEX

W, H = 320, 240


def _person(track_id: int = 3, shift: float = 0.0) -> PersonResult:
    """A person whose joints lie on a vertical line x = 100 + shift, y from 40 to 200."""
    joints = np.zeros((70, 2))
    joints[:, 0] = 100 + shift
    joints[:, 1] = np.linspace(40, 200, 70)
    return PersonResult(
        bbox=[60 + shift, 30, 140 + shift, 210], score=0.87, joints_2d=joints,
        joints_3d_local=np.zeros((70, 3)), cam_trans=[0, 0, 4], mhr_params=np.zeros(204),
        shape_params=np.zeros(45), focal_length=400.0, principal_point=[W / 2, H / 2],
        image_size=(W, H), track_id=track_id,
    )  # fmt: skip


def test_draw_results_draws_skeleton_box_and_label() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    out = draw_results(image, FrameResult([_person()], 0, (W, H)))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not image.any(), "the input image must not be modified"
    # The neck-left_shoulder edge is torso-coloured; a pixel on the line at mid-height shows
    # a limb-group colour from the skeleton module.
    colours = {tuple(c) for c in GROUP_COLORS.values()}
    a, b = BODY_EDGES[1]
    mid_y = round((np.linspace(40, 200, 70)[a] + np.linspace(40, 200, 70)[b]) / 2)
    assert tuple(out[mid_y, 100]) in colours
    # Box edge in the track's colour, label background too.
    assert tuple(out[120, 140]) == track_color(3)
    assert (out[:30, 60:120] == track_color(3)).all(axis=-1).any()
    # Nothing drawn far from the person.
    assert not out[:, 250:].any()


def test_draw_results_full_skeleton_draws_more() -> None:
    person = _person()
    joints = person.joints_2d.copy()
    joints[JOINT_INDEX["left_eye"]] = [200, 60]  # a face edge only the full skeleton has
    person = person.replace(joints_2d=joints)
    frame = FrameResult([person], 0, (W, H))
    base = draw_results(np.zeros((H, W, 3), np.uint8), frame)
    full = draw_results(np.zeros((H, W, 3), np.uint8), frame, full_skeleton=True)
    assert full[:, 150:].any() and not base[:, 150:].any()


def test_draw_results_empty_frame_and_size_mismatch() -> None:
    image = np.full((H, W, 3), 7, np.uint8)
    np.testing.assert_array_equal(draw_results(image, FrameResult([], 0, (W, H))), image)
    with pytest.raises(ValueError, match="320x240"):
        draw_results(np.zeros((100, 100, 3), np.uint8), FrameResult([_person()], 0, (W, H)))
    with pytest.raises(TypeError, match="uint8"):
        draw_results(np.zeros((H, W, 3), np.float32), FrameResult([], 0, (W, H)))


def test_draw_results_survives_wild_coordinates() -> None:
    person = _person().replace(joints_2d=np.full((70, 2), 1e9))
    out = draw_results(np.zeros((H, W, 3), np.uint8), FrameResult([person], 0, (W, H)))
    assert out.shape == (H, W, 3)


def _read_back(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_writer_frame_count_and_size(tmp_path: Path) -> None:
    path = tmp_path / "annotated.mp4"
    n = 7
    with AnnotatedVideoWriter(path, 10, (W, H)) as writer:
        for i in range(n):
            frame = FrameResult([_person(shift=10 * i)], i, (W, H))
            writer.write(draw_results(np.full((H, W, 3), 30, np.uint8), frame))
    assert writer.frames_written == n
    assert not (tmp_path / "annotated.partial.mp4").exists()
    frames = _read_back(path)
    assert len(frames) == n and frames[0].shape == (H, W, 3)
    # The skeleton moves right by 10 px per frame: check it is there in the last frame.
    assert frames[-1][120, 160].astype(int).sum() > frames[-1][120, 300].astype(int).sum()


def test_writer_pads_odd_sizes(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    with AnnotatedVideoWriter(path, 5, (33, 21)) as writer:
        writer.write(np.zeros((21, 33, 3), np.uint8))
    assert writer.output_size == (34, 22)
    frames = _read_back(path)
    assert len(frames) == 1 and frames[0].shape == (22, 34, 3)


def test_writer_errors(tmp_path: Path) -> None:
    with AnnotatedVideoWriter(tmp_path / "a.avi", 5, (W, H)) as writer:
        with pytest.raises(ValueError, match="320x240"):
            writer.write(np.zeros((H + 1, W, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\.mp4"):
        AnnotatedVideoWriter(tmp_path / "a.gif", 5, (W, H))
    with pytest.raises(ValueError, match="fps"):
        AnnotatedVideoWriter(tmp_path / "a.mp4", 0, (W, H))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((RuntimeError, OSError)):
        AnnotatedVideoWriter(blocker / "a.mp4", 5, (W, H))  # parent is a file

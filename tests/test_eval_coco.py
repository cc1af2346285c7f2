"""COCO keypoint AP through pycocotools on a tiny synthetic set, and ``instanthmr eval coco``
end to end with the analytic oracle model (outputs known from the inputs; not a pose model)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import supervision as sv
from onnx_builders import build_oracle, joint_offsets

from instanthmr.commands.eval import main as eval_main
from instanthmr.evaluation import coco
from instanthmr.evaluation.joints import COCO17, COCO17_NAMES
from instanthmr.pipeline import PosePipeline

pytest.importorskip("pycocotools")

W, H = 480, 360
# per image: blob centres and their person boxes (x1, y1, x2, y2)
PEOPLE = {
    1: [
        ((120.0, 150.0), (70.0, 60.0, 170.0, 250.0)),
        ((360.0, 170.0), (310.0, 80.0, 410.0, 270.0)),
    ],
    2: [((240.0, 180.0), (180.0, 60.0, 300.0, 300.0))],
    3: [((200.0, 120.0), (150.0, 40.0, 250.0, 210.0))],
}


def _oracle_keypoints(centre: tuple[float, float], box: tuple[float, ...]) -> np.ndarray:
    """(17, 2) where the oracle puts the COCO joints for this blob and box."""
    side = 1.2 * max(box[2] - box[0], box[3] - box[1])
    return COCO17(np.asarray(centre) + joint_offsets() * side / 2)


def _dataset(root: Path) -> dict:
    images, anns = [], []
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    for image_id, people in PEOPLE.items():
        v = np.zeros((H, W))
        for (x0, y0), _ in people:
            v = np.maximum(v, 255 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 6.0**2)))
        img = np.zeros((H, W, 3), np.uint8)
        img[..., 2] = np.round(v).astype(np.uint8)  # BGR: red
        name = f"{image_id:012d}.jpg"
        cv2.imwrite(str(root / name), img)
        images.append({"id": image_id, "file_name": name, "width": W, "height": H})
        for centre, box in people:
            kp = np.c_[_oracle_keypoints(centre, box), np.full(17, 2.0)]
            x1, y1, x2, y2 = box
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                         "iscrowd": 0, "keypoints": kp.reshape(-1).tolist(),
                         "num_keypoints": 17})  # fmt: skip
    cats = [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(COCO17_NAMES), "skeleton": []}]  # fmt: skip
    return {"images": images, "annotations": anns, "categories": cats}


def _results_from_gt(data: dict, noise: float = 0.0, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for a in data["annotations"]:
        kp = np.asarray(a["keypoints"], np.float64).reshape(17, 3)
        kp[:, :2] += rng.normal(scale=noise, size=(17, 2)) if noise else 0.0
        out.append({"image_id": a["image_id"], "category_id": 1,
                    "keypoints": kp.reshape(-1).tolist(), "score": 0.9})  # fmt: skip
    return out


def test_pycocotools_ap_is_1_for_exact_keypoints_and_falls_when_perturbed(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    gt = coco.load_annotations(data)
    ids = sorted(PEOPLE)
    exact = coco.keypoint_ap(gt, _results_from_gt(data), ids)
    assert exact["AP"] == pytest.approx(100.0)
    assert exact["AR"] == pytest.approx(100.0)
    noisy = coco.keypoint_ap(gt, _results_from_gt(data, noise=8.0), ids)
    assert noisy["AP"] < 90.0
    assert coco.keypoint_ap(gt, [], ids)["AP"] == 0.0


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "oracle.onnx"
    onnx.save(build_oracle(), path)
    return path


def test_eval_coco_cli_with_gt_boxes(tmp_path: Path, oracle: Path, capsys) -> None:
    (tmp_path / "val2017").mkdir()
    ann = tmp_path / "person_keypoints_val2017.json"
    ann.write_text(json.dumps(_dataset(tmp_path / "val2017")))
    out = tmp_path / "coco-report"
    rc = eval_main(["coco", "--root", str(tmp_path / "val2017"), "--annotations", str(ann),
                    "--model", str(oracle), "--gt-boxes", "--device", "cpu",
                    "--out", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads(out.with_suffix(".json").read_text())
    m = report["overall"]["metrics"]
    assert m["AP"] == pytest.approx(100.0) and m["AP50"] == pytest.approx(100.0)
    assert m["APm"] is None  # no medium-sized people: COCOeval's -1 becomes null, not -100
    assert report["overall"]["frames"] == 3 and report["overall"]["persons"] == 4
    assert report["overall"]["detection"]["tp"] == 4
    assert "AP (%)" in capsys.readouterr().out
    # --limit keeps the first images by id
    rc = eval_main(["coco", "--root", str(tmp_path / "val2017"), "--annotations", str(ann),
                    "--model", str(oracle), "--gt-boxes", "--device", "cpu", "--limit", "1",
                    "--out", str(out)])  # fmt: skip
    assert rc == 0 and json.loads(out.with_suffix(".json").read_text())["overall"]["persons"] == 2


class BlobDetector:
    """Bright blobs in the red channel -> person boxes (a real, simple detector)."""

    def detect(self, image_rgb: np.ndarray) -> sv.Detections:
        n, _, st, _ = cv2.connectedComponentsWithStats((image_rgb[..., 0] > 60).astype(np.uint8))
        x, y, w, h = (st[1:, i].astype(np.float64) for i in range(4))
        xyxy = np.stack([x - 45, y - 80, x + w + 45, y + h + 80], 1).reshape(-1, 4)
        return sv.Detections(xyxy=xyxy, confidence=np.full(n - 1, 0.8),
                             class_id=np.zeros(n - 1, int))  # fmt: skip


def test_detector_path_counts_detections(tmp_path: Path, oracle: Path) -> None:
    data = _dataset(tmp_path)
    pipe = PosePipeline(oracle, device="cpu", detector=BlobDetector(), tracking=False)
    scored = coco.evaluate(pipe, data, tmp_path)
    assert scored["detection"]["tp"] == 4 and scored["detection"]["fp"] == 0
    assert scored["detection"]["f1"] == pytest.approx(100.0)
    # other boxes, other crops: the oracle's joints move by a few pixels, AP stays high
    assert 50.0 < scored["metrics"]["AP50"] <= 100.0


def test_missing_annotation_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="person_keypoints_val2017"):
        coco.load_annotations(tmp_path / "nope.json")

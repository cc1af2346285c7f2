"""InstantHMR model: pre-processing, one batched run per frame, and typed results.

All onnxruntime work goes through :class:`~instanthmr.runtime.session.Runtime`; this module only
turns images and boxes into the contract's inputs and the outputs into
:class:`~instanthmr.results.PersonResult` objects in full-frame coordinates.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from ..geometry import (
    cliff_vectors,
    crop_images,
    crop_to_frame,
    full_frame_camera,
    image_size_of,
    normalize_crops,
    square_crops,
    validate_boxes,
    validate_image,
)
from ..results import PersonResult
from ..runtime.contract import CROP_SIZE, HMR_INPUTS, HMR_OUTPUTS
from ..runtime.io_binding import GPU_PROVIDERS, BoundRunner
from ..runtime.session import ModelSession, Runtime, SessionBacked
from . import standin
from .kinds import RANDOM_INIT, ModelKind, kind_of
from .weights import resolve_model

OUTPUT_NAMES: tuple[str, ...] = tuple(s.name for s in HMR_OUTPUTS)
MAX_BATCH = 16
"""Most persons in one model call: more run in chunks of this size, so the memory of a call
stays bounded whatever the box count (400 boxes in one call took 2.9 GB on the CPU)."""

log = logging.getLogger(__name__)


@dataclass
class HMRBatch:
    """Model inputs for the persons of one frame, with the geometry to map outputs back."""

    image: np.ndarray  # (N, 3, 224, 224) float32, normalised
    cliff_cond: np.ndarray  # (N, 3) float32
    boxes: np.ndarray  # (N, 4) float64 xyxy
    squares: np.ndarray  # (N, 3) float64 [cx, cy, side]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.boxes)


def finite_rows(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """(N,) bool: persons whose every model output is finite."""
    n = len(outputs[OUTPUT_NAMES[0]])
    ok = np.ones(n, dtype=bool)
    for name in OUTPUT_NAMES:
        ok &= np.isfinite(outputs[name].reshape(n, -1 if n else 1)).all(axis=1)
    return ok


class HMRModel(SessionBacked):
    """The InstantHMR ONNX model on one device.

    Args:
        model: a local ``.onnx`` path, or None / ``"instanthmr"`` for the Hub release
            (see :func:`~instanthmr.hmr.weights.resolve_model`).
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``coreml``.
        runtime: share an existing :class:`Runtime` (then device/threads/fallback are its own).
        threads: CPU intra-op threads.
        fallback: allow CPU when the requested provider is not active (with a warning).
        pad_batch: pad every call to this batch size, so CUDA/TensorRT don't re-plan for each
            person count; more persons are split into chunks of this size. None: no padding.
        warmup: run the batch sizes that will be used once at load.
        precision: ``auto``, ``fp32``, ``fp16`` or ``int8`` (see
            :func:`~instanthmr.runtime.precision.choose_file`; the choice is logged).
        io_binding: run through :class:`~instanthmr.runtime.io_binding.BoundRunner`
            (buffers allocated once per batch size). None: on for CUDA/TensorRT, off on
            CPU. A runtime built with ``cuda_graph=True`` needs it and ``pad_batch``.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        device: str = "auto",
        *,
        runtime: Runtime | None = None,
        threads: int | None = None,
        fallback: bool = False,
        pad_batch: int | None = None,
        warmup: bool = True,
        precision: str = "auto",
        io_binding: bool | None = None,
    ) -> None:
        if pad_batch is not None and pad_batch < 1:
            raise ValueError(f"pad_batch must be >= 1 or None, got {pad_batch}")
        self.runtime = runtime or Runtime(device, threads=threads, fallback=fallback)
        self.model_path = resolve_model(model)
        self.model_session: ModelSession = self.runtime.load(
            self.model_path, precision=precision, inputs=HMR_INPUTS, outputs=HMR_OUTPUTS
        )
        meta = self.model_session.metadata
        self.model_kind: ModelKind = kind_of(meta)
        """What the file is (InstantHMR, random-init, the stand-in): :mod:`.kinds`."""
        self.real_joints = standin.real_joint_mask(meta)
        """(70,) bool: the joints the model really predicts (the stand-in approximates some)."""
        self._refit_cam = standin.is_standin(meta)
        if self._refit_cam:
            log.warning("!!! %s: %s !!!", self.model_path.name, self.model_kind.notice)
        self.pad_batch = pad_batch
        graph = self.runtime.cuda_graph and self.provider in GPU_PROVIDERS
        if io_binding is None:
            io_binding = self.provider in GPU_PROVIDERS
        if graph and not io_binding:
            raise ValueError("a CUDA-graph runtime needs io_binding=True")
        self.runner: BoundRunner | None = None
        if io_binding:
            self.runner = BoundRunner(
                self.model_session, OUTPUT_NAMES, cuda_graph=graph,
                batch_sizes=[pad_batch] if graph and pad_batch else None,
                device_id=self.runtime.device_id,
            )  # fmt: skip
        if warmup:
            self.runtime.warmup(self.runner or self.model_session, self._zeros, [pad_batch or 1])

    @property
    def random_init(self) -> bool:
        """True for a random-init export (meaningless poses): ``model_kind`` random-init."""
        return self.model_kind.name == RANDOM_INIT

    @property
    def precision(self) -> str:
        """What runs: ``fp32``, ``fp16`` or ``int8``."""
        return self.model_session.precision

    @staticmethod
    def _zeros(n: int) -> dict[str, np.ndarray]:
        return {
            "image": np.zeros((n, 3, CROP_SIZE, CROP_SIZE), np.float32),
            "cliff_cond": np.zeros((n, 3), np.float32),
        }

    def prepare(self, image_rgb: np.ndarray, boxes: object) -> HMRBatch:
        """Validate the image and boxes; build crops and CLIFF vectors (the crop stage)."""
        image = validate_image(image_rgb)
        size = image_size_of(image)
        b = validate_boxes(boxes, size)
        squares = square_crops(b)
        crops = crop_images(image, squares)
        return HMRBatch(normalize_crops(crops), cliff_vectors(b, size), b, squares, size)

    def infer(
        self, image: np.ndarray, cliff_cond: np.ndarray, batched: bool = True
    ) -> dict[str, np.ndarray]:
        """Run the model on (N, 3, 224, 224) crops and (N, 3) CLIFF vectors.

        With ``batched`` all persons go through one call, in chunks of at most
        :data:`MAX_BATCH` (of ``pad_batch`` when set, the last chunk padded with zeros,
        padded rows discarded); otherwise one call per person.
        """
        n = len(image)
        if n == 0:
            return {s.name: np.zeros((0, *s.shape[1:]), np.float32) for s in HMR_OUTPUTS}
        chunk = (self.pad_batch or min(n, MAX_BATCH)) if batched else 1
        parts: dict[str, list[np.ndarray]] = {k: [] for k in OUTPUT_NAMES}
        for start in range(0, n, chunk):
            img = image[start : start + chunk]
            cond = cliff_cond[start : start + chunk]
            m = len(img)
            if batched and self.pad_batch and m < self.pad_batch:
                pad = self.pad_batch - m
                img = np.concatenate([img, np.zeros((pad, *img.shape[1:]), np.float32)])
                cond = np.concatenate([cond, np.zeros((pad, 3), np.float32)])
            feeds = {"image": img, "cliff_cond": cond}
            if self.runner is not None:
                out = self.runner.run(feeds)
            else:
                out = self.model_session.run(feeds, OUTPUT_NAMES)
            for k in OUTPUT_NAMES:
                parts[k].append(out[k][:m])
        return {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in parts.items()}

    def postprocess(
        self, batch: HMRBatch, outputs: dict[str, np.ndarray], scores: object = None
    ) -> list[PersonResult]:
        """Map model outputs to full-frame :class:`PersonResult` objects.

        A person whose outputs are not finite (NaN/inf from the model) is left out with a
        logged warning, so one bad crop does not stop a live run.
        """
        n = len(batch)
        sc = np.ones(n, np.float32) if scores is None else np.asarray(scores, np.float32)
        if sc.shape != (n,):
            raise ValueError(f"scores must have shape ({n},) to match the boxes, got {sc.shape}")
        if n == 0:
            return []
        focal, pp = full_frame_camera(batch.image_size)
        if self._refit_cam:  # the stand-in's graph assumes a 4:3 frame: solve for this one
            cam = standin.refit_cam_trans(outputs, batch.squares, batch.image_size,
                                          self.real_joints)  # fmt: skip
            outputs = {**outputs, "cam_trans": cam}
        joints_2d = crop_to_frame(outputs["joints_2d"], batch.squares)
        finite = finite_rows(outputs)
        if not finite.all():
            log.warning(
                "model output is not finite for %d of %d persons (boxes %s); leaving them out",
                int((~finite).sum()), n, batch.boxes[~finite].round(1).tolist(),
            )  # fmt: skip
        return [
            PersonResult(
                bbox=batch.boxes[i],
                score=float(sc[i]),
                joints_2d=joints_2d[i],
                joints_3d_local=outputs["joints_3d"][i],
                cam_trans=outputs["cam_trans"][i],
                mhr_params=outputs["mhr_params"][i],
                shape_params=outputs["shape_params"][i],
                focal_length=focal,
                principal_point=pp,
                image_size=batch.image_size,
            )
            for i in range(n)
            if finite[i]
        ]

    def predict(
        self, image_rgb: np.ndarray, boxes: object, scores: object = None, batched: bool = True
    ) -> list[PersonResult]:
        """3D pose for each box in an RGB uint8 (H, W, 3) image; ``[]`` when there are no boxes.

        Args:
            image_rgb: the full frame, RGB uint8.
            boxes: (N, 4) xyxy pixel boxes; partly outside the frame is fine.
            scores: optional (N,) detector scores (default 1.0).
            batched: one call for all persons (default) or one call per person.
        """
        batch = self.prepare(image_rgb, boxes)
        outputs = self.infer(batch.image, batch.cliff_cond, batched=batched)
        return self.postprocess(batch, outputs, scores)

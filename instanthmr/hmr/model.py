"""InstantHMR model: pre-processing, one batched run per frame, and typed results.

All onnxruntime work goes through :class:`~instanthmr.runtime.session.Runtime`; this module only
turns images and boxes into the contract's inputs and the outputs into
:class:`~instanthmr.results.PersonResult` objects in full-frame coordinates.

What the file is, is decided once at load by
:func:`~instanthmr.runtime.contract.read_signature` (docs/architecture.md, "Model files
the loader accepts"), and followed here: crops at the file's ``image_size``; the
focal-aware CLIFF vector and the caller's focal (default 1.05 image diagonals) for
``cliff_focal`` files; float16 inputs and outputs cast at the boundary; a fixed batch axis
run in chunks of that size, the last one padded; outputs read by their bound names; the
4-output MHR-only layout run only with a keypoint rig (``mhr_rig``), refused otherwise.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..geometry import (
    cliff_vectors,
    crop_images,
    crop_to_frame,
    default_focal,
    focal_cliff_vectors,
    full_frame_camera,
    image_size_of,
    normalize_crops,
    square_crops,
    validate_boxes,
    validate_image,
)
from ..results import PersonResult
from ..runtime.contract import (
    HMR_OUTPUTS,
    HMRSignature,
    UnsupportedModelError,
    read_signature,
)
from ..runtime.io_binding import GPU_PROVIDERS, BoundRunner
from ..runtime.session import ModelSession, Runtime, SessionBacked
from . import standin
from .kinds import RANDOM_INIT, ModelKind, kind_of
from .weights import resolve_model

OUTPUT_NAMES: tuple[str, ...] = tuple(s.name for s in HMR_OUTPUTS)
MhrRig = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``rig(mhr_params (N, 204), shape_params (N, 45)) -> (N, 70, 3)``: body-centred MHR70
keypoints in metres, camera axes (X right, Y down, Z forward), as ``joints_3d``."""
_NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
MAX_BATCH = 16
"""Most persons in one model call: more run in chunks of this size, so the memory of a call
stays bounded whatever the box count (400 boxes in one call took 2.9 GB on the CPU)."""

log = logging.getLogger(__name__)


@dataclass
class HMRBatch:
    """Model inputs for the persons of one frame, with the geometry to map outputs back."""

    image: np.ndarray  # (N, 3, S, S) float32, normalised (S: the model's crop size)
    cliff_cond: np.ndarray  # (N, 3) float32
    boxes: np.ndarray  # (N, 4) float64 xyxy
    squares: np.ndarray  # (N, 3) float64 [cx, cy, side]
    image_size: tuple[int, int]
    focal: float  # the full-frame pinhole's focal in pixels (the one the CLIFF vector used)

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
        focal: the camera's focal length in pixels, for focal-aware files (metadata
            ``cliff_focal``) only; None: 1.05 image diagonals. It enters the CLIFF vector
            and is the focal of every result's camera. Refused for the published
            pixel-conditioned file, whose camera is fixed at f = the image diagonal.
        mhr_rig: for the 4-output MHR-only layout: turns ``mhr_params`` and
            ``shape_params`` into the 70 3D keypoints (:data:`MhrRig`). Without one such a
            file is refused with what it is and what to install.

    Raises:
        ContractError: the file is none of the accepted variants (every difference listed).
        UnsupportedModelError: an MHR-only file without ``mhr_rig``, ``focal`` for a
            pixel-conditioned file, or ``pad_batch`` other than a file's fixed batch.
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
        focal: float | None = None,
        mhr_rig: MhrRig | None = None,
    ) -> None:
        if pad_batch is not None and pad_batch < 1:
            raise ValueError(f"pad_batch must be >= 1 or None, got {pad_batch}")
        if focal is not None and not (np.isfinite(focal) and focal > 0):
            raise ValueError(f"focal must be a positive number of pixels, got {focal}")
        self.runtime = runtime or Runtime(device, threads=threads, fallback=fallback)
        self.model_path = resolve_model(model)
        self.model_session: ModelSession = self.runtime.load(self.model_path, precision=precision)
        session = self.model_session.session
        self.signature: HMRSignature = read_signature(
            str(self.model_path), session.get_inputs(), session.get_outputs(),
            self.model_session.metadata,
        )  # fmt: skip
        sig = self.signature
        if sig.mhr_only and mhr_rig is None:
            raise UnsupportedModelError(mhr_only_refusal(self.model_path))
        if focal is not None and not sig.cliff_focal:
            raise UnsupportedModelError(
                f"focal={focal:g} px does not apply to {self.model_path.name}: it is a "
                "pixel-conditioned model (no cliff_focal metadata), trained with a camera of "
                "f = the image diagonal, which its results use. Drop --focal/focal=, or use "
                "a focal-aware file"
            )
        if sig.batch is not None and pad_batch not in (None, sig.batch):
            raise UnsupportedModelError(
                f"{self.model_path.name} has a fixed batch of {sig.batch}; pad_batch="
                f"{pad_batch} cannot apply (persons run in chunks of {sig.batch})"
            )
        if sig.notes:
            log.info("%s: %s", self.model_path.name, "; ".join(sig.notes))
        self.focal = focal
        self.mhr_rig = mhr_rig
        self.pad_batch = sig.batch or pad_batch
        meta = self.model_session.metadata
        self.model_kind: ModelKind = kind_of(meta)
        """What the file is (InstantHMR, random-init, the stand-in): :mod:`.kinds`."""
        self.real_joints = standin.real_joint_mask(meta)
        """(70,) bool: the joints the model really predicts (the stand-in approximates some)."""
        self.left_out = [0, 0]
        """Frames (calls) with persons left out for non-finite outputs, and those persons."""
        self._refit_cam = standin.is_standin(meta)
        if self._refit_cam:
            log.warning("!!! %s: %s !!!", self.model_path.name, self.model_kind.notice)
        graph = self.runtime.cuda_graph and self.provider in GPU_PROVIDERS
        if io_binding is None:
            io_binding = self.provider in GPU_PROVIDERS
        if graph and not io_binding:
            raise ValueError("a CUDA-graph runtime needs io_binding=True")
        self.runner: BoundRunner | None = None
        if io_binding:
            self.runner = BoundRunner(
                self.model_session, list(sig.outputs.values()), cuda_graph=graph,
                batch_sizes=[self.pad_batch] if graph and self.pad_batch else None,
                device_id=self.runtime.device_id,
            )  # fmt: skip
        if warmup:
            self.runtime.warmup(self.runner or self.model_session, self._zeros,
                                [self.pad_batch or 1])  # fmt: skip

    @property
    def random_init(self) -> bool:
        """True for a random-init export (meaningless poses): ``model_kind`` random-init."""
        return self.model_kind.name == RANDOM_INIT

    @property
    def precision(self) -> str:
        """What runs: ``fp32``, ``fp16`` or ``int8``."""
        return self.model_session.precision

    @property
    def image_size(self) -> int:
        """The square crop size of this model file (224 for the published file)."""
        return self.signature.image_size

    @property
    def cliff_focal(self) -> bool:
        """True for a focal-aware file (metadata ``cliff_focal``)."""
        return self.signature.cliff_focal

    def focal_for(self, image_size: tuple[int, int]) -> float:
        """The focal (pixels) of the camera for frames of ``image_size = (W, H)``."""
        return self.focal if self.focal is not None else default_focal(image_size,
                                                                      self.cliff_focal)

    def _zeros(self, n: int) -> dict[str, np.ndarray]:
        s = self.image_size
        return self._feeds(np.zeros((n, 3, s, s), np.float32), np.zeros((n, 3), np.float32))

    def _feeds(self, image: np.ndarray, cliff_cond: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's own input names and dtypes (float16 inputs are cast here)."""
        sig = self.signature
        names = sig.inputs
        return {
            names["image"]: image.astype(_NUMPY[sig.dtypes[names["image"]]], copy=False),
            names["cliff_cond"]: cliff_cond.astype(_NUMPY[sig.dtypes[names["cliff_cond"]]],
                                                   copy=False),
        }  # fmt: skip

    def prepare(self, image_rgb: np.ndarray, boxes: object) -> HMRBatch:
        """Validate the image and boxes; build crops and CLIFF vectors (the crop stage)."""
        image = validate_image(image_rgb)
        size = image_size_of(image)
        b = validate_boxes(boxes, size)
        squares = square_crops(b)
        crops = crop_images(image, squares, self.image_size)
        focal = self.focal_for(size)
        cliff = focal_cliff_vectors(b, size, focal) if self.cliff_focal else cliff_vectors(b, size)
        return HMRBatch(normalize_crops(crops), cliff, b, squares, size, focal)

    def infer(
        self, image: np.ndarray, cliff_cond: np.ndarray, batched: bool = True
    ) -> dict[str, np.ndarray]:
        """Run the model on (N, 3, S, S) crops and (N, 3) CLIFF vectors (float32).

        With ``batched`` all persons go through one call, in chunks of at most
        :data:`MAX_BATCH` (of ``pad_batch`` when set, the last chunk padded with zeros,
        padded rows discarded); otherwise one call per person (a file with a fixed batch
        always runs padded chunks of that size). Returns the five contract outputs by their
        contract names, float32.
        """
        n = len(image)
        if n == 0:
            return {s.name: np.zeros((0, *s.shape[1:]), np.float32) for s in HMR_OUTPUTS}
        fixed = self.signature.batch
        chunk = fixed or ((self.pad_batch or min(n, MAX_BATCH)) if batched else 1)
        pad_to = fixed or (self.pad_batch if batched else None)
        bound = self.signature.outputs  # contract name -> graph name
        parts: dict[str, list[np.ndarray]] = {k: [] for k in bound}
        for start in range(0, n, chunk):
            img = image[start : start + chunk]
            cond = cliff_cond[start : start + chunk]
            m = len(img)
            if pad_to and m < pad_to:
                pad = pad_to - m
                img = np.concatenate([img, np.zeros((pad, *img.shape[1:]), img.dtype)])
                cond = np.concatenate([cond, np.zeros((pad, 3), cond.dtype)])
            feeds = self._feeds(img, cond)
            if self.runner is not None:
                out = self.runner.run(feeds)
            else:
                out = self.model_session.run(feeds, list(bound.values()))
            for k, graph_name in bound.items():
                parts[k].append(out[graph_name][:m])
        outputs = {
            k: (v[0] if len(v) == 1 else np.concatenate(v)).astype(np.float32, copy=False)
            for k, v in parts.items()
        }
        if self.signature.mhr_only:
            outputs["joints_3d"] = self._rig_keypoints(outputs)
        return outputs

    def _rig_keypoints(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """joints_3d of an MHR-only file from its ``mhr_rig``, shape-checked."""
        assert self.mhr_rig is not None  # refused at load otherwise
        n = len(outputs["mhr_params"])
        joints = np.asarray(self.mhr_rig(outputs["mhr_params"], outputs["shape_params"]),
                            dtype=np.float32)  # fmt: skip
        if joints.shape != (n, 70, 3):
            raise ValueError(
                f"mhr_rig returned shape {joints.shape}; expected ({n}, 70, 3): the 70 MHR70 "
                "keypoints in metres for each person"
            )
        return joints

    def _warn_left_out(self, batch: HMRBatch, finite: np.ndarray) -> None:
        """Log persons left out for non-finite outputs: a warning on the 1st, 10th, 100th...
        such call (with the running counts), debug otherwise, so a model that finds nobody
        in some crops (the stand-in, by design) does not flood a long run's log."""
        k = int((~finite).sum())
        self.left_out[0] += 1
        self.left_out[1] += k
        calls, persons = self.left_out
        level = logging.WARNING if math.log10(calls).is_integer() else logging.DEBUG
        log.log(level, "model output is not finite for %d of %d persons (boxes %s); leaving "
                "them out (%d persons on %d calls so far; this warning repeats at 10, 100, "
                "1000... calls)", k, len(finite), batch.boxes[~finite].round(1).tolist(),
                persons, calls)  # fmt: skip

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
        focal, pp = full_frame_camera(batch.image_size, batch.focal)
        if self._refit_cam:  # the stand-in's graph assumes a 4:3 frame: solve for this one
            cam = standin.refit_cam_trans(outputs, batch.squares, batch.image_size,
                                          self.real_joints)  # fmt: skip
            outputs = {**outputs, "cam_trans": cam}
        joints_2d = crop_to_frame(outputs["joints_2d"], batch.squares)
        finite = finite_rows(outputs)
        if not finite.all():
            self._warn_left_out(batch, finite)
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


def mhr_only_refusal(path: os.PathLike[str] | str) -> str:
    """Why an MHR-only file cannot run without a keypoint rig, and what to install or pass."""
    from ..animation.mhr import INSTALL_HINT, mhr_missing

    name = os.path.basename(os.fspath(path))
    missing = mhr_missing()
    if missing:
        status = f"Meta's MHR is not installed here: {INSTALL_HINT}."
    else:
        status = ("Meta's MHR is installed, but it poses MHR's own 127-joint skeleton; the "
                  "70 MHR70 keypoints also need a keypoint mapping that the mhr package "
                  "does not provide.")  # fmt: skip
    return (
        f"{name} is an InstantHMR 'MHR-only' file: 4 outputs (mhr_params, shape_params, "
        "cam_trans, joints_2d) and no joints_3d, so its 70 3D keypoints have to be computed "
        f"by running the MHR rig on mhr_params and shape_params. {status} Then pass the rig "
        "as HMRModel(..., mhr_rig=fn), fn(mhr_params (N, 204), shape_params (N, 45)) -> "
        "(N, 70, 3) metres; or use a 5-output file such as the published instanthmr.onnx."
    )

"""Rerun logging: the viewer and ``.rrd`` recordings. The only module that calls ``rr.log``.

Entity layout (all camera-space data is in the model's camera frame: right-handed,
X right, Y down, Z forward, metres)::

    /                             AnnotationContext (static): MHR70 names, limb colours, edges;
                                  ViewCoordinates.RDF (static) for everything below
    camera                        Pinhole, f = sqrt(W^2 + H^2), principal point at the centre
                                  (static; logged again only if the frame size changes)
    camera/image                  EncodedImage, JPEG, one per frame
    camera/persons/<id>/keypoints Points2D, 70 MHR70 keypoints (edges: annotation context)
    camera/persons/<id>/box       Boxes2D, labelled "id <id> <score>"
    world/persons/<id>/joints     Points3D, 70 camera-space joints (edges: annotation context)
    latency/{detect,crop,hmr,track,total}_ms, latency/fps, latency/<extra>_ms   Scalars
    model                         TextDocument (static), only for a model that is not
                                  InstantHMR (the stand-in, a random-init export): its
                                  notice, shown in its own view above the image; the box
                                  labels then carry the model's tag ("STAND-IN")

With a world frame (``FrameResult.world``, ``docs/world.md``) a second 3D space, gravity
aligned with Y up, is logged under ``ground`` (its own view, "world")::

    ground                        ViewCoordinates.RUB (static)
    ground/plane/grid             LineStrips3D, a 20 m grid on the ground (y = 0)
    ground/plane/box              Boxes3D, a thin translucent floor under the grid
    ground/camera                 Transform3D: the camera at its height, pitch and roll,
                                  and a Pinhole frustum (static)
    ground/camera/label           Points3D at the camera centre, labelled with the values
    ground/persons/<id>/joints    Points3D, the 70 world joints
    ground/persons/<id>/contacts  Points3D, heel and toe points of feet in contact (red)
    ground/trajectories/<id>      LineStrips3D, the track's ground trajectory (kept after
                                  the person leaves; the last 900 points)
    ground/status                 TextLog: why the world frame is unknown, when it is

``camera`` is both the 2D view (origin there: the image with its overlay) and a
frustum in the 3D view (origin ``/``), because the 3D world *is* the camera frame: ``camera``
and ``world`` both sit at the root with identity transforms.
``<id>`` is the track id, or ``untracked_<i>`` for persons without one. When an id is no
longer in the frame, both its entities get a recursive ``Clear``.

``latency/fps`` is the pipeline's own throughput, ``1000 / total_ms``: inference only, not
decoding the source nor logging. It is reproducible and does not depend on the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import rerun as rr
import rerun.blueprint as rrb

from ..geometry import full_frame_camera, validate_image
from ..hmr.kinds import file_note, header_kind
from ..results import FrameResult, PersonResult
from ..skeleton import BODY_EDGES, FULL_EDGES, GROUP_COLORS, JOINT_NAMES, joint_colors
from . import rerun_world as rw

FRAME_TIMELINE = "frame"
TIME_TIMELINE = "time"
CAMERA_PATH = "camera"
IMAGE_PATH = f"{CAMERA_PATH}/image"
PERSONS_2D_PATH = f"{CAMERA_PATH}/persons"
PERSONS_3D_PATH = "world/persons"
LATENCY_PATH = "latency"
MODEL_PATH = "model"
PERSON_CLASS_ID = 0
IMAGE_PLANE_M = 1.0  # where the frustum draws the image in the 3D view, metres from the camera
STAGE_SERIES: tuple[str, ...] = ("detect", "crop", "hmr", "track", "total")


def person_key(person: PersonResult, index: int) -> str:
    """Entity name of a person: the track id, or ``untracked_<index>`` when not tracked."""
    return str(person.track_id) if person.track_id >= 0 else f"untracked_{index}"


def skeleton_annotation(full_skeleton: bool = False) -> rr.AnnotationContext:
    """The MHR70 skeleton as an annotation context: keypoint names, limb colours and edges."""
    colors = joint_colors()
    keypoints = [
        rr.AnnotationInfo(id=i, label=name, color=tuple(int(c) for c in colors[i]))
        for i, name in enumerate(JOINT_NAMES)
    ]
    edges = FULL_EDGES if full_skeleton else BODY_EDGES
    person = rr.ClassDescription(
        info=rr.AnnotationInfo(id=PERSON_CLASS_ID, label="person", color=GROUP_COLORS["torso"]),
        keypoint_annotations=keypoints,
        keypoint_connections=[(int(a), int(b)) for a, b in edges],
    )
    return rr.AnnotationContext([person])


def default_blueprint(world: bool = False, notice: bool = False) -> rrb.Blueprint:
    """Image with its 2D overlay, the 3D scene, and the latency plots (ms and FPS).

    ``world=True`` adds the gravity-aligned world view (ground, camera, trajectories) below
    the camera-frame 3D view. ``notice=True`` puts the model's notice (``model``, logged for
    a model that is not InstantHMR) in a view across the top.
    """
    scene: rrb.View | rrb.Container = rrb.Spatial3DView(
        name="3D", origin="/", contents=[f"+ /{CAMERA_PATH}/**", "+ /world/**"]
    )
    if world:
        scene = rrb.Vertical(scene, rrb.Spatial3DView(name="world", origin=f"/{rw.WORLD_SPACE}"))
    main = rrb.Horizontal(
            rrb.Vertical(
                rrb.Spatial2DView(name="image", origin=CAMERA_PATH),
                rrb.Horizontal(
                    rrb.TimeSeriesView(
                        name="latency (ms)",
                        origin=LATENCY_PATH,
                        contents=["+ $origin/**", "- $origin/fps"],
                    ),
                    rrb.TimeSeriesView(name="FPS", origin=f"{LATENCY_PATH}/fps"),
                ),
                row_shares=[3, 1],
            ),
            scene,
            column_shares=[1, 1],
        )  # fmt: skip
    if notice:
        label = rrb.TextDocumentView(name="MODEL: NOT InstantHMR", origin=MODEL_PATH)
        main = rrb.Vertical(label, main, row_shares=[1, 6])
    return rrb.Blueprint(main, collapse_panels=True)


class RerunSink:
    """Log :class:`FrameResult`s to Rerun (a viewer, a gRPC server or an ``.rrd`` file).

    Args:
        recording: the recording stream to log to; ``None`` uses the global one
            (``rr.init`` / ``rr.script_setup``).
        jpeg_quality: JPEG quality of the logged frames (1-100). Images are always
            compressed, so long runs stay small in memory and on disk.
        full_skeleton: draw face, toes and finger chains (:data:`FULL_EDGES`) instead of
            the contract's minimal skeleton (:data:`BODY_EDGES`).
        send_blueprint: send :func:`default_blueprint` from :meth:`log_static`.
        world: the blueprint includes the world view (frames with a known world frame are
            logged to the world space either way).
        run: the model of the run (:func:`instanthmr.hmr.kinds.run_header`); a model that is
            not InstantHMR gets its notice logged under ``model`` and tagged box labels.

    The sink does no inference: it only consumes results.
    """

    def __init__(
        self,
        recording: rr.RecordingStream | None = None,
        *,
        jpeg_quality: int = 85,
        full_skeleton: bool = False,
        send_blueprint: bool = True,
        world: bool = False,
        run: dict | None = None,
    ) -> None:
        if not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
        self.recording = recording
        self.jpeg_quality = int(jpeg_quality)
        self.full_skeleton = full_skeleton
        self.send_blueprint = send_blueprint
        self._static_logged = False
        self._camera_size: tuple[int, int] | None = None
        self._present: set[str] = set()
        self.world = world
        self._world_present: set[str] = set()
        self._world_static = False
        self._world_status = ""
        self._trails = rw.Trails()
        self.note = file_note(run)
        """The model's notice, or None for InstantHMR."""
        self._tag = header_kind(run).tag

    def _log(self, path: str, entity: object, *, static: bool = False) -> None:
        rr.log(path, entity, static=static, recording=self.recording)

    def log_static(self) -> None:
        """Log what holds for the whole recording: skeleton, view coordinates, blueprint.

        Called automatically by the first :meth:`log_frame`; calling it again does nothing.
        """
        if self._static_logged:
            return
        self._log("/", skeleton_annotation(self.full_skeleton), static=True)
        self._log("/", rr.ViewCoordinates.RDF, static=True)
        for stage in STAGE_SERIES:
            self._log(f"{LATENCY_PATH}/{stage}_ms", rr.SeriesLines(names=stage), static=True)
        self._log(f"{LATENCY_PATH}/fps", rr.SeriesLines(names="fps (1000/total_ms)"), static=True)
        if self.note:
            text = f"# {self._tag} MODEL: NOT InstantHMR\n\n{self.note}"
            self._log(MODEL_PATH, rr.TextDocument(text, media_type=rr.MediaType.MARKDOWN),
                      static=True)  # fmt: skip
        if self.send_blueprint:
            rr.send_blueprint(
                default_blueprint(self.world, notice=bool(self.note)),
                make_active=False, recording=self.recording,
            )  # fmt: skip
        self._static_logged = True

    def _log_camera(self, size: tuple[int, int]) -> None:
        if size == self._camera_size:
            return
        focal, principal = full_frame_camera(size)
        pinhole = rr.Pinhole(
            focal_length=focal,
            principal_point=principal,
            resolution=size,
            camera_xyz=rr.ViewCoordinates.RDF,
            image_plane_distance=IMAGE_PLANE_M,
        )
        self._log(CAMERA_PATH, pinhole, static=True)
        self._camera_size = size

    def _encode(self, image: np.ndarray) -> rr.EncodedImage:
        ok, buf = cv2.imencode(
            ".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        )
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for an image of shape {image.shape}")
        return rr.EncodedImage(contents=buf.tobytes(), media_type="image/jpeg")

    def log_frame(
        self,
        image_rgb: np.ndarray,
        frame: FrameResult,
        extra_timings: dict[str, float] | None = None,
    ) -> None:
        """Log one frame: image, 2D/3D persons, clears for persons who left, and latencies.

        Args:
            image_rgb: the frame the results belong to, RGB uint8 (H, W, 3).
            frame: the pipeline's result for that frame.
            extra_timings: more milliseconds to plot, logged as ``latency/<name>_ms``
                (a trailing ``_ms`` in the name is not doubled).
        """
        image = validate_image(image_rgb)
        size = (int(image.shape[1]), int(image.shape[0]))
        if frame.image_size not in ((0, 0), size):
            raise ValueError(
                f"the image is {size[0]}x{size[1]} but the FrameResult says "
                f"{frame.image_size[0]}x{frame.image_size[1]}; pass the frame the result came from"
            )
        self.log_static()
        rec = self.recording
        rr.set_time(FRAME_TIMELINE, sequence=int(frame.frame_index), recording=rec)
        if frame.timestamp is not None:
            rr.set_time(TIME_TIMELINE, duration=float(frame.timestamp), recording=rec)
        else:
            rr.disable_timeline(TIME_TIMELINE, recording=rec)
        self._log_camera(size)
        self._log(IMAGE_PATH, self._encode(image))

        radius_2d = max(size) / 400.0
        present: set[str] = set()
        for i, person in enumerate(frame.persons):
            key = person_key(person, i)
            present.add(key)
            self._log_person(key, person, radius_2d)
        for key in sorted(self._present - present):
            self._log(f"{PERSONS_2D_PATH}/{key}", rr.Clear(recursive=True))
            self._log(f"{PERSONS_3D_PATH}/{key}", rr.Clear(recursive=True))
        self._present = present
        if frame.world is not None:
            self._log_world(frame, size)

        self._log_timings(frame, extra_timings or {})

    def _log_world(self, frame: FrameResult, size: tuple[int, int]) -> None:
        """The world space: ground, camera pose, world joints, contacts and trajectories."""
        info = frame.world
        assert info is not None
        space = rw.WORLD_SPACE
        status = "" if info.known else f"world frame unknown: {info.reason}"
        if status != self._world_status:
            self._log(f"{space}/status", rr.TextLog(status or "world frame known"))
            self._world_status = status
        if not info.known:
            return
        if not self._world_static:
            self._log(space, rr.ViewCoordinates.RUB, static=True)
            self._log(f"{space}/plane/grid", rw.ground_grid(), static=True)
            self._log(f"{space}/plane/box", rw.ground_box(), static=True)
            focal, principal = full_frame_camera(size)
            self._log(f"{space}/camera", rr.Pinhole(
                focal_length=focal, principal_point=principal, resolution=size,
                camera_xyz=rr.ViewCoordinates.RDF, image_plane_distance=IMAGE_PLANE_M,
            ), static=True)  # fmt: skip
            self._world_static = True
        self._log(f"{space}/camera", rw.camera_pose(info))
        self._log(f"{space}/camera/label", rr.Points3D(
            [[0.0, 0.0, 0.0]], labels=rw.camera_label(info), radii=0.05, show_labels=True
        ))  # fmt: skip
        present: set[str] = set()
        ids = np.arange(len(JOINT_NAMES), dtype=np.uint16)
        for i, person in enumerate(frame.persons):
            if person.joints_3d_world is None:
                continue
            key = person_key(person, i)
            present.add(key)
            base = f"{space}/persons/{key}"
            self._log(f"{base}/joints", rr.Points3D(
                person.joints_3d_world, class_ids=PERSON_CLASS_ID, keypoint_ids=ids, radii=0.015
            ))  # fmt: skip
            record = info.person(person.track_id) if person.track_id >= 0 else None
            if record is None:
                continue
            feet = rw.contact_points(person, record)
            self._log(f"{base}/contacts",
                      rr.Points3D(feet, colors=rw.CONTACT_COLOR, radii=0.03))  # fmt: skip
            self._log(f"{space}/trajectories/{key}",
                      rr.LineStrips3D([self._trails.add(record)], radii=0.02,
                                      labels=f"id {person.track_id}"))  # fmt: skip
        for key in sorted(self._world_present - present):
            self._log(f"{space}/persons/{key}", rr.Clear(recursive=True))
        self._world_present = present

    def _log_person(self, key: str, person: PersonResult, radius_2d: float) -> None:
        ids = np.arange(len(JOINT_NAMES), dtype=np.uint16)
        base2d = f"{PERSONS_2D_PATH}/{key}"
        self._log(
            f"{base2d}/keypoints",
            rr.Points2D(
                person.joints_2d, class_ids=PERSON_CLASS_ID, keypoint_ids=ids, radii=radius_2d
            ),
        )
        label = f"{person.score:.2f}"
        if person.track_id >= 0:
            label = f"id {person.track_id} {label}"
        if self._tag:
            label = f"{label} {self._tag}"
        self._log(
            f"{base2d}/box",
            rr.Boxes2D(array=person.bbox, array_format=rr.Box2DFormat.XYXY, labels=label),
        )
        self._log(
            f"{PERSONS_3D_PATH}/{key}/joints",
            rr.Points3D(
                person.joints_3d_cam, class_ids=PERSON_CLASS_ID, keypoint_ids=ids, radii=0.015
            ),
        )

    def _log_timings(self, frame: FrameResult, extra: dict[str, float]) -> None:
        timings = frame.timings.as_dict()
        for stage in STAGE_SERIES:
            self._log(f"{LATENCY_PATH}/{stage}_ms", rr.Scalars(float(timings[stage])))
        if frame.timings.total > 0:
            self._log(f"{LATENCY_PATH}/fps", rr.Scalars(1000.0 / frame.timings.total))
        for name, ms in extra.items():
            stem = name[:-3] if name.endswith("_ms") else name
            self._log(f"{LATENCY_PATH}/{stem}_ms", rr.Scalars(float(ms)))


@dataclass
class EntitySummary:
    """What an ``.rrd`` holds for one entity.

    Attributes:
        static_rows: number of static rows.
        frames: ``frame`` timeline value of each temporal row, sorted.
        components: component columns seen, e.g. ``"Points3D:positions"``.
        instances: per component, the number of instances in each row (same order as
            the rows were read; for temporal rows sorted by frame).
    """

    static_rows: int = 0
    frames: list[int] = field(default_factory=list)
    components: set[str] = field(default_factory=set)
    instances: dict[str, list[int]] = field(default_factory=dict)


def summarize_rrd(path: str | Path) -> dict[str, EntitySummary]:
    """Read a recording back with Rerun's own reader and summarise it per entity path.

    Entity paths are returned as Rerun writes them, with a leading ``/``. Component names
    look like ``"Points3D:positions"``. Useful to check a recording without a viewer.
    """
    import pyarrow.compute as pc
    from rerun.chunk import RrdReader

    rows: dict[str, list[tuple[int, dict[str, int]]]] = {}
    out: dict[str, EntitySummary] = {}
    for chunk in RrdReader(str(path)).stream().to_chunks():
        entry = out.setdefault(chunk.entity_path, EntitySummary())
        batch = chunk.to_record_batch()
        names = [n for n in batch.schema.names if ":" in n]
        entry.components.update(names)
        counts = {
            n: pc.fill_null(pc.list_value_length(batch.column(n)), 0).to_pylist() for n in names
        }
        if chunk.is_static:
            entry.static_rows += chunk.num_rows
            for n in names:
                entry.instances.setdefault(n, []).extend(counts[n])
        elif FRAME_TIMELINE in batch.schema.names:
            frames = batch.column(FRAME_TIMELINE).to_pylist()
            rows.setdefault(chunk.entity_path, []).extend(
                (f, {n: counts[n][r] for n in names}) for r, f in enumerate(frames)
            )
    for entity, entity_rows in rows.items():
        entry = out[entity]
        for f, row_counts in sorted(entity_rows, key=lambda fr: fr[0]):
            entry.frames.append(f)
            for n, c in row_counts.items():
                entry.instances.setdefault(n, []).append(c)
    return out

"""The demo's world-frame flags: ``--world``, ``--camera-height``/``--camera-pitch``,
``--world-from`` and ``--save-world`` (see ``docs/world.md``).

Kept apart from :mod:`instanthmr.commands.demo` so the demo module stays small: this module adds
the argument group, checks the flags together, turns them into the pipeline's ``world=``
value and reports (and saves) the world frame at the end of a run.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _world_value(name: str, unit: str) -> Any:
    """A camera height/pitch parser that refuses values outside the world frame's range."""

    def parse(text: str) -> float:
        from ..world import frame

        bounds = getattr(frame, f"{name.upper()}_RANGE")
        try:
            return frame.check_range(f"camera {name}", float(text), bounds, unit)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _world_file(text: str) -> Any:
    from ..world import WorldFrame

    try:
        return WorldFrame.load(text)
    except (ValueError, FileNotFoundError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _WorldFrom(argparse.Action):
    """``--world-from``: the loaded frame in ``world_from``, its file in ``world_from_path``
    (an input: no output may overwrite it)."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        try:
            namespace.world_from = _world_file(values)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        namespace.world_from_path = values


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the "world frame" argument group to the demo's parser."""
    # fmt: off
    world = parser.add_argument_group("world frame (docs/world.md)")
    world.add_argument("--world", action=argparse.BooleanOptionalAction, default=None,
                       help="put people in a gravity-aligned world frame (ground plane from "
                       "their still feet): world joints, trajectories, foot contact (default: "
                       "on for video, camera and stream, which assume a static camera; off "
                       "for images and folders)")
    world.add_argument("--camera-height", type=_world_value("height", "m"), metavar="M",
                       help="the camera's height above the ground in metres (0.1..50), with "
                       "--camera-pitch: the world frame is then known from the first frame")
    world.add_argument("--camera-pitch", type=_world_value("pitch", "deg"), metavar="DEG",
                       help="degrees the camera looks below the horizon (-80..80)")
    world.add_argument("--world-from", action=_WorldFrom, metavar="CALIB.json",
                       help="load the world frame saved by an earlier run's --save-world")
    world.add_argument("--save-world", metavar="CALIB.json",
                       help="at the end, save the world frame for later runs (--world-from)")
    # fmt: on


def check_world_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit with a usage error (code 2) for world flags that do not go together."""
    given = args.camera_height is not None, args.camera_pitch is not None
    if any(given) and not all(given):
        parser.error("--camera-height and --camera-pitch go together (give both)")
    if args.world_from is not None and any(given):
        parser.error("--world-from already holds the camera height and pitch; drop one")
    if args.world is False and (args.world_from is not None or any(given) or args.save_world):
        parser.error("--no-world contradicts --world-from/--camera-height/--save-world")


def world_option(args: argparse.Namespace, static: bool) -> Any:
    """The pipeline's ``world=`` value: a given frame, True (estimate online) or False.

    A given frame (``--world-from``, ``--camera-height`` with ``--camera-pitch``) turns the
    world on. Otherwise ``--world``/``--no-world`` decide, and by default the world is on
    when the input assumes a ``static`` camera (videos, cameras and streams: one view of one
    place) and off otherwise (images and folders: unrelated shots, no motion to find still
    feet in).
    """
    from ..world import WorldFrame

    if args.world_from is not None:
        return args.world_from
    if args.camera_height is not None:
        return WorldFrame.from_camera(args.camera_height, args.camera_pitch)
    if args.world is not None:
        return bool(args.world)
    return static


def _world_line(stage: Any) -> str:
    """One line on the world frame a run ended with."""
    est, frame = stage.estimator.estimate, stage.frame
    if frame is None:
        return f"world: unknown ({est.reason})"
    how = frame.source
    if how == "fitted":
        how += f", {est.inliers} ground samples, confidence {est.confidence:.2f}"
        how += ", settled" if est.settled else ""
        how += f", re-opened {est.reopened}x" if est.reopened else ""
        return (
            f"world: camera {frame.camera_height:.2f} +- {2 * est.height_std:.2f} m above the "
            f"ground, pitch {frame.pitch_deg:.1f} +- {2 * est.pitch_std:.1f} deg, roll "
            f"{frame.roll_deg:.1f} +- {2 * est.roll_std:.1f} deg (95% intervals; {how})"
        )
    return (
        f"world: camera {frame.camera_height:.2f} m above the ground, pitch "
        f"{frame.pitch_deg:.1f} deg, roll {frame.roll_deg:.1f} deg ({how})"
    )


def finish_world(args: argparse.Namespace, pipeline: Any, written: list[str]) -> None:
    """Report the world frame (stderr); ``--save-world`` writes it, or says why there is none."""
    stage = getattr(pipeline, "world", None)
    if stage is not None:
        print(_world_line(stage), file=sys.stderr)
    if not args.save_world:
        return
    if stage is None or stage.frame is None:
        reason = (stage.estimator.estimate.reason if stage is not None
                  else "the world stage is off (add --world)")  # fmt: skip
        print(f"--save-world: {args.save_world} not written: {reason}", file=sys.stderr)
        return
    stage.save(args.save_world)
    written.append(args.save_world)

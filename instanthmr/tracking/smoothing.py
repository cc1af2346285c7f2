"""Temporal smoothing: a vectorised One-Euro filter and a per-track pose smoother.

The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) is a first-order low-pass
filter whose cutoff rises with the (low-passed) speed of the signal::

    cutoff = min_cutoff + beta * |dx/dt|

When a joint is still, the cutoff sits at ``min_cutoff`` and jitter is strongly smoothed;
when it moves, the cutoff rises and the lag a fixed low-pass filter would add shrinks.
It is causal (output at time t uses only inputs up to t) and adds no frames of latency.
None of the installed packages (numpy, scipy, supervision, ...) provides one, and the
PyPI package ``oneeurofilter`` is a small single-author project, so it is written here
(about 30 lines), vectorised over arrays of any shape (each element filtered on its own).

Default parameters (educated guesses: the real model's jitter has not been measured on
these machines; tune ``min_cutoff`` first on a still person, then ``beta`` on a moving one):

- :data:`PIXELS_2D` for 2D joints in pixels: ``min_cutoff=1.0`` Hz, ``beta=0.05`` per
  pixel, ``d_cutoff=1.0`` Hz. A joint moving at 100 px/s gets a 6 Hz cutoff: a lag of
  about 0.55 frame at 30 FPS (0.85 at 50 px/s, 0.33 at 200 px/s). A nearly still joint
  with 2 px of noise gets 1-2 Hz (the noise itself raises the cutoff a little) and its
  jitter drops about 5x. Pixel speeds scale with the person's size in the image, so the
  best ``beta`` does too (these values suit people a few hundred pixels tall).
- :data:`METRES_3D` for body-centred 3D joints in metres: ``min_cutoff=1.0`` Hz,
  ``beta=20`` per m/s: 0.25 m/s (slow arm motion) already gives a 6 Hz cutoff (lag about
  0.55 frame at 30 FPS); 5 mm of noise on a still joint drops about 5x.
- :data:`METRES_TRANSLATION` for ``cam_trans``: ``min_cutoff=0.5`` Hz, ``beta=2``. Depth
  from a single image jitters by centimetres, and a high beta would let that jitter open
  the filter; a walking person (1.4 m/s) still gets a cutoff near 3.3 Hz (lag about 0.85
  frame at 30 FPS).
- :data:`MHR_PARAMS` for ``mhr_params`` (mostly angles in radians): ``min_cutoff=1.0`` Hz,
  ``beta=1`` per rad/s: a joint turning at 3 rad/s gets a 4 Hz cutoff.

``mhr_params`` are MHR model parameters: ``0:3`` root translation (zero), ``3:6`` the root
rotation as extrinsic XYZ Euler angles, ``6:136`` joint parameters (the last six are size
channels), ``136:204`` bone scales. An Euler angle wraps at ±π: a body turning through
π reads 3.1 then -3.1, and averaging those gives 0, half a turn away. So the root-rotation
channels are unwrapped per track before the filter (each new angle is taken as the previous
unwrapped angle plus the wrapped difference, as ``numpy.unwrap`` does) and wrapped back to
[-π, π) after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..results import PersonResult


@dataclass(frozen=True)
class OneEuroParams:
    """Parameters of a :class:`OneEuroFilter`.

    Attributes:
        min_cutoff: cutoff frequency (Hz) when the signal is still; lower = smoother.
        beta: cutoff increase per unit of speed (units of the signal per second); higher
            = less lag when moving.
        d_cutoff: cutoff frequency (Hz) of the low-pass on the speed estimate.
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not (self.min_cutoff > 0 and self.d_cutoff > 0 and self.beta >= 0):
            raise ValueError(f"need min_cutoff > 0, d_cutoff > 0 and beta >= 0, got {self}")


PIXELS_2D = OneEuroParams(min_cutoff=1.0, beta=0.05, d_cutoff=1.0)
"""Defaults for 2D joints in full-frame pixels."""
METRES_3D = OneEuroParams(min_cutoff=1.0, beta=20.0, d_cutoff=1.0)
"""Defaults for body-centred 3D joints in metres."""
METRES_TRANSLATION = OneEuroParams(min_cutoff=0.5, beta=2.0, d_cutoff=1.0)
"""Defaults for the camera translation in metres."""
MHR_PARAMS = OneEuroParams(min_cutoff=1.0, beta=1.0, d_cutoff=1.0)
"""Defaults for ``mhr_params`` (angles in radians, size channels and bone scales)."""
ROOT_ROTATION = slice(3, 6)
"""The Euler-angle channels of ``mhr_params`` (extrinsic XYZ, radians)."""


def wrap_angle(angles: np.ndarray) -> np.ndarray:
    """Angles in radians, wrapped to [-π, π)."""
    return (np.asarray(angles, dtype=np.float64) + math.pi) % (2 * math.pi) - math.pi


class AngleUnwrapper:
    """Makes a stream of wrapped angles continuous: each new angle becomes the previous
    output plus the wrapped difference (so a step from 3.1 to -3.1 is +0.08, not -6.2)."""

    def __init__(self) -> None:
        self._last: np.ndarray | None = None

    def __call__(self, angles: np.ndarray) -> np.ndarray:
        """The unwrapped angles (float64, same shape)."""
        a = np.asarray(angles, dtype=np.float64)
        if self._last is None or self._last.shape != a.shape:
            self._last = a.copy()
        else:
            self._last = self._last + wrap_angle(a - self._last)
        return self._last.copy()

    def reset(self) -> None:
        """Forget the history."""
        self._last = None


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass with this cutoff (Hz) and step (s)."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Causal One-Euro filter over an array of any (fixed) shape.

    Call it with each new value and its timestamp in seconds; timestamps may be unevenly
    spaced (variable frame rate, dropped frames). The first call returns its input, a
    repeated timestamp returns the previous output, and a timestamp earlier than the last
    one raises (call :meth:`reset` between sequences).

    Args:
        params: :class:`OneEuroParams`; or give ``min_cutoff``, ``beta``, ``d_cutoff``.
    """

    def __init__(
        self,
        params: OneEuroParams | None = None,
        *,
        min_cutoff: float | None = None,
        beta: float | None = None,
        d_cutoff: float | None = None,
    ) -> None:
        base = params or OneEuroParams()
        self.params = OneEuroParams(
            base.min_cutoff if min_cutoff is None else min_cutoff,
            base.beta if beta is None else beta,
            base.d_cutoff if d_cutoff is None else d_cutoff,
        )
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next call returns its input."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, timestamp: float) -> np.ndarray:
        """Filter one sample; returns a float64 array shaped like ``x``."""
        x = np.asarray(x, dtype=np.float64)
        t = float(timestamp)
        if not math.isfinite(t):
            raise ValueError(f"timestamp must be a finite number of seconds, got {timestamp}")
        if self._x is None or self._t is None or self._dx is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        if x.shape != self._x.shape:
            raise ValueError(
                f"shape changed from {self._x.shape} to {x.shape}; use one "
                "filter per signal or call reset()"
            )
        dt = t - self._t
        if dt < 0:
            raise ValueError(
                f"timestamp went back from {self._t} to {t}; call reset() before a new sequence"
            )
        if dt == 0:
            return self._x.copy()
        p = self.params
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(p.d_cutoff, dt) * (dx - self._dx)
        cutoff = p.min_cutoff + p.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()


class ShapeEstimate:
    """Running estimate of a quantity that should not change, such as body shape.

    A cumulative mean for the first ``window`` samples, then an exponential mean with
    weight ``1 / window``: per-frame noise averages out, yet a wrong value (an id switch
    onto another person) is forgotten in a few windows.
    """

    def __init__(self, window: int = 60) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        self.window = int(window)
        self.count = 0
        self.value: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Add one sample; returns the current estimate (float64)."""
        x = np.asarray(x, dtype=np.float64)
        self.count += 1
        if self.value is None:
            self.value = x.copy()
        else:
            self.value = self.value + (x - self.value) / min(self.count, self.window)
        return self.value.copy()


@dataclass
class _TrackFilters:
    joints_2d: OneEuroFilter
    joints_3d: OneEuroFilter
    cam_trans: OneEuroFilter
    shape: ShapeEstimate
    mhr: OneEuroFilter
    root_rotation: AngleUnwrapper


class PoseSmoother:
    """One set of filters per track id for a person's joints, translation and shape.

    ``joints_2d``, ``joints_3d_local``, ``cam_trans`` and ``mhr_params`` go through
    One-Euro filters (the root-rotation Euler angles of ``mhr_params`` unwrapped per track
    first and wrapped back after, see the module docstring); ``shape_params`` through a
    :class:`ShapeEstimate`. ``bbox`` and the rest pass through. Persons without a track id
    (-1) are returned unchanged, as there is nothing to smooth them against.

    Args:
        params_2d: One-Euro parameters for 2D joints in pixels.
        params_3d: for body-centred 3D joints in metres.
        params_translation: for ``cam_trans`` in metres.
        shape_window: frames over which the shape estimate averages.
        params_mhr: for ``mhr_params``.
    """

    def __init__(
        self,
        params_2d: OneEuroParams = PIXELS_2D,
        params_3d: OneEuroParams = METRES_3D,
        params_translation: OneEuroParams = METRES_TRANSLATION,
        shape_window: int = 60,
        params_mhr: OneEuroParams = MHR_PARAMS,
    ) -> None:
        self.params_2d = params_2d
        self.params_3d = params_3d
        self.params_translation = params_translation
        self.params_mhr = params_mhr
        self.shape_window = int(shape_window)
        self._tracks: dict[int, _TrackFilters] = {}

    @property
    def track_ids(self) -> list[int]:
        """Ids that currently hold filter state."""
        return sorted(self._tracks)

    def smooth(self, person: PersonResult, timestamp: float) -> PersonResult:
        """The person with smoothed joints, translation and shape (a new PersonResult)."""
        if person.track_id < 0:
            return person
        f = self._tracks.get(person.track_id)
        if f is None:
            f = _TrackFilters(
                OneEuroFilter(self.params_2d),
                OneEuroFilter(self.params_3d),
                OneEuroFilter(self.params_translation),
                ShapeEstimate(self.shape_window),
                OneEuroFilter(self.params_mhr),
                AngleUnwrapper(),
            )
            self._tracks[person.track_id] = f
        mhr = person.mhr_params.astype(np.float64)
        mhr[ROOT_ROTATION] = f.root_rotation(mhr[ROOT_ROTATION])
        mhr = f.mhr(mhr, timestamp)
        mhr[ROOT_ROTATION] = wrap_angle(mhr[ROOT_ROTATION])
        return person.replace(
            joints_2d=f.joints_2d(person.joints_2d, timestamp),
            joints_3d_local=f.joints_3d(person.joints_3d_local, timestamp),
            cam_trans=f.cam_trans(person.cam_trans, timestamp),
            shape_params=f.shape(person.shape_params),
            mhr_params=mhr,
        )

    def smooth_all(self, persons: list[PersonResult], timestamp: float) -> list[PersonResult]:
        """:meth:`smooth` for every person of one frame."""
        return [self.smooth(p, timestamp) for p in persons]

    def forget(self, track_id: int) -> None:
        """Drop the state of one track (a dropped track); unknown ids are ignored."""
        self._tracks.pop(int(track_id), None)

    def reset(self) -> None:
        """Drop every track's state (for a new sequence)."""
        self._tracks.clear()

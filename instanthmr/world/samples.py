"""Ground samples: what each one holds (:class:`Samples`) and the store that keeps them.

A ground sample is one person's lower foot on one frame (:mod:`.estimator`), with its own
noise; :mod:`.ground_fit` fits the floor to them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Samples:
    """Ground samples (N of each): see the module docstring.

    Attributes:
        points: (N, 3) camera frame, metres.
        rays: (N, 3) unit viewing ray of each sample's person (its depth error runs along it).
        roots: (N, 3) the person's (corrected) pelvis, metres: a body-size error ``e`` moves
            the sample by ``e * root``.
        var_along: (N,) variance along the ray, m^2 (per-frame part).
        var_iso: (N,) isotropic variance, m^2.
        cluster: (N,) int, the cluster (person and time window) of each sample.
        track: (N,) int, the person of each sample.
        time: (N,) seconds.
    """

    points: np.ndarray
    rays: np.ndarray
    roots: np.ndarray
    var_along: np.ndarray
    var_iso: np.ndarray
    cluster: np.ndarray
    track: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return len(self.points)

    def take(self, mask: np.ndarray) -> Samples:
        """The samples where ``mask`` is true."""
        return Samples(*(getattr(self, k)[mask] for k in self.__dataclass_fields__))


def height_variance(samples: Samples, normal: np.ndarray) -> np.ndarray:
    """(N,) variance of each sample's height over a plane with this normal, m^2."""
    proj = samples.rays @ normal
    return samples.var_along * proj * proj + samples.var_iso



_FIELDS = ("points", "rays", "roots", "var_along", "var_iso", "cluster", "track", "time")


class SampleStore:
    """A ring buffer of ground samples (the oldest are overwritten first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        """Drop every sample."""
        c = self.capacity
        self.points, self.rays, self.roots = np.zeros((c, 3)), np.zeros((c, 3)), np.zeros((c, 3))
        self.var_along, self.var_iso, self.time = np.zeros(c), np.zeros(c), np.zeros(c)
        self.cluster, self.track = np.zeros(c, np.int64), np.zeros(c, np.int64)
        self.count = self.head = 0

    def add(self, **columns: np.ndarray) -> None:
        """Append samples, one array per :class:`Samples` field."""
        n = len(columns["points"])
        idx = (self.head + np.arange(n)) % self.capacity
        for k, v in columns.items():
            getattr(self, k)[idx] = v
        self.head = (self.head + n) % self.capacity
        self.count = min(self.count + n, self.capacity)

    def samples(self) -> Samples:
        """A copy of the samples held."""
        n = self.count
        return Samples(*(getattr(self, k)[:n].copy() for k in _FIELDS))

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the samples where ``mask`` (over :meth:`samples`) is true."""
        kept = self.samples().take(mask)
        self.clear()
        if len(kept):
            self.add(**{k: getattr(kept, k) for k in _FIELDS})

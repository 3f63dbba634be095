"""Library normalisation: track vectors z-scored over the library they live in.

A model's track vectors share a common direction and some dimensions that barely vary from
track to track; cosine similarity on the raw vectors is dominated by both. Subtracting the
library's mean vector and dividing every dimension by its spread over the library (then
normalising to unit length) lets the dimensions that tell *this* library's tracks apart
decide what is near what. It is unsupervised and needs nothing but the vectors themselves,
the way MFCC statistics are z-scored before they are compared (and like the PCA-whitening
that image retrieval learns on its database). On music no model here trained on it raised
the outlier AUROC by 13-21 points, k-means NMI by 1-6 and precision@5 by up to 4
(resources/models/MODEL_CARD.md, "Library normalisation").

A small library's mean and spread are poor estimates, so both are shrunk towards "no
change" as if :data:`PRIOR_TRACKS` tracks had mean zero and the average spread: a library
of a few tracks is compared almost as the raw vectors are, one of a few hundred by its own
statistics. The statistics are refitted (and the index rebuilt) when the library has grown
or shrunk by a quarter since they were fitted (:meth:`LibraryNorm.stale`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

PRIOR_TRACKS = 20  # pseudo-tracks of "no change" the library's statistics are blended with
REFIT_RATIO = 1.25  # refit when the library is this many times larger or smaller


@dataclass(frozen=True)
class LibraryNorm:
    mean: np.ndarray  # [D] float32, subtracted
    scale: np.ndarray  # [D] float32, divided by
    n: int  # tracks it was fitted on (0: identity)

    @classmethod
    def identity(cls, dim: int) -> LibraryNorm:
        return cls(np.zeros(dim, np.float32), np.ones(dim, np.float32), 0)

    @classmethod
    def fit(cls, X: np.ndarray, *, prior: int = PRIOR_TRACKS) -> LibraryNorm:
        """Statistics of the raw track vectors ``X`` [n, D] of a library."""
        X = np.asarray(X, np.float64)
        if X.ndim != 2:
            raise ValueError("track vectors must be a 2-D array")
        n, dim = X.shape
        if n == 0:
            return cls.identity(dim)
        var = X.var(axis=0)
        w = n / (n + prior)
        mean = w * X.mean(axis=0)
        avg = float(var.mean())
        var = w * var + (1 - w) * avg
        floor = max(avg, 1e-12) * 1e-6  # a dimension that never varies is not blown up
        scale = np.sqrt(np.maximum(var, floor))
        return cls(mean.astype(np.float32), scale.astype(np.float32), int(n))

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Library-space unit vectors of raw track vectors ``X`` ([D] or [n, D])."""
        X = np.asarray(X, np.float32)
        if X.ndim == 2 and len(X) == 0:
            return np.zeros((0, self.dim), np.float32)
        Z = (X - self.mean) / self.scale
        norm = np.linalg.norm(Z, axis=-1, keepdims=True)
        return (Z / np.where(norm > 0, norm, 1.0)).astype(np.float32)

    def stale(self, n_now: int) -> bool:
        """Whether a library of ``n_now`` tracks should be refitted."""
        if self.n == 0:
            return n_now > 0
        return n_now > self.n * REFIT_RATIO or n_now * REFIT_RATIO < self.n

    @property
    def tag(self) -> str:
        """A short fingerprint: vectors from two norms of one tag are comparable."""
        h = hashlib.sha1(np.ascontiguousarray(self.mean).tobytes())
        h.update(np.ascontiguousarray(self.scale).tobytes())
        return f"{self.n}:{h.hexdigest()[:12]}"

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": [float(v) for v in self.mean], "scale": [float(v) for v in self.scale]}

    @classmethod
    def from_dict(cls, d: dict, dim: int) -> LibraryNorm:
        mean = np.asarray(d["mean"], np.float32)
        scale = np.asarray(d["scale"], np.float32)
        if (
            mean.shape != (dim,)
            or scale.shape != (dim,)
            or not np.all(np.isfinite(mean))
            or not np.all(np.isfinite(scale))
            or np.any(scale <= 0)
        ):
            raise ValueError("library statistics do not fit the index")
        return cls(mean, scale, int(d["n"]))


def normalise_library(X: np.ndarray) -> np.ndarray:
    """``X`` [n, D] as the library compares it: z-scored over ``X`` itself, unit rows."""
    return LibraryNorm.fit(X).apply(X)

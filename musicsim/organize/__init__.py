"""Library organisation on top of track embeddings: similarity, playlists, ordering,
clusters and outliers.

Everything here is pure numpy / scipy / scikit-learn. Inputs follow one data model:
``ids`` (int64 track ids), ``X`` (float32, one unit-norm row per id, aligned with ``ids``)
and ``meta`` (track id -> :class:`TrackMeta`). Distance is cosine distance ``1 - x.y``
throughout, matching an hnswlib ``cosine`` index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicsim.errors import MusicsimError


@dataclass(frozen=True)
class TrackMeta:
    """The tag data organisation features need about one track."""

    id: int
    path: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    duration: float | None = None


def as_matrix(X: np.ndarray, *, name: str = "X") -> np.ndarray:
    """Return ``X`` as a C-contiguous 2-D float32 array, or raise MusicsimError."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise MusicsimError(f"{name} must be a 2-D array of embeddings, got shape {X.shape}")
    return X


def row_of(ids: np.ndarray, wanted: object) -> np.ndarray:
    """Map track ids to their row positions in ``ids``.

    Raises
    ------
    MusicsimError
        If any wanted id is not in ``ids``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    wanted_arr = np.atleast_1d(np.asarray(wanted, dtype=np.int64))
    if wanted_arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if ids.size == 0:
        raise MusicsimError(f"unknown track id(s): {wanted_arr[:5].tolist()}")
    order = np.argsort(ids, kind="stable")
    pos = np.minimum(np.searchsorted(ids, wanted_arr, sorter=order), ids.size - 1)
    rows = order[pos]
    bad = ids[rows] != wanted_arr
    if bad.any():
        raise MusicsimError(f"unknown track id(s): {wanted_arr[bad][:5].tolist()}")
    return rows


__all__ = ["TrackMeta", "as_matrix", "row_of"]

"""Tracks that fit nowhere (outliers) and tracks that are the same recording twice."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from musicsim.errors import MusicsimError
from musicsim.organize import TrackMeta, as_matrix

_BLOCK_BYTES = 64 << 20  # bound on a block of the similarity matrix
_MAD_TO_STD = 1.4826  # makes the MAD comparable to a standard deviation
_MIN_SPREAD = 1e-6
_MIN_CLUSTER = 5  # smaller clusters are judged against library-wide stats


def _block_rows(n_cols: int) -> int:
    return max(1, _BLOCK_BYTES // (4 * max(n_cols, 1)))


def knn_distance(X: np.ndarray, *, k: int = 5) -> np.ndarray:
    """Exact cosine distance of every row to its k-th nearest other row.

    Similarities are computed a block of rows at a time so memory stays near 64 MB
    however large the library is. Cost is O(n^2 d); for very large libraries a caller
    with an ANN index can compute this itself and pass it to :func:`outlier_scores`.
    """
    X = as_matrix(X)
    n = X.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return np.zeros(n, dtype=np.float32)
    out = np.empty(n, dtype=np.float32)
    step = _block_rows(n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        sims = X[start:stop] @ X.T
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not its own neighbour
        kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]
        out[start:stop] = np.clip(1.0 - kth, 0.0, 2.0)
    return out


def _robust_z(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(values - median) / robust spread, plus the median and that spread."""
    med = float(np.median(values))
    spread = max(_MAD_TO_STD * float(np.median(np.abs(values - med))), _MIN_SPREAD)
    return (values - med) / spread, med, spread


def outlier_scores(
    X: np.ndarray,
    labels: np.ndarray,
    centroids: np.ndarray,
    *,
    k: int = 5,
    knn_distances: np.ndarray | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Score how badly each track fits the library (higher = more unusual).

    The score is the mean of two robust z-scores (median / MAD): (a) the track's
    cosine distance to its cluster centroid against the other members of that cluster,
    and (b) its distance to its k-th nearest neighbour against the whole library.

    Parameters
    ----------
    X : ndarray (n, d)
        Unit-norm embeddings.
    labels, centroids
        Output of :func:`musicsim.organize.clusters.cluster`.
    k : int
        Which neighbour measures local density.
    knn_distances : ndarray (n,), optional
        Precomputed k-th neighbour cosine distances (e.g. from an hnswlib index) to
        skip the exact O(n^2) search.

    Returns
    -------
    (scores, reasons)
        ``scores`` (n,) float32; ``reasons[i]`` is a dict with ``cluster``,
        ``centroid_distance``, ``cluster_spread`` (the cluster's median centroid
        distance) and ``knn_distance``.
    """
    X = as_matrix(X)
    labels = np.asarray(labels, dtype=np.int64)
    centroids = as_matrix(centroids, name="centroids")
    if labels.shape != (X.shape[0],) or (labels.size and labels.max() >= centroids.shape[0]):
        raise MusicsimError("labels do not match the embeddings and centroids")
    centre = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    cdist = np.clip(1.0 - np.einsum("ij,ij->i", X, centre[labels]), 0.0, 2.0)
    z_centroid = np.zeros(X.shape[0])
    typical = np.zeros(X.shape[0])
    library_z, library_med, _ = _robust_z(cdist) if cdist.size else (cdist, 0.0, 0.0)
    for label in np.unique(labels):
        members = labels == label
        if members.sum() < _MIN_CLUSTER:
            z_centroid[members], typical[members] = library_z[members], library_med
        else:
            z_centroid[members], typical[members], _ = _robust_z(cdist[members])
    knn = knn_distance(X, k=k) if knn_distances is None else np.asarray(knn_distances, dtype=np.float32)
    if knn.shape != (X.shape[0],):
        raise MusicsimError("knn_distances must have one value per track")
    z_knn = _robust_z(knn)[0] if knn.size else knn
    scores = ((z_centroid + z_knn) / 2.0).astype(np.float32)
    reasons = [
        {"cluster": int(c), "centroid_distance": float(d), "cluster_spread": float(s), "knn_distance": float(q)}
        for c, d, s, q in zip(labels.tolist(), cdist.tolist(), typical.tolist(), knn.tolist(), strict=True)
    ]
    return scores, reasons


def rank_outliers(scores: np.ndarray, ids: np.ndarray, n: int = 20) -> list[tuple[int, float]]:
    """The ``n`` highest-scoring tracks as (id, score), most unusual first."""
    scores = np.asarray(scores, dtype=np.float64)
    ids = np.asarray(ids, dtype=np.int64)
    order = np.lexsort((ids, -scores))[: max(n, 0)]  # ties broken by id for determinism
    return [(int(ids[i]), float(scores[i])) for i in order]


def _durations_match(a: TrackMeta | None, b: TrackMeta | None, tol: float) -> bool:
    """Both durations known and within ``tol`` seconds, or both unknown."""
    da = a.duration if a is not None else None
    db = b.duration if b is not None else None
    if da is None or db is None:
        return da is None and db is None
    return abs(da - db) <= tol


def _close_pairs_exact(X: np.ndarray, threshold: float) -> Iterator[tuple[int, int, float]]:
    """All row pairs (r < c) closer than ``threshold``, by blocks of the upper triangle."""
    n = X.shape[0]
    step = _block_rows(n)
    for start in range(0, n, step):
        stop = min(start + step, n)
        sims = X[start:stop] @ X[start:].T  # only columns at or after this block
        rows, cols = np.nonzero(sims > 1.0 - threshold)
        upper = cols + start > rows + start
        for r, c in zip(rows[upper].tolist(), cols[upper].tolist(), strict=True):
            yield r + start, c + start, max(0.0, 1.0 - float(sims[r, c]))


def _close_pairs_candidates(
    X: np.ndarray, ids: np.ndarray, candidate_ids: np.ndarray, threshold: float
) -> Iterator[tuple[int, int, float]]:
    """Row pairs closer than ``threshold`` among given neighbour candidates (O(n k d))."""
    cand = np.asarray(candidate_ids, dtype=np.int64)
    if cand.ndim != 2 or cand.shape[0] != X.shape[0]:
        raise MusicsimError("candidate_ids must have one row of neighbour ids per track")
    order = np.argsort(ids, kind="stable")
    pos = np.minimum(np.searchsorted(ids, cand, sorter=order), max(ids.size - 1, 0))
    rows = order[pos]
    valid = ids[rows] == cand  # unknown ids and -1 padding drop out here
    seen: set[tuple[int, int]] = set()
    step = _block_rows(cand.shape[1] * X.shape[1])
    for start in range(0, X.shape[0], step):
        block = rows[start : start + step]
        sims = np.einsum("id,ikd->ik", X[start : start + step], X[block])
        hit = valid[start : start + step] & (sims > 1.0 - threshold)
        for i, j in zip(*np.nonzero(hit), strict=True):
            r, c = sorted((start + int(i), int(block[i, j])))
            if r != c and (r, c) not in seen:
                seen.add((r, c))
                yield r, c, max(0.0, 1.0 - float(sims[i, j]))


def duplicate_threshold(
    X: np.ndarray, *, fraction: float = 0.1, small: float = 0.02, sample: int = 2000, seed: int = 0
) -> float:
    """Cosine distance under which two tracks count as the same recording.

    ``fraction`` of the median distance between two tracks (over the pairs of a sample of up
    to ``sample`` rows), so it follows each model's and library's scale. Unlike the distance
    to the nearest track, that median does not shrink when many tracks have a copy. With
    fewer than 4 rows there is no such scale, and ``small`` is used.

    Measured on real libraries in library space (``tests/benchmarks/bench_duplicates.py``):
    copies of the same recording (other codec, 96 kb/s MP3) of tracks of 10 s or longer lay
    within 0.08 of that median, other tracks of the same duration no nearer than 0.25 of it.
    """
    X = as_matrix(X)
    if X.shape[0] < 4:
        return float(small)
    rows = np.random.default_rng(seed).choice(X.shape[0], size=min(X.shape[0], sample), replace=False)
    sims = X[rows] @ X[rows].T
    return float(fraction * np.median(1.0 - sims[np.triu_indices(len(rows), 1)]))


def near_duplicates(
    X: np.ndarray,
    ids: np.ndarray,
    meta: dict[int, TrackMeta],
    *,
    threshold: float = 0.02,
    duration_tol: float = 2.0,
    candidate_ids: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """Pairs of tracks that are probably the same recording.

    A pair qualifies when its cosine distance is below ``threshold`` and the durations
    agree within ``duration_tol`` seconds (a pair where only one duration is known does
    not qualify; two unknown durations do).

    Parameters
    ----------
    X, ids, meta
        Embeddings, aligned track ids and their tags.
    threshold, duration_tol : float
        Cosine-distance and duration (seconds) limits.
    candidate_ids : ndarray (n, k) int64, optional
        Each track's nearest-neighbour track ids (e.g. from an hnswlib query; -1 or
        unknown ids are ignored). Only those pairs are checked, which is far faster than
        the exact search: a block-wise O(n^2 d) scan of the upper triangle.

    Returns
    -------
    list of (id_a, id_b, distance)
        ``id_a < id_b``; sorted by distance, then ids.
    """
    if threshold < 0 or duration_tol < 0:
        raise MusicsimError("threshold and duration_tol must not be negative")
    X = as_matrix(X)
    ids = np.asarray(ids, dtype=np.int64)
    if candidate_ids is None:
        close = _close_pairs_exact(X, threshold)
    else:
        close = _close_pairs_candidates(X, ids, candidate_ids, threshold)
    pairs: list[tuple[int, int, float]] = []
    for r, c, dist in close:
        a, b = int(ids[r]), int(ids[c])
        if _durations_match(meta.get(a), meta.get(b), duration_tol):
            pairs.append((min(a, b), max(a, b), dist))
    pairs.sort(key=lambda p: (p[2], p[0], p[1]))
    return pairs

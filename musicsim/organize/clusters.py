"""Clustering the library into groups with stable ids, names, and a 2-D map."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, MiniBatchKMeans
from threadpoolctl import threadpool_limits

from musicsim.errors import MusicsimError
from musicsim.organize import TrackMeta, as_matrix

_SAMPLE = 5000  # silhouette is O(n^2): score k on a sample this big at most
_MINIBATCH_ABOVE = 20_000
TSNE_MAX = 5000  # above this the map is PCA (t-SNE would take minutes)
# A cluster is named after a tag only when enough of its members share it: a genre by 40 %, an
# artist by a quarter (a genre's cluster often holds a few artists), an album or a folder by
# half. Below that the name would describe a part of the cluster, not the cluster (on the dev
# library a 77-track cluster was called after the artist of 8 of its tracks, and with 40 % for
# folders after the folder of its 31 MIDI files), so it stays "Cluster N".
_GENRE_SHARE = 0.4
_ARTIST_SHARE = 0.25
_FOLDER_SHARE = 0.5
# _ONE_THREAD: k-means here is many small BLAS / OpenMP calls. When other work shares
# the cores (a scan, the GUI) their spinning worker threads made fits 10-15x slower
# (measured: 100k mini-batch fit 9 s vs 0.6 s), so fits run single-threaded.


def _silhouette(D: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Mean silhouette from a precomputed distance matrix (singletons score 0).

    One matrix product gives every point's summed distance to every cluster, which is
    far faster than re-deriving distances for each candidate k.
    """
    onehot = np.zeros((labels.size, k), dtype=D.dtype)
    onehot[np.arange(labels.size), labels] = 1.0
    sums = D @ onehot
    counts = onehot.sum(axis=0)
    own = sums[np.arange(labels.size), labels]
    own_count = counts[labels]
    a = own / np.maximum(own_count - 1.0, 1.0)
    means = sums / np.maximum(counts, 1.0)
    means[np.arange(labels.size), labels] = np.inf
    means[:, counts == 0] = np.inf
    b = means.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    s[own_count <= 1] = 0.0
    return float(s.mean())


def choose_k(X: np.ndarray, *, k_min: int = 2, k_max: int | None = None, seed: int = 0) -> int:
    """Pick a cluster count by the best silhouette on a sample of at most 5000 tracks.

    Parameters
    ----------
    X : ndarray (n, d)
        Unit-norm embeddings.
    k_min, k_max : int
        Range of k to try; ``k_max`` defaults to ``min(20, sqrt(n))``.
    seed : int
        Seeds both the sample and k-means, so the answer is deterministic.
    """
    X = as_matrix(X)
    n = X.shape[0]
    if k_min < 2:
        raise MusicsimError(f"k_min must be at least 2, got {k_min}")
    rng = np.random.default_rng(seed)
    sample = X[np.sort(rng.choice(n, _SAMPLE, replace=False))] if n > _SAMPLE else X
    m = sample.shape[0]
    k_max = min(20, int(np.sqrt(n))) if k_max is None else k_max
    k_max = min(k_max, m - 1)
    if k_max < k_min:
        raise MusicsimError(f"too few tracks ({n}) to choose between {k_min} or more clusters")
    # Euclidean distance between unit vectors is a monotone function of cosine distance.
    D = np.sqrt(np.maximum(2.0 - 2.0 * (sample @ sample.T), 0.0)).astype(np.float32)
    scores = {}
    with threadpool_limits(limits=1):  # see _ONE_THREAD
        for k in range(k_min, k_max + 1):
            # One k-means++ start per k is enough to compare k values; cluster() runs
            # several starts for the final fit.
            labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(sample)
            scores[k] = _silhouette(D, labels, k)
    return max(scores, key=lambda k: (scores[k], -k))  # ties go to the smaller k


def _unit_rows(C: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(C, axis=1, keepdims=True)
    return (C / np.maximum(norms, 1e-12)).astype(np.float32)


def _canonical(labels: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters by descending size, ties broken by centroid coordinates."""
    k = centroids.shape[0]
    sizes = np.bincount(labels, minlength=k)
    keys = [centroids[:, j] for j in range(centroids.shape[1] - 1, -1, -1)]
    order = np.lexsort([*keys, -sizes])  # last key is primary
    lut = np.empty(k, dtype=np.int64)
    lut[order] = np.arange(k)
    return lut[labels], centroids[order]


def align_labels(old_centroids: np.ndarray, new_centroids: np.ndarray, *, max_distance: float = 0.5) -> dict[int, int]:
    """Map new cluster ids onto old ones so a re-clustering keeps familiar ids.

    Old and new centroids are paired by the Hungarian algorithm on cosine distance;
    pairs farther apart than ``max_distance`` are not kept. Unpaired new clusters get
    fresh ids after the old range, so an old id never changes meaning.

    Returns
    -------
    dict
        new label -> stable label.
    """
    old = np.asarray(old_centroids, dtype=np.float64)
    new = np.asarray(new_centroids, dtype=np.float64)
    mapping: dict[int, int] = {}
    if old.size and new.size:
        alive = np.linalg.norm(old, axis=1) > 1e-9  # zero rows mark retired ids
        cost = 1.0 - _unit_rows(new).astype(np.float64) @ _unit_rows(old).T.astype(np.float64)
        cost[:, ~alive] = 1e6
        rows, cols = linear_sum_assignment(cost)
        mapping = {int(r): int(c) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= max_distance}
    fresh = iter(range(old.shape[0] if old.ndim == 2 else 0, 1 << 62))
    for label in range(new.shape[0]):
        if label not in mapping:
            mapping[label] = next(fresh)
    return mapping


def cluster(
    X: np.ndarray,
    *,
    k: int | None = None,
    seed: int = 0,
    previous_centroids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """k-means clustering with deterministic, stable cluster ids.

    Parameters
    ----------
    X : ndarray (n, d)
        Unit-norm embeddings.
    k : int, optional
        Number of clusters; chosen by :func:`choose_k` when None.
    seed : int
        Random state for k-means.
    previous_centroids : ndarray, optional
        Centroids from an earlier run: ids are then aligned to it by
        :func:`align_labels`, which may leave gaps in the id range.

    Returns
    -------
    (labels, centroids)
        ``labels`` (n,) int64 and unit-norm ``centroids`` (max label + 1, d) float32;
        ``centroids[label]`` is that cluster's centre (all-zero rows are unused ids).
        Without ``previous_centroids`` ids run 0..k-1 from the largest cluster down.
    """
    X = as_matrix(X)
    n = X.shape[0]
    k = choose_k(X, seed=seed) if k is None else k
    if not 1 <= k <= n:
        raise MusicsimError(f"cannot make {k} clusters from {n} tracks")
    if n > _MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed)
    else:
        model = KMeans(n_clusters=k, n_init=4, random_state=seed)
    with threadpool_limits(limits=1):  # see _ONE_THREAD
        labels = model.fit_predict(X).astype(np.int64)
    # Means of the members, re-normalised: the direction is what cosine distance uses.
    sums = np.zeros((k, X.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, X)
    centroids = np.where(np.bincount(labels, minlength=k)[:, None] > 0, sums, model.cluster_centers_)
    labels, centroids = _canonical(labels, _unit_rows(centroids))
    if previous_centroids is None:
        return labels, centroids
    mapping = align_labels(previous_centroids, centroids)
    lut = np.array([mapping[i] for i in range(k)], dtype=np.int64)
    aligned = np.zeros((int(lut.max()) + 1, X.shape[1]), dtype=np.float32)
    aligned[lut] = centroids
    return lut[labels], aligned


def _dominant(values: Sequence[str | None]) -> tuple[str | None, int]:
    """Most common tag ignoring case (displayed in its most common spelling)."""
    folded = Counter(" ".join(v.split()).casefold() for v in values if v and v.strip())
    if not folded:
        return None, 0
    key, count = min(folded.items(), key=lambda kv: (-kv[1], kv[0]))
    spellings = Counter(" ".join(v.split()) for v in values if v and " ".join(v.split()).casefold() == key)
    return min(spellings.items(), key=lambda kv: (-kv[1], kv[0]))[0], count


def name_clusters(labels: np.ndarray, ids: np.ndarray, meta: dict[int, TrackMeta]) -> dict[int, str]:
    """Human-readable, unique cluster names from member tags.

    The first of these that enough members share names the cluster: a genre (40 % of the
    members), an artist (25 %), an album (half), the folder the files are in (half);
    otherwise "Cluster N" (N = the cluster id). Repeated names get " 2", " 3", ... in
    cluster-id order.
    """
    labels = np.asarray(labels, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    names: dict[int, str] = {}
    used: Counter[str] = Counter()
    for label in np.unique(labels).tolist():
        in_cluster = ids[labels == label]
        members = [m for m in (meta.get(int(i)) for i in in_cluster) if m]
        name = f"Cluster {label}"
        for values, share in (
            ([m.genre for m in members], _GENRE_SHARE),
            ([m.artist for m in members], _ARTIST_SHARE),
            ([m.album for m in members], _FOLDER_SHARE),
            ([os.path.basename(os.path.dirname(m.path)) for m in members], _FOLDER_SHARE),
        ):
            value, count = _dominant(values)
            if value and count >= share * in_cluster.size:
                name = value
                break
        used[name.casefold()] += 1
        names[label] = name if used[name.casefold()] == 1 else f"{name} {used[name.casefold()]}"
    return names


def map_2d(X: np.ndarray, *, method: Literal["auto", "pca", "tsne", "umap"] = "auto", seed: int = 0) -> np.ndarray:
    """Project embeddings to 2-D for a map view.

    "auto" is t-SNE up to :data:`TSNE_MAX` tracks and PCA above: t-SNE keeps far more of each
    track's nearest neighbours together on the map (docs/benchmarks.md: the share of the 10
    nearest kept), PCA is instant at any size. "pca" uses an SVD of the d x d covariance
    (deterministic signs); "tsne" scikit-learn's (cosine distance, PCA start, seeded); "umap"
    needs the optional umap-learn package.

    Returns
    -------
    ndarray (n, 2) float32
    """
    X = as_matrix(X)
    n = X.shape[0]
    if method == "auto":
        method = "tsne" if 10 <= n <= TSNE_MAX else "pca"
    if method == "tsne":
        from sklearn.manifold import TSNE

        with threadpool_limits(limits=1):  # see _ONE_THREAD
            xy = TSNE(
                n_components=2,
                metric="cosine",
                init="pca",
                perplexity=float(min(30.0, max(2.0, (n - 1) / 3))),
                random_state=seed,
            ).fit_transform(X)
        return np.asarray(xy, dtype=np.float32)
    if method == "umap":
        try:
            import umap  # optional dependency, imported only on request
        except ImportError:
            raise MusicsimError("the UMAP map needs the umap-learn package; use PCA instead") from None
        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed)
        return np.asarray(reducer.fit_transform(X), dtype=np.float32)
    if method != "pca":
        raise MusicsimError(f"unknown map method {method!r}; use 'auto', 'pca', 'tsne' or 'umap'")
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    centred = X - X.mean(axis=0)
    cov = (centred.T @ centred).astype(np.float64)
    u, _, _ = np.linalg.svd(cov)
    axes = u[:, :2] if u.shape[1] >= 2 else np.pad(u, ((0, 0), (0, 2 - u.shape[1])))
    # An eigenvector's sign is arbitrary; fix it so maps do not flip between runs.
    signs = np.sign(axes[np.argmax(np.abs(axes), axis=0), np.arange(2)])
    axes = axes * np.where(signs == 0, 1.0, signs)
    return (centred @ axes.astype(np.float32)).astype(np.float32)


def neighbours_kept(X: np.ndarray, xy: np.ndarray, *, k: int = 10, sample: int = 2000, seed: int = 0) -> float:
    """Mean share of each track's ``k`` nearest neighbours (cosine, in ``X``) that are also among
    its ``k`` nearest on the map ``xy``, over a sample of at most ``sample`` tracks."""
    X = as_matrix(X)
    n = X.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return 1.0
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, sample, replace=False)) if n > sample else np.arange(n)
    kept = []
    for r in rows:
        d_hi = 1.0 - X @ X[r]
        d_lo = np.sum((xy - xy[r]) ** 2, axis=1)
        d_hi[r] = d_lo[r] = np.inf
        a = set(np.argpartition(d_hi, k)[:k].tolist())
        b = set(np.argpartition(d_lo, k)[:k].tolist())
        kept.append(len(a & b) / k)
    return float(np.mean(kept))

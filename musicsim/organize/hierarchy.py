"""Clusters at every scale: one Ward tree over the library, cut at 2 to about sqrt(n) groups.

The tree is computed once; a level is then a lookup, so the Clusters tab's slider and
``musicsim clusters --level`` move between levels instantly. Levels are nested (level k+1
splits one group of level k in two), and ids are stable between them: the larger half keeps
its parent's id and the smaller half takes the next free id, so a colour chosen by id stays
with the same tracks from one level to the next.

Libraries over :data:`_DIRECT` tracks are first summarised by k-means into that many
micro-clusters, whose centroids Ward then joins, which keeps memory and time bounded for any n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import cut_tree, linkage

from musicsim.errors import MusicsimError
from musicsim.organize import as_matrix

_DIRECT = 3000  # Ward on at most this many points (an n x n condensed matrix: 36 MB)
_MAX_LEVEL = 40  # more groups than this are not a view of the whole library any more


@dataclass(frozen=True)
class Hierarchy:
    """Nested groupings of ``n`` tracks: ``labels[i]`` is the grouping into ``levels[i]`` groups
    (stable ids 0..levels[i]-1), and ``default`` the level shown first."""

    levels: tuple[int, ...]
    labels: np.ndarray  # (len(levels), n) int64
    default: int
    scores: dict[int, float]  # level -> silhouette (the default's measure)

    def at(self, k: int) -> np.ndarray:
        """The labels at ``k`` groups (the nearest level when k is out of range)."""
        k = min(max(int(k), self.levels[0]), self.levels[-1])
        return self.labels[self.levels.index(k)]


def max_level(n: int) -> int:
    return int(max(2, min(_MAX_LEVEL, round(np.sqrt(n)))))


def build(X: np.ndarray, *, seed: int = 0, min_default: int = 3) -> Hierarchy:
    """The Ward hierarchy of unit vectors ``X`` cut at 2..max_level(n) groups.

    ``default``: the level with the best silhouette among those of at least ``min_default``
    groups (when the library has enough tracks for them); measured against the dev library's
    sub-folders in docs/benchmarks.md. Silhouette alone picks 2 on most libraries (music
    against short sound effects), which shows the shape of a library at one scale only.
    """
    X = as_matrix(X)
    n = X.shape[0]
    if n < 3:
        raise MusicsimError(f"too few tracks ({n}) for groups; at least 3 are needed")
    kmax = max_level(n)
    points, member = _summarise(X, seed)
    tree = linkage(points.astype(np.float64), method="ward")
    levels = tuple(range(2, kmax + 1))
    raw = cut_tree(tree, n_clusters=list(levels)).T  # (levels, points)
    labels = _stable_ids(raw[:, member])
    scores = _silhouettes(X, labels, levels, seed)
    wanted = [k for k in levels if k >= min_default] or list(levels)
    default = max(wanted, key=lambda k: (scores[k], -k))
    return Hierarchy(levels, labels, default, scores)


def _summarise(X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(points Ward runs on, point index of each track): the tracks themselves, or k-means
    micro-clusters of a large library."""
    n = X.shape[0]
    if n <= _DIRECT:
        return X, np.arange(n)
    from sklearn.cluster import MiniBatchKMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        km = MiniBatchKMeans(n_clusters=_DIRECT, n_init=1, batch_size=4096, random_state=seed).fit(X)
    used, member = np.unique(km.labels_, return_inverse=True)
    return km.cluster_centers_[used].astype(np.float32), member


def _stable_ids(raw: np.ndarray) -> np.ndarray:
    """Relabel nested cuts so that ids persist: at each finer level exactly one group splits;
    its larger half keeps the id, its smaller half gets the next id."""
    out = np.zeros_like(raw, dtype=np.int64)
    first = raw[0]
    big = np.bincount(first).argmax()
    out[0] = np.where(first == big, 0, 1)
    for i in range(1, raw.shape[0]):
        prev, cur = out[i - 1], raw[i]
        lab = prev.copy()
        nxt = int(prev.max()) + 1
        for parent in np.unique(prev):
            rows = prev == parent
            kids, counts = np.unique(cur[rows], return_counts=True)
            if kids.size > 1:
                order = np.argsort(-counts, kind="stable")
                for kid in kids[order[1:]]:
                    lab[rows & (cur == kid)] = nxt
                    nxt += 1
        out[i] = lab
    return out


def _silhouettes(X: np.ndarray, labels: np.ndarray, levels: tuple[int, ...], seed: int) -> dict[int, float]:
    from musicsim.organize.clusters import _SAMPLE, _silhouette

    n = X.shape[0]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, _SAMPLE, replace=False)) if n > _SAMPLE else np.arange(n)
    S = X[rows]
    D = np.sqrt(np.maximum(2.0 - 2.0 * (S @ S.T), 0.0)).astype(np.float32)
    out = {}
    for k, lab in zip(levels, labels):
        sub = lab[rows]
        _, dense = np.unique(sub, return_inverse=True)
        out[k] = _silhouette(D, dense, int(dense.max()) + 1) if dense.max() > 0 else 0.0
    return out


def centroids(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit-norm mean of each group's members, one row per id (0..max)."""
    k = int(labels.max()) + 1
    sums = np.zeros((k, X.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, X)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def name_levels(
    tree: Hierarchy, ids: np.ndarray, meta: dict, descriptors: dict[int, dict] | None = None
) -> dict[int, dict[int, str]]:
    """level -> group id -> name. From the members' shared tags as
    :func:`musicsim.organize.clusters.name_clusters` finds them; a group they do not name is
    called after the descriptors that set it apart from the rest of the library ("slow, quiet,
    tonal"), else "Cluster N". Names are unique within a level."""
    from musicsim.organize.clusters import name_clusters
    from musicsim.organize.words import library_scales, standout

    descriptors = descriptors or {}
    scales = library_scales(list(descriptors.values()))
    out: dict[int, dict[int, str]] = {}
    for k, labels in zip(tree.levels, tree.labels):
        names = name_clusters(labels, ids, meta)
        taken: dict[str, int] = {}
        for c in sorted(names):
            name = names[c]
            if name == f"Cluster {c}" and scales:
                members = [descriptors[int(t)] for t in ids[labels == c] if int(t) in descriptors]
                rest = [descriptors[int(t)] for t in ids[labels != c] if int(t) in descriptors]
                words = standout(members, scales, rest=rest)
                name = ", ".join(words) if words else name
            taken[name.casefold()] = taken.get(name.casefold(), 0) + 1
            names[c] = name if taken[name.casefold()] == 1 else f"{name} {taken[name.casefold()]}"
        out[k] = names
    return out


__all__ = ["Hierarchy", "build", "centroids", "max_level", "name_levels"]

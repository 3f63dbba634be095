"""Ordering tracks: smooth listening order (short path) and A-to-B song paths."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from musicsim.errors import MusicsimError
from musicsim.organize import as_matrix, row_of

_RANDOM_TRIALS = 20
_MIN_GAIN = 1e-9  # ignore float noise so 2-opt cannot cycle on equal-length paths


def cosine_distance_matrix(X: np.ndarray) -> np.ndarray:
    """Pairwise cosine distances (float64, clipped to [0, 2]) of unit-norm rows."""
    X64 = np.asarray(X, dtype=np.float64)
    D = 1.0 - X64 @ X64.T
    np.clip(D, 0.0, 2.0, out=D)
    np.fill_diagonal(D, 0.0)
    return D


def path_length(D: np.ndarray, order: np.ndarray) -> float:
    """Sum of distances between consecutive positions of ``order``."""
    order = np.asarray(order, dtype=np.int64)
    return float(D[order[:-1], order[1:]].sum()) if order.size > 1 else 0.0


def _greedy_chain(D: np.ndarray, start: int) -> np.ndarray:
    """Nearest-neighbour chain: from ``start`` always step to the closest unvisited."""
    n = D.shape[0]
    order = np.empty(n, dtype=np.int64)
    visited = np.zeros(n, dtype=bool)
    cur = start
    for step in range(n):
        order[step] = cur
        visited[cur] = True
        if step + 1 < n:
            row = np.where(visited, np.inf, D[cur])
            cur = int(np.argmin(row))
    return order


def _two_opt(D: np.ndarray, path: np.ndarray, deadline: float) -> np.ndarray:
    """Improve a path whose first and last nodes are fixed, by 2-opt segment reversals.

    For each i the gains of all reversals path[i+1..j] are computed in one vector
    operation and the best one is applied; passes repeat until no move helps or the
    deadline passes. Only strictly improving moves are taken, so the path never grows.
    """
    path = path.copy()
    m = path.size
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for i in range(m - 3):
            a, b = path[i], path[i + 1]
            pj, pj1 = path[i + 2 : m - 1], path[i + 3 : m]
            gain = D[a, b] + D[pj, pj1] - D[a, pj] - D[b, pj1]
            best = int(np.argmax(gain))
            if gain[best] > _MIN_GAIN:
                j = i + 2 + best
                path[i + 1 : j + 1] = path[i + 1 : j + 1][::-1].copy()
                improved = True
            if (i & 63) == 0 and time.perf_counter() >= deadline:
                break
    return path


def smooth_order(
    X_subset: np.ndarray,
    *,
    start: int | None = 0,
    time_budget_s: float = 0.8,
    extra_cost: np.ndarray | None = None,
) -> tuple[list[int], dict[str, float]]:
    """Order tracks so consecutive ones sound alike (a short open path).

    A nearest-neighbour chain from ``start`` is improved by 2-opt within the time
    budget. The end of the path is free; so is the start when ``start`` is None.

    Parameters
    ----------
    X_subset : ndarray (m, d)
        Unit-norm embeddings of the tracks to order.
    start : int or None
        Position in ``X_subset`` that must come first, or None to let it float.
    time_budget_s : float
        Soft limit on 2-opt time; the greedy chain is always computed in full.
    extra_cost : ndarray (m, m), optional
        Added to the cosine distance of each step (e.g. a DJ's tempo and key mismatch,
        :func:`musicsim.organize.transitions.dj_cost`); the stats stay in sound distance.

    Returns
    -------
    (order, stats)
        ``order`` lists positions into ``X_subset``. ``stats`` has "length" (sum of
        consecutive cosine distances), "greedy_length" and "random_length" (mean over
        random orders with a fixed seed). length <= greedy_length always holds without ``extra_cost``.
    """
    X = as_matrix(X_subset, name="X_subset")
    m = X.shape[0]
    if start is not None and not 0 <= start < max(m, 1):
        raise MusicsimError(f"start position {start} is outside 0..{m - 1}")
    if m <= 2:
        trivial = list(range(m)) if start in (None, 0) else [start, 1 - start]
        length = path_length(cosine_distance_matrix(X), np.array(trivial)) if m else 0.0
        return trivial, {"length": length, "greedy_length": length, "random_length": length}
    deadline = time.perf_counter() + max(0.0, time_budget_s)
    D = cosine_distance_matrix(X)
    C = D if extra_cost is None else D + np.asarray(extra_cost, dtype=D.dtype)
    first = start if start is not None else _extreme_point(X)
    greedy = _greedy_chain(C, first)
    # A dummy node at zero distance from everything frees the path's end (and start),
    # turning "open path" into the fixed-endpoint case 2-opt handles directly.
    Dx = np.zeros((m + 1, m + 1))
    Dx[:m, :m] = C
    dummy = np.array([m])
    path = np.concatenate([greedy, dummy]) if start is not None else np.concatenate([dummy, greedy, dummy])
    improved = _two_opt(Dx, path, deadline)
    order = improved[improved != m]
    if path_length(C, order) > path_length(C, greedy):  # cannot happen with strict gains; guard float drift
        order = greedy
    greedy_length = path_length(D, greedy)
    length = path_length(D, order)
    rng = np.random.default_rng(0)
    random_length = float(np.mean([path_length(D, rng.permutation(m)) for _ in range(_RANDOM_TRIALS)]))
    stats = {"length": length, "greedy_length": greedy_length, "random_length": random_length}
    return [int(i) for i in order], stats


def _extreme_point(X: np.ndarray) -> int:
    """The track farthest from the centroid: a natural end of a path through the set."""
    centre = X.mean(axis=0)
    return int(np.argmin(X @ centre))


def _great_circle(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit tangent at ``a`` towards ``b`` and the angle between them.

    Identical endpoints give angle 0 (any tangent works); antipodal ones have no unique
    great circle, so a fixed direction orthogonal to ``a`` is chosen deterministically.
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = float(np.clip(a64 @ b64, -1.0, 1.0))
    tangent = b64 - cos * a64
    norm = float(np.linalg.norm(tangent))
    if norm < 1e-6:
        axis = np.zeros_like(a64)
        axis[int(np.argmin(np.abs(a64)))] = 1.0  # the axis least aligned with a
        tangent = axis - (axis @ a64) * a64
        norm = float(np.linalg.norm(tangent))
    return tangent / norm, float(np.arccos(cos))


def song_path(
    X: np.ndarray,
    ids: np.ndarray,
    a_id: int,
    b_id: int,
    *,
    steps: int = 10,
    exclude: Iterable[int] = (),
) -> list[int]:
    """ "Take me from A to B in N steps" along the great circle between two tracks.

    Points are spaced evenly by slerp from A (t=0) to B (t=1); each interior point is
    filled with the nearest track not used yet and not excluded.

    Parameters
    ----------
    X, ids
        Unit-norm embeddings and aligned track ids.
    a_id, b_id : int
        Start and end tracks (must differ).
    steps : int
        Length of the returned path, endpoints included (>= 2).
    exclude : sequence of int
        Track ids never to use in the interior.

    Returns
    -------
    list of int
        ``steps`` distinct track ids, first ``a_id`` and last ``b_id``.
    """
    X = as_matrix(X)
    ids = np.asarray(ids, dtype=np.int64)
    if steps < 2:
        raise MusicsimError(f"a song path needs at least 2 steps, got {steps}")
    if int(a_id) == int(b_id):
        raise MusicsimError("a song path needs two different tracks")
    ra, rb = (int(r) for r in row_of(ids, [a_id, b_id]))
    usable = ~np.isin(ids, np.asarray(list(exclude), dtype=np.int64))
    usable[[ra, rb]] = False
    if int(usable.sum()) < steps - 2:
        raise MusicsimError(f"only {int(usable.sum()) + 2} tracks available for a {steps}-step path")
    tangent, angle = _great_circle(X[ra], X[rb])
    t = np.linspace(0.0, 1.0, steps)[1:-1]
    points = np.cos(t * angle)[:, None] * X[ra] + np.sin(t * angle)[:, None] * tangent
    sims = X @ points.astype(np.float32).T  # (n, steps-2) in one call
    chosen = [ra]
    for col in range(sims.shape[1]):
        row = int(np.argmax(np.where(usable, sims[:, col], -np.inf)))
        usable[row] = False
        chosen.append(row)
    chosen.append(rb)
    return [int(ids[r]) for r in chosen]

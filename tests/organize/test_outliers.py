from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from musicsim.errors import MusicsimError
from musicsim.organize import TrackMeta
from musicsim.organize.clusters import cluster
from musicsim.organize.outliers import duplicate_threshold, knn_distance, near_duplicates, outlier_scores, rank_outliers

from . import make_families, unit


def test_planted_foreign_point_ranks_first():
    lib = make_families()
    foreign = unit(np.random.default_rng(42).normal(size=lib.X.shape[1]))
    X = np.vstack([lib.X, foreign])
    ids = np.concatenate([lib.ids, [7]])
    labels, centroids = cluster(X, k=5)
    scores, reasons = outlier_scores(X, labels, centroids, k=5)
    top = rank_outliers(scores, ids, n=5)
    print("top outliers:", top[:3])
    assert top[0][0] == 7
    assert len(top) == 5 and top[0][1] >= top[1][1]
    why = reasons[-1]
    assert set(why) == {"cluster", "centroid_distance", "cluster_spread", "knn_distance"}
    assert why["centroid_distance"] > 2 * why["cluster_spread"]
    assert why["knn_distance"] > np.median([r["knn_distance"] for r in reasons])


def test_outlier_scores_accept_precomputed_knn_and_check_shapes():
    lib = make_families()
    labels, centroids = cluster(lib.X, k=5)
    knn = knn_distance(lib.X, k=5)
    a, _ = outlier_scores(lib.X, labels, centroids, k=5)
    b, _ = outlier_scores(lib.X, labels, centroids, knn_distances=knn)
    np.testing.assert_allclose(a, b)
    with pytest.raises(MusicsimError):
        outlier_scores(lib.X, labels[:-1], centroids)
    with pytest.raises(MusicsimError):
        outlier_scores(lib.X, labels, centroids, knn_distances=knn[:-1])


def test_knn_distance_matches_brute_force():
    lib = make_families()
    D = 1 - lib.X @ lib.X.T
    np.fill_diagonal(D, np.inf)
    expected = np.sort(D, axis=1)[:, 2]
    np.testing.assert_allclose(knn_distance(lib.X, k=3), expected, atol=1e-5)


def test_near_duplicates_need_matching_durations():
    lib = make_families()
    a, b = int(lib.ids[0]), int(lib.ids[1])
    X = np.vstack([lib.X, lib.X[0], lib.X[1], lib.X[2], lib.X[2]])
    ids = np.concatenate([lib.ids, [1, 2, 3, 4]])
    meta = dict(lib.meta)
    meta[1] = dataclasses.replace(meta[a], id=1, path="/copy/1.mp3", duration=meta[a].duration + 1.0)
    meta[2] = dataclasses.replace(meta[b], id=2, path="/copy/2.mp3", duration=meta[b].duration + 60.0)
    c = int(lib.ids[2])
    meta[c] = dataclasses.replace(meta[c], duration=None)
    meta[3] = TrackMeta(id=3, path="/copy/3.mp3")  # unknown duration, like c
    meta[4] = TrackMeta(id=4, path="/copy/4.mp3", duration=200.0)  # known vs unknown: skip
    pairs = near_duplicates(X, ids, meta)
    found = {(p[0], p[1]) for p in pairs}
    assert (1, a) in found
    assert (2, b) not in found
    assert (3, c) in found
    assert not any(4 in p for p in found)
    assert all(d < 0.02 for *_, d in pairs)
    # Exact copies sort before anything merely close.
    assert pairs[0][2] == pytest.approx(0.0, abs=1e-6)
    # Neighbour candidates (as an ANN index would give, with -1 padding) find the same.
    nearest = np.argsort(-(X @ X.T), axis=1)[:, :4]
    cand = ids[nearest]
    cand[:, -1] = -1
    via_candidates = near_duplicates(X, ids, meta, candidate_ids=cand)
    assert {p[:2] for p in via_candidates} == found
    np.testing.assert_allclose(sorted(p[2] for p in via_candidates), sorted(p[2] for p in pairs), atol=1e-6)
    with pytest.raises(MusicsimError):
        near_duplicates(X, ids, meta, candidate_ids=cand[:-1])


def test_near_duplicates_threshold_and_errors():
    lib = make_families()
    assert near_duplicates(lib.X, lib.ids, lib.meta) == []
    with pytest.raises(MusicsimError):
        near_duplicates(lib.X, lib.ids, lib.meta, threshold=-1)


def _library_with_copies(n: int, copies: int, *, dim: int = 64, seed: int = 0) -> tuple[np.ndarray, int]:
    """n distinct unit vectors, then a slightly perturbed copy (cosine distance ~0.005) of the
    first ``copies`` of them."""
    rng = np.random.default_rng(seed)
    X = unit(rng.normal(size=(n, dim)))
    twins = unit(X[:copies] + 0.1 / np.sqrt(dim) * rng.normal(size=(copies, dim)))
    return np.vstack([X, twins]).astype(np.float32), copies


@pytest.mark.parametrize("copies", [0, 10, 40])
def test_duplicate_threshold_lies_between_copies_and_other_tracks(copies):
    X, c = _library_with_copies(40, copies)
    D = 1.0 - X @ X.T
    n = 40
    copy_d = np.array([D[i, n + i] for i in range(c)])
    other = D[:n, :n][np.triu_indices(n, 1)]
    thr = duplicate_threshold(X)
    print(
        f"copies {c}: threshold {thr:.4f}, copies up to {copy_d.max() if c else 0:.4f}, others from {other.min():.4f}"
    )
    assert (copy_d < thr).all()
    assert thr < other.min()
    # Every track having a copy must not shrink the threshold below the copies (the previous
    # rule, a quarter of the median nearest-neighbour distance, did exactly that).
    if c == 40:
        np.fill_diagonal(D, np.inf)
        assert 0.25 * np.median(D.min(1)) < copy_d.min()


def test_duplicate_threshold_follows_the_scale_and_falls_back_for_tiny_libraries():
    X, _ = _library_with_copies(40, 10)
    thr = duplicate_threshold(X)
    # The same geometry squeezed towards one direction: every distance about a tenth as large.
    squeezed = unit(X + 3.0 * unit(np.ones(X.shape[1]))[None, :])
    thr_sq = duplicate_threshold(squeezed)
    ratio = np.median(1 - squeezed @ squeezed.T) / np.median(1 - X @ X.T)
    assert thr_sq == pytest.approx(thr * ratio, rel=0.05)
    assert thr_sq < 0.5 * thr
    assert duplicate_threshold(X[:3]) == 0.02
    assert duplicate_threshold(X[:3], small=0.5) == 0.5
    # A sample of the pairs gives nearly the same threshold as all of them.
    assert duplicate_threshold(X, sample=30) == pytest.approx(thr, rel=0.15)

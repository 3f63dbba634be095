from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from musicsim.errors import MusicsimError
from musicsim.organize import TrackMeta
from musicsim.organize.clusters import cluster
from musicsim.organize.outliers import knn_distance, near_duplicates, outlier_scores, rank_outliers

from . import make_library, unit


def test_planted_foreign_point_ranks_first():
    lib = make_library()
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
    lib = make_library()
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
    lib = make_library()
    D = 1 - lib.X @ lib.X.T
    np.fill_diagonal(D, np.inf)
    expected = np.sort(D, axis=1)[:, 2]
    np.testing.assert_allclose(knn_distance(lib.X, k=3), expected, atol=1e-5)


def test_near_duplicates_need_matching_durations():
    lib = make_library()
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
    lib = make_library()
    assert near_duplicates(lib.X, lib.ids, lib.meta) == []
    with pytest.raises(MusicsimError):
        near_duplicates(lib.X, lib.ids, lib.meta, threshold=-1)

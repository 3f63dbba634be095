"""Library normalisation: track vectors z-scored over the library before they are compared."""

import json

import numpy as np
import pytest

from musicsim.index.ann import sidecar
from musicsim.index.norm import PRIOR_TRACKS, LibraryNorm, normalise_library
from musicsim.library import Library


def _cos_neighbour(X: np.ndarray) -> np.ndarray:
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    return S.argmax(1)


def test_fit_z_scores_every_dimension_of_a_large_library():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 6)) * np.array([5.0, 0.1, 1, 2, 3, 0.5]) + np.array([9.0, -3, 0, 1, 2, 40])
    norm = LibraryNorm.fit(X, prior=0)
    Z = (X - norm.mean) / norm.scale
    assert np.allclose(Z.mean(0), 0, atol=1e-4) and np.allclose(Z.std(0), 1, atol=1e-4)
    out = norm.apply(X)
    assert out.dtype == np.float32 and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert np.allclose(out, Z / np.linalg.norm(Z, axis=1, keepdims=True), atol=1e-5)
    assert norm.apply(X[0]).shape == (6,)  # one vector as well as a batch


def test_dimensions_that_vary_little_but_tell_tracks_apart_count_in_library_space():
    # Two groups told apart by five dimensions that vary little, under a large common offset
    # and two dimensions of loud noise: raw cosine neighbours mix the groups, library-space
    # neighbours (every dimension on the scale of its spread) keep them apart.
    rng = np.random.default_rng(1)
    n = 40
    group = np.repeat([0, 1], n // 2)
    X = np.zeros((n, 8))
    X[:, 0] = 20 + rng.normal(0, 0.5, n)
    X[:, 1:6] = np.where(group == 0, -0.1, 0.1)[:, None] + rng.normal(0, 0.02, (n, 5))
    X[:, 6:] = rng.normal(0, 1, (n, 2))
    raw_hits = (group[_cos_neighbour(X)] == group).mean()
    lib_hits = (group[_cos_neighbour(normalise_library(X))] == group).mean()
    assert lib_hits >= 0.95 and raw_hits <= 0.85, (raw_hits, lib_hits)


def test_a_small_library_is_compared_almost_as_its_raw_vectors():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 8)) + 3
    assert np.allclose(LibraryNorm.fit(x).apply(x), x / np.linalg.norm(x), atol=1e-5)
    X = rng.normal(size=(4, 8)) * np.arange(1, 9) + 3
    norm = LibraryNorm.fit(X)
    w = 4 / (4 + PRIOR_TRACKS)
    assert np.allclose(norm.mean, w * X.mean(0), atol=1e-5)  # the mean is shrunk towards zero
    spread = norm.scale.max() / norm.scale.min()
    assert spread < (X.std(0).max() / X.std(0).min()) ** 0.8  # and the spreads towards their average
    assert np.allclose(normalise_library(np.zeros((0, 8))), np.zeros((0, 8)))


def test_a_dimension_that_never_varies_is_not_blown_up():
    X = np.ones((50, 4))
    X[:, 1] = np.linspace(0, 1, 50)
    out = LibraryNorm.fit(X).apply(X)
    assert np.all(np.isfinite(out)) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_refit_only_after_the_library_grew_or_shrank_by_a_quarter():
    norm = LibraryNorm.fit(np.random.default_rng(3).normal(size=(100, 4)))
    assert not norm.stale(100) and not norm.stale(125) and not norm.stale(80)
    assert norm.stale(126) and norm.stale(79)
    empty = LibraryNorm.identity(4)
    assert not empty.stale(0) and empty.stale(1)


def test_round_trip_and_refusal_of_statistics_that_do_not_fit():
    norm = LibraryNorm.fit(np.random.default_rng(4).normal(size=(30, 5)))
    back = LibraryNorm.from_dict(json.loads(json.dumps(norm.to_dict())), 5)
    assert back.tag == norm.tag and back.n == 30
    with pytest.raises(ValueError):
        LibraryNorm.from_dict(norm.to_dict(), 6)
    bad = norm.to_dict()
    bad["scale"][0] = 0.0
    with pytest.raises(ValueError):
        LibraryNorm.from_dict(bad, 5)


def test_library_compares_and_indexes_library_space_vectors(family_library, tmp_path):
    root, families = family_library
    db = tmp_path / "lib.db"
    with Library(db) as lib:
        lib.scan([str(root / "sine")])
        first = lib.index.norm
        assert first.n == 3
        lib.scan([str(root)])  # 3 -> 13 tracks: the statistics are refitted, the index rebuilt
        norm = lib.index.norm
        ids, raw = lib.embeddings(raw=True)
        assert norm.n == len(ids) == len(families) and norm.tag != first.tag
        ids2, X = lib.embeddings()
        assert np.array_equal(ids, ids2)
        assert np.allclose(X, norm.apply(raw), atol=1e-6) and not np.allclose(X, raw, atol=1e-3)
        tid = int(ids[0])
        assert np.allclose(lib.vector(tid), X[0], atol=1e-6)
        held = lib.index.ann().index.get_vector(tid)
        assert np.allclose(held / np.linalg.norm(held), X[0], atol=1e-5)  # what the index holds
        # similar tracks are the nearest in library space (exact on a library this small)
        cos = X @ X[0]
        want = [int(i) for i in ids[np.argsort(-cos, kind="stable")] if int(i) != tid][:5]
        got = [h.track.id for h in lib.similar(tid, 5)]
        assert got[:3] == want[:3]
    meta = json.loads(sidecar(lib.index.path).read_text())
    assert meta["norm"]["n"] == len(families)
    with Library(db) as lib:  # reopened: the saved statistics are used, nothing is refitted
        assert lib.index.norm.tag == norm.tag
        assert lib.organizer.data()[1].shape == X.shape and np.allclose(lib.organizer.data()[1], X, atol=1e-6)
    # an index saved before library normalisation (no statistics beside it) is rebuilt on open
    meta.pop("norm")
    sidecar(lib.index.path).write_text(json.dumps(meta))
    with Library(db) as lib:
        assert lib.index.norm.tag == norm.tag
        assert np.allclose(lib.embeddings()[1], X, atol=1e-6)
    assert json.loads(sidecar(lib.index.path).read_text())["norm"]["n"] == len(families)

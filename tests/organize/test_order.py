from __future__ import annotations

import time

import numpy as np
import pytest

from musicsim.errors import MusicsimError
from musicsim.organize.order import cosine_distance_matrix, path_length, smooth_order, song_path

from . import make_families, unit


def test_smooth_order_beats_random_and_never_greedy():
    lib = make_families()
    X = lib.X[:150]
    order, stats = smooth_order(X, start=7)
    assert sorted(order) == list(range(150)) and order[0] == 7
    D = cosine_distance_matrix(X)
    assert stats["length"] == pytest.approx(path_length(D, np.array(order)))
    assert stats["length"] <= stats["greedy_length"] + 1e-9
    assert stats["length"] < 0.6 * stats["random_length"]
    print(stats)


def test_smooth_order_free_start_and_tiny_inputs():
    lib = make_families()
    order, stats = smooth_order(lib.X[:60], start=None)
    assert sorted(order) == list(range(60))
    assert stats["length"] <= stats["greedy_length"] + 1e-9
    assert smooth_order(lib.X[:0])[0] == []
    assert smooth_order(lib.X[:1])[0] == [0]
    assert smooth_order(lib.X[:2], start=1)[0] == [1, 0]
    with pytest.raises(MusicsimError):
        smooth_order(lib.X[:5], start=5)


def test_two_opt_untangles_a_circle():
    # Points on a great circle visited in a scrambled order: the best path is the arc.
    angles = np.random.default_rng(3).permutation(np.linspace(0, np.pi, 200))
    X = np.zeros((200, 8), dtype=np.float32)
    X[:, 0], X[:, 1] = np.cos(angles), np.sin(angles)
    start = int(np.argmin(angles))
    order, stats = smooth_order(X, start=start)
    arc = path_length(cosine_distance_matrix(X), np.argsort(angles))
    assert stats["length"] == pytest.approx(arc, rel=1e-3)


def test_smooth_order_1000_orders_every_track_once():
    X = unit(np.random.default_rng(0).normal(size=(1000, 32)))
    order, stats = smooth_order(X)
    assert len(order) == 1000 and sorted(order) == list(range(1000))
    assert stats["length"] <= stats["greedy_length"]


@pytest.mark.perf
def test_smooth_order_1000_is_fast():
    X = unit(np.random.default_rng(0).normal(size=(1000, 32)))
    t0 = time.perf_counter()
    order, stats = smooth_order(X)
    elapsed = time.perf_counter() - t0
    print(f"smooth_order 1000: {elapsed:.3f}s {stats}")
    assert elapsed < 1.5


def test_song_path_moves_between_families():
    lib = make_families()
    fam_of = dict(zip(lib.ids.tolist(), lib.family.tolist(), strict=True))
    a = int(lib.ids[lib.family == 0][0])
    b = int(lib.ids[lib.family == 4][0])
    path = song_path(lib.X, lib.ids, a, b, steps=12)
    assert len(path) == 12 and path[0] == a and path[-1] == b
    assert len(set(path)) == 12
    fams = [fam_of[t] for t in path]
    # Progress is monotone: A's family is left for good before B's family is entered.
    last_a = max(i for i, f in enumerate(fams) if f == 0)
    first_b = fams.index(4)
    assert last_a < first_b and all(f == 4 for f in fams[first_b:])
    print("song path families:", fams)
    assert fams[1] == 0 and fams[-2] == 4
    rows = [int(np.flatnonzero(lib.ids == t)[0]) for t in path]
    sim_a = lib.X[rows] @ lib.centres[0]
    assert sim_a[0] > sim_a[len(path) // 2] > sim_a[-1]


def test_song_path_exclude_and_errors():
    lib = make_families()
    a, b = int(lib.ids[0]), int(lib.ids[1])
    first = song_path(lib.X, lib.ids, a, b, steps=6)
    again = song_path(lib.X, lib.ids, a, b, steps=6, exclude=first[1:-1])
    assert not set(first[1:-1]) & set(again)
    with pytest.raises(MusicsimError):
        song_path(lib.X, lib.ids, a, a)
    with pytest.raises(MusicsimError):
        song_path(lib.X[:5], lib.ids[:5], int(lib.ids[0]), int(lib.ids[1]), steps=6)
    with pytest.raises(MusicsimError):
        song_path(lib.X, lib.ids, a, b, steps=1)


def test_song_path_identical_and_antipodal_endpoints():
    rng = np.random.default_rng(1)
    base = unit(rng.normal(size=16))
    others = unit(rng.normal(size=(30, 16)))
    ids = np.arange(32, dtype=np.int64)
    same = np.vstack([base, base, others])
    assert len(set(song_path(same, ids, 0, 1, steps=5))) == 5
    opposite = np.vstack([base, -base, others])
    path = song_path(opposite, ids, 0, 1, steps=7)
    assert path[0] == 0 and path[-1] == 1 and len(set(path)) == 7

"""DJ transitions: Camelot relations, tempo matching, and the order that weighs them in."""

from __future__ import annotations

import numpy as np

from musicsim.organize.order import cosine_distance_matrix, smooth_order
from musicsim.organize.transitions import compatible, dj_cost, transition_stats
from musicsim.organize.words import camelot_code, key_relation

from . import make_families


def test_camelot_wheel():
    assert [camelot_code(k, "major") for k in ("C", "G", "B", "F")] == ["8B", "9B", "1B", "7B"]
    assert camelot_code("A", "minor") == "8A"
    c, am, g, fsharp = (
        {"key": k, "mode": m} for k, m in (("C", "major"), ("A", "minor"), ("G", "major"), ("F#", "major"))
    )
    assert key_relation(c, c) == "same key" and key_relation(c, am) == "relative key"
    assert key_relation(c, g) == "a fifth apart" and key_relation(c, fsharp) is None


def test_tempo_matching_allows_double_time_and_unknowns():
    assert compatible({"tempo": 120.0}, {"tempo": 124.0})[0] is True
    assert compatible({"tempo": 120.0}, {"tempo": 61.0})[0] is True
    assert compatible({"tempo": 120.0}, {"tempo": 100.0})[0] is False
    assert compatible({}, {"tempo": 100.0}) == (None, None)


def test_dj_order_raises_the_share_of_mixable_steps():
    lib = make_families()
    X = lib.X[:24]
    rng = np.random.default_rng(1)
    desc = [
        {"tempo": float(rng.choice([90.0, 128.0])), "key": str(rng.choice(["C", "F#"])), "mode": "major"}
        for _ in range(len(X))
    ]
    D = cosine_distance_matrix(X)
    plain, _ = smooth_order(X, start=0)
    dj, _ = smooth_order(X, start=0, extra_cost=dj_cost(desc, D))
    before, after = transition_stats(plain, desc, D), transition_stats(dj, desc, D)
    assert sorted(dj) == list(range(len(X))) and dj[0] == 0
    assert after["both_ok"] > before["both_ok"]

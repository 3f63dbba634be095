from __future__ import annotations

import numpy as np
import pytest

from musicsim.errors import MusicsimError
from musicsim.organize.similar import rank_by_seeds, sort_by_similarity

from . import make_families


def test_rank_excludes_seeds_and_is_sorted():
    lib = make_families()
    seeds = lib.ids[:2].tolist()
    ranked, dist = rank_by_seeds(lib.X, lib.ids, seeds)
    assert len(ranked) == len(lib.ids) - 2
    assert not set(seeds) & set(ranked.tolist())
    assert np.all(np.diff(dist) >= 0)


def test_rank_nearest_are_seed_family():
    lib = make_families()
    seed = int(lib.ids[0])
    ranked, _ = rank_by_seeds(lib.X, lib.ids, [seed], limit=40)
    fam_of = dict(zip(lib.ids.tolist(), lib.family.tolist(), strict=True))
    assert len(ranked) == 40
    assert all(fam_of[int(t)] == fam_of[seed] for t in ranked)


def test_best_mode_covers_both_seed_families():
    lib = make_families()
    a = int(lib.ids[lib.family == 0][0])
    b = int(lib.ids[lib.family == 3][0])
    ranked, _ = rank_by_seeds(lib.X, lib.ids, [a, b], mode="best", limit=40)
    fam_of = dict(zip(lib.ids.tolist(), lib.family.tolist(), strict=True))
    assert {fam_of[int(t)] for t in ranked} == {0, 3}


def test_limit_matches_full_ranking():
    lib = make_families()
    full, dfull = rank_by_seeds(lib.X, lib.ids, [int(lib.ids[5])])
    part, dpart = rank_by_seeds(lib.X, lib.ids, [int(lib.ids[5])], limit=25)
    np.testing.assert_allclose(dpart, dfull[:25])


def test_bad_arguments():
    lib = make_families()
    with pytest.raises(MusicsimError):
        rank_by_seeds(lib.X, lib.ids, [123456789])
    with pytest.raises(MusicsimError):
        rank_by_seeds(lib.X, lib.ids, [int(lib.ids[0])], mode="median")
    with pytest.raises(MusicsimError):
        rank_by_seeds(lib.X, lib.ids, [])


def test_sort_by_similarity_seed_first():
    lib = make_families()
    seed = int(lib.ids[0])
    subset = lib.ids[10:60].tolist() + [seed, int(lib.ids[10])]
    result = sort_by_similarity(lib.X, lib.ids, subset, seed)
    assert result[0] == (seed, 0.0)
    assert len(result) == 51
    dists = [d for _, d in result]
    assert dists == sorted(dists)
    assert {t for t, _ in result[1:]} == set(lib.ids[10:60].tolist())

"""The cluster hierarchy: nested levels, stable ids, a default of several groups, names."""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import adjusted_mutual_info_score

from musicsim.organize.hierarchy import build, max_level, name_levels

from . import FAMILY_SIZES, make_families


def test_levels_are_nested_with_stable_ids():
    lib = make_families()
    tree = build(lib.X)
    assert tree.levels == tuple(range(2, max_level(len(lib.ids)) + 1))
    for k, lower, upper in zip(tree.levels[1:], tree.labels[:-1], tree.labels[1:]):
        assert len(np.unique(upper)) == k and set(np.unique(upper)) == set(range(k))
        # each finer group lies inside one coarser group, and keeps its id unless it split off
        for c in np.unique(upper):
            assert len(np.unique(lower[upper == c])) == 1
        moved = lower != upper
        assert len(np.unique(upper[moved])) <= 1 and (upper[moved] == k - 1).all()


def test_default_level_finds_the_families():
    lib = make_families()
    tree = build(lib.X)
    assert tree.default == len(FAMILY_SIZES)
    assert adjusted_mutual_info_score(lib.family, tree.at(tree.default)) > 0.9
    np.testing.assert_array_equal(tree.at(99), tree.labels[-1])  # out of range: the nearest level


def test_names_from_tags_else_from_descriptors():
    lib = make_families()
    tree = build(lib.X)
    meta = {
        t: dataclasses.replace(m, genre=None, artist=None, album=None, path=f"/m/{t}/{t}.ogg")
        for t, m in lib.meta.items()
    }
    labels = tree.at(tree.default)
    slow = int(labels[0])
    desc = {
        int(t): {"tempo": 70.0 if c == slow else 125.0 + (t % 7), "loudness": -25.0 if c == slow else -12.0 + (t % 3)}
        for t, c in zip(lib.ids.tolist(), labels.tolist())
    }
    names = name_levels(tree, lib.ids, meta, desc)[tree.default]
    assert names[slow] == "slow, quiet"
    assert len(set(names.values())) == len(names)
    tagged = name_levels(tree, lib.ids, lib.meta, desc)[tree.default]
    assert set(tagged.values()) == {f"Genre {f}" for f in range(len(FAMILY_SIZES))}


def test_a_group_holding_most_of_the_library_is_named_against_the_rest():
    from musicsim.organize.words import library_scales, standout

    rng = np.random.default_rng(1)
    music = [{"tempo": 120 + rng.normal(0, 8), "beat_clarity": 0.7 + rng.normal(0, 0.05)} for _ in range(80)]
    effects = [{"tempo": 70 + rng.normal(0, 8), "beat_clarity": 0.2 + rng.normal(0, 0.05)} for _ in range(20)]
    scales = library_scales(music + effects)
    assert standout(music, scales) == []  # it is most of the library: its medians are the library's
    assert standout(music, scales, rest=effects) == ["steady beat", "fast"]
    assert standout(effects, scales, rest=music) == ["free-flowing", "slow"]

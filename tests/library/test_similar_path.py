"""`musicsim similar` and the app's "Sort by similarity" are one road: the same ranking, the same distances."""

import shutil

import numpy as np
import pytest

from musicsim.errors import NotFound
from musicsim.library import Library


@pytest.fixture(scope="module")
def scanned(family_library_master, tmp_path_factory):
    master, _ = family_library_master
    root = tmp_path_factory.mktemp("similar") / "music"
    shutil.copytree(master, root)
    db = root.parent / "similar.db"
    with Library(db) as lib:
        lib.scan([str(root)])
    return db


def test_similar_is_the_head_of_the_full_ranking(scanned):
    with Library(scanned) as lib:
        ids = [t.id for t in lib.tracks()]
        assert len(ids) >= 10
        for seed in ids[:4]:
            ranked = lib.organizer.rank([seed])  # what the app sorts the whole table by
            assert [i for i, _ in ranked].count(seed) == 0 and len(ranked) == len(ids) - 1
            hits = lib.similar(seed, n=5)
            assert [h.track.id for h in hits] == [i for i, _ in ranked[:5]]
            assert np.allclose([h.distance for h in hits], [d for _, d in ranked[:5]], atol=1e-6)


def test_similar_distances_are_cosine_distances_of_library_space_vectors(scanned):
    with Library(scanned) as lib:
        seed = lib.tracks()[0].id
        v = lib.vector(seed)
        for h in lib.similar(seed, n=3):
            assert h.distance == pytest.approx(1.0 - float(v @ lib.vector(h.track.id)), abs=1e-5)
        # the exact ranking agrees with the HNSW index on a library this small (ef covers it all)
        labels, _ = lib.index.ann().query(v, 4, ef=lib.config.ef_search)
        assert [int(i) for i in labels if int(i) != seed][:3] == [h.track.id for h in lib.similar(seed, n=3)]


def test_similar_of_an_unknown_track_says_so(scanned):
    with Library(scanned) as lib, pytest.raises(NotFound, match="no embedding"):
        lib.similar(10**6, n=3)

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from musicsim.errors import MusicsimError
from musicsim.organize.clusters import align_labels, choose_k, cluster, map_2d, name_clusters, neighbours_kept

from . import FAMILY_SIZES, make_families


def test_choose_k_finds_the_families():
    lib = make_families()
    assert choose_k(lib.X, k_max=10) == len(FAMILY_SIZES)
    with pytest.raises(MusicsimError):
        choose_k(lib.X[:3])


def test_clusters_recover_families():
    lib = make_families()
    labels, centroids = cluster(lib.X)
    nmi = normalized_mutual_info_score(lib.family, labels)
    print(f"NMI = {nmi:.3f}")
    assert nmi > 0.9
    assert centroids.shape == (len(FAMILY_SIZES), lib.X.shape[1])
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)
    # Ids are ordered by size: cluster 0 is the largest family.
    assert np.all(np.diff(np.bincount(labels)) <= 0)


def test_labels_stable_across_runs_and_input_order():
    lib = make_families()
    labels, centroids = cluster(lib.X, k=5)
    again, again_c = cluster(lib.X, k=5)
    np.testing.assert_array_equal(labels, again)
    np.testing.assert_array_equal(centroids, again_c)
    perm = np.random.default_rng(9).permutation(len(lib.ids))
    # Size-ordered ids already survive a shuffled input when cluster sizes differ ...
    np.testing.assert_array_equal(cluster(lib.X[perm], k=5)[0], labels[perm])
    # ... and alignment to earlier centroids keeps them even with another k-means seed.
    shuffled, shuffled_c = cluster(lib.X[perm], k=5, seed=3, previous_centroids=centroids)
    np.testing.assert_array_equal(shuffled, labels[perm])
    mapping = align_labels(centroids, cluster(lib.X[perm], k=5, seed=3)[1])
    assert sorted(mapping.values()) == list(range(5))


def test_align_labels_new_and_vanished_clusters():
    eye = np.eye(4, dtype=np.float32)
    assert align_labels(eye[:3], eye[[2, 0, 1]]) == {0: 2, 1: 0, 2: 1}
    # A fourth cluster far from all old ones gets a fresh id after the old range.
    assert align_labels(eye[:3], eye[[1, 3, 0, 2]]) == {0: 1, 1: 3, 2: 0, 3: 2}
    assert align_labels(eye[:3], eye[[3, 1]]) == {0: 3, 1: 1}
    lib = make_families()
    labels, centroids = cluster(lib.X, k=5)
    merged, merged_c = cluster(lib.X, k=4, previous_centroids=centroids)
    assert merged_c.shape[0] == int(merged.max()) + 1
    assert set(np.unique(merged)) <= set(range(5))


def test_name_clusters():
    lib = make_families()
    labels = lib.family
    names = name_clusters(labels, lib.ids, lib.meta)
    assert names == {f: f"Genre {f}" for f in range(5)}
    meta = dict(lib.meta)
    for t in lib.ids[lib.family == 0].tolist():  # no genre: the top artist names it
        meta[t] = dataclasses.replace(meta[t], genre=None)
    for t in lib.ids[lib.family == 1].tolist():  # no tags at all, each file in its own folder
        meta[t] = dataclasses.replace(meta[t], genre=None, artist=None, album=None, path=f"/music/{t}/x.flac")
    for t in lib.ids[lib.family == 3].tolist():  # duplicates another name, other case
        meta[t] = dataclasses.replace(meta[t], genre="GENRE 2")
    names = name_clusters(labels, lib.ids, meta)
    assert names[0].startswith("Artist 0-")
    assert names[1] == "Cluster 1"
    assert names[2] == "Genre 2" and names[3] == "GENRE 2 2"
    assert len(set(names.values())) == 5


def test_genre_below_threshold_falls_back_to_artist():
    lib = make_families()
    fam0 = lib.ids[lib.family == 0].tolist()
    meta = dict(lib.meta)
    for j, t in enumerate(fam0):
        meta[t] = dataclasses.replace(meta[t], genre=f"g{j % 3}", artist="Mono")
    assert name_clusters(lib.family, lib.ids, meta)[0] == "Mono"


def test_a_tag_few_members_share_does_not_name_the_cluster():
    lib = make_families()
    fam0 = lib.ids[lib.family == 0].tolist()
    meta = dict(lib.meta)
    # One artist on 3 tracks, the rest untagged, spread over folders: no name fits the cluster.
    for j, t in enumerate(fam0):
        meta[t] = dataclasses.replace(
            meta[t], genre=None, album=None, artist="Few" if j < 3 else None, path=f"/music/{t}/x.flac"
        )
    assert len(fam0) >= 15 and name_clusters(lib.family, lib.ids, meta)[0] == "Cluster 0"
    # Untagged files that sit in one folder: the folder names the cluster.
    for t in fam0:
        meta[t] = dataclasses.replace(meta[t], artist=None, path=f"/music/openmsx/{t}.mid")
    assert name_clusters(lib.family, lib.ids, meta)[0] == "openmsx"
    # ... but not when that folder holds less than half of them.
    for j, t in enumerate(fam0):
        if j % 5 > 1:
            meta[t] = dataclasses.replace(meta[t], path=f"/music/other/{t}.ogg" if j % 5 == 2 else f"/music/{t}/x.ogg")
    assert name_clusters(lib.family, lib.ids, meta)[0] == "Cluster 0"
    # An album shared by most members, when genre and artist do not name it.
    for j, t in enumerate(fam0):
        meta[t] = dataclasses.replace(meta[t], album="Soundtrack" if j % 4 else "Other", artist=f"A{j}")
    assert name_clusters(lib.family, lib.ids, meta)[0] == "Soundtrack"


def test_map_2d_pca():
    lib = make_families()
    xy = map_2d(lib.X, method="pca")
    assert xy.shape == (len(lib.ids), 2) and xy.dtype == np.float32
    np.testing.assert_array_equal(xy, map_2d(lib.X, method="pca"))
    # Families stay apart on the map: each family's spread is small next to the map's.
    spread = np.mean([xy[lib.family == f].std(axis=0).mean() for f in range(5)])
    assert spread < xy.std(axis=0).mean()
    with pytest.raises(MusicsimError):
        map_2d(lib.X, method="mds")


def test_default_map_keeps_more_neighbours_than_pca():
    lib = make_families()
    auto = map_2d(lib.X)
    np.testing.assert_array_equal(auto, map_2d(lib.X))  # seeded: the same map every time
    assert neighbours_kept(lib.X, auto) > neighbours_kept(lib.X, map_2d(lib.X, method="pca"))


def test_map_2d_umap_missing_is_a_clean_error():
    pytest.importorskip("sklearn")
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(MusicsimError):
            map_2d(make_families().X, method="umap")
    else:
        pytest.skip("umap-learn is installed")

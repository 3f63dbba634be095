"""Organising by sound through the Library facade and the CLI, on a scanned generated library."""

import shutil
from pathlib import Path

import pytest
from sklearn.metrics import normalized_mutual_info_score

from musicsim.cli import main
from musicsim.errors import ModelMismatch
from musicsim.library import Library


@pytest.fixture(scope="module")
def scanned(family_library_master, tmp_path_factory):
    master, families = family_library_master
    root = tmp_path_factory.mktemp("org") / "music"
    shutil.copytree(master, root)
    families = {str(root / Path(p).relative_to(master)): f for p, f in families.items()}
    dup_src = next(p for p, f in families.items() if f == "chord")
    dup = root / "copies" / ("copy of " + Path(dup_src).name)
    dup.parent.mkdir()
    shutil.copy(dup_src, dup)
    families[str(dup)] = "chord"
    db = root.parent / "org.db"
    with Library(db) as lib:
        lib.scan([str(root)])
    return db, families, str(dup_src), str(dup)


def _ids(lib):
    return {t.path: t.id for t in lib.tracks()}


def test_playlist_stays_in_family_and_respects_constraints(scanned):
    db, families, dup_src, dup = scanned
    with Library(db) as lib:
        ids = _ids(lib)
        fam_of = {ids[p]: f for p, f in families.items()}
        seed = ids[next(p for p, f in families.items() if f == "noise")]
        info = lib.organizer.playlist([seed], n=2)
        assert seed not in info.track_ids and len(info.track_ids) == 2
        fams = [fam_of[t] for t in info.track_ids]
        assert fams[0] == "noise" and fams == sorted(fams, key=lambda f: f != "noise")
        # The other noise tracks come before any other family, unless the model hears one as
        # the same sound as the seed or a pick (white noise is white noise): a near-duplicate.
        ids_, X = lib.embeddings()
        vec = {int(i): X[k] for k, i in enumerate(ids_)}
        max_sim = 1.0 - lib.organizer.dup_threshold()
        kept = [seed, *info.track_ids]
        for t in (t for t, f in fam_of.items() if f == "noise" and t not in kept):
            assert max(float(vec[t] @ vec[k]) for k in kept) > max_sim
        # a seed whose duplicate exists: the copy is left out as a near-duplicate
        chord_seed = ids[dup_src]
        info = lib.organizer.playlist([chord_seed], n=5)
        assert ids[dup] not in info.track_ids
        excluded = info.track_ids[0]
        again = lib.organizer.playlist([chord_seed], n=5, exclude=[excluded], no_same_artist=2, no_same_album=True)
        assert excluded not in again.track_ids
        artists = {t.id: t.artist for t in lib.tracks()}
        seq = again.track_ids
        for i in range(1, len(seq)):
            assert artists[seq[i]] not in {artists[x] for x in seq[max(0, i - 2) : i]}
        albums = [t.album for t in lib.tracks() if t.id in seq]
        assert len(albums) == len(set(albums)) and "Album chord" not in albums
        stored = {pid: (name, n) for pid, name, n in lib.organizer.playlists()}
        assert stored[again.id] == (again.name, len(again.track_ids))


def test_playlist_export_import_round_trip(scanned, tmp_path):
    db, families, _, _ = scanned
    with Library(db) as lib:
        tracks = lib.tracks()
        pid = lib.organizer.save_playlist("Ünïcode ♪", [t.id for t in tracks[:5]])
        for ext in (".m3u8", ".xspf"):
            out = tmp_path / f"list{ext}"
            assert lib.organizer.export_playlist(pid, out) == 5
            back, unknown = lib.organizer.import_playlist(out)
            assert unknown == []
            assert [t.id for t in lib.organizer.playlist_tracks(back)] == [t.id for t in tracks[:5]]
        foreign = tmp_path / "foreign.m3u8"
        foreign.write_text(f"#EXTM3U\n{tracks[0].path}\n/nowhere/else.mp3\n", encoding="utf-8")
        pid2, unknown = lib.organizer.import_playlist(foreign)
        assert unknown == ["/nowhere/else.mp3"] and len(lib.organizer.playlist_tracks(pid2)) == 1
        lib.organizer.set_playlist_tracks(pid, [tracks[2].id, tracks[0].id])
        assert [t.id for t in lib.organizer.playlist_tracks(pid)] == [tracks[2].id, tracks[0].id]
        lib.organizer.rename_playlist(pid, "renamed")
        lib.organizer.delete_playlist(pid2)
        names = [n for _, n, _ in lib.organizer.playlists()]
        assert "renamed" in names and "foreign" not in names


def test_clusters_recover_families_and_are_stored(scanned):
    db, families, _, _ = scanned
    with Library(db) as lib:
        ids = _ids(lib)
        summary = lib.organizer.clusters(k=4)
        table = {r["track_id"]: r for r in lib.organizer.cluster_table()}
        assert set(table) == set(ids.values())  # one map point per track
        paths = [p for p, f in families.items() if f != "midi"]
        nmi = normalized_mutual_info_score([families[p] for p in paths], [table[ids[p]]["cluster"] for p in paths])
        print("cluster NMI vs families:", round(nmi, 3))
        assert nmi > 0.6
        assert set(summary.names.values()) & {"sine", "noise", "chord", "clicks"}  # named from genre tags
        assert not lib.organizer.clusters_stale()
        again = lib.organizer.clusters(k=4)
        assert {r["track_id"]: r["cluster"] for r in lib.organizer.cluster_table()} == {
            t: r["cluster"] for t, r in table.items()
        }  # stable ids
        assert again.names == summary.names


def test_duplicates_and_outliers(scanned):
    db, families, dup_src, dup = scanned
    with Library(db) as lib:
        pairs = {frozenset((a.path, b.path)) for a, b, _ in lib.organizer.duplicates()}
        assert frozenset((dup_src, dup)) in pairs
        rows = lib.organizer.outliers(n=5)
        assert [s for _, s, _ in rows] == sorted((s for _, s, _ in rows), reverse=True)
        assert all({"cluster", "centroid_distance", "knn_distance"} <= set(r) for _, _, r in rows)
        names = set(lib.organizer.cluster_names().values())
        for _, _, r in rows:  # in words: the nearest group by name, then what sets the track apart
            assert " the rest of '" in r["why"] and r["why"].split("'")[1] in names, r["why"]
            assert "its nearest group" in r["why"] and "most different " in r["why"], r["why"]


def test_path_and_sort(scanned):
    db, families, _, _ = scanned
    with Library(db) as lib:
        ids = _ids(lib)
        a = ids[next(p for p, f in families.items() if f == "sine")]
        b = ids[next(p for p, f in families.items() if f == "clicks")]
        path = lib.organizer.path(a, b, steps=5)
        assert path[0] == a and path[-1] == b and len(set(path)) == 5
        subset = list(ids.values())[:8]
        ranked = lib.organizer.sort(subset, subset[3])
        assert ranked[0] == (subset[3], pytest.approx(0.0, abs=1e-5))
        assert [d for _, d in ranked] == sorted(d for _, d in ranked)
        ordered, stats = lib.organizer.smooth(subset)
        assert sorted(ordered) == sorted(subset) and ordered[0] == subset[0]
        assert stats["length"] <= stats["greedy_length"] + 1e-9


def test_model_list_and_use(family_library, tmp_path, capsys):
    from musicsim.audio.features import FrontEnd
    from musicsim.model.checkpoint import load_model, make_checkpoint, save_checkpoint
    from musicsim.model.resnet import ModelConfig, build_model

    root, families = family_library
    db = tmp_path / "m.db"
    ck = save_checkpoint(
        make_checkpoint(build_model(ModelConfig(width=8, embed_dim=32), seed=5), FrontEnd(), name="small"),
        tmp_path / "small.pt",
    )
    with Library(db) as lib:
        lib.scan([str(root)])
        first = lib.model_row.name
        assert lib.index.ann().dim == lib.loaded.config.track_dim  # 1,152 for the multi-band-pooled default
        lib.register(load_model(ck))
        assert [m[0] for m in lib.models()] == [first, "small"]
        assert lib.use_model("small") == len(families)  # nothing embedded by it yet
        assert lib.model_row.name == "small"
        rep = lib.scan([str(root)])
        assert rep.analysed == len(families)  # the new model's embeddings are made by a re-scan
        assert len(lib.index.ann()) == len(families) and lib.index.ann().dim == 32
    assert main(["--db", str(db), "model", "list"]) == 0
    out = capsys.readouterr().out
    assert "* small" in out and first in out
    assert main(["--db", str(db), "model", "use", first]) == 0
    assert main(["--db", str(db), "model", "use", "nope"]) == 2
    with Library(db, writable=False) as lib:
        assert lib.model_row.name == first and len(lib.index.ann()) == len(families)


def test_track_rows_remove_root_and_stale_outliers(scanned):
    db, families, _, _ = scanned
    with Library(db) as lib:
        rows = lib.track_rows()
        assert [r[0] for r in rows] == sorted(t.id for t in lib.tracks())
        assert {r[7] for r in rows} == {t.path for t in lib.tracks()}
        assert lib.track_rows(since_id=rows[-2][0]) == rows[-1:]
        root = lib.status()["roots"][0]
        lib.remove_root(root)
        assert root not in lib.status()["roots"] and lib.status()["tracks"] == len(rows)
        lib.organizer.clusters(k=3)
        fresh = lib.organizer.outliers(3, recompute=False)
        assert not any(r["stale"] for _, _, r in fresh)
        with lib.db.session() as s:  # a change after clustering makes the stored scores stale
            from musicsim.store import repo

            repo.next_seq(s)
        stale = lib.organizer.outliers(3, recompute=False)
        assert all(r["stale"] for _, _, r in stale) and lib.organizer.clusters_stale()
        assert [t.id for t, _, _ in stale] == [t.id for t, _, _ in fresh]


def test_a_new_shipped_model_replaces_the_old_built_in_one(family_library, tmp_path, monkeypatch, capsys):
    """musicsim upgraded with another built-in model: a library on the old one (whose weights are
    gone) switches to the new one, keeps the old one listed, and a scan analyses it again."""
    import musicsim.model.checkpoint as checkpoint
    from musicsim.audio.features import FrontEnd
    from musicsim.model.resnet import ModelConfig, build_model

    root, families = family_library
    db = tmp_path / "u.db"
    shipped = tmp_path / "resources" / "default.pt"
    shipped.parent.mkdir()

    def ship(seed: int, name: str) -> None:
        net = build_model(ModelConfig(width=4, embed_dim=16, pooling="multilevel"), seed=seed)
        checkpoint.save_checkpoint(checkpoint.make_checkpoint(net, FrontEnd(), name=name), shipped)

    monkeypatch.setattr(checkpoint, "DEFAULT_RESOURCE", shipped)
    ship(1, "builtin-v1")
    assert checkpoint.default_model().trained
    with Library(db) as lib:
        assert lib.model_row.name == "builtin-v1" and lib.model_row.path is None and lib.replaced_default is None
        lib.scan([str(root)])
        assert len(lib.index.ann()) == len(families)
    with Library(db) as lib:  # the same musicsim: nothing changes
        assert lib.model_row.name == "builtin-v1" and lib.replaced_default is None
    ship(2, "builtin-v2")
    # a reader cannot switch the library: a clear error when the network is needed, not a crash
    with Library(db, writable=False) as lib:
        assert lib.model_row.name == "builtin-v1"
        with pytest.raises(ModelMismatch, match="no longer shipped"):
            _ = lib.loaded  # the network is needed: a clear error
    with Library(db) as lib:
        assert lib.replaced_default == ("builtin-v1", "builtin-v2")
        assert lib.model_row.name == "builtin-v2" and lib.loaded.name == "builtin-v2"
        assert [m[0] for m in lib.models()] == ["builtin-v1", "builtin-v2"]
        assert lib.status()["tracks"] == len(families)  # no track was dropped
        rep = lib.scan([str(root)])
        assert rep.analysed == len(families)
        assert len(lib.index.ann()) == len(families)
        (track,) = lib.resolve(sorted(families)[0])
        assert len(lib.similar(track.id, 3)) == 3
    with Library(db) as lib:
        assert lib.model_row.name == "builtin-v2" and lib.replaced_default is None

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from musicsim.errors import MusicsimError
from musicsim.organize import TrackMeta
from musicsim.organize.order import cosine_distance_matrix, path_length
from musicsim.organize.playlists import (
    make_playlist,
    read_m3u,
    read_xspf,
    write_m3u8,
    write_xspf,
)

from . import make_families, unit


def _fam(lib):
    return dict(zip(lib.ids.tolist(), lib.family.tolist(), strict=True))


def _with_copies(lib, seed: int):
    """Add a near-duplicate vector of the seed and a same-path copy of the seed."""
    row = int(np.flatnonzero(lib.ids == seed)[0])
    rng = np.random.default_rng(5)
    twin = unit(lib.X[row] + 0.001 * rng.normal(size=lib.X.shape[1]))
    far = unit(rng.normal(size=lib.X.shape[1]))  # same path, different sound
    X = np.vstack([lib.X, twin, far])
    ids = np.concatenate([lib.ids, [1, 2]])
    meta = dict(lib.meta)
    meta[1] = TrackMeta(id=1, path="/elsewhere/twin.flac", artist="Twin")
    meta[2] = dataclasses.replace(lib.meta[seed], id=2)
    return X, ids, meta


def test_playlist_stays_in_family_and_skips_seed():
    lib = make_families()
    seed = int(lib.ids[lib.family == 2][0])
    result = make_playlist(lib.X, lib.ids, lib.meta, [seed], n=30)
    assert len(result) == 30 and len(set(result)) == 30
    assert seed not in result
    assert all(_fam(lib)[t] == 2 for t in result)


def test_playlist_drops_near_duplicates_and_same_path():
    lib = make_families()
    seed = int(lib.ids[lib.family == 1][0])
    X, ids, meta = _with_copies(lib, seed)
    # With dup_threshold at 0 the twin would be the very first pick.
    assert make_playlist(X, ids, meta, [seed], n=5, dup_threshold=0.0)[0] == 1
    result = make_playlist(X, ids, meta, [seed], n=40)
    assert 1 not in result and 2 not in result
    rows = [int(np.flatnonzero(ids == t)[0]) for t in result]
    sims = X[rows] @ X[rows].T
    np.fill_diagonal(sims, 0)
    assert (1 - sims).min() >= 0.02
    seed_row = int(np.flatnonzero(ids == seed)[0])
    assert (1 - X[rows] @ X[seed_row]).min() >= 0.02


def test_playlist_artist_window():
    lib = make_families()
    seed = int(lib.ids[lib.family == 4][0])
    window = 3
    result = make_playlist(lib.X, lib.ids, lib.meta, [seed], n=25, no_same_artist=window)
    artists = [lib.meta[t].artist.casefold() for t in result]
    for i, artist in enumerate(artists):
        assert artist not in artists[max(0, i - window) : i], (i, artists)
    # Without the constraint the same list would repeat artists within 3 places.
    plain = [lib.meta[t].artist for t in make_playlist(lib.X, lib.ids, lib.meta, [seed], n=25)]
    assert any(a in plain[max(0, i - window) : i] for i, a in enumerate(plain))


def test_artist_compare_ignores_case_and_unknown_never_clashes():
    lib = make_families()
    fam = lib.ids[lib.family == 0]
    seed = int(fam[0])
    meta = dict(lib.meta)
    for j, t in enumerate(fam[1:].tolist()):
        name = None if j % 2 else ("SAME" if j % 4 == 0 else "same")
        meta[t] = dataclasses.replace(meta[t], artist=name)
    result = make_playlist(lib.X, lib.ids, meta, [seed], n=20, no_same_artist=1)
    artists = [meta[t].artist for t in result]
    named = [i for i, a in enumerate(artists) if a is not None]
    assert all(i + 1 not in named for i in named)  # "same"/"SAME" never adjacent
    assert sum(a is None for a in artists) >= 9  # unknowns fill the gaps freely


def test_playlist_no_same_album():
    lib = make_families()
    seed = int(lib.ids[lib.family == 3][0])
    result = make_playlist(lib.X, lib.ids, lib.meta, [seed], n=30, no_same_album=True)
    albums = [lib.meta[t].album for t in result]
    assert len(albums) == len(set(albums))
    assert lib.meta[seed].album not in albums
    # Family 3 has 4 artists x 2 albums, one used by the seed: at most 7 fit in-family.
    assert len(result) <= 7 + sum(_fam(lib)[t] != 3 for t in result)


def test_exclude_and_short_result():
    lib = make_families()
    seed = int(lib.ids[lib.family == 0][0])
    first = make_playlist(lib.X, lib.ids, lib.meta, [seed], n=10)
    again = make_playlist(lib.X, lib.ids, lib.meta, [seed], n=10, exclude=first[:5])
    assert not set(first[:5]) & set(again)
    assert again[:5] == first[5:]
    # One artist per family is everything there is to choose from: not enough for 100.
    meta = {t: dataclasses.replace(m, artist="Only One") for t, m in lib.meta.items()}
    few = make_playlist(lib.X, lib.ids, meta, [seed], n=100, no_same_artist=1)
    assert len(few) == 1


def test_smooth_playlist_keeps_start_and_tracks():
    lib = make_families()
    seed = int(lib.ids[lib.family == 2][0])
    plain = make_playlist(lib.X, lib.ids, lib.meta, [seed], n=30)
    smooth = make_playlist(lib.X, lib.ids, lib.meta, [seed], n=30, smooth=True)
    assert smooth[0] == plain[0] and set(smooth) == set(plain)
    rows = lambda ts: [int(np.flatnonzero(lib.ids == t)[0]) for t in ts]  # noqa: E731
    D = cosine_distance_matrix(lib.X[rows(plain)])
    assert path_length(D, np.array([plain.index(t) for t in smooth])) <= path_length(D, np.arange(30))


def test_playlist_bad_arguments():
    lib = make_families()
    with pytest.raises(MusicsimError):
        make_playlist(lib.X, lib.ids, lib.meta, [42], n=5)
    with pytest.raises(MusicsimError):
        make_playlist(lib.X, lib.ids, lib.meta, [int(lib.ids[0])], n=-1)


# ------------------------------------------------------------------ playlist files

NAMES = ["Björk – Jóga.flac", "with space.mp3", "#hash start.ogg", "100% pure.mp3", "日本語の歌.opus"]


def _entries(folder: Path) -> list[TrackMeta]:
    sub = folder / "music" / "sub dir #1 50%"
    return [
        TrackMeta(
            id=i,
            path=str(sub / name),
            title=f"Title {i}, with comma",
            artist="Ärtist" if i else None,
            album="Albüm",
            duration=183.4 if i != 2 else None,
        )
        for i, name in enumerate(NAMES)
    ]


def test_m3u8_round_trip_absolute(tmp_path):
    entries = _entries(tmp_path)
    target = tmp_path / "lists" / "mix.m3u8"
    target.parent.mkdir()
    write_m3u8(target, entries, name="My mix")
    text = target.read_text(encoding="utf-8")
    assert text.startswith("#EXTM3U\n#PLAYLIST:My mix\n")
    assert "#EXTINF:183,Ärtist - Title 1, with comma\n" in text
    assert "#EXTINF:-1,Ärtist - Title 2, with comma\n" in text
    assert "#EXTINF:183,Title 0, with comma\n" in text
    assert read_m3u(target) == [Path(e.path) for e in entries]
    assert not [p for p in os.listdir(target.parent) if p.endswith(".tmp")]


def test_m3u8_round_trip_relative(tmp_path):
    entries = _entries(tmp_path) + [TrackMeta(id=9, path=str(tmp_path / "#top 100%.mp3"))]
    target = tmp_path / "mix.m3u8"
    write_m3u8(target, entries, relative_to=tmp_path)
    locations = [ln for ln in target.read_text(encoding="utf-8").splitlines() if not ln.startswith("#EXT")]
    assert all(not os.path.isabs(loc) for loc in locations)
    assert all(not loc.startswith("#") for loc in locations)
    assert read_m3u(target) == [Path(e.path) for e in entries]
    # Moving the playlist together with the music keeps it valid.
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    tmp_path.rename(moved)
    assert read_m3u(moved / "mix.m3u8") == [moved / Path(e.path).relative_to(tmp_path) for e in entries]


def test_m3u_read_latin1_comments_and_uris(tmp_path):
    (tmp_path / "pl").mkdir()
    body = (
        "#EXTM3U\r\n# a comment\r\n\r\nCaf\xe9 song.mp3\r\n../up.mp3\r\n"
        "file:///srv/m%C3%BAsica/a%20b%23c.flac\r\nhttp://radio.example/stream\r\n"
    )
    target = tmp_path / "pl" / "old.m3u"
    target.write_bytes(body.encode("latin-1"))
    assert read_m3u(target) == [
        tmp_path / "pl" / "Café song.mp3",
        tmp_path / "up.mp3",
        Path("/srv/música/a b#c.flac"),
    ]
    bad = tmp_path / "bad.m3u8"
    bad.write_bytes(body.encode("latin-1"))
    with pytest.raises(MusicsimError):
        read_m3u(bad)


def test_xspf_round_trip(tmp_path):
    entries = _entries(tmp_path)
    target = tmp_path / "mix.xspf"
    write_xspf(target, entries, name="Mix & <more>")
    data = target.read_text(encoding="utf-8")
    assert 'xmlns="http://xspf.org/ns/0/"' in data and 'version="1"' in data
    assert "%23hash%20start.ogg" in data and "100%25%20pure.mp3" in data
    assert "<duration>183400</duration>" in data and "<creator>Ärtist</creator>" in data
    assert "<title>Mix &amp; &lt;more&gt;</title>" in data
    assert read_xspf(target) == [Path(e.path) for e in entries]


def test_xspf_refuses_dtd_and_entities(tmp_path):
    evil = tmp_path / "evil.xspf"
    evil.write_text(
        '<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]>'
        '<playlist version="1" xmlns="http://xspf.org/ns/0/"><trackList/></playlist>'
    )
    with pytest.raises(MusicsimError):
        read_xspf(evil)
    evil16 = tmp_path / "evil16.xspf"
    evil16.write_bytes('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x><playlist/>'.encode("utf-16"))
    with pytest.raises(MusicsimError):
        read_xspf(evil16)
    broken = tmp_path / "broken.xspf"
    broken.write_text("<playlist><trackList>")
    with pytest.raises(MusicsimError):
        read_xspf(broken)


def test_unreadable_and_unwritable_playlists(tmp_path):
    with pytest.raises(MusicsimError):
        read_m3u(tmp_path / "missing.m3u8")
    with pytest.raises(MusicsimError):
        read_xspf(tmp_path / "missing.xspf")
    with pytest.raises(MusicsimError):
        write_m3u8(tmp_path / "no such folder" / "x.m3u8", [])


def test_xspf_relative_location(tmp_path):
    target = tmp_path / "rel.xspf"
    target.write_text(
        '<playlist version="1" xmlns="http://xspf.org/ns/0/"><trackList>'
        "<track><location>music/a%20b.mp3</location></track></trackList></playlist>"
    )
    assert read_xspf(target) == [tmp_path / "music" / "a b.mp3"]

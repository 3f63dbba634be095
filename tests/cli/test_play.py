"""``musicsim play``: a real MPD (null output, loopback port, temporary music folder) and a recording xdg-open."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from musicsim.cli import main
from musicsim.library import Library, players
from tests.fixtures.generate import synth, write_audio
from tests.fixtures.mpd import running_mpd

ARTISTS = ("Ann", "Ann", "Bob", "Bob", "Cat", "Cat")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """Six tiny tagged tracks under a music folder (two per artist) and one outside it, scanned."""
    base = tmp_path_factory.mktemp("play")
    music = base / "music"
    for i, artist in enumerate(ARTISTS):
        family = ("sine", "chord", "noise")[i // 2]
        write_audio(music / f"{artist}_{i}.wav", synth(family, seconds=0.4, variant=i), tags={"artist": artist})
    write_audio(base / "outside" / "far.wav", synth("clicks", seconds=0.4), tags={"artist": "Far"})
    db = base / "lib.db"
    os.environ["MUSICSIM_HOME"] = str(base / "home")
    try:
        with Library(db) as lib:
            lib.scan([str(music), str(base / "outside")])
            ids = sorted(t.id for t in lib.tracks())
            pid = lib.organizer.save_playlist("all", ids)
    finally:
        del os.environ["MUSICSIM_HOME"]
    return base, music, db, pid


@pytest.fixture
def mpd_server(scanned, tmp_path):
    _, music, _, _ = scanned
    with running_mpd(music, tmp_path) as address:
        yield address


def test_play_a_playlist_in_mpd_reports_tracks_outside_its_music_dir(scanned, mpd_server, capsys):
    base, music, db, pid = scanned
    argv = ["--db", str(db), "--player-mpd-music-dir", str(music), "play", "--mpd", mpd_server, "--playlist", str(pid)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "queued 6 of 7" in out and "far.wav" in err and "not under MPD's music directory" in err
    client = players.connect(mpd_server)
    try:
        files = [s["file"] for s in client.playlistinfo()]
        assert sorted(files) == sorted(f"{a}_{i}.wav" for i, a in enumerate(ARTISTS))
        assert client.status()["state"] == "play"  # the null output plays
    finally:
        client.disconnect()


def test_sound_alike_radio_tops_the_queue_up_by_the_rules(scanned, mpd_server):
    _, music, db, _ = scanned
    with Library(db, writable=False) as lib:
        first = next(t for t in lib.tracks() if t.path.endswith("Ann_0.wav"))
        client = players.connect(mpd_server)
        try:
            players.queue(client, [first.path], str(music), replace=True)
            radio = players.Radio(lib, client, str(music), ahead=3, no_same_artist=1)
            added = radio.step()
            assert len(added) == 3 and first.id not in added and len(set(added)) == 3
            queued = [s["file"] for s in client.playlistinfo()]
            artists = [f.split("_")[0] for f in queued]
            assert all(a != b for a, b in zip(artists, artists[1:]))  # no artist twice in a row (k=1)
            assert "far.wav" not in " ".join(queued)  # outside MPD's music directory: never queued
            assert radio.step() == []  # the queue is long enough
        finally:
            client.disconnect()


def test_open_in_player_hands_an_m3u8_to_the_desktop(scanned, tmp_path, monkeypatch, capsys):
    _, music, db, pid = scanned
    bin_dir, record = tmp_path / "bin", tmp_path / "opened.txt"
    bin_dir.mkdir()
    fake = bin_dir / "xdg-open"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert main(["--db", str(db), "play", "--playlist", str(pid)]) == 0
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    m3u8 = Path(record.read_text().strip())
    assert m3u8.suffix == ".m3u8" and m3u8.name == "all.m3u8"
    listed = [line for line in m3u8.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    assert len(listed) == 7 and all(Path(p).exists() for p in listed)
    assert "opened 7 track(s)" in capsys.readouterr().out


def test_play_usage_errors(scanned, capsys):
    _, _, db, _ = scanned
    assert main(["--db", str(db), "play"]) == 2
    assert main(["--db", str(db), "play", "--radio", "x"]) == 2
    assert "--mpd" in capsys.readouterr().err
    assert main(["--db", str(db), "play", "--mpd", "127.0.0.1:1", "Ann"]) == 1  # nothing listens there


def test_paths_map_to_mpd_uris():
    assert players.to_uri("/m/a/b.flac", "/m") == "a/b.flac"
    assert players.to_uri("/other/b.flac", "/m") is None
    assert players.to_uri("/m", "/m") is None

"""Play in MPD and Open in player from the window: a real MPD on a loopback port, a recording xdg-open."""

from __future__ import annotations

import os
import time
from pathlib import Path

from musicsim.library import players
from tests.fixtures.mpd import running_mpd
from tests.gui.conftest import wait_idle


def test_play_the_selection_in_mpd(qtbot, window_on_scanned, tmp_path):
    win, root, families = window_on_scanned
    with running_mpd(root, tmp_path) as address:
        win.settings.update({"player_mpd_address": address, "player_mpd_music_dir": str(root)})
        win.apply_settings()
        ids = win.model.cols.ids[:3].tolist()
        win.selection.select_tracks(ids)
        qtbot.wait(300)  # the selection's own status message comes first
        assert win.ui.act_play_mpd.isEnabled()
        win.ui.act_play_mpd.trigger()
        wait_idle(qtbot, win)
        assert "Queued 3 of 3 track(s) in MPD" in win.statusBar().currentMessage()
        client = players.connect(address)
        try:
            queued = sorted(str(root / s["file"]) for s in client.playlistinfo())
        finally:
            client.disconnect()
        assert queued == sorted(win.model.track(i)["path"] for i in ids)


def test_open_a_playlist_in_the_desktop_player(qtbot, window_on_scanned, tmp_path, monkeypatch):
    win, _root, _families = window_on_scanned
    bin_dir, record = tmp_path / "bin", tmp_path / "opened.txt"
    bin_dir.mkdir()
    fake = bin_dir / "xdg-open"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ids = win.model.cols.ids[:2].tolist()
    pid = win.session.lib.organizer.save_playlist("Evening", ids)
    win.players.open_in_player(playlist=pid)
    wait_idle(qtbot, win)
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    m3u8 = Path(record.read_text().strip())
    assert m3u8.name == "Evening.m3u8"
    assert len([x for x in m3u8.read_text(encoding="utf-8").splitlines() if x and not x.startswith("#")]) == 2
    assert "Opened 2 track(s)" in win.statusBar().currentMessage()

    win.selection.select_tracks(ids[:1])  # the Track menu's action opens the selection
    record.unlink()
    win.ui.act_open_player.trigger()
    wait_idle(qtbot, win)
    deadline = time.monotonic() + 10
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.read_text().strip().endswith(".m3u8")


def test_the_sound_alike_radio_keeps_mpds_queue_topped_up(qtbot, window_on_scanned, tmp_path):
    win, root, _families = window_on_scanned
    with running_mpd(root, tmp_path) as address:
        win.settings.update({"player_mpd_address": address, "player_mpd_music_dir": str(root)})
        win.apply_settings()
        win.selection.select_tracks(win.model.cols.ids[:1].tolist())
        win.ui.act_play_mpd.trigger()
        wait_idle(qtbot, win)
        client = players.connect(address)
        try:
            assert len(client.playlistinfo()) == 1
            win.ui.act_mpd_radio.setChecked(True)
            qtbot.waitUntil(lambda: len(client.playlistinfo()) >= 4, timeout=30_000)
            files = [s["file"] for s in client.playlistinfo()]
            assert len(files) == len(set(files))  # no repeats
            win.ui.act_mpd_radio.setChecked(False)
            wait_idle(qtbot, win)
            assert win.players.radio is None
        finally:
            client.disconnect()

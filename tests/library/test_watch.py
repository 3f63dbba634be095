"""Watching the library folders with a real inotify observer (watchdog) over real files."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from musicsim.library import Library
from musicsim.library import watch as watchmod
from musicsim.library.watch import Batch, FolderWatch, WatchReport, apply
from tests.fixtures.generate import synth, write_audio

SETTLE = 0.3


def tiny(path: Path, family: str = "sine", variant: int = 0, **tags) -> Path:
    return write_audio(path, synth(family, seconds=0.4, variant=variant), tags=tags or None)


class Pump:
    """Drives a FolderWatch and applies its batches until a condition holds (bounded)."""

    def __init__(self, lib: Library, fw: FolderWatch) -> None:
        self.lib, self.fw = lib, fw
        self.reports: list[tuple[Batch, WatchReport]] = []

    def until(self, cond, timeout: float = 30.0) -> list[WatchReport]:
        start, n = time.monotonic(), len(self.reports)
        while time.monotonic() - start < timeout:
            batch = self.fw.due()
            if batch:
                self.reports.append((batch, apply(self.lib, batch)))
            if cond():
                return [r for _, r in self.reports[n:]]
            time.sleep(0.05)
        raise AssertionError(f"not reached in {timeout} s; reports {self.reports[n:]}")


def track(lib: Library, path: Path):
    found = [t for t in lib.tracks(status=None) if t.path == str(path)]
    return found[0] if found else None


def status_of(lib: Library, path: Path) -> str | None:
    t = track(lib, path)
    return t.status if t else None


@pytest.fixture
def watched(tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    lib = Library(tmp_path / "lib.db")
    lib.scan([str(root)])  # the folder becomes a library folder
    fw = FolderWatch([str(root)], settle=SETTLE, health_seconds=0.2)
    fw.start()
    yield root, lib, Pump(lib, fw)
    fw.stop()
    lib.close()


def test_add_modify_move_within_out_back_and_delete(watched, tmp_path):
    root, lib, pump = watched
    assert pump.fw.mode == {str(root): "events"}
    a = tiny(root / "a.wav", title="A", artist="X")
    pump.until(lambda: status_of(lib, a) == "ok")
    tid = track(lib, a).id
    assert [h.track.id for h in lib.similar(tid)] == []  # searchable, alone in the library
    pid = lib.organizer.save_playlist("mine", [tid])

    size_before = a.stat().st_size
    write_audio(a, synth("noise", seconds=0.6), tags={"title": "A", "artist": "X"})  # modified in place
    reps = pump.until(lambda: track(lib, a).size != size_before)
    assert sum(r.analysed for r in reps) == 1 and track(lib, a).id == tid

    b = root / "sub" / "b.wav"
    b.parent.mkdir()
    os.rename(a, b)  # moved within the library: same track, not analysed again
    reps = pump.until(lambda: status_of(lib, b) == "ok")
    assert track(lib, b).id == tid and sum(r.analysed for r in reps) == 0 and sum(r.moved for r in reps) == 1
    assert [t.id for t in lib.organizer.playlist_tracks(pid)] == [tid]

    outside = tmp_path / "elsewhere" / "b.wav"
    outside.parent.mkdir()
    shutil.move(b, outside)  # moved out: missing, kept
    pump.until(lambda: status_of(lib, b) == "missing")

    c = root / "c.wav"
    shutil.move(outside, c)  # back under another name: recognised by size, duration and tags
    reps = pump.until(lambda: status_of(lib, c) == "ok")
    assert track(lib, c).id == tid and sum(r.analysed for r in reps) == 0
    assert [t.id for t in lib.organizer.playlist_tracks(pid)] == [tid]

    c.unlink()  # deleted: missing, never purged by the watcher
    pump.until(lambda: status_of(lib, c) == "missing")
    assert lib.status()["missing"] == 1


def test_a_file_being_copied_is_handed_on_once_it_stops_changing(tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    fw = FolderWatch([str(root)], settle=SETTLE)
    fw.start()
    try:
        target = root / "slow.wav"
        with open(target, "wb") as f:
            for _ in range(8):  # 1.2 s of writing, a pause shorter than settle between writes
                f.write(b"\0" * 4096)
                f.flush()
                time.sleep(0.15)
                assert not fw.due().changed
        deadline = time.monotonic() + 10
        got: set[str] = set()
        while not got and time.monotonic() < deadline:
            got = fw.due().changed
            time.sleep(0.05)
        assert got == {str(target)}
    finally:
        fw.stop()


def test_burst_of_500_files_is_analysed_in_few_scans(watched, tmp_path):
    root, lib, pump = watched
    src = tiny(tmp_path / "one.wav")
    dest = root / "burst"
    dest.mkdir()
    for i in range(500):
        shutil.copy(src, dest / f"t{i:03d}.wav")
    reps = pump.until(lambda: lib.status()["tracks"] == 500, timeout=120)
    assert sum(r.analysed for r in reps) == 500 and len(reps) <= 3
    assert lib.status()["indexed"] == 500


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def test_unmounted_drive_is_missing_not_purged_and_comes_back_without_analysis(watched, tmp_path):
    root, lib, pump = watched
    disk, drive = tmp_path / "disk", root / "drive"
    drive.mkdir()
    files = [tiny(disk / f"d{i}.wav", variant=i) for i in range(2)]
    if not _mount("--bind", str(disk), str(drive)):
        pytest.skip("cannot bind-mount here (needs root or CAP_SYS_ADMIN)")
    try:
        on_drive = [drive / f.name for f in files]
        pump.until(lambda: all(status_of(lib, p) == "ok" for p in on_drive))
        ids = [track(lib, p).id for p in on_drive]
        subprocess.run(["umount", str(drive)], check=True)
        pump.until(lambda: all(status_of(lib, p) == "missing" for p in on_drive))
        assert _mount("--bind", str(disk), str(drive))
        reps = pump.until(lambda: all(status_of(lib, p) == "ok" for p in on_drive))
        assert [track(lib, p).id for p in on_drive] == ids and sum(r.analysed for r in reps) == 0
        # New files on the drive come in, whether the remount's own folder event got there
        # before the folder check re-armed the watch on the mounted drive or after it.
        new = tiny(disk / "new.wav", variant=5)
        pump.until(lambda: status_of(lib, drive / new.name) == "ok")
        assert sum(r.analysed for _, r in pump.reports) == 3
        settled = time.monotonic() + 3 * pump.fw.health_seconds  # the folder check has run since
        pump.until(lambda: time.monotonic() > settled)
        later = tiny(drive / "later.wav", variant=6)  # the re-armed watch sees it by its events
        deadline = time.monotonic() + 10
        while pump.fw.pending() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pump.fw.pending() >= 1 and pump.fw.mode == {str(root): "events"}
        pump.until(lambda: status_of(lib, later) == "ok")
    finally:
        subprocess.run(["umount", str(drive)], capture_output=True)


def test_a_root_that_disappears_is_missing_and_rescanned_when_back(tmp_path):
    root = tmp_path / "music"
    a = tiny(root / "a.wav")
    with Library(tmp_path / "lib.db") as lib:
        lib.scan([str(root)])
        fw = FolderWatch([str(root)], settle=SETTLE, health_seconds=0.1)
        fw.start()
        pump = Pump(lib, fw)
        try:
            parked = tmp_path / "parked"
            os.rename(root, parked)  # the whole folder goes (as an unmounted drive's mount point would)
            pump.until(lambda: status_of(lib, a) == "missing")
            assert fw.mode[str(root)] == "unavailable"
            os.rename(parked, root)
            reps = pump.until(lambda: status_of(lib, a) == "ok")
            assert sum(r.analysed for r in reps) == 0 and fw.mode[str(root)] == "events"
        finally:
            fw.stop()


def test_folders_without_events_are_polled(tmp_path, monkeypatch):
    monkeypatch.setattr(watchmod, "fs_type", lambda path, table=None: "nfs")
    root = tmp_path / "music"
    root.mkdir()
    fw = FolderWatch([str(root)], settle=SETTLE, poll_seconds=0.5, health_seconds=0.1)
    fw.start()
    try:
        assert fw.mode == {str(root): "poll"} and "no change events" in fw.notices[0]
        (root / "a.wav").write_bytes(b"RIFF")
        time.sleep(0.6)
        assert fw.pending() == 0  # no events: the folder is re-scanned whole, incrementally (apply scans it)
        assert fw.due().rescan == {str(root)}
    finally:
        fw.stop()


def test_the_inotify_watch_limit_is_told_with_the_fix(tmp_path):
    from watchdog.observers import Observer

    class Full(Observer):  # what watchdog raises when inotify_add_watch fails with ENOSPC
        def schedule(self, *a, **k):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")

    root = tmp_path / "music"
    root.mkdir()
    fw = FolderWatch([str(root)], observer_factory=Full)
    fw.start()
    try:
        assert fw.mode == {str(root): "poll"}
        assert "max_user_watches" in fw.notices[0] and "sysctl" in fw.notices[0]
        assert "checked periodically" in fw.describe()
    finally:
        fw.stop()


def test_too_many_folders_for_the_limit_polls_before_trying(tmp_path, monkeypatch):
    root = tmp_path / "music"
    for i in range(5):
        (root / f"d{i}").mkdir(parents=True)
    monkeypatch.setattr(watchmod, "watch_limit", lambda: 3)
    fw = FolderWatch([str(root)])
    fw.start()
    try:
        assert fw.mode[str(root)] == "poll" and "limit (3)" in fw.notices[0]
    finally:
        fw.stop()


def test_events_settle_into_moves_changes_and_removals(tmp_path):
    fw = FolderWatch([str(tmp_path)], settle=0.0)
    a, b, c = (str(tmp_path / n) for n in ("a.wav", "b.wav", "c.wav"))
    fw.event("modified", a)  # a known track rewritten, then renamed before the batch: a move and a change
    fw.event("moved", a, b)
    fw.event("moved", b, c)  # renamed again: one move from where it was
    fw.event("created", str(tmp_path / ".part"))  # not music: ignored
    fw.event("moved", str(tmp_path / "x.part"), str(tmp_path / "x.flac"))  # a download renamed into place
    fw.event("moved", str(tmp_path / "d.ogg"), str(tmp_path / "d.ogg.bak"))  # renamed out of music: gone
    batch = fw.due(time.monotonic() + 1)
    assert batch.moved == {a: c}
    assert batch.changed == {c, str(tmp_path / "x.flac")}
    assert batch.removed == {str(tmp_path / "d.ogg")}
    assert not fw.due(time.monotonic() + 2)

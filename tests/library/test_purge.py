"""Purge forgets tracks whose files are gone, never those of a folder that is not there now."""

import shutil

from musicsim.library import Library
from tests.fixtures.generate import synth, write_audio


def _library(root, names):
    for name in names:
        write_audio(root / f"{name}.wav", synth("chord", seconds=4.0, variant=ord(name[0])))


def test_purge_keeps_tracks_of_an_unmounted_folder(tmp_path):
    here, drive = tmp_path / "here", tmp_path / "drive"
    _library(here, ["a", "b"])
    _library(drive, ["c", "d", "e"])
    with Library(tmp_path / "lib.db") as lib:
        rep = lib.scan([str(here), str(drive)])
        assert rep.analysed == 5
        (here / "a.wav").unlink()  # deleted by the person
        moved = tmp_path / "unplugged"
        shutil.move(str(drive), moved)  # the drive is unplugged: its mount point is empty
        drive.mkdir()
        rep = lib.scan([str(here), str(drive)])
        assert rep.missing == 4
        assert lib.unreachable_roots() == [str(drive)]
        assert lib.purge() == 1  # only the deleted file
        left = {t.path for t in lib.tracks(status="missing")}
        assert left == {str(drive / f"{n}.wav") for n in "cde"}
        drive.rmdir()
        shutil.move(str(moved), drive)  # plugged in again: the same tracks, not re-analysed
        rep = lib.scan([str(here), str(drive)])
        assert rep.analysed == 0 and lib.status()["missing"] == 0
        assert lib.unreachable_roots() == []
        assert len(lib.tracks()) == 4


def test_purge_forgets_tracks_of_a_folder_that_is_there(tmp_path):
    root = tmp_path / "music"
    _library(root, ["a", "b", "c"])
    with Library(tmp_path / "lib.db") as lib:
        lib.scan([str(root)])
        for n in "ab":
            (root / f"{n}.wav").unlink()
        lib.scan([str(root)])
        assert lib.purge() == 2
        assert len(lib.tracks()) == 1

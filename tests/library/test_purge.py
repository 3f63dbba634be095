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
        done = lib.purge()
        assert done.count == 1 and done.kept_roots == [str(drive)]  # only the deleted file
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
        assert lib.purge().count == 2
        assert len(lib.tracks()) == 1


def test_purge_keeps_only_what_is_under_the_unreachable_folder(tmp_path):
    """A folder named like the unplugged one (music2 beside music) is not under it."""
    gone, beside = tmp_path / "music", tmp_path / "music2"
    _library(gone, ["a"])
    _library(beside, ["b", "c"])
    with Library(tmp_path / "lib.db") as lib:
        lib.scan([str(gone), str(beside)])
        shutil.rmtree(gone)
        (beside / "b.wav").unlink()
        lib.scan([str(gone), str(beside)])
        done = lib.purge()
        assert done.count == 1 and done.kept_roots == [str(gone)]
        assert {t.path for t in lib.tracks(status=None)} == {str(gone / "a.wav"), str(beside / "c.wav")}

"""Paths that reach a file in odd ways (issue 28): a path longer than the system's limit is not
a missing file, and a symlink or hard link to an analysed file finds its track."""

from __future__ import annotations

import os

from musicsim.library import Library
from musicsim.scan.walker import exists


def _deep(base, depth: int = 20) -> str:
    """A folder more than 4096 bytes deep (made one level at a time: no call sees the whole path)."""
    name = "d" * 250
    fd = os.open(base, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        with open(os.open("notes.mp3", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as fh:
            fh.write("not audio, a shopping list\n")
    finally:
        os.close(fd)
    return os.path.join(str(base), *[name] * depth)


def test_exists_follows_a_path_longer_than_the_limit(tmp_path):
    deep = _deep(tmp_path)
    assert len(deep.encode()) > 4096
    assert exists(os.path.join(deep, "notes.mp3")) and exists(deep)
    assert not exists(os.path.join(deep, "gone.mp3"))
    assert not exists(os.path.join(deep, "x" * 300))
    assert not exists(str(tmp_path / "absent" / "song.mp3"))


def test_purge_keeps_the_failure_of_a_folder_too_deep_to_read(tmp_path, small_config):
    music = tmp_path / "music"
    music.mkdir()
    deep = _deep(music)
    (music / "gone.mp3").write_text("text, not audio\n")
    with Library(tmp_path / "lib.db", config=small_config) as lib:
        lib.scan([str(music)])
        (music / "gone.mp3").unlink()
        before = {f.path for f in lib.failures()}
        assert str(music / "gone.mp3") in before and any(p.startswith(deep[:200]) for p in before), before
        lib.purge()
        after = {f.path for f in lib.failures()}
    assert after == before - {str(music / "gone.mp3")}


def test_similar_finds_a_track_through_a_symlink_and_a_hard_link(small_library, tmp_path):
    music, db = small_library
    target = sorted(p for p in music.rglob("*.flac"))[0]
    links = tmp_path / "links"
    links.mkdir()
    (links / "soft.flac").symlink_to(target)
    os.link(target, links / "hard.flac")
    with Library(db, writable=False) as lib:
        for link in ("soft.flac", "hard.flac"):
            found = lib.resolve(str(links / link))
            assert [t.path for t in found] == [str(target)], link
            assert lib.similar(found[0].id, n=3)

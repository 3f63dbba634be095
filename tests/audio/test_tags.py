"""Tag reading from real files, including malformed and hostile tags."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import mutagen
import pytest

from musicsim.audio.tags import read_tags
from tests.fixtures.generate import make_bad_files, make_library, synth, write_audio, write_midi

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
KEYS = {"title", "artist", "album", "albumartist", "genre", "year", "tracknumber", "duration", "extra"}
FULL = {
    "title": "Song",
    "artist": "Someone",
    "album": "Record",
    "albumartist": "Various",
    "genre": "Jazz",
    "year": "2004-05-01",
    "tracknumber": "3/12",
}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict[Path, str]:
    return make_library(tmp_path_factory.mktemp("lib"), per_family=2, seconds=1.0)


def _short(tmp_path: Path, name: str, tags: dict | None = None) -> Path:
    return write_audio(tmp_path / name, synth("sine", seconds=1.0), tags=tags)


@pytest.mark.parametrize(
    "ext", [".flac", ".ogg", ".wav", pytest.param(".mp3", marks=needs_ffmpeg), pytest.param(".m4a", marks=needs_ffmpeg)]
)
def test_reads_standard_tags(tmp_path, ext):
    tags = read_tags(_short(tmp_path, f"t{ext}", FULL))
    assert set(tags) == KEYS
    assert (tags["title"], tags["artist"], tags["album"], tags["genre"]) == ("Song", "Someone", "Record", "Jazz")
    assert tags["albumartist"] == "Various"
    assert tags["year"] == 2004 and tags["tracknumber"] == 3
    assert abs(tags["duration"] - 1.0) < 0.1
    assert tags["extra"]["sample_rate"] == 22050


def test_library_tags(library):
    for path, family in library.items():
        tags = read_tags(path)
        assert tags["artist"] == f"Artist {family}" and tags["genre"] == family
        assert tags["title"].startswith(family + " ")


def test_untagged_file_falls_back_to_file_name(tmp_path):
    tags = read_tags(_short(tmp_path, "Étude ♪ no tags.flac"))
    assert tags["title"] == "Étude ♪ no tags"
    assert tags["artist"] is None and tags["year"] is None and tags["tracknumber"] is None
    assert tags["duration"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "year,track,want_year,want_track",
    [
        ("2004", "03", 2004, 3),
        ("05/01/1999", "7 of 9", 1999, 7),
        ("c. 1968?", "A1", 1968, None),
        ("unknown", "0", None, None),
        ("20040501", "12/", 2004, 12),
    ],
)
def test_year_and_track_parsing(tmp_path, year, track, want_year, want_track):
    tags = read_tags(_short(tmp_path, "y.flac", {"date": year, "tracknumber": track}))
    assert (tags["year"], tags["tracknumber"]) == (want_year, want_track)


def test_strings_are_cleaned_and_capped(tmp_path):
    path = _short(tmp_path, "long.flac")
    f = mutagen.File(path)
    f["title"] = "  " + "x" * 5000 + "  "
    f["artist"] = ["A\x00B ", "  ", "C"]
    f["comment"] = "hello"
    f.save()
    tags = read_tags(path)
    assert tags["title"] == "x" * 1000
    assert tags["artist"] == "AB; C" and tags["extra"]["comment"] == "hello"


def test_midi_tags(tmp_path):
    named = read_tags(write_midi(tmp_path / "named.mid", title="Fugue", program=6))
    assert named["title"] == "Fugue" and set(named) == KEYS
    assert named["extra"]["tempo"] == pytest.approx(120.0)
    assert named["extra"]["instruments"] == ["Part 0"]
    assert 5.0 < named["duration"] < 6.5
    assert read_tags(write_midi(tmp_path / "Nameless Tune.mid"))["title"] == "Nameless Tune"


@pytest.mark.parametrize(
    "name", ["Track 1", "track 12", "Untitled", "Sequence 1", "Tempo Track", "MIDI Track #3", "  "]
)
def test_a_sequencers_default_track_name_is_not_a_title(tmp_path, name):
    assert read_tags(write_midi(tmp_path / "midnight_snow_run.mid", title=name))["title"] == "midnight_snow_run"


@pytest.mark.parametrize("name", ["Track 1 (Remix)", "Untitled Blues", "Boogi Marabi", "Staff Party"])
def test_a_real_name_that_starts_like_a_default_is_kept(tmp_path, name):
    assert read_tags(write_midi(tmp_path / "f.mid", title=name))["title"] == name


def _id3_header(size: int) -> bytes:
    syncsafe = bytes((size >> s) & 0x7F for s in (21, 14, 7, 0))
    return b"ID3\x03\x00\x00" + syncsafe


@needs_ffmpeg
@pytest.mark.parametrize("kind", ["huge", "bad-frame", "garbage"])
def test_malformed_id3_does_not_raise(tmp_path, kind):
    audio = _short(tmp_path, "src.mp3").read_bytes()
    if kind == "huge":  # claims ~256 MB of tag in a tiny file
        data = _id3_header(0x0FFFFFFF) + b"TIT2\x7f\xff\xff\xff\x00\x00\x03" + b"x" * 100 + audio
    elif kind == "bad-frame":  # invalid text encoding byte and a frame overrunning the tag
        frame = b"TIT2\x00\x00\x00\x40\x00\x00\x09\xff\xfe\xd8\x00abc"
        data = _id3_header(len(frame) + 10) + frame + b"\x00" * 10 + audio
    else:
        data = _id3_header(400) + bytes(range(256)) * 2 + audio
    path = tmp_path / f"{kind}.mp3"
    path.write_bytes(data)
    tags = read_tags(path)
    assert set(tags) == KEYS and tags["title"] == kind
    assert tags["duration"] is None or abs(tags["duration"] - 1.0) < 0.15


def test_bad_files_do_not_raise(tmp_path):
    for path, kind in make_bad_files(tmp_path).items():
        tags = read_tags(path)
        assert set(tags) == KEYS and tags["title"] == path.stem, kind
    assert read_tags(tmp_path / "missing.flac")["title"] == "missing"


def test_tag_reading_never_modifies_files(library, tmp_path):
    paths = list(library) + [write_midi(tmp_path / "m.mid")]
    before = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths}
    for path in paths:
        read_tags(path)
    assert before == {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in paths}

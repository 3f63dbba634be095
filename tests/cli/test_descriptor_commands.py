"""Descriptors, levels and explanations through ``musicsim``, on generated pieces whose tempo, key
and timbre were planted (tests/fixtures/musical.py)."""

from __future__ import annotations

import json

import pytest

from musicsim.cli import main
from musicsim.library import Library
from tests.fixtures.generate import write_audio
from tests.fixtures.musical import piece

# name: (tempo, key, mode, timbre)
PIECES = {
    "flute-120-C": (120.0, "C", "major", "flute"),
    "pluck-120-Fm": (120.0, "F#", "minor", "pluck"),
    "pluck-90-C": (90.0, "C", "major", "pluck"),
    "flute-150-Ebm": (150.0, "Eb", "minor", "flute"),
    "pluck-100-Bb": (100.0, "Bb", "major", "pluck"),
    "organ-135-E": (135.0, "E", "minor", "organ"),
    "flute-84-G": (84.0, "G", "major", "flute"),
    "organ-160-D": (160.0, "D", "major", "organ"),
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    for i, (name, (tempo, key, mode, timbre)) in enumerate(PIECES.items()):
        y = piece(tempo=tempo, key=key, mode=mode, timbre=timbre, seconds=10, seed=i)
        write_audio(root / "music" / f"{name}.wav", y, tags={"title": name})
    db = root / "lib.db"
    with Library(db) as lib:
        lib.scan([str(root / "music")])
    return db


def _run(capsys, db, *args) -> dict:
    assert main(["--db", str(db), *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_show_prints_the_planted_tempo_and_key(planted, capsys):
    got = _run(capsys, planted, "show", "flute-120-C")
    d = got["descriptors"]
    assert abs(d["tempo"] - 120) / 120 < 0.04 and (d["key"], d["mode"]) == ("C", "major")
    assert d["loudness"] < -10 and 0 <= d["percussive"] <= 1
    assert main(["--db", str(planted), "show", "pluck-90-C"]) == 0
    text = capsys.readouterr().out
    assert "BPM" in text and "LUFS" in text and "key: C major (8B" in text


def _why(capsys, db, seed: str, other: str) -> str:
    got = _run(capsys, db, "similar", seed, "-n", str(len(PIECES) - 1), "--explain")
    row = next(r for r in got["results"] if other in r["path"])
    return " ".join(row["why"]["shared"])


def test_explanations_name_the_planted_property(planted, capsys):
    assert "same tempo" in _why(capsys, planted, "flute-120-C", "pluck-120-Fm")
    assert "same key" in _why(capsys, planted, "flute-120-C", "pluck-90-C")
    assert "similar timbre" in _why(capsys, planted, "flute-120-C", "flute-150-Ebm")
    other = _why(capsys, planted, "flute-120-C", "pluck-120-Fm")
    assert "similar timbre" not in other and "same key" not in other
    assert "same tempo" not in _why(capsys, planted, "flute-120-C", "flute-150-Ebm")


def test_clusters_levels_switch_and_keep_ids(planted, capsys):
    first = _run(capsys, planted, "clusters")
    assert first["levels"][0] == 2 and first["level"] == first["default"]
    top = first["levels"][-1]
    fine = _run(capsys, planted, "clusters", "--level", str(top))
    assert fine["k"] == top and len(fine["clusters"]) == top
    coarse = _run(capsys, planted, "clusters", "--level", "2")
    assert coarse["k"] == 2 and {c["id"] for c in coarse["clusters"]} == {0, 1}
    assert all(c["name"] for c in fine["clusters"])

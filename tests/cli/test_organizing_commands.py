"""The organising commands through ``musicsim`` on a scanned generated library with one duplicate
(moved from tests/library/test_organizer.py, whose tests drive the same work through the facade)."""

import json
import shutil
from pathlib import Path

import pytest

from musicsim.cli import main
from musicsim.library import Library


@pytest.fixture(scope="module")
def scanned(family_library_master, tmp_path_factory):
    master, families = family_library_master
    root = tmp_path_factory.mktemp("org") / "music"
    shutil.copytree(master, root)
    dup_src = next(root / Path(p).relative_to(master) for p, f in families.items() if f == "chord")
    dup = root / "copies" / ("copy of " + dup_src.name)
    dup.parent.mkdir()
    shutil.copy(dup_src, dup)
    db = root.parent / "org.db"
    with Library(db) as lib:
        lib.scan([str(root)])
    return db


def test_cli_organise_commands(scanned, tmp_path, capsys):
    d = ["--db", str(scanned)]
    out = tmp_path / "p.m3u8"
    assert main(d + ["playlist", "--seed", "sine 0", "-n", "3", "--smooth", "--json", "--out", str(out)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got["tracks"]) == 3 and out.read_text(encoding="utf-8").startswith("#EXTM3U")
    assert main(d + ["sort", str(out), "--out", str(tmp_path / "s.xspf"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tracks"]) == 3
    assert main(d + ["clusters", "-k", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["k"] == 4
    assert main(d + ["outliers", "-n", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert main(d + ["duplicates", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert main(d + ["path", "sine 0", "clicks 0", "-n", "4", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tracks"]) == 4
    assert main(d + ["clusters"]) == 0
    assert "clusters" in capsys.readouterr().out

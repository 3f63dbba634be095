"""Fixtures built once per session: the hostile corpus and a small scanned library."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.robustness.helpers import restore_permissions

# FIFOs, SIGALRM, select() on pipes, chmod and mounts: POSIX only.
collect_ignore_glob = ["test_*.py"] if sys.platform == "win32" else []

# Files with these names are scanned into the small library; each must be found exactly.
ODD_NAMES = (
    'it\'s "quoted".wav',
    "x'); DROP TABLE tracks;--.wav",
    "100% _under_ [x] *?.wav",
    "new\nline 🎵.wav",
    "-dash ümlaut.wav",
)


def odd_family(name: str) -> str:
    """The timbre family the small library's file ``odd/name`` is made of (they cycle through all four)."""
    from tests.fixtures.generate import FAMILIES

    return FAMILIES[ODD_NAMES.index(name) % len(FAMILIES)]


@pytest.fixture(scope="session")
def hostile_corpus(tmp_path_factory):
    from tests.robustness.corpus import make_corpus

    base = tmp_path_factory.mktemp("hostile")
    corpus = make_corpus(base / "music")
    yield corpus
    restore_permissions(base)


def _small_config():
    from musicsim.config import Config

    return Config.load({"workers": 2, "analysis_windows": 2})


@pytest.fixture(scope="session")
def small_library_master(tmp_path_factory):
    """Eight tracks of four families plus odd names, scanned once: (music, db)."""
    from musicsim.library import Library
    from tests.fixtures.generate import make_library, synth, write_audio

    base = tmp_path_factory.mktemp("small")
    music = base / "music"
    make_library(music, per_family=2, seconds=2.0, formats=(".wav", ".flac", ".mp3", ".ogg"))
    for i, name in enumerate(ODD_NAMES):
        write_audio(music / "odd" / name, synth(odd_family(name), seconds=1.5, variant=5 + i))
    db = base / "db" / "lib.db"
    with Library(db, config=_small_config()) as lib:
        rep = lib.scan([str(music)])
    assert rep.failed == 0 and rep.analysed == 8 + len(ODD_NAMES), rep.failures
    return music, db


def copy_library(db: Path, dest: Path) -> Path:
    """Copy a closed library (database, WAL if any, index and models folders) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in db.parent.iterdir():
        if p.name.startswith(db.stem):
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, dest / p.name)
    return dest / db.name


@pytest.fixture
def small_library(small_library_master, tmp_path):
    """A private copy of the scanned database over the shared (never modified) music."""
    music, db = small_library_master
    return music, copy_library(db, tmp_path / "db")


@pytest.fixture
def small_config():
    return _small_config()


@pytest.fixture(scope="session")
def realworld(tmp_path_factory):
    """The real-world corpus of tests/robustness/realworld.py, built once: (root, cases)."""
    from tests.robustness.realworld import make_realworld, missing_tools

    missing = missing_tools()
    if missing:
        pytest.skip(f"the corpus needs {', '.join(missing)} (packaging/setup.sh installs them)")
    root = tmp_path_factory.mktemp("realworld") / "music"
    return root, make_realworld(root)

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """No test touches the user's real data dir."""
    monkeypatch.setenv("MUSICSIM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MUSICSIM_WORKERS", "2")


@pytest.fixture(scope="session")
def family_library_master(tmp_path_factory):
    """A generated library with four timbre families, plus one MIDI file (made once)."""
    from tests.fixtures.generate import make_library, write_midi

    root = tmp_path_factory.mktemp("master") / "music"
    families = make_library(root, per_family=3, seconds=6.0)
    families[write_midi(root / "midi" / "piano.mid", program=0, seconds=6.0)] = "midi"
    return root, {str(p): fam for p, fam in families.items()}


@pytest.fixture
def family_library(family_library_master, tmp_path):
    """A private copy a test may change."""
    master, families = family_library_master
    root = tmp_path / "music"
    shutil.copytree(master, root)
    return root, {str(root / Path(p).relative_to(master)): fam for p, fam in families.items()}


@pytest.fixture
def schema_v2_migration(monkeypatch):
    """A function that makes this musicsim have one schema version more (NEXT = the real
    SCHEMA_VERSION + 1), whose migration adds a column to tracks (call it after creating the
    database at the real version); it returns the list the migration appends NEXT to when it runs."""
    from musicsim.store import db as dbmod

    def install() -> list[int]:
        calls = []

        nxt = dbmod.SCHEMA_VERSION + 1

        def v2(_conn, engine):
            calls.append(nxt)
            with engine.begin() as c:
                c.exec_driver_sql("ALTER TABLE tracks ADD COLUMN rating INTEGER")

        monkeypatch.setattr(dbmod, "SCHEMA_VERSION", nxt)
        monkeypatch.setitem(dbmod.MIGRATIONS, nxt, v2)
        return calls

    return install

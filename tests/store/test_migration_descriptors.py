"""Schema 2 adds the descriptors table to a version-1 library, after a backup."""

from __future__ import annotations

import sqlite3

from sqlalchemy import select

from musicsim.store import repo
from musicsim.store.db import SCHEMA_VERSION, Database
from musicsim.store.schema import Track


def test_version_1_library_gains_descriptors_after_a_backup(tmp_path):
    p = tmp_path / "old.db"
    with Database(p) as d, d.session() as s:
        s.add(Track(path="/m/a.ogg", size=1, mtime=1.0, format="ogg", extra={}))
    con = sqlite3.connect(p)  # make it what musicsim 1 wrote: no descriptors table, version 1
    con.execute("DROP TABLE descriptors")
    con.execute("ALTER TABLE track_maps DROP COLUMN levels")
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    with Database(p) as d:
        assert d.backup_path.name == "old.db.v1.bak"
        with d.session() as s:
            tid = s.scalars(select(Track.id)).one()
            assert repo.descriptors(s) == {}
            repo.save_descriptors(s, tid, {"tempo": 120.0, "key": "A", "mode": "minor", "other": 1})
        with d.session() as s:
            got = repo.descriptors(s, [tid])[tid]
    assert got["tempo"] == 120.0 and got["key"] == "A" and got["loudness"] is None
    con = sqlite3.connect(p)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert "levels" in [r[1] for r in con.execute("PRAGMA table_info(track_maps)")]
    con.close()
    bak = sqlite3.connect(tmp_path / "old.db.v1.bak")
    assert bak.execute("SELECT count(*) FROM tracks").fetchone()[0] == 1
    assert "descriptors" not in {r[0] for r in bak.execute("SELECT name FROM sqlite_master")}
    bak.close()

import hashlib
import sqlite3

import numpy as np
import pytest
from sqlalchemy import text

from musicsim.errors import LibraryBusy, SchemaTooNew
from musicsim.store import repo
from musicsim.store.db import SCHEMA_VERSION, Database


def _sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_new_database_is_wal_with_version(tmp_path):
    with Database(tmp_path / "a.db") as d:
        with d.engine.connect() as c:
            assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert c.execute(text("PRAGMA user_version")).scalar() == SCHEMA_VERSION
        assert d.integrity_ok()


def test_newer_schema_is_refused_untouched(tmp_path):
    p = tmp_path / "future.db"
    con = sqlite3.connect(p)
    con.execute("create table x(a)")
    con.execute(f"pragma user_version={SCHEMA_VERSION + 5}")
    con.commit()
    con.close()
    before = _sha(p)
    with pytest.raises(SchemaTooNew, match="newer") as e:
        Database(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)
    assert _sha(p) == before
    assert not (tmp_path / "future.db-wal").exists()


def test_migration_backs_up_first(tmp_path, schema_v2_migration):
    p = tmp_path / "old.db"
    with Database(p) as d, d.session() as s:
        s.add(repo.Meta(key="hello", value="world"))
    calls = schema_v2_migration()
    with Database(p) as d:
        assert calls == [SCHEMA_VERSION + 1]
        with d.engine.connect() as c:
            assert c.execute(text("PRAGMA user_version")).scalar() == SCHEMA_VERSION + 1
            cols = [r[1] for r in c.execute(text("PRAGMA table_info(tracks)"))]
        assert "rating" in cols
        bak = d.backup_path
    con = sqlite3.connect(bak)
    assert con.execute("pragma user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("select value from meta where key='hello'").fetchone()[0] == "world"
    con.close()


def test_single_writer(tmp_path):
    p = tmp_path / "lock.db"
    first = Database(p)
    try:
        with pytest.raises(LibraryBusy):
            Database(p)
        reader = Database(p, writable=False)  # readers work beside the writer (WAL)
        with reader.session() as s:
            assert repo.counts(s)["failures"] == 0
        reader.close()
    finally:
        first.close()
    Database(p).close()  # free again once the writer closed


def test_paths_with_quotes_are_stored_and_found_exactly(tmp_path):
    odd = '/music/it\'s "odd" %_ [x]; DROP TABLE tracks;--.mp3'
    with Database(tmp_path / "q.db") as d:
        with d.session() as s:
            t = repo.upsert_track(s, path=odd, size=1, mtime=1.0, fmt="mp3", tags={"title": "Robert'); DROP"})
            repo.upsert_track(s, path="/music/other.mp3", size=1, mtime=1.0, fmt="mp3", tags={"title": "x"})
            tid = t.id
        with d.session() as s:
            assert [x.id for x in repo.find_tracks(s, odd)] == [tid]
            assert [x.id for x in repo.find_tracks(s, "%_")] == [tid]  # LIKE wildcards are literal
            assert [x.id for x in repo.find_tracks(s, "Robert');")] == [tid]
            assert repo.counts(s)["ok"] == 2


def test_embedding_seq_grows(tmp_path):
    with Database(tmp_path / "e.db") as d, d.session() as s:
        m = repo.register_model(s, name="m", checksum="c", path=None, frontend={}, config={}, trained=False)
        t = repo.upsert_track(s, path="/a.mp3", size=1, mtime=1.0, fmt="mp3", tags={})
        v = np.ones(4, np.float32) / 2
        a = repo.save_embedding(s, t.id, m.id, v, np.stack([v, v]), np.array([0.0, 3.0]))
        b = repo.save_embedding(s, t.id, m.id, v, np.stack([v]), np.array([0.0]))
        assert b > a
        ids, X, seqs, live = repo.vectors(s, m.id)
        assert ids.tolist() == [t.id] and seqs.tolist() == [b] and live.all()

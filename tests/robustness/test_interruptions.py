"""SIGKILL while the HNSW index is being saved: the next open must work and match the database.

(SIGKILL during a scan is tests/scan/test_e2e.py::test_sigkill_mid_scan_then_resume.)
"""

from __future__ import annotations

import random
import select
import subprocess
import sys
import time

import numpy as np
import pytest
from sqlalchemy import select as sql_select

from musicsim import paths
from musicsim.library import Library
from musicsim.store.schema import Embedding, Meta, Track
from tests.robustness.helpers import (
    assert_db_healthy,
    assert_index_matches,
    child_env,
    live_track_ids,
    saved_index_ids,
)

N_TRACKS = 5000

# Saves the index of a real library over and over: every save is a full write of the file.
SAVER = """
import sys
import numpy as np
from musicsim.library import Library

def main():
    lib = Library(sys.argv[1])
    idx = lib.index.ann()
    ids, X = lib.embeddings()
    print("ready", flush=True)
    while True:
        lib.index.add(ids[:1], X[:1], idx.seq)  # same vector again: marks the index dirty
        lib.index.save()

if __name__ == "__main__":
    main()
"""


def _big_library(db) -> None:
    """A library with N_TRACKS tracks and embeddings (vectors made up, rows real)."""
    rng = np.random.default_rng(0)
    with Library(db) as lib:
        mid = lib.model_row.id
        dim = lib.loaded.config.track_dim
        X = rng.standard_normal((N_TRACKS, dim)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        with lib.db.session() as s:
            s.add_all(
                Track(path=f"/music/a{i:05d}.mp3", size=1000 + i, mtime=1.0, format="mp3", extra={}, status="ok")
                for i in range(N_TRACKS)
            )
        with lib.db.session() as s:
            ids = list(s.scalars(sql_select(Track.id).order_by(Track.id)))
            s.add_all(
                Embedding(
                    track_id=tid,
                    model_id=mid,
                    dim=dim,
                    vector=X[k].tobytes(),
                    n_segments=1,
                    segments=X[k].astype(np.float16).tobytes(),
                    segment_starts=b"\0\0\0\0",
                    seq=k + 1,
                )
                for k, tid in enumerate(ids)
            )
            s.merge(Meta(key="embedding_seq", value=str(N_TRACKS)))


def _start_saver(db) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        if not ready or proc.stdout.readline().strip() != "ready":
            raise RuntimeError("saver did not start")
    except BaseException:
        proc.kill()
        proc.wait()
        pytest.fail(f"saver did not start: {proc.stderr.read()[-2000:]}")
    return proc


def test_sigkill_during_index_save(tmp_path):
    db = tmp_path / "big.db"
    _big_library(db)
    index_dir = paths.index_dir(db)
    rng = random.Random(1)
    caught_mid_save = 0
    for round_ in range(2):
        proc = _start_saver(db)
        try:
            deadline = time.monotonic() + (rng.uniform(0.05, 0.6) if round_ else 20)
            while time.monotonic() < deadline:  # round 0: the moment a temporary index file exists
                if round_ == 0 and any(index_dir.glob("*.tmp")):
                    break
                time.sleep(0.0005)
        finally:
            proc.kill()
            proc.wait()
        caught_mid_save += any(index_dir.glob("*.tmp"))
        assert_db_healthy(db)
        saved = saved_index_ids(db)  # a complete index, or one that load() refuses: never garbage
        assert saved is None or saved <= live_track_ids(db)
    assert caught_mid_save >= 1, "never killed while a save was in progress"
    # The next open repairs or reuses the index; it matches the database exactly.
    with Library(db) as lib:
        assert lib.db.integrity_ok()
        assert lib.index.ann().live_ids() == live_track_ids(db)
        assert len(lib.similar(1, n=5)) == 5
    health = assert_db_healthy(db)
    assert health["tracks"] == health["embeddings"] == N_TRACKS
    assert_index_matches(db)


def test_temporary_files_of_a_killed_save_are_cleaned_up(small_library):
    _, db = small_library
    index_dir = paths.index_dir(db)
    with Library(db, writable=False) as lib:
        model = lib.model_row.name
    stale = [index_dir / f"{model}.hnsw.k1ll3d.tmp", index_dir / f"{model}.json.k1ll3d.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 4096)  # what a SIGKILL between mkstemp and os.replace leaves
    with Library(db) as lib:
        ids, X = lib.embeddings()
        lib.index.add(ids[:1], X[:1], lib.index.ann().seq)
        lib.index.save()
        assert lib.index.ann().live_ids() == live_track_ids(db)
    assert_index_matches(db)
    left = [p.name for p in stale if p.exists()]
    assert not left, f"temporary files of a killed save were not cleaned up: {left}"

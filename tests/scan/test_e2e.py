"""End to end on a real SQLite file and real decoding of generated music."""

import hashlib
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from musicsim.library import Library
from tests.fixtures.generate import make_bad_files, synth, write_audio


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_scan_rescan_change_delete_purge(family_library, tmp_path):
    root, families = family_library
    bad = make_bad_files(root / "bad")
    before = _hashes(root)
    db = tmp_path / "lib.db"
    with Library(db) as lib:
        rep = lib.scan([str(root)])
        assert rep.found == len(families) + len(bad)
        failed = {p for p, _ in rep.failures}
        for p, kind in bad.items():
            if kind in ("empty", "text", "png"):
                assert str(p) in failed
        for p in families:
            assert p not in failed
        reasons = {f.path: f.reason for f in lib.failures()}
        assert "empty" in reasons[str(bad_path(bad, "empty"))]
        assert all("\n" not in r for r in reasons.values())

        again = lib.scan([str(root)])
        assert again.analysed == 0 and again.failed == 0

        changed = next(p for p, f in families.items() if f == "noise")
        time.sleep(0.01)
        write_audio(Path(changed), synth("noise", seconds=5.0, variant=7))
        third = lib.scan([str(root)])
        assert third.analysed == 1

        gone = next(p for p, f in families.items() if f == "clicks")
        os.unlink(gone)
        fourth = lib.scan([str(root)])
        assert fourth.missing == 1 and fourth.analysed == 0
        status = lib.status()
        assert status["missing"] == 1 and status["indexed"] == status["tracks"]
        gone_id = next(t.id for t in lib.tracks(status="missing"))
        assert gone_id not in lib.index.ann().live_ids()
        assert lib.purge().count == 1
        assert lib.status()["missing"] == 0
    after = _hashes(root)
    del before[gone], before[changed]
    assert {p: h for p, h in after.items() if p in before} == before  # nothing else touched


def bad_path(bad: dict, kind: str) -> Path:
    return next(p for p, k in bad.items() if k == kind)


def test_similar_ranks_same_family_first(family_library, tmp_path):
    root, families = family_library
    with Library(tmp_path / "lib.db") as lib:
        lib.scan([str(root)])
        tracks = {t.path: t for t in lib.tracks()}
        precisions = []
        for path, fam in families.items():
            if fam == "midi":
                continue
            hits = lib.similar(tracks[path].id, n=2)
            precisions.append(np.mean([families[h.track.path] == fam for h in hits]))
    print("family precision@2:", np.mean(precisions))
    assert np.mean(precisions) >= 0.75


def test_sigkill_mid_scan_then_resume(tmp_path):
    import subprocess
    import sys

    root = tmp_path / "music"
    for i in range(16):
        write_audio(root / f"t{i:02d}.wav", synth(("sine", "noise", "chord", "clicks")[i % 4], seconds=20.0, variant=i))
    db = tmp_path / "kill.db"
    env = {**os.environ, "MUSICSIM_WORKERS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicsim", "--db", str(db), "scan", str(root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    committed = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            committed = con.execute("select count(*) from embeddings").fetchone()[0]
            con.close()
        except sqlite3.Error:
            continue
        if committed >= 3:
            break
    assert proc.poll() is None, "scan finished before it could be killed"
    proc.kill()
    proc.wait()
    assert 3 <= committed < 16
    with Library(db) as lib:
        assert lib.db.integrity_ok()
        rep = lib.scan([str(root)])
        assert rep.analysed <= 16 - committed + 2  # only unfinished (and in-flight) tracks redone
        assert rep.failed == 0
        assert lib.status()["tracks"] == 16
        ids = {t.id for t in lib.tracks()}
        assert lib.index.ann().live_ids() == ids
    con = sqlite3.connect(db)
    assert con.execute("select count(*), count(distinct path) from tracks").fetchone() == (16, 16)
    assert con.execute("select count(*) from embeddings").fetchone()[0] == 16
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    con.close()

import subprocess
import sys

import numpy as np

from musicsim.config import Config
from musicsim.jobs import CancelToken
from musicsim.library import Library
from musicsim.store.schema import Embedding


def test_progress_reports_and_cancel_keeps_finished_work(family_library, tmp_path):
    root, families = family_library
    seen, cancel = [], CancelToken()

    def progress(p):
        seen.append(p)
        if p.stage == "scan" and p.done == 3:
            cancel.cancel()

    with Library(tmp_path / "c.db") as lib:
        rep = lib.scan([str(root)], progress=progress, cancel=cancel)
        assert rep.cancelled
        scans = [p for p in seen if p.stage == "scan"]
        assert scans[0].total == len(families)
        assert [p.done for p in scans] == list(range(1, len(scans) + 1))
        assert all(p.current for p in scans)
        assert any(p.eta_s is not None for p in scans)
        kept = lib.status()["tracks"]
        assert 3 <= kept < len(families)
        assert lib.index.ann().live_ids() == {t.id for t in lib.tracks()}
        rest = lib.scan([str(root)])  # resumes: only what was not finished
        assert rest.analysed == len(families) - kept
        assert not rest.cancelled


def test_windowed_analysis_uses_fewer_segments(family_library, tmp_path):
    root, _ = family_library
    cfg = Config.load({"analysis_windows": 1, "window_seconds": 3.0})
    with Library(tmp_path / "w.db", config=cfg) as lib:
        lib.scan([str(root)])
        with lib.db.session() as s:
            counts = [e.n_segments for e in s.query(Embedding)]
    assert counts and max(counts) == 1  # one 3 s window -> one segment per track
    with Library(tmp_path / "full.db") as lib:
        lib.scan([str(root)])
        with lib.db.session() as s:
            full = [e.n_segments for e in s.query(Embedding)]
    assert np.mean(full) > 1.5


def test_core_imports_neither_qt_nor_torch():
    code = (
        "import sys, musicsim, musicsim.config, musicsim.errors, musicsim.jobs, musicsim.paths; "
        "bad = [m for m in ('torch', 'PySide6') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import sys, musicsim.library; assert 'PySide6' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

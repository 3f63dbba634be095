"""scan, similar, export, status and failures through ``musicsim``, on real files (moved from tests/scan/test_e2e.py)."""

import numpy as np
import pytest

from musicsim.cli import main
from musicsim.library import Library
from tests.fixtures.generate import make_bad_files


def test_cli_scan_similar_export_and_exit_codes(family_library, tmp_path, capsys):
    root, families = family_library
    db = str(tmp_path / "cli.db")
    assert main(["--db", db, "scan", str(root)]) == 0
    make_bad_files(root / "bad")
    assert main(["--db", db, "scan", str(root)]) == 1  # some files failed
    capsys.readouterr()
    assert main(["--db", db, "similar", "sine 0", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("similar to") and len(out.strip().splitlines()) == 4
    assert main(["--db", db, "similar", "no such track anywhere"]) == 2
    out_npz = tmp_path / "emb.npz"
    assert main(["--db", db, "export", "--out", str(out_npz)]) == 0
    data = np.load(out_npz)
    with Library(db, writable=False) as lib:
        analysed = sorted(t.path for t in lib.tracks())
        dim = (
            lib.loaded.config.track_dim
        )  # 128-d segments; 256 values mean+std pooled, 512 multi-level, 640 3-level, 1,152 multi-band
    assert set(families) <= set(analysed)
    assert sorted(data["paths"].tolist()) == analysed
    assert data["embeddings"].shape == (len(analysed), dim) and dim in (128, 256, 512, 640, 1152)
    assert str(data["model"]).startswith(("untrained", "default", "musicsim"))
    assert main(["--db", db, "export", "--out", str(tmp_path / "emb.csv")]) == 0
    assert len((tmp_path / "emb.csv").read_text(encoding="utf-8").splitlines()) == len(analysed) + 1
    with pytest.raises(SystemExit) as e:
        main(["--db", db, "bogus-command"])
    assert e.value.code == 2
    assert main(["--db", db, "status"]) == 0
    assert main(["--db", db, "failures"]) == 0
    assert "empty" in capsys.readouterr().out

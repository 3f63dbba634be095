"""Architecture rules that must not erode."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_qt_is_imported_only_in_gui():
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "TID251", "--no-cache", "musicsim", "trainer"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_gui_never_touches_sql_or_torch_directly():
    bad = []
    for path in (REPO / "musicsim" / "gui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] in ("sqlalchemy", "torch", "sqlite3", "hnswlib") or n.startswith("musicsim.store")
            ]
    assert not bad, bad

"""``musicsim`` as a program: the console script and ``python -m musicsim``."""

import os
import subprocess
import sys
from pathlib import Path

from musicsim import cli

REPO = Path(__file__).resolve().parents[2]


def test_console_script_and_module_run_the_same_main():
    assert 'musicsim = "musicsim.cli:main"' in (REPO / "pyproject.toml").read_text()
    run = subprocess.run([sys.executable, "-m", "musicsim", "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: musicsim ")
    assert all(f"    {c.name} " in run.stdout for c in cli.SUBCOMMANDS)


def test_musicsim_without_a_display_says_so_instead_of_crashing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    run = subprocess.run(
        [sys.executable, "-m", "musicsim", "--db", str(tmp_path / "x.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert "no display" in run.stderr and len(run.stderr.strip().splitlines()) == 1

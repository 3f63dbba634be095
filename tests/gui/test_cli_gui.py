"""``musicsim gui`` opens the app (``musicsim`` without a display: tests/cli/test_entry.py)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.gui


def test_musicsim_gui_subcommand_opens_the_app(tmp_path):
    # The app closes itself once its library is open (MUSICSIM_GUI_QUIT_AFTER_MS is read by app.run).
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MUSICSIM_GUI_QUIT_AFTER_MS": "1500"}
    run = subprocess.run(
        [sys.executable, "-m", "musicsim", "--db", str(tmp_path / "x.db"), "gui"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "x.db").exists()

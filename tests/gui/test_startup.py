"""Start-up: an existing library opens on its table without torch or scikit-learn, and never
on the first-run screen; what scans and training need loads in the background afterwards.
(Timings: tests/benchmarks/bench_gui_latency.py --startup.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QObject

from tests.gui.conftest import wait_idle

REPO = Path(__file__).resolve().parents[2]

# The app as `musicsim` starts it (musicsim.gui.app.run), in a fresh interpreter; at the first
# paint of the table with rows it notes which heavy modules are loaded, then closes the window.
CHILD = r"""
import json, sys
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
import musicsim.gui
from musicsim.gui import app as gui_app

qapp = QApplication.instance() or QApplication([sys.argv[0]])
seen = {"welcome_painted": False, "table": None}

class Watch(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint:
            name = type(obj).__name__
            if name == "WelcomePage":
                seen["welcome_painted"] = True
            for win in QApplication.topLevelWidgets():
                if type(win).__name__ != "MainWindow" or seen["table"] is not None:
                    continue
                if obj is win.ui.library_page.table.viewport() and win.model.rowCount() > 0:
                    seen["table"] = {m: m in sys.modules for m in ("torch", "sklearn", "scipy")}
                    seen["rows"] = win.model.rowCount()
                    QTimer.singleShot(0, win.close)
        return False

watch = Watch()
qapp.installEventFilter(watch)
QTimer.singleShot(120_000, qapp.quit)
rc = gui_app.run(["--db", sys.argv[1], "--settings", sys.argv[2]])
print(json.dumps({"rc": rc, **seen}))
"""


def test_an_existing_library_shows_its_table_before_torch_or_sklearn_load(scanned_db, tmp_path):
    db, _root, families = scanned_db
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MUSICSIM_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(tmp_path / "s.ini")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["rc"] == 0 and seen["rows"] == len(families), seen
    assert seen["table"] == {"torch": False, "sklearn": False, "scipy": False}, seen
    assert not seen["welcome_painted"], "the first-run screen was painted for a library with tracks"


class PaintWatch(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.painted = 0

    def eventFilter(self, obj, ev):  # noqa: N802
        if ev.type() == QEvent.Type.Paint:
            self.painted += 1
        return False


def test_a_library_with_tracks_never_shows_the_first_run_screen(qtbot, scanned_db, tmp_path):
    from musicsim.gui.mainwindow import MainWindow
    from musicsim.gui.settings import SettingsStore

    db, _root, families = scanned_db
    win = MainWindow(db_path=db, settings=SettingsStore(tmp_path / "s.ini"), open_library=False)
    qtbot.addWidget(win)
    watch = PaintWatch()
    win.ui.welcome.installEventFilter(watch)
    pages = [win.ui.stack.currentWidget()]
    win.ui.stack.currentChanged.connect(lambda _i: pages.append(win.ui.stack.currentWidget()))
    win.show()
    assert win.ui.library_page.count_label.text() == "Opening the library…"
    win.open_library()
    qtbot.waitUntil(lambda: win.model.total == len(families), timeout=60_000)
    assert win.ui.welcome not in pages and watch.painted == 0
    assert win.ui.tracks_page_shown() and win.ui.library_page.count_label.text() == f"{len(families)} tracks"
    # then the network and the training imports load in the background
    qtbot.waitUntil(lambda: win.session.warmed, timeout=120_000)
    wait_idle(qtbot, win)


def test_a_new_library_shows_the_first_run_screen_at_once(qtbot, tmp_path):
    from musicsim.gui.mainwindow import MainWindow
    from musicsim.gui.settings import SettingsStore

    win = MainWindow(db_path=tmp_path / "new" / "library.db", settings=SettingsStore(tmp_path / "s.ini"))
    qtbot.addWidget(win)
    assert win.ui.stack.currentWidget() is win.ui.welcome  # before the library has opened
    qtbot.waitUntil(lambda: win.session.tracks_known, timeout=60_000)
    assert win.ui.stack.currentWidget() is win.ui.welcome
    wait_idle(qtbot, win)


def test_a_library_that_cannot_be_opened_says_so_on_the_first_run_screen(qtbot, tmp_path):
    from musicsim.gui.mainwindow import MainWindow
    from musicsim.gui.settings import SettingsStore

    bad = tmp_path / "bad" / "library.db"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not a database" * 100)
    win = MainWindow(db_path=bad, settings=SettingsStore(tmp_path / "s.ini"))
    qtbot.addWidget(win)
    assert win.ui.library_page.count_label.text() == "Opening the library…"
    qtbot.waitUntil(lambda: win.session.open_error is not None, timeout=60_000)
    assert win.ui.stack.currentWidget() is win.ui.welcome
    assert "Could not open the library" in win.ui.welcome.status.text()

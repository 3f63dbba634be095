"""Fixtures for the GUI tests: real SQLite libraries in tmp_path, real decoding, offscreen Qt."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

import musicsim.gui  # noqa: E402,F401 - installs the PySide6 6.12.0 refcount guard before Qt is used


@pytest.fixture(scope="session")
def scanned_master(family_library_master, tmp_path_factory):
    """The family library scanned once through the services facade: (folder with library.db, music root, families)."""
    from musicsim.library import Library

    root, families = family_library_master
    d = tmp_path_factory.mktemp("scanned")
    saved = {k: os.environ.get(k) for k in ("MUSICSIM_HOME", "MUSICSIM_WORKERS")}
    os.environ["MUSICSIM_HOME"] = str(d / "home")
    os.environ["MUSICSIM_WORKERS"] = "2"
    try:
        with Library(d / "db" / "library.db") as lib:
            rep = lib.scan([str(root)])
        assert rep.analysed == len(families), rep.failures
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return d / "db", root, families


@pytest.fixture
def scanned_db(scanned_master, tmp_path):
    """A private copy of the scanned library's database (and its index): (db path, root, families)."""
    src, root, families = scanned_master
    dst = tmp_path / "db"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.lock"))
    return dst / "library.db", root, families


@pytest.fixture
def make_window(qtbot, tmp_path):
    """Open a MainWindow on a database (default: a new empty one) and wait until it is idle."""
    from musicsim.gui.mainwindow import MainWindow
    from musicsim.gui.settings import SettingsStore

    def make(db_path: Path | None = None, *, settings: Path | None = None, **kw) -> MainWindow:
        win = MainWindow(
            db_path=db_path or tmp_path / "empty" / "library.db",
            settings=SettingsStore(settings or tmp_path / "settings.ini"),
            **kw,
        )
        qtbot.addWidget(win)
        win.resize(1200, 800)
        win.show()
        with qtbot.waitSignal(win.events.library_opened, timeout=60_000):
            pass
        wait_idle(qtbot, win)
        return win

    return make


def wait_idle(qtbot, win, timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: win.runner.idle(), timeout=timeout)
    qtbot.wait(20)  # let queued result slots run


@pytest.fixture
def window_on_scanned(make_window, scanned_db):
    db, root, families = scanned_db
    win = make_window(db)
    assert win.model.total == len(families)
    return win, root, families


def family_of(win, families: dict, track_id: int) -> str:
    return families[win.model.track(track_id)["path"]]


def rmtree(path) -> None:
    shutil.rmtree(path, ignore_errors=True)

"""Start the desktop app: ``musicsim`` (no arguments), ``python -m musicsim``, ``musicsim gui``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

log = logging.getLogger("musicsim.gui")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="musicsim gui", description="Open the musicsim desktop app.")
    p.add_argument("--db", help="library database file (default: in the user data dir; MUSICSIM_HOME overrides)")
    p.add_argument("--settings", metavar="INI", help="settings file (default: the user's musicsim settings)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="folders or files to add to the library at start")
    return p


def _install_excepthook(window_ref: list):
    """Unexpected errors go to the log and the status bar: never a dialog per error.

    Returns the previous hook (restored when the app exits)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        win = window_ref[0] if window_ref else None
        if win is not None:
            try:
                win.jobs.notify(f"Internal error: {value}", error=True)
            except Exception:  # noqa: BLE001
                pass

    sys.excepthook = hook
    return previous


def run(argv: list[str] | None = None, *, db_path=None) -> int:
    """Run the app until its window closes; return the exit code."""
    args, qt_args = build_parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if sys.platform.startswith("linux") and not any(
        os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    ):
        print(
            "musicsim: no display to open the app on (DISPLAY is not set); the command line works without "
            "one: musicsim --help",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=os.environ.get("MUSICSIM_LOG", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from musicsim.gui.icons import icon
    from musicsim.gui.mainwindow import MainWindow
    from musicsim.gui.settings import APPLICATION, ORGANISATION, SettingsStore

    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication([sys.argv[0], *qt_args])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("musicsim")
    app.setWindowIcon(icon("musicsim"))
    window_ref: list = []
    previous_hook = _install_excepthook(window_ref)
    try:
        win = MainWindow(db_path=args.db or db_path, settings=SettingsStore(args.settings))
        window_ref.append(win)
        win.show()
        if args.paths:
            paths = [os.path.abspath(p) for p in args.paths]
            win.events.library_opened.connect(lambda: QTimer.singleShot(0, lambda: win.scanning.add_paths(paths)))
        quit_ms = os.environ.get("MUSICSIM_GUI_QUIT_AFTER_MS")  # for smoke tests and automation
        if quit_ms:
            win.events.library_opened.connect(lambda: QTimer.singleShot(int(quit_ms), win.close))
        return int(app.exec())
    finally:
        sys.excepthook = previous_hook


if __name__ == "__main__":
    sys.exit(run())

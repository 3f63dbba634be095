"""The bundle's one program, ``musicsim``: the command line as installed (no arguments: the app).

For packaging/test_bundle.sh, read only here: ``musicsim --bundle-info`` prints where the
bundle's FluidSynth library and SoundFont are and exits; ``MUSICSIM_BUNDLE_SCREENSHOT=FILE``
saves a screenshot of the screen once the main window has been shown for a moment, then closes
the app; ``MUSICSIM_BUNDLE_FIRST_WINDOW=FILE`` writes the time (``time.time()``) the main window
was first visible, for the time-to-first-window figure.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time


def _watch_window() -> None:
    """Poll for the main window from the Qt event loop (started once a QApplication exists)."""
    shot = os.environ.get("MUSICSIM_BUNDLE_SCREENSHOT")
    first = os.environ.get("MUSICSIM_BUNDLE_FIRST_WINDOW")
    if not (shot or first):
        return
    from PySide6.QtCore import QTimer  # noqa: TID251 (the bundle's test switch, outside the package)
    from PySide6.QtGui import QGuiApplication  # noqa: TID251
    from PySide6.QtWidgets import QApplication, QMainWindow  # noqa: TID251

    state = {"seen": 0.0}

    def poll() -> None:
        app = QApplication.instance()
        wins = [w for w in (app.topLevelWidgets() if app else []) if isinstance(w, QMainWindow) and w.isVisible()]
        if wins and not state["seen"]:
            state["seen"] = time.time()
            if first:
                with open(first, "w") as f:
                    f.write(f"{state['seen']:.3f}\n")
        if wins and shot and time.time() - state["seen"] > float(os.environ.get("MUSICSIM_BUNDLE_SETTLE_S", "4")):
            QGuiApplication.primaryScreen().grabWindow(0).save(shot)
            wins[0].close()
            return
        QTimer.singleShot(50, poll)

    # The app makes the QApplication itself; start polling as soon as it does.
    original = QApplication.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        QTimer.singleShot(0, poll)
        QApplication.__init__ = original

    QApplication.__init__ = init


def _bundle_info() -> int:
    import fluidsynth

    from musicsim.audio.midi import find_soundfont, fluidsynth_available
    from musicsim.resources import default_model

    print(f"fluidsynth: {fluidsynth.lib} (loads: {fluidsynth_available()})")
    print(f"soundfont:  {find_soundfont(None)[1]}")
    print(f"model:      {default_model()} (exists: {default_model().is_file()})")
    return 0


if __name__ == "__main__":
    multiprocessing.freeze_support()  # the scan's worker processes start this program again
    if sys.argv[1:] == ["--bundle-info"]:
        sys.exit(_bundle_info())
    _watch_window()
    from musicsim.cli import main

    sys.exit(main())

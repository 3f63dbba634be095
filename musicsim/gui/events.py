"""The main window's signal bus: what its controllers announce, for each other, the app and tests.

A controller emits here instead of calling another controller, so each one can be built and
read without the others; :mod:`musicsim.gui.mainwindow` connects the bus to the controllers.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class WindowEvents(QObject):
    library_opened = Signal()
    tracks_loaded = Signal()  # the table's rows changed (a full reload or a scan's new batch)
    status_loaded = Signal(dict)  # Backend.status()
    scan_finished = Signal(object)  # ScanReport
    clusters_loaded = Signal()
    similarity_done = Signal()
    playlists_loaded = Signal()
    playlist_made = Signal(int)
    training_done = Signal(str)  # "finished" | "cancelled" | "failed"
    model_changed = Signal()  # another model is active: vectors, clusters and distances are stale


__all__ = ["WindowEvents"]

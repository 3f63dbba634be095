"""The open library of the window: opened in a worker, then reached only through the
:class:`~musicsim.gui.backend.Backend` (so the GUI never touches the Library's database itself).

A library another musicsim is writing to opens read-only: it can be browsed, but scans,
training and model switches are off (the window disables them and says why).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from musicsim.gui.backend import Backend
from musicsim.gui.events import WindowEvents
from musicsim.gui.jobs import Jobs
from musicsim.gui.settings import SettingsStore
from musicsim.gui.tablemodel import TrackTableModel

if TYPE_CHECKING:
    from musicsim.config import Config
    from musicsim.library import Library

log = logging.getLogger("musicsim.gui")

WARM_UP_DELAY_MS = 300  # the table paints and settles first


class LibrarySession(QObject):
    """Owns the Library, its Backend, its last status and the settings it was opened with."""

    def __init__(
        self,
        *,
        db_path,
        settings: SettingsStore,
        jobs: Jobs,
        events: WindowEvents,
        model: TrackTableModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.db_path = db_path
        self.settings = settings
        self.config: Config = settings.config()
        self.jobs = jobs
        self.events = events
        self.model = model
        self.lib: Library | None = None
        self.backend: Backend | None = None
        self.ready = False
        self.status: dict = {}
        self.roots: list[str] = []
        self.open_error: str | None = None
        self.tracks_known = False  # the first load of the table's rows is done
        self.new_library = not self._database_exists()
        self.warmed = False  # warm_up is done (or failed)

    @property
    def writable(self) -> bool:
        return self.backend is not None and self.backend.writable

    @property
    def loading(self) -> bool:
        """An existing library whose rows are not loaded yet: the window shows its table (empty,
        "opening"), never the first-run screen, which only a library without tracks gets."""
        return not (self.tracks_known or self.new_library or self.open_error)

    def _database_exists(self) -> bool:
        from musicsim import paths

        return Path(self.db_path or paths.default_db()).exists()

    def need_library(self) -> bool:
        if self.backend is None:
            self.jobs.notify("The library is still opening…")
            return False
        return True

    # --- opening and closing ------------------------------------------------------------------

    def open(self, *, on_opened: Callable[[], None], on_failed: Callable[[str], None]) -> None:
        """Open the library in the exclusive lane (read-only when another musicsim writes to it)."""
        from musicsim.errors import LibraryBusy
        from musicsim.library import Library

        db_path, config = self.db_path, self.config

        def open_lib() -> Library:
            # reads rows only (no torch): the network and the training imports load in
            # warm_up, started once the table is shown
            try:
                return Library(db_path, config=config, writable=True)
            except LibraryBusy:
                return Library(db_path, config=config, writable=False)

        def failed(err) -> None:
            self.open_error = str(err)
            self.jobs.notify(f"Could not open the library: {err}", error=True)
            log.error("opening the library failed: %s", getattr(err, "traceback", err))
            on_failed(self.open_error)

        self.jobs.run_job(
            open_lib,
            name="Opening library",
            lane="exclusive",
            on_result=lambda lib: self._opened(lib, on_opened),
            on_error=failed,
        )

    def _opened(self, lib: Library, on_opened: Callable[[], None]) -> None:
        if self.jobs.closing:
            lib.close()
            return
        self.lib = lib
        self.backend = Backend(lib)
        self.ready = True
        if not self.backend.writable:
            self.jobs.notify("Another musicsim is writing to this library: opened read-only", error=True, timeout_ms=0)
        on_opened()

    def close(self) -> None:
        if self.lib is not None:
            try:
                self.lib.close()
            except Exception as e:  # noqa: BLE001 - never block closing
                log.warning("closing the library: %s", e)
            self.lib = None
            self.backend = None

    # --- reading ----------------------------------------------------------------------------

    def refresh_status(self, on_done: Callable[[dict], None] | None = None) -> None:
        if self.backend is None:
            return

        def done(st: dict) -> None:
            self.status = st
            self.roots = list(st.get("roots") or [])
            self.events.status_loaded.emit(st)
            if on_done:
                on_done(st)

        self.jobs.run_job(self.backend.status, name="Reading library status", on_result=done)

    def reload_tracks(self) -> None:
        """Replace the table's rows with the database's (one query, in a worker)."""
        if self.backend is None:
            return

        def done(cols) -> None:
            self.model.set_tracks(cols)
            first = not self.tracks_known
            self.tracks_known = True
            self.events.tracks_loaded.emit()
            if first:  # after the table has been painted with these rows
                QTimer.singleShot(WARM_UP_DELAY_MS, self, self.warm_up)

        self.jobs.run_job(self.backend.track_columns, name="Loading tracks", on_result=done)

    def warm_up(self) -> None:
        """Load the network and import what scans, clustering and training use, in the
        background (see :meth:`Backend.warm_up`); the table never waits for it."""
        if self.backend is None or self.jobs.closing or self.warmed:
            return

        def done(_result=None) -> None:
            self.warmed = True

        def failed(err) -> None:  # a model that fails to load is reported when it is used
            log.warning("warming up: %s", err)
            done()

        self.jobs.run_job(
            self.backend.warm_up,
            name="Loading the model",
            long=True,
            on_result=done,
            on_error=failed,
            on_cancelled=done,
        )

    def apply_settings(self) -> None:
        """Read the settings again; the library uses them from its next scan, query or training."""
        self.config = self.settings.config()
        if self.backend is not None:
            self.backend.set_config(self.config)


__all__ = ["LibrarySession"]

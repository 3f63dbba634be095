"""Watching the library folders from the window (Settings › Watch library folders, on by default).

A :class:`musicsim.library.watch.FolderWatch` gathers the file events; a timer on the main
thread asks it for settled changes and runs each batch as an exclusive long job (the status
bar's progress and Cancel, like a scan). While another exclusive job runs, changes wait. The
status bar's label says how the folders are watched; what the watcher cannot do (no events on a
network share, the inotify limit) is said once in the status bar and kept in the label's tooltip.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel, QMainWindow

from musicsim.gui.events import WindowEvents
from musicsim.gui.jobs import Jobs
from musicsim.gui.session import LibrarySession
from musicsim.library.watch import Batch, FolderWatch, WatchReport, apply

log = logging.getLogger("musicsim.gui")

TICK_MS = 250


class Watching(QObject):
    """Owns the folder watch of the open library; :meth:`sync` after the roots or settings change."""

    def __init__(self, *, window: QMainWindow, jobs: Jobs, session: LibrarySession, events: WindowEvents) -> None:
        super().__init__(window)
        self.jobs, self.session, self.events = jobs, session, events
        self.fw: FolderWatch | None = None
        self.job = None
        self.notices: list[str] = []
        self.label = QLabel("")
        self.label.hide()
        window.statusBar().addPermanentWidget(self.label)
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self.tick)
        events.status_loaded.connect(lambda _st: self.sync())

    @property
    def active(self) -> bool:
        return self.fw is not None

    def _wanted(self) -> list[str]:
        s = self.session
        if s.backend is None or not s.writable or not s.config.watch_folders:
            return []
        return sorted(s.roots)

    def sync(self) -> None:
        """Watch the library's folders when the setting is on (restart when they changed)."""
        roots = self._wanted()
        if self.fw is not None and self.fw.roots == sorted(roots):
            return
        self.stop()
        if not roots:
            return
        cfg = self.session.config
        fw = FolderWatch(roots, settle=cfg.watch_settle_seconds, poll_seconds=cfg.watch_poll_minutes * 60)
        self.jobs.run_job(fw.start, name="Watching the library folders", on_result=lambda _r: self._started(fw))

    def _started(self, fw: FolderWatch) -> None:
        if self.jobs.closing or self._wanted() != fw.roots:
            fw.stop()
            return
        self.fw = fw
        self.timer.start()
        self._show()

    def stop(self) -> None:
        self.timer.stop()
        if self.fw is not None:
            self.fw.stop()
            self.fw = None
        self.label.hide()

    def tick(self) -> None:
        """Take what has settled, unless an exclusive job (a scan, training) holds the library."""
        fw = self.fw
        if fw is None:
            return
        while fw.notices:
            message = fw.notices.pop(0)
            self.notices.append(message)
            self.jobs.notify(message, error=True)
        if self.jobs.runner.exclusive_busy or self.session.backend is None:
            self._show()
            return
        batch = fw.due()
        if batch:
            self.run(batch)
        self._show()

    def run(self, batch: Batch):
        lib = self.session.lib
        n = len(batch)

        def work(progress, cancel) -> WatchReport:
            return apply(lib, batch, progress=progress, cancel=cancel)

        job = self.jobs.run_job(
            work,
            name="Updating the library",
            lane="exclusive",
            long=True,
            on_result=self._done,
            on_progress=self.jobs.on_progress,
        )
        self.jobs.show_long(job, f"Updating the library: {n} change{'s' if n != 1 else ''}…")
        self.job = job
        return job

    def _done(self, rep: WatchReport) -> None:
        self.job = None
        text = rep.summary() or "up to date"
        self.jobs.notify(f"Folders changed: {text}" + (" — see Library › Failures" if rep.failures else ""))
        self.session.reload_tracks()
        self.session.refresh_status()

    def _show(self) -> None:
        fw = self.fw
        if fw is None:
            self.label.hide()
            return
        pending = fw.pending()
        text = f"Watching: {fw.describe()}" + (f" · {pending} change(s) waiting" if pending else "")
        self.label.setText(text)
        self.label.setToolTip("\n".join(self.notices) or "Files added, changed, moved or deleted are picked up")
        self.label.show()


__all__ = ["Watching"]

"""Scans from the window: adding folders and files, rescans, the table filling in while a scan
runs, the failures dialog and forgetting missing tracks."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QWidget

from musicsim.gui.events import WindowEvents
from musicsim.gui.failures import FailuresDialog
from musicsim.gui.jobs import Jobs
from musicsim.gui.session import LibrarySession
from musicsim.gui.tablemodel import TrackTableModel
from musicsim.gui.workers import Job

log = logging.getLogger("musicsim.gui")

REFRESH_MIN_MS = 1000  # table refresh during a scan: at most once a second...
REFRESH_FACTOR = 4  # ...and never more than 1/4 of the time spent loading
MUSIC_FILTER = "Music (*.mp3 *.flac *.ogg *.oga *.opus *.wav *.aif *.aiff *.m4a *.mid *.midi *.kar);;All files (*)"


class Scanning(QObject):
    """Owns the running scan (``scan_job``) and the throttled table refresh during it.

    ``on_started`` is called once a scan is shown (the window turns to the table);
    ``compute_clusters(auto=True)`` is called after a scan that changed the library.
    """

    def __init__(
        self,
        *,
        parent: QWidget,
        jobs: Jobs,
        session: LibrarySession,
        model: TrackTableModel,
        events: WindowEvents,
        on_started: Callable[[], None],
        compute_clusters: Callable[..., object],
        auto_cluster_limit: int,
    ) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.jobs = jobs
        self.session = session
        self.model = model
        self.events = events
        self.on_started = on_started
        self.compute_clusters = compute_clusters
        self.auto_cluster_limit = auto_cluster_limit
        self.scan_job: Job | None = None
        self.failures_dialog: FailuresDialog | None = None
        self._refreshing = False
        self._refresh_ms = REFRESH_MIN_MS
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self._incremental_refresh)

    # --- starting -----------------------------------------------------------------------------

    def add_folder_dialog(self) -> None:
        roots = self.session.roots
        start = roots[-1] if roots else os.path.expanduser("~")
        path = QFileDialog.getExistingDirectory(self.parent_widget, "Add a music folder", start)
        if path:
            self.add_paths([path])

    def add_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self.parent_widget, "Add music files", os.path.expanduser("~"), MUSIC_FILTER
        )
        if paths:
            self.add_paths(paths)

    def add_paths(self, paths: list[str]) -> Job | None:
        good = [os.path.abspath(p) for p in paths if os.path.exists(p)]
        gone = [p for p in paths if not os.path.exists(p)]
        if gone:
            self.jobs.notify(f"Not found: {', '.join(gone[:3])}", error=True)
        if not good:
            return None
        return self.start_scan(good)

    def rescan(self, retry_failed: bool = False) -> Job | None:
        if not self.session.need_library():
            return None
        if not self.session.roots:
            self.jobs.notify("No library folders yet: add a folder first")
            return None
        return self.start_scan(self.session.roots, retry_failed=retry_failed)

    def start_scan(self, paths: list[str], *, retry_failed: bool = False) -> Job | None:
        if not self.session.need_library():
            return None
        backend = self.session.backend
        if not backend.writable:
            self.jobs.notify("The library is open read-only (another musicsim is writing to it)", error=True)
            return None
        if (
            self.scan_job is not None
            and not self.scan_job.is_done
            and self.jobs.runner.exclusive_job() is self.scan_job
        ):
            self.jobs.notify("A scan is running: the new folders are scanned after it")
        paths = list(paths)
        label = os.path.basename(paths[0].rstrip(os.sep)) + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")

        def work(progress, cancel):
            return backend.scan(paths, progress=progress, cancel=cancel, retry_failed=retry_failed)

        job = self.jobs.run_job(
            work,
            name=f"Scanning {label}",
            lane="exclusive",
            long=True,
            on_result=self._on_scan_done,
            on_progress=self.jobs.on_progress,
        )
        job.done.connect(lambda j=job: self._on_job_done(j))
        self.scan_job = job
        self.jobs.show_long(job, f"Scanning {label}…")
        self.on_started()
        self._refresh_ms = REFRESH_MIN_MS
        self._refresh_timer.start(self._refresh_ms)
        return job

    # --- finishing ----------------------------------------------------------------------------

    def _on_scan_done(self, rep) -> None:
        parts = [f"found {rep.found}", f"analysed {rep.analysed}", f"unchanged {rep.skipped}"]
        if rep.failed:
            parts.append(f"failed {rep.failed}")
        if rep.missing:
            parts.append(f"missing {rep.missing}")
        head = "Scan cancelled" if rep.cancelled else "Scan finished"
        self.jobs.notify(
            f"{head}: {', '.join(parts)}" + (" — see Library › Failures" if rep.failures else ""),
            error=bool(rep.failures),
            timeout_ms=15000,
        )
        total = int(self.session.status.get("tracks") or 0) + rep.analysed  # the status from before the scan
        self.session.reload_tracks()
        self.session.refresh_status()
        self.events.scan_finished.emit(rep)
        if (rep.analysed or rep.missing) and not rep.cancelled and 3 <= total <= self.auto_cluster_limit:
            self.compute_clusters(auto=True)

    def _on_job_done(self, job: Job) -> None:
        if job is self.scan_job:
            self.scan_job = None
            self._refresh_timer.stop()

    def show_failures(self) -> None:
        if not self.session.need_library():
            return

        def done(rows) -> None:
            dlg = FailuresDialog(rows, self.parent_widget)
            dlg.retry_requested.connect(lambda: self.rescan(retry_failed=True))
            self.failures_dialog = dlg
            dlg.open()

        self.jobs.run_job(self.session.backend.failures, name="Reading failures", on_result=done)

    def purge(self) -> None:
        if not self.session.need_library():
            return

        def done(result: tuple[int, int, int, list[str]]) -> None:
            n, removed, freed, away = result
            self.jobs.notify(
                f"Forgot {n} tracks whose files are gone"
                + (f"; freed {freed / 2**20:.0f} MB of cached sound of changed or missing files" if removed else "")
                + (f"; kept the tracks of {len(away)} folder(s) that are not there now (unmounted?)" if away else "")
            )
            self.session.reload_tracks()
            self.session.refresh_status()

        self.jobs.run_job(
            self.session.backend.purge, name="Forgetting missing tracks", lane="exclusive", on_result=done
        )

    # --- the table during a scan ----------------------------------------------------------------

    def _incremental_refresh(self) -> None:
        """During a scan: append the tracks analysed since the last refresh (throttled).

        The worker loads only rows with a larger id and merges them into a copy of the
        table's column store (sort caches included), so the main thread only swaps it in.
        """
        backend = self.session.backend
        if backend is None or self._refreshing or self.scan_job is None:
            return
        self._refreshing = True
        base = self.model.cols
        since = int(base.ids[-1]) if len(base) else 0
        t0 = time.monotonic()

        def work():
            new = backend.track_columns(since_id=since)
            return new, (base.extended(new) if len(new) else None)

        def done(result) -> None:
            self._refreshing = False
            new, merged = result
            added = self.model.add_tracks(new, merged=merged if self.model.cols is base else None)
            self._refresh_ms = int(max(REFRESH_MIN_MS, REFRESH_FACTOR * (time.monotonic() - t0) * 1000))
            if added:
                self.events.tracks_loaded.emit()
            self._refresh_again()

        def failed(err) -> None:
            self._refreshing = False
            log.info("incremental refresh failed: %s", err)
            self._refresh_again()

        self.jobs.run_job(work, name="Refreshing tracks", on_result=done, on_error=failed)

    def stop_refreshing(self) -> None:
        self._refresh_timer.stop()

    def _refresh_again(self) -> None:
        if self.scan_job is not None:
            self._refresh_timer.start(self._refresh_ms)


__all__ = ["REFRESH_FACTOR", "REFRESH_MIN_MS", "Scanning"]

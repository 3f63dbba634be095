"""Long jobs of the main window: scanning and training, with the status-bar progress they share
(a mixin of :class:`~musicsim.gui.mainwindow.MainWindow`)."""

from __future__ import annotations

import logging
import os
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
)

from musicsim.gui.failures import FailuresDialog
from musicsim.gui.tablemodel import COL
from musicsim.gui.training import format_eta
from musicsim.gui.workers import Job
from musicsim.jobs import Progress

log = logging.getLogger("musicsim.gui")

REFRESH_MIN_MS = 1000  # table refresh during a scan: at most once a second...
REFRESH_FACTOR = 4  # ...and never more than 1/4 of the time spent loading


class LongJobs:
    """Scans (with the table filling in as tracks are analysed), training and model switches."""

    # ======================================================================================
    # scanning
    # ======================================================================================

    def add_folder_dialog(self) -> None:
        start = self.roots[-1] if self.roots else os.path.expanduser("~")
        path = QFileDialog.getExistingDirectory(self, "Add a music folder", start)
        if path:
            self.add_paths([path])

    def add_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add music files", os.path.expanduser("~"),
            "Music (*.mp3 *.flac *.ogg *.oga *.opus *.wav *.aif *.aiff *.m4a *.mid *.midi *.kar);;All files (*)")
        if paths:
            self.add_paths(paths)

    def add_paths(self, paths: list[str]) -> Job | None:
        good = [os.path.abspath(p) for p in paths if os.path.exists(p)]
        gone = [p for p in paths if not os.path.exists(p)]
        if gone:
            self.notify(f"Not found: {', '.join(gone[:3])}", error=True)
        if not good:
            return None
        return self.start_scan(good)

    def rescan(self, retry_failed: bool = False) -> Job | None:
        if not self._need_library():
            return None
        if not self.roots:
            self.notify("No library folders yet: add a folder first")
            return None
        return self.start_scan(self.roots, retry_failed=retry_failed)

    def start_scan(self, paths: list[str], *, retry_failed: bool = False) -> Job | None:
        if not self._need_library():
            return None
        if not self.backend.writable:
            self.notify("The library is open read-only (another musicsim is writing to it)", error=True)
            return None
        if self.scan_job is not None and not self.scan_job.is_done and self.runner.exclusive_job() is self.scan_job:
            self.notify("A scan is running: the new folders are scanned after it")
        backend = self.backend
        paths = list(paths)
        label = os.path.basename(paths[0].rstrip(os.sep)) + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")

        def work(progress, cancel):
            return backend.scan(paths, progress=progress, cancel=cancel, retry_failed=retry_failed)

        job = self.run_job(work, name=f"Scanning {label}", lane="exclusive", long=True,
                           on_result=self._on_scan_done, on_progress=self._on_long_progress)
        job.done.connect(lambda j=job: self._on_long_done(j))
        self.scan_job = job
        self._begin_long(job, f"Scanning {label}…")
        self._update_page()
        if self.stack.currentWidget() is self.splitter and self.tabs.currentWidget() is not self.library_page:
            self.tabs.setCurrentWidget(self.library_page)
        self._refresh_ms = REFRESH_MIN_MS
        self._refresh_timer.start(self._refresh_ms)
        return job

    def _on_scan_done(self, rep) -> None:
        parts = [f"found {rep.found}", f"analysed {rep.analysed}", f"unchanged {rep.skipped}"]
        if rep.failed:
            parts.append(f"failed {rep.failed}")
        if rep.missing:
            parts.append(f"missing {rep.missing}")
        head = "Scan cancelled" if rep.cancelled else "Scan finished"
        self.notify(f"{head}: {', '.join(parts)}" + (" — see Library › Failures" if rep.failures else ""),
                    error=bool(rep.failures), timeout_ms=15000)
        self.reload_tracks()
        self.refresh_status()
        self.scan_finished.emit(rep)
        total = int(self.status.get("tracks") or 0) + rep.analysed
        if (rep.analysed or rep.missing) and not rep.cancelled and 3 <= total <= self.auto_cluster_limit:
            self.compute_clusters(auto=True)

    def _begin_long(self, job: Job, text: str) -> None:
        self.long_job = self.runner.exclusive_job() or job
        self.job_label.setText(text)
        self.job_bar.setRange(0, 0)
        self.job_widget.show()
        self._update_actions()

    def _on_long_progress(self, p: Progress) -> None:
        job = self.sender()
        if isinstance(job, Job):
            self.long_job = job
        if p.total:
            self.job_bar.setRange(0, p.total)
            self.job_bar.setValue(min(p.done, p.total))
            self.job_bar.setFormat(f"{p.done:,} / {p.total:,}")
        else:
            self.job_bar.setRange(0, 0)
        eta = f" · ETA {format_eta(p.eta_s)}" if p.eta_s is not None else ""
        current = os.path.basename(p.current) if p.current and os.sep in p.current else (p.current or "")
        name = job.name if isinstance(job, Job) else p.stage
        text = f"{name}: {current}{eta}" if current else f"{name}{eta}"
        fm = self.job_label.fontMetrics()
        self.job_label.setText(fm.elidedText(text, Qt.TextElideMode.ElideMiddle, self.job_label.maximumWidth()))
        self.job_label.setToolTip(p.current or "")

    def _on_long_done(self, job: Job) -> None:
        if job is self.scan_job:
            self.scan_job = None
            self._refresh_timer.stop()
        if job is self.train_job:
            self.train_job = None
        nxt = self.runner.exclusive_job()
        if nxt is None:
            nxt = next((j for j in self.runner.jobs if j.lane == "exclusive" and j is not job), None)
        self.long_job = nxt
        if nxt is None:
            self.job_widget.hide()
        else:
            self.job_label.setText(f"{nxt.name}…")
            self.job_bar.setRange(0, 0)
        self._update_actions()
        self._update_page()

    def cancel_long_job(self) -> None:
        job = self.runner.exclusive_job() or self.long_job
        if job is not None:
            job.cancel()
            self.job_label.setText(f"{job.name}: cancelling…")
            self.notify(f"Cancelling: {job.name}")

    def show_failures(self) -> None:
        if not self._need_library():
            return

        def done(rows) -> None:
            dlg = FailuresDialog(rows, self)
            dlg.retry_requested.connect(lambda: self.rescan(retry_failed=True))
            self._failures_dialog = dlg
            dlg.open()

        self.run_job(self.backend.failures, name="Reading failures", on_result=done)

    def purge(self) -> None:
        if not self._need_library():
            return

        def done(result: tuple[int, int, int]) -> None:
            n, removed, freed = result
            self.notify(f"Forgot {n} tracks whose files are gone"
                        + (f"; freed {freed / 2**20:.0f} MB of cached sound of changed or missing files" if removed else ""))
            self.reload_tracks()
            self.refresh_status()

        self.run_job(self.backend.purge, name="Forgetting missing tracks", lane="exclusive", on_result=done)


    def _incremental_refresh(self) -> None:
        """During a scan: append the tracks analysed since the last refresh (throttled).

        The worker loads only rows with a larger id and merges them into a copy of the
        table's column store (sort caches included), so the main thread only swaps it in.
        """
        if self.backend is None or self._refreshing or self.scan_job is None:
            return
        self._refreshing = True
        base = self.model.cols
        since = int(base.ids[-1]) if len(base) else 0
        backend = self.backend
        t0 = time.monotonic()

        def work():
            new = backend.track_columns(since_id=since)
            return new, (base.extended(new) if len(new) else None)

        def done(result) -> None:
            self._refreshing = False
            new, merged = result
            added = self.model.add_tracks(new, merged=merged if self.model.cols is base else None)
            spent_ms = (time.monotonic() - t0) * 1000
            self._refresh_ms = int(max(REFRESH_MIN_MS, REFRESH_FACTOR * spent_ms))
            if added:
                self._update_page()
                self.tracks_loaded.emit()
            if self.scan_job is not None:
                self._refresh_timer.start(self._refresh_ms)

        def failed(err) -> None:
            self._refreshing = False
            log.info("incremental refresh failed: %s", err)
            if self.scan_job is not None:
                self._refresh_timer.start(self._refresh_ms)

        self.run_job(work, name="Refreshing tracks", on_result=done, on_error=failed)


    # ======================================================================================
    # training and models
    # ======================================================================================

    def show_training(self) -> None:
        if self.stack.currentWidget() is not self.splitter:
            self.stack.setCurrentWidget(self.splitter)
        self.tabs.setCurrentWidget(self.training)

    def start_training(self, minutes: float, device: str) -> Job | None:
        if not self._need_library():
            return None
        if not self.backend.writable:  # the panel already says why
            return None
        backend = self.backend

        def work(progress, cancel):
            return backend.train(minutes, device, progress=progress, cancel=cancel)

        def progress(p: Progress) -> None:
            self.training.on_progress(p)
            self._on_long_progress(p)

        def done(result: dict) -> None:
            if result.get("cancelled"):
                self.training.finished("Training cancelled; the previous model stays active.", "cancelled")
                self.training_done.emit("cancelled")
            else:
                name = result.get("name") or result.get("model") or "the new model"
                if result.get("activated", True):
                    self.training.finished(f"Training finished: {name} is now active (the previous model stays "
                                           "selectable in the Model menu).")
                else:  # the album/folder check kept the previous model (trainer.guard)
                    self.training.finished(f"Training finished, but {result.get('guard') or 'the check failed'}. "
                                           f"{name} is selectable in the Model menu.")
                self.training_done.emit("finished")
            self._after_model_change()

        def cancelled() -> None:
            self.training.finished("Training cancelled; the previous model stays active.", "cancelled")
            self.training_done.emit("cancelled")
            self._after_model_change()

        def failed(err) -> None:
            self.training.finished(f"Training failed: {err}", "failed")
            self.job_error("Training", err)
            self.training_done.emit("failed")

        self.training.started(device)
        job = self.run_job(work, name="Training", lane="exclusive", long=True, on_result=done, on_progress=progress,
                           on_cancelled=cancelled, on_error=failed)
        job.done.connect(lambda j=job: self._on_long_done(j))
        self.train_job = job
        self._begin_long(job, "Training…")
        return job

    def use_model(self, name: str) -> None:
        if not self._need_library() or not self.backend.writable:
            return
        backend = self.backend

        def done(remaining: int) -> None:
            self.notify(f"Model {name} is now active")
            self._after_model_change()
            if remaining and self.roots:
                self.notify(f"Model {name} is now active; analysing {remaining} tracks it has not seen")
                self.start_scan(self.roots)

        job = self.run_job(lambda: backend.use_model(name), name=f"Switching to {name}", lane="exclusive",
                           on_result=done, user_action=True)
        job.done.connect(lambda j=job: self._on_long_done(j))
        self._begin_long(job, f"Switching to model {name}…")

    def _after_model_change(self) -> None:
        self.model.clear_similarity()
        self.table.setColumnHidden(COL["distance"], True)
        self.refresh_status()
        self.reload_tracks()
        self.refresh_clusters()

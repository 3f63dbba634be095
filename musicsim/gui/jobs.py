"""The window's jobs: every background call goes through :meth:`Jobs.run_job`, and the long
one (scan, training, clustering, model switch) shows in the status bar with a Cancel button.

Messages go to the status bar, never to a dialog per error: only a failure of something the
user asked for directly (``user_action=True``) also opens one warning, and only one at a time.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMainWindow, QMessageBox, QProgressBar, QToolButton, QWidget

from musicsim.gui.training import format_eta
from musicsim.gui.workers import Job, JobError, JobRunner
from musicsim.jobs import Progress

log = logging.getLogger("musicsim.gui")


class Jobs(QObject):
    """Runs work on the :class:`~musicsim.gui.workers.JobRunner` and owns the status bar's job display."""

    long_changed = Signal()  # a long job started or ended: the window re-checks its actions and page

    def __init__(self, runner: JobRunner, window: QMainWindow) -> None:
        super().__init__(window)
        self.runner = runner
        self.window = window
        self.long_job: Job | None = None
        self.closing = False  # set by the window while it closes: no dialogs then
        self._dialog_open = False
        self._build_status_widget()

    def _build_status_widget(self) -> None:
        self.widget = QWidget()
        row = QHBoxLayout(self.widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setMinimumWidth(260)
        self.label.setMaximumWidth(520)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(180)
        self.bar.setTextVisible(True)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setToolTip("Stop this job (finished tracks are kept)")
        self.cancel_button.clicked.connect(self.cancel_long_job)
        row.addWidget(self.label)
        row.addWidget(self.bar)
        row.addWidget(self.cancel_button)
        self.widget.hide()
        self.window.statusBar().addPermanentWidget(self.widget)

    # --- running ----------------------------------------------------------------------------

    def run_job(
        self,
        fn,
        *,
        name: str,
        lane: str = "read",
        long: bool = False,
        on_result=None,
        on_error=None,
        on_progress=None,
        on_cancelled=None,
        user_action: bool = False,
    ) -> Job:
        """Run ``fn`` in the background (see workers.py); errors go to the status bar."""

        def failed(err: JobError) -> None:
            if on_error is not None:
                on_error(err)
            else:
                self.job_error(name, err, user_action=user_action)

        return self.runner.submit(
            fn,
            name=name,
            lane=lane,
            long=long,
            on_result=on_result,
            on_error=failed,
            on_progress=on_progress,
            on_cancelled=on_cancelled,
        )

    def job_error(self, name: str, err: Exception, *, user_action: bool = False) -> None:
        tb = getattr(err, "traceback", "")
        log.warning("%s failed: %s\n%s", name, err, tb)
        msg = f"{name} failed: {err}"
        self.notify(msg, error=True)
        if user_action and not self._dialog_open and not self.closing:
            self._dialog_open = True
            try:
                QMessageBox.warning(self.window, "musicsim", msg)
            finally:
                self._dialog_open = False

    def notify(self, message: str, *, error: bool = False, timeout_ms: int = 8000) -> None:
        """One line in the status bar (never a dialog)."""
        if error:
            log.info("%s", message)
        self.window.statusBar().showMessage(message, timeout_ms if not error else 15000)

    # --- the long job in the status bar -------------------------------------------------------

    def show_long(self, job: Job, text: str) -> None:
        """Show ``job`` in the status bar until it is done (connect its own ``done`` handlers first)."""
        job.done.connect(lambda j=job: self._on_long_done(j))
        self.long_job = self.runner.exclusive_job() or job
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self.widget.show()
        self.long_changed.emit()

    def on_progress(self, p: Progress) -> None:
        job = self.sender()
        if isinstance(job, Job):
            self.long_job = job
        if p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
            self.bar.setFormat(f"{p.done:,} / {p.total:,}")
        else:
            self.bar.setRange(0, 0)
        eta = f" · ETA {format_eta(p.eta_s)}" if p.eta_s is not None else ""
        current = os.path.basename(p.current) if p.current and os.sep in p.current else (p.current or "")
        name = job.name if isinstance(job, Job) else p.stage
        text = f"{name}: {current}{eta}" if current else f"{name}{eta}"
        fm = self.label.fontMetrics()
        self.label.setText(fm.elidedText(text, Qt.TextElideMode.ElideMiddle, self.label.maximumWidth()))
        self.label.setToolTip(p.current or "")

    def _on_long_done(self, job: Job) -> None:
        nxt = self.runner.exclusive_job()
        if nxt is None:
            nxt = next((j for j in self.runner.jobs if j.lane == "exclusive" and j is not job), None)
        self.long_job = nxt
        if nxt is None:
            self.widget.hide()
        else:
            self.label.setText(f"{nxt.name}…")
            self.bar.setRange(0, 0)
        self.long_changed.emit()

    def cancel_long_job(self) -> None:
        job = self.runner.exclusive_job() or self.long_job
        if job is not None:
            job.cancel()
            self.label.setText(f"{job.name}: cancelling…")
            self.notify(f"Cancelling: {job.name}")


__all__ = ["Jobs"]

"""Training runs and model switches from the window (the Training tab and the Model menu).

Both end with another model active, or the same one kept: :class:`TrainingJobs` then emits
``events.model_changed`` and the window reloads what depends on the model's vectors.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject

from musicsim.gui.events import WindowEvents
from musicsim.gui.jobs import Jobs
from musicsim.gui.session import LibrarySession
from musicsim.gui.training import TrainingPanel
from musicsim.gui.workers import Job
from musicsim.jobs import Progress

CANCELLED = "Training cancelled; the previous model stays active."


class TrainingJobs(QObject):
    """Owns the running training job (``train_job``) and reports it on the Training panel.

    ``rescan`` is called with the library's folders when a model switch leaves tracks the
    new model has not analysed yet.
    """

    def __init__(
        self,
        *,
        jobs: Jobs,
        session: LibrarySession,
        panel: TrainingPanel,
        events: WindowEvents,
        rescan: Callable[[list[str]], object],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.session = session
        self.panel = panel
        self.events = events
        self.rescan = rescan
        self.train_job: Job | None = None
        panel.start_requested.connect(self.start_training)
        panel.cancel_requested.connect(lambda: self.train_job and self.train_job.cancel())

    def start_training(self, minutes: float, device: str, until_plateau: bool = False) -> Job | None:
        if not self.session.need_library():
            return None
        backend = self.session.backend
        if not backend.writable:  # the panel already says why
            return None

        def work(progress, cancel):
            return backend.train(minutes, device, until_plateau=until_plateau, progress=progress, cancel=cancel)

        def progress(p: Progress) -> None:
            self.panel.on_progress(p)
            self.jobs.on_progress(p)

        self.panel.started(device)
        job = self.jobs.run_job(
            work,
            name="Training",
            lane="exclusive",
            long=True,
            on_result=self._on_trained,
            on_progress=progress,
            on_cancelled=self._on_cancelled,
            on_error=self._on_failed,
        )
        job.done.connect(lambda j=job: self._on_job_done(j))
        self.train_job = job
        self.jobs.show_long(job, "Training…")
        return job

    def _on_trained(self, result: dict) -> None:
        if result.get("cancelled"):
            self.panel.finished(CANCELLED, "cancelled")
            self.events.training_done.emit("cancelled")
        else:
            name = result.get("name") or result.get("model") or "the new model"
            if result.get("activated", True):
                self.panel.finished(
                    f"Training finished: {name} is now active (the previous model stays selectable in the Model menu)."
                )
            else:  # the album/folder check kept the previous model (trainer.guard)
                self.panel.finished(
                    f"Training finished, but {result.get('guard') or 'the check failed'}. "
                    f"{name} is selectable in the Model menu."
                )
            self.events.training_done.emit("finished")
        self.events.model_changed.emit()

    def _on_cancelled(self) -> None:
        self.panel.finished(CANCELLED, "cancelled")
        self.events.training_done.emit("cancelled")
        self.events.model_changed.emit()

    def _on_failed(self, err) -> None:
        self.panel.finished(f"Training failed: {err}", "failed")
        self.jobs.job_error("Training", err)
        self.events.training_done.emit("failed")

    def _on_job_done(self, job: Job) -> None:
        if job is self.train_job:
            self.train_job = None

    def use_model(self, name: str) -> None:
        if not self.session.need_library() or not self.session.backend.writable:
            return
        backend = self.session.backend

        def done(remaining: int) -> None:
            self.jobs.notify(f"Model {name} is now active")
            self.events.model_changed.emit()
            if remaining and self.session.roots:
                self.jobs.notify(f"Model {name} is now active; analysing {remaining} tracks it has not seen")
                self.rescan(self.session.roots)

        job = self.jobs.run_job(
            lambda: backend.use_model(name),
            name=f"Switching to {name}",
            lane="exclusive",
            on_result=done,
            user_action=True,
        )
        self.jobs.show_long(job, f"Switching to model {name}…")


__all__ = ["TrainingJobs"]

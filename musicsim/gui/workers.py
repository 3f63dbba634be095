"""Background jobs for the GUI: the ONE way the app runs core work off the main thread.

A :class:`Job` wraps a callable. :class:`JobRunner` runs it on a ``QThreadPool`` and
delivers its result or error on the main thread through Qt signals. Long jobs receive
``progress=`` (a plain callback) and ``cancel=`` (a :class:`~musicsim.jobs.CancelToken`).

Progress is coalesced, never queued: the worker only stores the latest
:class:`~musicsim.jobs.Progress` and a main-thread timer emits it at most ten times a
second, so a scan reporting thousands of files cannot flood the event loop.

Lanes keep database writes in one place at a time:

``read``       queries (several at once);
``write``      short writes (playlists), one at a time, in submission order;
``exclusive``  long writers (scan, training, clustering, model switch), one at a time;
               the window disables the actions that start one while one runs.

``JobRunner(synchronous=True)`` runs every job inline on the calling thread (tests).
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot

from musicsim.errors import Cancelled
from musicsim.jobs import CancelToken, Progress

PROGRESS_INTERVAL_MS = 100  # at most ~10 progress signals per second per job
LANES = ("read", "write", "exclusive")


class JobError(Exception):
    """An exception raised in a worker, with the worker's traceback text attached."""

    def __init__(self, original: BaseException, tb: str) -> None:
        super().__init__(str(original))
        self.original = original
        self.traceback = tb


class Job(QObject):
    """One unit of background work. Signals are emitted on the main thread only.

    ``progress(Progress)`` throttled; then exactly one of ``finished(result)``,
    ``failed(JobError)`` or ``cancelled()``; then ``done()``.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    done = Signal()

    # worker thread -> main thread (queued: this object lives on the main thread)
    _deliver = Signal(str, object)

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        lane: str = "read",
        long: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}")
        self.fn = fn
        self.name = name
        self.lane = lane
        self.long = long  # fn takes progress= and cancel=
        self.token = CancelToken()
        self.running = False
        self.is_done = False
        self.started_at: float | None = None
        self._latest: Progress | None = None
        self._info: dict = {}
        self._emitted: Progress | None = None
        self._last_emit = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(PROGRESS_INTERVAL_MS)
        self._timer.timeout.connect(self._flush_progress)
        self._deliver.connect(self._on_deliver)  # AutoConnection: queued when emitted from a worker

    # --- called from the worker thread ------------------------------------------------------

    def report(self, p: Progress) -> None:
        """The ``progress=`` callback handed to core functions: store only the latest.

        ``info`` is merged over the job's life, so a value reported once in a while (a
        validation score) is not lost when the reports around it are coalesced away.
        """
        if p.info:
            self._info.update(p.info)
            p = dataclasses.replace(p, info=dict(self._info))
        self._latest = p

    def execute(self) -> tuple[str, object]:
        """Run the callable here (any thread); return ("ok"|"error"|"cancelled", payload)."""
        try:
            if self.token.cancelled:
                raise Cancelled("cancelled before it started")
            if self.long:
                result = self.fn(progress=self.report, cancel=self.token)
            else:
                result = self.fn()
            return "ok", result  # a job that stops early on cancel returns normally (e.g. ScanReport)
        except Cancelled as e:
            return "cancelled", e
        except BaseException as e:  # noqa: BLE001 - everything goes to the main thread as data
            return "error", JobError(e, traceback.format_exc())

    # --- main thread ------------------------------------------------------------------------

    def cancel(self) -> None:
        self.token.cancel()

    def _start(self) -> None:
        self.running = True
        self.started_at = time.monotonic()
        self._timer.start()

    @Slot()
    def _flush_progress(self) -> None:
        p = self._latest
        if p is not None and p is not self._emitted:
            self._emitted = p
            self._last_emit = time.monotonic()
            self.progress.emit(p)

    @Slot(str, object)
    def _on_deliver(self, kind: str, payload: object) -> None:
        self._timer.stop()
        self._flush_progress()
        self.running = False
        self.is_done = True
        if kind == "ok":
            self.finished.emit(payload)
        elif kind == "cancelled":
            self.cancelled.emit()
        else:
            self.failed.emit(payload)
        self.done.emit()


class _Runnable(QRunnable):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        job = self.job
        kind, payload = job.execute()
        job._deliver.emit(kind, payload)
        # Drop the worker's references now: the main thread still holds the job (runner._jobs)
        # until the queued delivery has run, so the job is never freed on this thread.
        self.job = None
        del job, payload


class JobRunner(QObject):
    """Submits jobs to per-lane thread pools and keeps them alive until they are done."""

    busy_changed = Signal(bool)  # an exclusive job started (True) or the lane emptied (False)
    job_started = Signal(object)
    job_done = Signal(object)

    RETIRE_S = 2.0  # a finished job is freed (on the main thread) this long after it is done

    def __init__(self, *, synchronous: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.synchronous = synchronous
        self._retired: list[tuple[float, Job]] = []
        self._reaper = QTimer(self)
        self._reaper.setInterval(int(self.RETIRE_S * 1000))
        self._reaper.timeout.connect(self._reap)
        self._pools: dict[str, QThreadPool] = {}
        # One reader: two Python-heavy workers plus the GUI thread fight over the GIL and the GUI
        # thread can then wait hundreds of milliseconds for its turn.
        for lane, threads in (("read", 1), ("write", 1), ("exclusive", 1)):
            pool = QThreadPool(self)
            pool.setMaxThreadCount(threads)
            pool.setExpiryTimeout(30_000)
            self._pools[lane] = pool
        self._jobs: set[Job] = set()

    # --- submitting ---------------------------------------------------------------------------

    def submit(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        lane: str = "read",
        long: bool = False,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[JobError], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
    ) -> Job:
        # Jobs are owned by Python (no Qt parent) and freed by _reap on the main thread; deleteLater
        # on a child of a runner that is itself being destroyed crashes PySide 6.12.
        job = Job(fn, name=name, lane=lane, long=long)
        if on_progress:
            job.progress.connect(on_progress)
        if on_result:
            job.finished.connect(on_result)
        if on_error:
            job.failed.connect(on_error)
        if on_cancelled:
            job.cancelled.connect(on_cancelled)
        job.done.connect(self._on_job_done)  # a bound method: a lambda holding the job would leak it
        was_busy = self.exclusive_busy
        self._jobs.add(job)
        if lane == "exclusive" and not was_busy:
            self.busy_changed.emit(True)
        job._start()
        self.job_started.emit(job)
        if self.synchronous:
            kind, payload = job.execute()
            job._on_deliver(kind, payload)
        else:
            self._pools[lane].start(_Runnable(job))
        return job

    @Slot()
    def _on_job_done(self) -> None:
        job = self.sender()
        if isinstance(job, Job):
            self._finish(job)

    def _finish(self, job: Job) -> None:
        self._jobs.discard(job)
        self._retired.append((time.monotonic(), job))
        if not self._reaper.isActive():
            self._reaper.start()
        self.job_done.emit(job)
        if job.lane == "exclusive" and not self.exclusive_busy:
            self.busy_changed.emit(False)

    @Slot()
    def _reap(self) -> None:
        cutoff = time.monotonic() - self.RETIRE_S
        self._retired = [(t, j) for t, j in self._retired if t > cutoff]
        if not self._retired:
            self._reaper.stop()

    # --- state ------------------------------------------------------------------------------

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    @property
    def exclusive_busy(self) -> bool:
        return any(j.lane == "exclusive" for j in self._jobs)

    def exclusive_job(self) -> Job | None:
        running = [j for j in self._jobs if j.lane == "exclusive" and j.running]
        return running[0] if running else None

    def idle(self) -> bool:
        return not self._jobs

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until every pool is idle (used at shutdown and in scripts)."""
        deadline = time.monotonic() + timeout_ms / 1000
        ok = True
        for pool in self._pools.values():
            left = max(0, int((deadline - time.monotonic()) * 1000))
            ok = pool.waitForDone(left) and ok
        return ok

"""Progress reporting and cancellation shared by every long job (scan, train, re-embed).

Core functions take ``progress: ProgressFn | None`` and ``cancel: CancelToken | None``.
The CLI draws a bar from the callbacks; the GUI turns them into throttled Qt signals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from musicsim.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """A snapshot of a long job. ``total`` may be 0 when unknown."""

    stage: str
    done: int
    total: int
    current: str = ""
    eta_s: float | None = None
    info: dict = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressFn = Callable[[Progress], None]


class CancelToken:
    """A thread-safe flag; long jobs call :meth:`check` between items."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


class EtaClock:
    """Estimates the time left from the mean rate since ``start``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.monotonic()

    def eta(self, done: int) -> float | None:
        if done <= 0 or self.total <= 0:
            return None
        elapsed = time.monotonic() - self.start
        return elapsed / done * max(self.total - done, 0)


def report(progress: ProgressFn | None, *args, **kwargs) -> None:
    """Call ``progress`` with a :class:`Progress` when a callback was given."""
    if progress is not None:
        progress(Progress(*args, **kwargs))

"""Scan: walk -> (worker processes) tags + decode -> (main process) features + model -> store.

Decoding is CPU-bound and crash-prone (third-party decoders), so it runs in worker
processes; the model batches on one device in this process. Each finished track is
committed at once, so an interrupted scan resumes with at most the in-flight tracks redone.
A worker that dies (a decoder crash) costs only its file: the in-flight files are retried
one by one in a fresh process and the one that crashes again is recorded as a failure.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

try:
    import resource
except ImportError:  # Windows
    resource = None
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from musicsim.config import Config
from musicsim.errors import Cancelled, MusicsimError
from musicsim.jobs import CancelToken, EtaClock, ProgressFn, report
from musicsim.scan.walker import FileEntry


@dataclass
class ScanReport:
    found: int = 0
    analysed: int = 0
    skipped: int = 0
    failed: int = 0
    still_failing: int = 0  # skipped: failed before and unchanged since
    missing: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    audio_seconds: float = 0.0
    stage_seconds: dict = field(default_factory=lambda: {"decode": 0.0, "features": 0.0, "model": 0.0, "store": 0.0})
    failures: list = field(default_factory=list)  # (path, reason)
    worker_peak_mb: float = 0.0


@dataclass(frozen=True)
class DecodeParams:
    sr: int
    windows: int
    window_seconds: float
    max_seconds: float
    soundfont: str | None
    first_pass: bool = False


def analyse_file(path: str, params: DecodeParams) -> dict:
    """Worker: read tags and decode. Never raises; errors come back as a one-line reason.

    What native decoders print to stderr meanwhile (libmpg123's "Xing stream size off") comes
    back in ``result["warnings"]`` with the decoders' own notes, for the log under the file's name.
    """
    printed: list[str] = []
    with _stderr_lines(printed):
        result = _analyse(path, params)
    result["warnings"] = list(dict.fromkeys(result.get("warnings", []) + printed))[:_MAX_WARNINGS]
    if resource is not None:  # KiB on Linux: the worker's own peak, for the benchmark
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


_MAX_WARNINGS = 20


@contextlib.contextmanager
def _stderr_lines(out: list[str]) -> Iterator[None]:
    """Collect what is written to file descriptor 2 (where C libraries print) into ``out``."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read(1 << 16).decode("utf-8", "replace")
            out.extend(" ".join(line.split())[:300] for line in text.splitlines() if line.strip())


def _analyse(path: str, params: DecodeParams) -> dict:
    t0 = time.perf_counter()
    try:
        from musicsim.audio.decode import decode_for_analysis
        from musicsim.audio.descriptors import describe
        from musicsim.audio.tags import read_tags

        tags = read_tags(path, measure=False)  # the decoder measures the length below
        dec = decode_for_analysis(
            path,
            sr=params.sr,
            windows=params.windows,
            window_seconds=params.window_seconds,
            max_seconds=params.max_seconds,
            soundfont=params.soundfont,
            first_pass=params.first_pass,
        )
        tags["duration"] = dec.duration  # what was decoded, not what a header claims (issue 28)
        return {
            "ok": True,
            "tags": tags,
            "chunks": dec.chunks,
            "starts": dec.starts,
            "duration": dec.duration,
            "degraded": dec.degraded,
            "renderer": dec.renderer,
            "warnings": dec.warnings,
            "descriptors": describe(dec.chunks, params.sr),  # tempo, key, loudness... (issue 31)
            "t": time.perf_counter() - t0,
        }
    except MusicsimError as e:
        return {"ok": False, "stage": "decode", "reason": e.reason, "t": time.perf_counter() - t0}
    except MemoryError:
        return {"ok": False, "stage": "decode", "reason": "out of memory while decoding", "t": time.perf_counter() - t0}
    except Exception as e:  # a decoder bug must cost one file, not the scan
        msg = " ".join(str(e).split())[:200]
        return {
            "ok": False,
            "stage": "decode",
            "reason": f"unexpected {type(e).__name__}: {msg}",
            "t": time.perf_counter() - t0,
        }


Handler = Callable[[FileEntry, dict], None]


class DecodePool:
    """Bounded map of a decode function over files in worker processes, results in completion order.

    A worker that crashes or hangs (longer than ``timeout`` seconds on one file) costs only
    its file: the pool is replaced and every file that was in flight is re-run alone, so the
    culprit is identified and recorded while the others succeed.
    """

    def __init__(self, workers: int, params: DecodeParams, *, timeout: float = 600.0, fn=None) -> None:
        self.workers = workers
        self.params = params
        self.timeout = timeout
        self.fn = fn or analyse_file
        self.pool = self._new_pool(workers)

    def _new_pool(self, n: int) -> ProcessPoolExecutor:
        from musicsim.workers import decode_pool  # forkserver with the decoding stack preloaded

        return decode_pool(n)

    def run(self, files: list[FileEntry], handle: Handler, cancel: CancelToken | None) -> None:
        queue = list(reversed(files))
        inflight: dict[Future, list] = {}  # future -> [entry, time it was seen running]
        limit = self.workers * 2  # bounded: decoded audio waits in memory only this deep
        while queue or inflight:
            if cancel is not None and cancel.cancelled:
                raise Cancelled("scan cancelled")
            while queue and len(inflight) < limit:
                entry = queue.pop()
                inflight[self.pool.submit(self.fn, entry.path, self.params)] = [entry, None]
            done, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
            suspects = []
            for fut in done:
                entry = inflight.pop(fut)[0]
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    suspects.append(entry)
                    continue
                handle(entry, result)
            if suspects or self._hung(inflight):
                suspects += [e for e, _ in inflight.values()]
                inflight.clear()
                _kill(self.pool)
                self.pool = self._new_pool(self.workers)
                self._isolate(suspects, handle)

    def _hung(self, inflight: dict[Future, list]) -> bool:
        now = time.monotonic()
        for fut, slot in inflight.items():
            if slot[1] is None and fut.running():
                slot[1] = now
            elif slot[1] is not None and now - slot[1] > self.timeout:
                return True
        return False

    def _isolate(self, suspects: list[FileEntry], handle: Handler) -> None:
        """Re-run each file that was in flight when a worker died or hung, alone."""
        for entry in suspects:
            solo = self._new_pool(1)
            try:
                result = solo.submit(self.fn, entry.path, self.params).result(timeout=self.timeout)
            except BrokenProcessPool:
                result = _failure("the decoder crashed on this file")
            except FuturesTimeout:
                result = _failure(f"decoding took longer than {self.timeout:.0f} s (the decoder hung)")
            finally:
                _kill(solo)
            handle(entry, result)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _failure(reason: str) -> dict:
    return {"ok": False, "stage": "decode", "reason": reason, "t": 0.0}


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now, killing workers that may be stuck in native code."""
    # ProcessPoolExecutor has no public way to kill a running task; _processes has been
    # stable since Python 3.3.
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def decode_params(cfg: Config, sr: int) -> DecodeParams:
    return DecodeParams(
        sr=sr,
        windows=cfg.analysis_windows,
        window_seconds=cfg.window_seconds,
        max_seconds=cfg.max_seconds,
        soundfont=cfg.soundfont or None,
        first_pass=cfg.analysis == "fast",
    )


def pool_workers(cfg: Config, files: int) -> int:
    """How many decode processes a scan of ``files`` files starts."""
    return min(cfg.effective_workers(), max(1, files))


def run_pool(files: list[FileEntry], cfg: Config, sr: int, handle: Handler, cancel: CancelToken | None) -> None:
    """Decode ``files`` with worker processes and pass each result to ``handle`` as it is ready."""
    workers = pool_workers(cfg, len(files))
    pool = DecodePool(workers, decode_params(cfg, sr), timeout=cfg.decode_timeout)
    try:
        pool.run(files, handle, cancel)
    finally:
        pool.close()


class Tracker:
    """Progress with ETA for a scan."""

    def __init__(self, total: int, progress: ProgressFn | None) -> None:
        self.clock = EtaClock(total)
        self.total = total
        self.done = 0
        self.progress = progress

    def step(self, current: str) -> None:
        self.done += 1
        report(self.progress, "scan", self.done, self.total, os.path.basename(current), self.clock.eta(self.done))

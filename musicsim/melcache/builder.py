"""Filling the log-Mel cache: decode the tracks it lacks, in worker processes, and store their frames.

Training and re-embedding read a library's frames from the cache (:mod:`musicsim.melcache.store`,
which the scan fills too) and decode only what it lacks. While the cache is built, worker
processes decode and, on a GPU, the main process turns the audio into mels on the device; on
CPU-only machines the workers compute the mels themselves, in parallel. A worker that crashes
(a decoder dying on a bad file) costs only the files it held: they are retried one at a time.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from musicsim.audio.features import FrontEnd, LogMel
from musicsim.errors import Cancelled, MusicsimError
from musicsim.jobs import CancelToken, EtaClock, ProgressFn, report
from musicsim.melcache.store import CachedMel, DecodeSettings, MelStore, ScanCacheWriter


def _decode_worker(path: str, fe_dict: dict, ds_dict: dict, compute_mel: bool) -> dict:
    """Worker process: decode one file (and compute its mels when asked). Never raises."""
    t0 = time.perf_counter()
    try:
        from musicsim.audio.decode import decode_for_analysis

        fe = FrontEnd.from_dict(fe_dict)
        ds = DecodeSettings(**ds_dict)
        dec = decode_for_analysis(
            path,
            sr=fe.sr,
            windows=ds.windows,
            window_seconds=ds.window_seconds,
            max_seconds=ds.max_seconds,
            soundfont=ds.soundfont,
            first_pass=ds.first_pass,
        )
        out = {"ok": True, "starts": list(map(float, dec.starts)), "duration": float(dec.duration)}
        if compute_mel:
            torch.set_num_threads(1)
            out["mels"] = mels_of_chunks(dec.chunks, LogMel(fe))
        else:
            out["chunks"] = dec.chunks
        out["t"] = time.perf_counter() - t0
        return out
    except MusicsimError as e:
        return {"ok": False, "reason": e.reason}
    except Exception as e:  # one bad file must not stop the cache build
        return {"ok": False, "reason": f"unexpected {type(e).__name__}: {' '.join(str(e).split())[:200]}"}


@torch.inference_mode()
def mels_of_chunks(chunks: list[np.ndarray], logmel: LogMel) -> list[np.ndarray]:
    dev = logmel.mel_basis.device
    out = []
    for c in chunks:
        wave = torch.from_numpy(np.ascontiguousarray(c, dtype=np.float32)).to(dev)
        out.append(logmel(wave).to(torch.float16).cpu().numpy())
    return out


def _pool(n: int) -> ProcessPoolExecutor:
    from musicsim.workers import decode_pool  # forkserver with the decoding stack preloaded

    return decode_pool(n)


@dataclass
class _Build:
    """One build's bookkeeping: what was found or failed, and how many frames were found."""

    cache: MelStore
    found: dict[str, CachedMel]
    total: int  # tracks asked for
    to_decode: int
    max_frames: int | None
    logmel: LogMel | None  # the mel front end on the device, when the workers only decode
    writer: ScanCacheWriter | None
    mmap: bool
    progress: ProgressFn | None
    failures: list[tuple[str, str]] = field(default_factory=list)
    have: int = 0  # frames found
    done: int = 0  # tracks found, failed or already cached
    clock: EtaClock | None = None

    def __post_init__(self) -> None:
        self.have = sum(sum(c.chunk_frames) for c in self.found.values())
        self.done = len(self.found)
        self.clock = EtaClock(self.to_decode)

    def full(self) -> bool:
        return self.max_frames is not None and self.have >= self.max_frames

    def handle(self, path: str, res: dict) -> None:
        """Take one worker's result: store and count the track, or record why it failed."""
        if res["ok"]:
            c = self._keep(path, res)
            if c is not None:
                self.found[path] = c
                self.have += sum(c.chunk_frames)
        else:
            self.failures.append((path, res["reason"]))
        self.done += 1
        eta = self.clock.eta(self.done - (self.total - self.to_decode))
        report(self.progress, "cache", self.done, self.total, os.path.basename(path), eta)

    def _keep(self, path: str, res: dict) -> CachedMel | None:
        mels = res["mels"] if "mels" in res else mels_of_chunks(res["chunks"], self.logmel)
        if self.writer is None:
            c = self.cache.put(path, mels, res["starts"], res["duration"])
            return c and (self.cache.get(path, mmap=self.mmap) or c)
        c = CachedMel.of(mels, res["starts"], res["duration"])
        with contextlib.suppress(OSError):  # a file gone since it was decoded: not stored
            st = os.stat(path)
            self.writer.put(path, st.st_size, st.st_mtime, mels, res["starts"], res["duration"])
        return c


class MelCache(MelStore):
    """Decoded-once log-Mel frames of tracks, on disk (the store the scan also fills), with the
    decoding of the tracks it lacks."""

    left_out = 0  # tracks the last build did not decode: the frame budget was full

    def build(
        self,
        paths: list[str],
        *,
        device: torch.device | str = "cpu",
        workers: int = 0,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        mmap: bool = True,
        max_frames: int | None = None,
        writer: ScanCacheWriter | None = None,
    ) -> tuple[dict[str, CachedMel], list[tuple[str, str]]]:
        """Return cached mels for ``paths`` (decoding those not cached yet) and (path, reason) failures.

        With ``max_frames``, tracks not cached yet are decoded, in the order given, only while
        the frames found stay under it: a library longer than the training budget is sampled
        rather than decoded (and written to the cache) whole. The tracks left out are neither
        found nor failed; :attr:`left_out` counts them.

        With ``writer``, decoded tracks are stored only within its disk budget (as the scan
        stores them); beyond it their frames are returned in memory."""
        device = torch.device(device)
        found: dict[str, CachedMel] = {}
        todo = []
        for p in paths:
            c = self.get(p, mmap=mmap)
            if c is None:
                todo.append(p)
            else:
                found[p] = c
        logmel = LogMel(self.fe).to(device) if device.type != "cpu" else None
        run = _Build(self, found, len(paths), len(todo), max_frames, logmel, writer, mmap, progress)
        self.left_out = 0
        if run.full():
            self.left_out, todo = len(todo), []
        report(progress, "cache", run.done, run.total, f"{len(todo)} tracks to decode", info={"to_decode": len(todo)})
        if not todo:
            return found, run.failures
        if workers <= 1 or len(todo) == 1:
            self._decode_here(todo, run, cancel)
        else:
            self._decode_pooled(todo, run, min(workers, len(todo)), cancel)
        if self.left_out:
            report(
                progress, "cache", run.total, run.total, f"{self.left_out} tracks left out: the training budget is full"
            )
        return found, run.failures

    def _job(self, run: _Build) -> tuple[dict, dict, bool]:
        """The arguments every decode job takes after its path."""
        return self.fe.to_dict(), asdict(self.decode), run.logmel is None

    def _decode_here(self, todo: list[str], run: _Build, cancel: CancelToken | None) -> None:
        prev = torch.get_num_threads()
        try:
            for i, p in enumerate(todo):
                if cancel is not None:
                    cancel.check()
                if run.full():
                    self.left_out = len(todo) - i
                    break
                run.handle(p, _decode_worker(p, *self._job(run)))
        finally:
            torch.set_num_threads(prev)

    def _decode_pooled(self, todo: list[str], run: _Build, n: int, cancel: CancelToken | None) -> None:
        queue = list(reversed(todo))
        solo: list[str] = []  # files in flight when a worker died: retried one at a time
        pool = _pool(n)
        inflight: dict = {}
        try:
            while queue or inflight or solo:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("cancelled while building the mel cache")
                if solo:
                    if not inflight:
                        p = solo.pop()
                        inflight[pool.submit(_decode_worker, p, *self._job(run))] = (p, True)
                else:
                    if queue and run.full():
                        self.left_out, queue = len(queue), []
                    while queue and len(inflight) < 2 * n:
                        p = queue.pop()
                        inflight[pool.submit(_decode_worker, p, *self._job(run))] = (p, False)
                if self._collect(inflight, solo, run):
                    solo.extend(p for p, _ in inflight.values())
                    inflight.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = _pool(n)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _collect(inflight: dict, solo: list[str], run: _Build) -> bool:
        """Handle the jobs that finished within half a second; whether the pool broke."""
        ready, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
        broken = False
        for fut in ready:
            p, alone = inflight.pop(fut)
            try:
                res = fut.result()
            except BrokenProcessPool:
                if alone:
                    run.handle(p, {"ok": False, "reason": "the decoder crashed on this file"})
                else:
                    solo.append(p)
                broken = True
                continue
            run.handle(p, res)
        return broken

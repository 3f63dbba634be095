"""Orchestrates one scan over a :class:`~musicsim.library.Library`."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from musicsim.errors import Cancelled
from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.melcache import ScanCacheWriter
from musicsim.scan.pipeline import ScanReport, Tracker, run_pool
from musicsim.scan.walker import FileEntry, normalise, walk
from musicsim.store import repo

if TYPE_CHECKING:
    from musicsim.library import Library


def plan(lib: Library, entries: list[FileEntry], *, retry_failed: bool) -> tuple[list[FileEntry], int]:
    """Which files need analysis: new, changed, not yet embedded by the active model, or (on request) failed."""
    with lib.db.session() as s:
        known = repo.known_files(s)
        failed = repo.failed_files(s)
        embedded = repo.embedded_track_ids(s, lib.model_row.id)
    todo, skipped = [], 0
    for e in entries:
        k = known.get(e.path)
        if k is not None and k[1] == e.size and k[2] == e.mtime and k[3] != "failed" and k[0] in embedded:
            skipped += 1
            continue
        f = failed.get(e.path)
        if f is not None and f == (e.size, e.mtime) and not retry_failed:
            skipped += 1  # failed before and unchanged: the recorded reason stands
            continue
        todo.append(e)
    return todo, skipped


def mark_missing(lib: Library, roots: list[str], seen: set[str], unchanged_returned: list[str]) -> int:
    """Tracks under a scanned folder that are gone are marked missing (purged only on request)."""
    with lib.db.session() as s:
        known = repo.known_files(s)
        gone, back = [], []
        for path, (tid, _sz, _mt, status) in known.items():
            under = any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
            if not under:
                continue
            if path not in seen and status != "missing":
                gone.append(tid)
            elif path in seen and status == "missing":
                back.append(tid)
        repo.mark_status(s, gone, "missing")
        repo.mark_status(s, back, "ok")
    lib.sync_index()
    return len(gone)


def scan(lib: Library, paths: list[str], *, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
         retry_failed: bool = False) -> ScanReport:
    rep = ScanReport()
    t_start = time.perf_counter()
    from musicsim.scan.walker import storable

    roots = [normalise(p) for p in paths]
    walk_errors: list[tuple[str, str]] = []
    report(progress, "discover", 0, 0, "looking for music files")
    entries = list(walk(roots, on_error=lambda p, r: walk_errors.append((p, r))))
    rep.found = len(entries)
    with lib.db.session() as s:
        repo.add_roots(s, [r for r in roots if storable(r) and os.path.isdir(r)])
    for p, r in walk_errors:
        lib.record_failure(p, "walk", r, None, None)
        rep.failures.append((p, r))
    readable_roots = [r for r in roots if os.path.isdir(r) and not any(p == r for p, _ in walk_errors)]
    rep.missing = mark_missing(lib, readable_roots, {e.path for e in entries}, [])
    todo, rep.skipped = plan(lib, entries, retry_failed=retry_failed)
    tracker = Tracker(len(todo), progress)
    embedder = lib.embedder() if todo else None  # loading the model costs seconds; skip it when idle
    mel_writer = ScanCacheWriter(lib.config, embedder.fe) if todo else None

    def handle(entry: FileEntry, result: dict) -> None:
        rep.stage_seconds["decode"] += result.get("t", 0.0)
        rep.worker_peak_mb = max(rep.worker_peak_mb, result.get("peak_mb", 0.0))
        if not result["ok"]:
            lib.record_failure(entry.path, result["stage"], result["reason"], entry.size, entry.mtime)
            rep.failed += 1
            rep.failures.append((entry.path, result["reason"]))
        else:
            _store(lib, embedder, entry, result, rep, mel_writer)
        tracker.step(entry.path)
        if cancel is not None:
            cancel.check()

    try:
        if todo:
            run_pool(todo, lib.config, embedder.fe.sr, handle, cancel)
    except Cancelled:
        rep.cancelled = True
    finally:
        lib.sync_index(full=True)  # saves the index; refits the statistics once the library grew by a quarter
    if mel_writer is not None and mel_writer.removed:
        logging.getLogger("musicsim.scan").info("removed %d stale log-Mel cache entries to make room", mel_writer.removed)
    if mel_writer is not None and mel_writer.stopped:
        logging.getLogger("musicsim.scan").info("%s; training will decode the other tracks itself", mel_writer.stopped)
    rep.seconds = time.perf_counter() - t_start
    return rep


def _store(lib: Library, embedder, entry: FileEntry, result: dict, rep: ScanReport,
           mel_writer: ScanCacheWriter | None = None) -> None:
    t0 = time.perf_counter()
    mels: list[np.ndarray] | None = [] if mel_writer is not None and mel_writer.active else None
    segs, starts = embedder.features(result["chunks"], result["starts"], mels_out=mels)
    t1 = time.perf_counter()
    seg_vecs = embedder.embed_segments(segs)
    vec = embedder.track_vector(seg_vecs)
    t2 = time.perf_counter()
    if not (np.isfinite(vec).all() and np.isfinite(seg_vecs).all()):
        reason = "the model produced invalid numbers for this audio (extreme sample values?)"
        lib.record_failure(entry.path, "embed", reason, entry.size, entry.mtime)
        rep.failed += 1
        rep.failures.append((entry.path, reason))
        return
    with lib.db.session() as s:
        track = repo.upsert_track(s, path=entry.path, size=entry.size, mtime=entry.mtime, fmt=entry.ext.lstrip("."),
                                  tags=result["tags"], degraded=result["degraded"], renderer=result["renderer"])
        seq = repo.save_embedding(s, track.id, lib.model_row.id, vec, seg_vecs, starts)
        tid = track.id
    lib.index_add(np.array([tid]), vec[None, :], seq)
    if mels:  # so that training on this library never decodes the track again
        mel_writer.put(entry.path, entry.size, entry.mtime, mels, result["starts"], float(result["duration"] or 0.0))
    t3 = time.perf_counter()
    st = rep.stage_seconds
    st["features"] += t1 - t0
    st["model"] += t2 - t1
    st["store"] += t3 - t2
    rep.analysed += 1
    rep.audio_seconds += float(result["duration"] or 0.0)

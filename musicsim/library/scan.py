"""One scan of a library: walk the folders, plan what needs analysis, run the pipeline, store.

The files-in/results-out work (walking, decoding, features in worker processes) is
:mod:`musicsim.scan`; this module is the library's side: what is new or changed, what went
missing, and storing each result in the database, the index and the mel cache as it arrives.
It is given the parts it writes to (database, model registry, index keeper, settings), not the
facade.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from musicsim.errors import Cancelled
from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.melcache import ScanCacheWriter
from musicsim.scan.pipeline import ScanReport, Tracker, pool_workers, run_pool
from musicsim.scan.walker import FileEntry, normalise, under, walk
from musicsim.store import repo

if TYPE_CHECKING:
    from musicsim.config import Config
    from musicsim.library.index import IndexKeeper
    from musicsim.library.models import ModelRegistry
    from musicsim.model.embed import Embedder
    from musicsim.store.db import Database


def plan(
    db: Database, model_id: int, entries: list[FileEntry], *, retry_failed: bool
) -> tuple[list[FileEntry], int, int]:
    """Which files need analysis: new, changed, not yet embedded by the active model, or (on request) failed.

    Returns the files to analyse, how many are skipped, and how many of those skipped failed
    before and are unchanged (still failing: the scan's exit code says so)."""
    with db.session() as s:
        known = repo.known_files(s)
        failed = repo.failed_files(s)
        embedded = repo.embedded_track_ids(s, model_id) & repo.described_track_ids(
            s
        )  # analysed before descriptors: again
    todo, skipped, still_failing = [], 0, 0
    for e in entries:
        k = known.get(e.path)
        if k is not None and k[1] == e.size and k[2] == e.mtime and k[3] != "failed" and k[0] in embedded:
            skipped += 1
            continue
        f = failed.get(e.path)
        if f is not None and f == (e.size, e.mtime) and not retry_failed:
            skipped += 1  # failed before and unchanged: the recorded reason stands
            still_failing += 1
            continue
        todo.append(e)
    return todo, skipped, still_failing


def mark_missing(db: Database, index: IndexKeeper, roots: list[str], seen: set[str]) -> int:
    """Tracks under a scanned folder that are gone are marked missing (purged only on request)."""
    with db.session() as s:
        known = repo.known_files(s)
        gone, back = [], []
        for path, (tid, _sz, _mt, status) in known.items():
            if not under(path, roots):
                continue
            if path not in seen and status != "missing":
                gone.append(tid)
            elif path in seen and status == "missing":
                back.append(tid)
        repo.mark_status(s, gone, "missing")
        repo.mark_status(s, back, "ok")
    index.sync()
    return len(gone)


def record_failure(
    db: Database, index: IndexKeeper, path: str, stage: str, reason: str, size: int | None, mtime: float | None
) -> None:
    """A file that could not be analysed: its reason is kept; a track it was before leaves the index."""
    with db.session() as s:
        repo.record_failure(s, path=path, stage=stage, reason=reason, size=size, mtime=mtime)
    index.sync()


def scan(
    paths: list[str],
    *,
    db: Database,
    models: ModelRegistry,
    index: IndexKeeper,
    config: Config,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    retry_failed: bool = False,
) -> ScanReport:
    rep = ScanReport()
    t_start = time.perf_counter()
    from musicsim.scan.walker import storable

    roots = [normalise(p) for p in paths]
    walk_errors: list[tuple[str, str]] = []
    report(progress, "discover", 0, 0, "looking for music files")
    entries = list(walk(roots, on_error=lambda p, r: walk_errors.append((p, r))))
    rep.found = len(entries)
    with db.session() as s:
        repo.add_roots(s, [r for r in roots if storable(r) and os.path.isdir(r)])
    for p, r in walk_errors:
        record_failure(db, index, p, "walk", r, None, None)
        rep.failures.append((p, r))
    readable_roots = [r for r in roots if os.path.isdir(r) and not any(p == r for p, _ in walk_errors)]
    rep.missing = mark_missing(db, index, readable_roots, {e.path for e in entries})
    todo, rep.skipped, rep.still_failing = plan(db, models.row.id, entries, retry_failed=retry_failed)
    tracker = Tracker(len(todo), progress)
    embedder = models.embedder(config) if todo else None  # loading the model costs seconds; skip it when idle
    mel_writer = ScanCacheWriter(config, embedder.fe) if embedder is not None else None

    def handle(entry: FileEntry, result: dict) -> None:
        for line in result.get("warnings", ()):  # decoders' complaints: the log, under the file's name
            logging.getLogger("musicsim.decode").info("%s: %s", entry.path, line)
        rep.stage_seconds["decode"] += result.get("t", 0.0)
        rep.worker_peak_mb = max(rep.worker_peak_mb, result.get("peak_mb", 0.0))
        if not result["ok"]:
            record_failure(db, index, entry.path, result["stage"], result["reason"], entry.size, entry.mtime)
            rep.failed += 1
            rep.failures.append((entry.path, result["reason"]))
        else:
            assert embedder is not None
            _store(db, index, embedder, entry, result, rep, mel_writer)
        tracker.step(entry.path)
        if cancel is not None:
            cancel.check()

    try:
        if embedder is not None:
            with embedder.sharing_cores(pool_workers(config, len(todo))):
                run_pool(todo, config, embedder.fe.sr, handle, cancel)
    except Cancelled:
        rep.cancelled = True
    finally:
        index.sync(full=True)  # saves the index; refits the statistics once the library grew by a quarter
    if mel_writer is not None and mel_writer.removed:
        logging.getLogger("musicsim.scan").info(
            "removed %d stale log-Mel cache entries to make room", mel_writer.removed
        )
    if mel_writer is not None and mel_writer.stopped:
        logging.getLogger("musicsim.scan").info("%s; training will decode the other tracks itself", mel_writer.stopped)
    rep.seconds = time.perf_counter() - t_start
    return rep


def _store(
    db: Database,
    index: IndexKeeper,
    embedder: Embedder,
    entry: FileEntry,
    result: dict,
    rep: ScanReport,
    mel_writer: ScanCacheWriter | None = None,
) -> None:
    t0 = time.perf_counter()
    mels: list[np.ndarray] | None = [] if mel_writer is not None and mel_writer.active else None
    segs, starts = embedder.features(result["chunks"], result["starts"], mels_out=mels)
    t1 = time.perf_counter()
    seg_vecs = embedder.embed_segments(segs)
    vec = embedder.track_vector(seg_vecs)
    t2 = time.perf_counter()
    if not (np.isfinite(vec).all() and np.isfinite(seg_vecs).all()):
        reason = "the model produced invalid numbers for this audio (extreme sample values?)"
        record_failure(db, index, entry.path, "embed", reason, entry.size, entry.mtime)
        rep.failed += 1
        rep.failures.append((entry.path, reason))
        return
    with db.session() as s:
        track = repo.upsert_track(
            s,
            path=entry.path,
            size=entry.size,
            mtime=entry.mtime,
            fmt=entry.ext.lstrip("."),
            tags=result["tags"],
            degraded=result["degraded"],
            renderer=result["renderer"],
        )
        seq = repo.save_embedding(s, track.id, index.row.id, vec, seg_vecs, starts)
        if result.get("descriptors") is not None:  # tempo, key, loudness... (musicsim.audio.descriptors)
            repo.save_descriptors(s, track.id, result["descriptors"])
        tid = track.id
    index.add(np.array([tid]), vec[None, :], seq)
    if mels and mel_writer is not None:  # so that training on this library never decodes the track again
        mel_writer.put(entry.path, entry.size, entry.mtime, mels, result["starts"], float(result["duration"] or 0.0))
    t3 = time.perf_counter()
    st = rep.stage_seconds
    st["features"] += t1 - t0
    st["model"] += t2 - t1
    st["store"] += t3 - t2
    rep.analysed += 1
    rep.audio_seconds += float(result["duration"] or 0.0)

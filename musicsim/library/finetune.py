"""The library side of training: fine-tune the model on a library's tracks, re-embed the library
with the result, and make it active unless it groups the library's albums/folders worse.

The trainer (:mod:`trainer.train`) stands alone: it takes tracks and options and returns a
checkpoint with its metrics. This module gathers what it needs from the library (each track's
path, its stored vector under the model training starts from, the scan's decode settings),
and afterwards registers the new model, re-embeds every track with it
(:mod:`musicsim.library.reembed`), applies the album/folder check (:func:`trainer.guard.judge`)
and activates it. The previous model and its vectors always stay selectable.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from musicsim.jobs import CancelToken, ProgressFn
from musicsim.library.reembed import OpenLibrary, activate_model, model_vectors, reembed_library
from musicsim.melcache import DecodeSettings
from musicsim.model.checkpoint import load_model
from musicsim.store import repo
from trainer.guard import judge
from trainer.logs import summarise
from trainer.options import TrainOptions, TrainResult
from trainer.runtime import warm_up
from trainer.setup import start_checksum
from trainer.tracks import TrainTrack
from trainer.train import train

__all__ = ["finetune", "reembed_and_activate", "stored_track_vectors", "track_groups", "train_library", "warm_up"]

log = logging.getLogger("trainer")


def train_library(
    lib: OpenLibrary,
    *,
    minutes: float,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **options,
) -> dict:
    """Fine-tune the model on ``lib`` for at most ``minutes`` (the trainer, in this thread),
    re-embed every track with it and make it active; the previous model stays selectable.
    ``options``: further :class:`~trainer.options.TrainOptions` fields."""
    lib.db.require_writer()
    opts = TrainOptions(db=str(lib.db.path), max_minutes=minutes, device=device, **options)
    res = finetune(lib, opts, progress=progress, cancel=cancel)
    return {
        "name": res.name,
        "cancelled": res.cancelled,
        "steps": res.steps,
        "epochs": res.epochs,
        "seconds": res.seconds,
        "metrics": dict(res.metrics),
        "reembedded": res.reembedded,
        "activated": res.activated,
        "guard": res.guard,
        "model_path": res.model_path,
        "summary": res.summary,
        "stopped": res.stopped,
    }


def finetune(
    lib: OpenLibrary, opts: TrainOptions, *, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> TrainResult:
    """Train on ``lib``'s tracks (and ``opts.folders``); then, with ``opts.reembed``, re-embed
    the library with the new model and activate it (``opts.guard``: only if it groups the
    library's albums/folders at least as well). ``opts.db`` should name ``lib``'s database:
    the new model is stored beside it."""
    res = train(
        opts,
        tracks=train_tracks(lib, opts),
        decode=DecodeSettings.from_config(lib.config),
        progress=progress,
        cancel=cancel,
    )
    if res.model_path is not None and opts.reembed:  # no model: cancelled, or not the first of several processes
        reembed_and_activate(lib, res.model_path, res, opts, progress, cancel)
        summarise(res)  # again: now with the re-embedding's outcome
    return res


def train_tracks(lib: OpenLibrary, opts: TrainOptions) -> list[TrainTrack]:
    """The library's analysed tracks, each with its stored vector under the model the run
    starts from where the library holds one for the file as it is now."""
    paths = [t.path for t in lib.tracks()]
    checksum = start_checksum(opts)
    stored = stored_track_vectors(lib, checksum, paths) if checksum else {}
    return [TrainTrack(p, stored[p], checksum) if p in stored else TrainTrack(p) for p in paths]


def stored_track_vectors(lib: OpenLibrary, checksum: str, paths: list[str]) -> dict[str, np.ndarray]:
    """``{path: vector}`` the library holds under the model with ``checksum``, for those of
    ``paths`` whose file is unchanged since it was analysed (the mel cache holds the file as it
    is now, so a changed file's stored vector would not match it)."""
    with lib.db.session() as s:
        row = next((m for m in repo.list_models(s) if m.checksum == checksum), None)
        if row is None:
            return {}
        ids, X, _, _ = repo.vectors(s, row.id, status="ok")
        known = repo.known_files(s)
    vec_of = dict(zip(ids.tolist(), X))
    out = {}
    for path in paths:
        tid, size, mtime, _status = known.get(path, (None, None, None, None))
        if tid not in vec_of:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_size == size and st.st_mtime == mtime:  # the scan's own "unchanged" rule
            out[path] = vec_of[tid]
    return out


def track_groups(tracks) -> dict[int, str]:
    """Album (album artist or artist + album tag) or else parent folder, per track id: the labels
    the album/folder check scores a model by."""
    out = {}
    for t in tracks:
        album = (t.album or "").strip()
        if album:
            who = (t.albumartist or t.artist or "").strip().casefold()
            out[t.id] = f"album:{who}\x00{album.casefold()}"
        else:
            out[t.id] = f"folder:{os.path.dirname(t.path)}"
    return out


def reembed_and_activate(
    lib: OpenLibrary,
    model_path: str,
    result: TrainResult,
    opts: TrainOptions,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Re-embed the library with the model at ``model_path``; make it active unless it groups
    the library's albums/folders worse than the model in use (``opts.guard``). Fills
    ``result``'s library fields (model id, re-embedded tracks, activation and verdict)."""
    old_id = lib.model_row.id
    rr = reembed_library(
        lib,
        load_model(model_path),
        progress,
        cancel,
        cache=opts.cache,
        device=opts.device,
        workers=opts.workers,
        activate=False,
    )
    result.model_id, result.reembedded = rr["model_id"], rr["embedded"]
    result.cancelled = bool(rr.get("cancelled"))
    if result.cancelled or rr["model_id"] == old_id:
        return  # cancelled (the old model stays active), or training changed nothing
    if opts.guard and not _guard_allows(lib, old_id, rr["model_id"], rr["name"], result):
        return
    activate_model(lib, rr["model_id"])
    result.activated = True


def _guard_allows(lib: OpenLibrary, old_id: int, new_id: int, name: str, result: TrainResult) -> bool:
    """The album/folder check (:func:`trainer.guard.judge`) of the two models' stored vectors;
    its verdict and scores go into ``result``."""
    verdict = judge(track_groups(lib.tracks()), model_vectors(lib, old_id), model_vectors(lib, new_id))
    result.guard = verdict.reason
    result.guard_scores = (verdict.old, verdict.new)
    if verdict.keep_new:
        log.info("%s", verdict.reason)
    else:
        log.warning("%s; use it anyway with: musicsim model use %s", verdict.reason, name)
    return verdict.keep_new

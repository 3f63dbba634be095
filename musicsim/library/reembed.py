"""Re-embed every track of a library with a new model, from the mel cache.

The new model is registered inactive, every track gets its vector for the new model, and
only then is the model made active and its HNSW index built; the previous model and its
vectors stay in the database, selectable again at any time.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Protocol

import numpy as np
import torch

from musicsim.config import Config
from musicsim.errors import Cancelled, NotFound
from musicsim.jobs import CancelToken, EtaClock, ProgressFn, report
from musicsim.library.index import IndexKeeper
from musicsim.melcache import CachedMel, DecodeSettings, MelCache, ScanCacheWriter
from musicsim.model.checkpoint import LoadedModel
from musicsim.model.embed import Embedder
from musicsim.store import repo
from musicsim.store.db import Database
from musicsim.store.schema import Model, Track


class OpenLibrary(Protocol):
    """What re-embedding and fine-tuning use of an open :class:`musicsim.library.Library`.

    A protocol that the facade's class meets, rather than an import of it: the facade imports
    this module (``Library.train`` delegates here), and the design allows no import cycle, not
    even one of types (``tests/test_imports.py``)."""

    db: Database
    config: Config

    @property
    def model_row(self) -> Model: ...

    def tracks(self, *, status: str | None = "ok") -> list[Track]: ...

    def register(self, loaded: LoadedModel, *, activate: bool = False) -> Model: ...

    def activate(self, row: Model) -> None: ...

    @property
    def index(self) -> IndexKeeper: ...


def reembed_library(
    lib: OpenLibrary,
    loaded: LoadedModel,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    *,
    cache: str | None = None,
    device: str = "auto",
    workers: int = 0,
    batch_size: int = 256,
    activate: bool = True,
    batch_tracks: int = 128,
) -> dict:
    """Embed all live tracks of ``lib`` with ``loaded``; return counts and the new model's id.

    Tracks missing from the mel cache are decoded (with the library's scan settings, so the
    vectors equal what a scan would store), ``batch_tracks`` at a time. On cancel, vectors
    written so far are kept and the previous model stays active.
    """
    t0 = time.perf_counter()
    row = lib.register(loaded, activate=False)
    embedder = Embedder(loaded, device=device, batch_size=batch_size)
    mcache = MelCache(cache, loaded.frontend, DecodeSettings.from_config(lib.config))
    tracks = lib.tracks()
    with lib.db.session() as s:
        have = repo.embedded_track_ids(s, row.id)
    todo = [t for t in tracks if t.id not in have]
    n_workers = workers if workers > 0 else max(1, min(8, os.cpu_count() or 1))
    # Tracks the mel cache lacks are decoded a batch at a time and stored only within the
    # scan's budget (Config.mel_cache_gb), so a library longer than the cache is re-embedded
    # without writing all of its audio to disk or holding it in memory.
    writer = ScanCacheWriter(lib.config, loaded.frontend, root=cache)
    clock = EtaClock(len(todo))
    done = 0
    failures: list[tuple[str, str]] = []
    cancelled = False
    try:
        for b in range(0, len(todo), batch_tracks):
            batch = todo[b : b + batch_tracks]
            found, failed = mcache.build(
                [t.path for t in batch],
                device=embedder.device,
                workers=n_workers,
                progress=_reading(progress, b, len(todo), clock),
                cancel=cancel,
                writer=writer,
            )
            failures += failed
            for k, t in enumerate(batch, 1):
                if cancel is not None:
                    cancel.check()
                c = found.pop(t.path, None)
                if c is not None:
                    _embed_track(lib, embedder, row.id, t.id, c)
                    done += 1
                at = b + (len(batch) + k) // 2  # reading a batch is its first half, embedding the second
                report(progress, "reembed", at, len(todo), os.path.basename(t.path), clock.eta(at))
    except Cancelled:
        cancelled = True
    if activate and not cancelled:
        row = activate_model(lib, row.id)
    return {
        "model_id": row.id,
        "name": row.name,
        "embedded": done,
        "skipped": len(tracks) - len(todo),
        "failed": [(p, r) for p, r in failures],
        "cancelled": cancelled,
        "active": activate and not cancelled,
        "seconds": time.perf_counter() - t0,
        "tracks": len(tracks),
        "vectors": np.int64(done + len(have)).item(),
    }


def _embed_track(lib: OpenLibrary, embedder: Embedder, model_id: int, track_id: int, cached: CachedMel) -> None:
    """Store a track's segment and track vectors, from its cached frames, as a scan would."""
    segs, starts = cached.segments(embedder.fe)
    with torch.inference_mode():
        vecs = embedder.embed_segments(segs)
    vec = embedder.track_vector(vecs)
    with lib.db.session() as s:
        repo.save_embedding(s, track_id, model_id, vec, vecs, starts)


def _reading(progress: ProgressFn | None, offset: int, total: int, clock: EtaClock) -> ProgressFn | None:
    """Reading a batch of tracks (mostly from the mel cache), reported as the first half
    of the batch's share of the whole library's one "reembed" stage."""
    if progress is None:
        return None

    def on(p):
        at = offset + p.done // 2
        current = p.current if "to_decode" in p.info else f"reading {p.current}"  # a count, or a file
        progress(
            replace(p, stage="reembed", done=at, total=total, current=current, eta_s=clock.eta(at) if at else None)
        )

    return on


def activate_model(lib: OpenLibrary, model_id: int) -> Model:
    """Make a registered model active in the database and in ``lib``, and build its index."""
    with lib.db.session() as s:
        row = s.get(Model, model_id)
        if row is None:
            raise NotFound(f"no model with id {model_id} in this library")
        repo.set_active(s, row)
        s.flush()
    lib.activate(row)  # switches model, index and caches of this Library object
    lib.index.ann()  # builds the model's index from its stored vectors
    lib.index.save()
    return row


def model_vectors(lib: OpenLibrary, model_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(track ids, track vectors) a model holds for the library's analysed tracks."""
    with lib.db.session() as s:
        ids, X, _, _ = repo.vectors(s, model_id, status="ok")
    return ids, X

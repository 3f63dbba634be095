"""The Library facade: the one API the CLI, the GUI and the trainer use.

Qt-free. Opens the database (the source of truth), the active model and its HNSW index,
and offers scan / status / similar / export / failures / purge.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select

from musicsim import paths
from musicsim.config import Config
from musicsim.errors import ModelMismatch, NotFound
from musicsim.jobs import CancelToken, ProgressFn
from musicsim.store import repo
from musicsim.store.db import Database
from musicsim.store.schema import Embedding, Failure, Model, Track

log = logging.getLogger("musicsim")

UNTRAINED_WARNING = (
    "the active model is untrained (seeded random weights): similarity is only a rough "
    "timbre match until a trained model is installed or `python -m trainer` is run"
)


@dataclass
class Hit:
    track: Track
    distance: float


class Library:
    """An open music library. ``writable=False`` opens for reading alongside a writer."""

    def __init__(self, db_path: str | os.PathLike | None = None, *, config: Config | None = None,
                 writable: bool = True) -> None:
        self.db = Database(db_path or paths.default_db(), writable=writable)
        self.config = config or Config.load()
        self._loaded = None
        self._ann = None
        # The GUI reads from the main thread while a worker scans: the index is guarded.
        self._lock = threading.RLock()
        self._organizer = None
        # (old, new) model names when this opening switched the library from a built-in model
        # that this musicsim no longer ships to the one it ships now: its tracks need analysing again
        self.replaced_default: tuple[str, str] | None = None
        self.model_row = self._ensure_model()

    # --- model ------------------------------------------------------------------------------

    def _ensure_model(self) -> Model:
        with self.db.session() as s:
            row = repo.active_model(s)
        if row is not None:
            if not row.trained and self.db.writable:
                self._offer_default()
            elif row.path is None and self.db.writable:
                row = self._follow_shipped_default(row)
            return row
        from musicsim.model.checkpoint import default_model

        loaded = default_model()
        self._loaded = loaded
        return self.register(loaded, activate=True)

    def _offer_default(self) -> None:
        """A library still on the untrained seed learns of a shipped trained default (not activated:
        switching means re-analysing every track, the user's choice)."""
        from musicsim.model.checkpoint import DEFAULT_RESOURCE, default_model

        if DEFAULT_RESOURCE.exists():
            self.register(default_model())

    def _follow_shipped_default(self, row: Model) -> Model:
        """The active model is the built-in one (no path). If this musicsim ships another (it was
        upgraded), the old weights are gone: the shipped model becomes active and the library's
        tracks are analysed again with it (``replaced_default``; the next scan does it). The old
        model stays listed, so its name and figures are not lost."""
        from musicsim.model.checkpoint import default_model

        loaded = default_model()
        if loaded.checksum == row.checksum:
            self._loaded = loaded  # the active model's network: not read again on first use
            return row
        if not loaded.trained:
            return row
        new = self.register(loaded, activate=True)
        self._loaded = loaded
        self.replaced_default = (row.name, new.name)
        log.warning("this musicsim ships another built-in model (%s instead of %s): it is now active, and the "
                    "library's tracks are analysed again with it", new.name, row.name)
        return new

    def register(self, loaded, *, activate: bool = False) -> Model:
        from musicsim.model.checkpoint import DEFAULT_RESOURCE

        self.db.require_writer()
        # The shipped model is "built in" (no path): found again wherever musicsim is installed.
        path = None if loaded.path and Path(loaded.path).resolve() == DEFAULT_RESOURCE else loaded.path
        with self.db.session() as s:
            row = repo.register_model(s, name=loaded.name, checksum=loaded.checksum, path=path,
                                      frontend=loaded.frontend.to_dict(), config=loaded.config.to_dict(),
                                      trained=loaded.trained, metrics=loaded.metrics)
            if activate:
                repo.set_active(s, row)
            return row

    @property
    def loaded(self):
        """The active model's network and front end (loaded on first use)."""
        if self._loaded is None or self._loaded.checksum != self.model_row.checksum:
            self._loaded = self._load_row(self.model_row)
        return self._loaded

    def _load_row(self, row: Model):
        from musicsim.model.checkpoint import default_model, load_model, untrained_model

        if row.path:
            loaded = load_model(row.path)
            if loaded.checksum != row.checksum:
                raise ModelMismatch(f"the weights of model '{row.name}' changed on disk (checksum {loaded.checksum}, "
                                    f"expected {row.checksum})", path=row.path)
            return loaded
        loaded = default_model()
        if loaded.checksum != row.checksum:
            loaded = untrained_model()
        if loaded.checksum != row.checksum:
            raise ModelMismatch(f"model '{row.name}' was built into an earlier version of musicsim and is no "
                                f"longer shipped; open the library for writing (the app, or `musicsim scan`) "
                                f"to switch to the built-in model of this version")
        return loaded

    def embedder(self):
        from musicsim.model.embed import Embedder

        return Embedder(self.loaded, device=self.config.device, batch_size=self.config.batch_size)

    def models(self) -> list[tuple[str, bool, bool]]:
        """(name, trained, active) of every model this library knows, oldest first."""
        with self.db.session() as s:
            return [(m.name, bool(m.trained), bool(m.active)) for m in repo.list_models(s)]

    def use_model(self, name: str) -> int:
        """Make a known model active; return how many tracks still need analysis with it."""
        self.db.require_writer()
        with self.db.session() as s:
            row = repo.model_by_name(s, name)
            if row is None:
                raise NotFound(f"no model named '{name}' (see `musicsim model list`)")
        self._load_row(row)  # refuse a model whose weights are gone or changed before switching
        with self.db.session() as s:
            row = repo.model_by_name(s, name)
            repo.set_active(s, row)
        self.activate(row)
        with self.db.session() as s:
            done = len(repo.embedded_track_ids(s, row.id))
        return max(0, self.status()["tracks"] - done)

    def activate(self, row: Model) -> None:
        """Switch this Library object to ``row`` (already marked active in the database)."""
        with self._lock:
            self.save_index()
            self.model_row = row
            self._loaded = None
            self._ann = None
            self._organizer = None

    @property
    def trained(self) -> bool:
        return bool(self.model_row.trained)

    @property
    def writable(self) -> bool:
        """Whether this opening may change the library (False: another musicsim holds it)."""
        return bool(self.db.writable)

    @property
    def path(self) -> Path:
        """The library's database file."""
        return Path(self.db.path)

    def set_config(self, config: Config) -> None:
        """Use new settings from now on (the next scan, query or training reads them)."""
        self.config = config

    # --- index ------------------------------------------------------------------------------

    def index_path(self) -> Path:
        return paths.index_dir(self.db.path) / f"{self.model_row.name}.hnsw"

    def ann(self):
        """The HNSW index of the active model, verified against the database on first use."""
        with self._lock:
            return self._open_ann()

    def _open_ann(self):
        if self._ann is None:
            from musicsim.index import ann

            self._ann = ann.load(self.index_path(), dim=self._track_dim(), checksum=self.model_row.checksum)
            if self._ann is None:
                with self.db.session() as s:
                    ids, X, _, _ = repo.vectors(s, self.model_row.id, status="ok")
                    db_max = repo.max_seq(s)
                self._ann = self._fresh_ann(ids, X, db_max)
                self.save_index()
            else:
                self._sync(full=True)
        return self._ann

    def _track_dim(self) -> int:
        from musicsim.model.resnet import ModelConfig

        return ModelConfig.from_dict(self.model_row.config).track_dim

    def _fresh_ann(self, ids: np.ndarray, X: np.ndarray, db_max: int):
        """A new index of the live vectors ``X`` of ``ids`` (every one the database holds up to
        ``db_max``), with library statistics fitted on them."""
        from musicsim.index import ann
        from musicsim.index.norm import LibraryNorm

        dim = self._track_dim()
        norm = LibraryNorm.fit(X) if len(ids) else LibraryNorm.identity(dim)
        idx = ann.AnnIndex.empty(dim, self.model_row.checksum, capacity=len(ids), norm=norm)
        if len(ids):
            idx.add(ids, norm.apply(X), db_max)
        idx.seq = db_max
        idx.dirty = True
        return idx

    def sync_index(self, *, full: bool = False) -> None:
        """Bring the index in step with the database (the source of truth). A full sync also
        refits the library statistics, rebuilding the index, once the library has grown or
        shrunk by a quarter since they were fitted."""
        with self._lock:
            if self._ann is not None:
                self._sync(full)

    def _sync(self, full: bool) -> None:
        idx = self._ann
        with self.db.session() as s:
            ids, X, seqs, live = repo.vectors(s, self.model_row.id, since_seq=idx.seq)
            db_max = repo.max_seq(s)
            every = repo.vectors(s, self.model_row.id, status="ok")[:2] if full else None
        if len(ids):
            idx.add(ids[live], idx.norm.apply(X[live]), int(seqs.max()))
            idx.remove(ids[~live])
        if full:
            idx.remove(idx.live_ids() - set(every[0].tolist()))
        idx.seq = max(idx.seq, db_max)
        if full and idx.norm.stale(len(idx)):
            # refit on the vectors just read (the organizer's cache is keyed by the statistics' tag)
            self._ann = self._fresh_ann(*every, db_max)
        if self._ann.dirty:
            self.save_index()

    def save_index(self) -> None:
        with self._lock:
            if self._ann is not None and self._ann.dirty and self.db.writable:
                self._ann.save(self.index_path())

    def index_add(self, ids: np.ndarray, X: np.ndarray, seq: int) -> None:
        """Add or replace the stored track vectors ``X`` of ``ids`` in the index."""
        with self._lock:
            idx = self._open_ann()
            idx.add(ids, idx.norm.apply(X), seq)

    def library_norm(self):
        """The library statistics the index's (and :meth:`embeddings`') vectors are made with."""
        with self._lock:
            return self._open_ann().norm

    @property
    def organizer(self):
        """Playlists, ordering, clusters, outliers and duplicates (see musicsim.library.organizing)."""
        if self._organizer is None:
            from musicsim.library.organizing import Organizer

            self._organizer = Organizer(self)
        return self._organizer

    def warm_up_training(self) -> None:
        """Import what training needs now (see :func:`musicsim.library.finetune.warm_up`)."""
        from musicsim.library.finetune import warm_up

        warm_up()

    def train(self, *, minutes: float, device: str = "auto", progress: ProgressFn | None = None,
              cancel: CancelToken | None = None, **options) -> dict:
        """Fine-tune the model on this library (the trainer, in this thread), re-embed every
        track with it and make it active; the previous model stays selectable."""
        from musicsim.library.finetune import train_library

        return train_library(self, minutes=minutes, device=device, progress=progress, cancel=cancel, **options)

    # --- scanning -------------------------------------------------------------------------

    def scan(self, paths_: list[str], *, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
             retry_failed: bool = False):
        from musicsim.library.scan import scan

        self.db.require_writer()
        self.ann()
        return scan(self, paths_, progress=progress, cancel=cancel, retry_failed=retry_failed)

    def record_failure(self, path: str, stage: str, reason: str, size: int | None, mtime: float | None) -> None:
        with self.db.session() as s:
            repo.record_failure(s, path=path, stage=stage, reason=reason, size=size, mtime=mtime)
        self.sync_index()

    def failures(self) -> list[Failure]:
        with self.db.session() as s:
            return list(s.scalars(select(Failure).order_by(Failure.path)))

    def purge(self) -> int:
        """Delete missing tracks (and their embeddings) and failures of files that are gone."""
        self.db.require_writer()
        with self.db.session() as s:
            gone = list(s.scalars(select(Track.id).where(Track.status == "missing")))
            for chunk in range(0, len(gone), 500):
                s.execute(delete(Track).where(Track.id.in_(gone[chunk : chunk + 500])))
            for f in list(s.scalars(select(Failure))):
                if not os.path.exists(f.path):
                    s.delete(f)
        with self._lock:
            if self._ann is not None:
                self._ann.remove(gone)
        self.save_index()
        return len(gone)

    def prune_mel_cache(self) -> tuple[int, int]:
        """Delete log-Mel cache entries of files that are gone or changed since they were
        decoded; returns (entries removed, bytes freed). The cache is shared by every library
        on this machine; entries of unchanged files stay."""
        from musicsim.audio.features import FrontEnd
        from musicsim.melcache import MelStore

        return MelStore(None, FrontEnd()).prune()  # pruning reads each entry's own file identity

    # --- queries ----------------------------------------------------------------------------

    def resolve(self, query: str) -> list[Track]:
        with self.db.session() as s:
            q = query
            if os.path.exists(query):
                q = os.path.abspath(query)
            found = repo.find_tracks(s, q)
        if not found:
            raise NotFound(f"no track matches '{query}'")
        return found

    def ann_query(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self._open_ann().query(vector, k, ef=self.config.ef_search)

    def ann_knn_all(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self._open_ann().knn_all(X, k, ef=self.config.ef_search)

    def vector(self, track_id: int) -> np.ndarray:
        """A track's library-space vector (as the index holds it)."""
        with self.db.session() as s:
            emb = s.get(Embedding, (track_id, self.model_row.id))
            if emb is None:
                raise NotFound(f"track {track_id} has no embedding for model '{self.model_row.name}'")
            raw = np.frombuffer(emb.vector, np.float32)
        return self.library_norm().apply(raw)

    def similar(self, track_id: int, n: int = 10) -> list[Hit]:
        ids, dists = self.ann_query(self.vector(track_id), n + 1)
        keep = [(int(i), float(d)) for i, d in zip(ids, dists) if int(i) != track_id][:n]
        with self.db.session() as s:
            tracks = {t.id: t for t in s.scalars(select(Track).where(Track.id.in_([i for i, _ in keep])))}
        return [Hit(tracks[i], d) for i, d in keep if i in tracks]

    def tracks(self, *, status: str | None = "ok") -> list[Track]:
        with self.db.session() as s:
            q = select(Track).order_by(Track.id)
            if status:
                q = q.where(Track.status == status)
            return list(s.scalars(q))

    def track_rows(self, *, since_id: int = 0) -> list[tuple]:
        """Analysed tracks with id > since_id as plain tuples, one query, ordered by id:
        (id, title, artist, album, genre, duration, format, path, year)."""
        with self.db.session() as s:
            return [tuple(r) for r in s.execute(
                select(Track.id, Track.title, Track.artist, Track.album, Track.genre, Track.duration, Track.format,
                       Track.path, Track.year).where(Track.status == "ok", Track.id > since_id).order_by(Track.id))]

    def remove_root(self, path: str) -> None:
        """Forget a library folder (its tracks stay until purged or re-scanned elsewhere)."""
        self.db.require_writer()
        with self.db.session() as s:
            repo.remove_root(s, path)

    def embeddings(self, *, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(track ids, unit vectors) of every live track for the active model: library-space
        vectors, as similarity, clusters and outliers compare them (``raw``: as the model
        gave them, as the database stores them)."""
        with self.db.session() as s:
            ids, X, _, _ = repo.vectors(s, self.model_row.id, status="ok")
        if raw or len(ids) == 0:
            return ids, X
        return ids, self.library_norm().apply(X)

    def status(self) -> dict:
        with self.db.session() as s:
            counts = repo.counts(s)
            models = [(m.name, m.trained, m.active) for m in repo.list_models(s)]
            roots = repo.roots(s)
        return {"database": str(self.db.path), "model": self.model_row.name, "trained": self.trained,
                "checksum": self.model_row.checksum, "tracks": counts.get("ok", 0), "failed": counts.get("failed", 0),
                "missing": counts.get("missing", 0), "degraded": counts.get("degraded", 0),
                "failures": counts.get("failures", 0), "models": models, "roots": roots,
                "indexed": len(self.ann()), "warning": self._warning(models)}

    def _warning(self, models: list) -> str | None:
        if self.trained:
            return None
        better = [name for name, trained, _ in models if trained]
        hint = f"; `musicsim model use {better[-1]}` switches to a trained one" if better else ""
        return UNTRAINED_WARNING + hint

    def export(self, out: str | os.PathLike, *, fmt: str = "npz") -> int:
        ids, X = self.embeddings()
        with self.db.session() as s:
            path_of = dict(s.execute(select(Track.id, Track.path)).all())
        track_paths = np.array([path_of[int(i)] for i in ids], dtype=str)
        out = Path(out)
        if fmt == "npz":
            with open(out, "wb") as f:
                np.savez(f, paths=track_paths, embeddings=X.astype(np.float32), track_ids=ids,
                         model=np.array(self.model_row.name))
        else:
            with open(out, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["path", "model"] + [f"e{i}" for i in range(X.shape[1] if len(X) else 0)])
                for p, v in zip(track_paths, X):
                    w.writerow([p, self.model_row.name] + [f"{x:.6f}" for x in v])
        return len(ids)

    def close(self) -> None:
        try:
            self.save_index()
        finally:
            self.db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""The keeper of one library's HNSW index for the active model: it owns the index and its lock.

The database is the source of truth; the index is derived and rebuildable. Vectors enter it in
library space (:class:`~musicsim.index.norm.LibraryNorm`, fitted on the library's own vectors),
and every change in the database is numbered (``seq``), so the index knows how far it is in step.
The GUI reads from the main thread while a worker scans: every access goes through the lock.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicsim import paths
from musicsim.store import repo
from musicsim.store.db import Database
from musicsim.store.schema import Model

if TYPE_CHECKING:
    from musicsim.index.ann import AnnIndex
    from musicsim.index.norm import LibraryNorm


class IndexKeeper:
    """The index of model ``row`` over the live tracks of ``db``, opened (and verified) on first use."""

    def __init__(self, db: Database, row: Model) -> None:
        self.db = db
        self.row = row
        self.lock = threading.RLock()
        self._ann: AnnIndex | None = None

    @property
    def path(self) -> Path:
        return paths.index_dir(self.db.path) / f"{self.row.name}.hnsw"

    def ann(self) -> AnnIndex:
        """The index, loaded from disk and brought in step with the database, or built afresh."""
        with self.lock:
            return self._open()

    def _open(self) -> AnnIndex:
        if self._ann is not None:
            return self._ann
        from musicsim.index import ann
        from musicsim.library.models import track_dim

        self._ann = ann.load(self.path, dim=track_dim(self.row), checksum=self.row.checksum)
        if self._ann is None:
            with self.db.session() as s:
                ids, X, _, _ = repo.vectors(s, self.row.id, status="ok")
                db_max = repo.max_seq(s)
            self._ann = self._fresh(ids, X, db_max)
            self.save()
        else:
            self._sync(full=True)
        return self._ann

    def _fresh(self, ids: np.ndarray, X: np.ndarray, db_max: int) -> AnnIndex:
        """A new index of the live vectors ``X`` of ``ids`` (every one the database holds up to
        ``db_max``), with library statistics fitted on them."""
        from musicsim.index import ann
        from musicsim.index.norm import LibraryNorm
        from musicsim.library.models import track_dim

        dim = track_dim(self.row)
        norm = LibraryNorm.fit(X) if len(ids) else LibraryNorm.identity(dim)
        idx = ann.AnnIndex.empty(dim, self.row.checksum, capacity=len(ids), norm=norm)
        if len(ids):
            idx.add(ids, norm.apply(X), db_max)
        idx.seq = db_max
        idx.dirty = True
        return idx

    def sync(self, *, full: bool = False) -> None:
        """Bring an open index in step with the database. A full sync also refits the library
        statistics, rebuilding the index, once the library has grown or shrunk by a quarter."""
        with self.lock:
            if self._ann is not None:
                self._sync(full)

    def _sync(self, full: bool) -> None:
        idx = self._ann
        assert idx is not None
        with self.db.session() as s:
            ids, X, seqs, live = repo.vectors(s, self.row.id, since_seq=idx.seq)
            db_max = repo.max_seq(s)
            every = repo.vectors(s, self.row.id, status="ok")[:2] if full else None
        if len(ids):
            idx.add(ids[live], idx.norm.apply(X[live]), int(seqs.max()))
            idx.remove(ids[~live])
        if every is not None:
            idx.remove(idx.live_ids() - set(every[0].tolist()))
        idx.seq = max(idx.seq, db_max)
        if every is not None and idx.norm.stale(len(idx)):
            self._ann = idx = self._fresh(every[0], every[1], db_max)
        if idx.dirty:
            self.save()

    def save(self) -> None:
        with self.lock:
            if self._ann is not None and self._ann.dirty and self.db.writable:
                self._ann.save(self.path)

    def add(self, ids: np.ndarray, X: np.ndarray, seq: int) -> None:
        """Add or replace the stored (raw) track vectors ``X`` of ``ids``."""
        with self.lock:
            idx = self._open()
            idx.add(ids, idx.norm.apply(X), seq)

    def remove(self, ids: list[int]) -> None:
        with self.lock:
            if self._ann is not None:
                self._ann.remove(ids)

    @property
    def norm(self) -> LibraryNorm:
        """The library statistics the index's vectors are made with."""
        with self.lock:
            return self._open().norm

    def vectors(self, *, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(track ids, unit vectors) of every live track: library-space vectors, as similarity,
        clusters and outliers compare them (``raw``: as the model gave them and the database stores them)."""
        with self.db.session() as s:
            ids, X, _, _ = repo.vectors(s, self.row.id, status="ok")
        if raw or len(ids) == 0:
            return ids, X
        return ids, self.norm.apply(X)

    def knn_all(self, X: np.ndarray, k: int, *, ef: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate k nearest (each row itself first) of every row of ``X``."""
        with self.lock:
            return self._open().knn_all(X, k, ef=ef)

    def __len__(self) -> int:
        return len(self.ann())

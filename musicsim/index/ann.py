"""HNSW index per model (voyager; cosine, id = track id), kept in step with the database.

The database is the source of truth. The index holds library-space vectors (the stored
track vectors z-scored over the library, :mod:`musicsim.index.norm`). Beside ``<model>.hnsw``
a small JSON sidecar records the model checksum, the library statistics those vectors were
made with, the labels marked deleted, the highest embedding ``seq`` the index holds, and the
index file's size. On open, :func:`open_index` checks the sidecar and
catches up: vectors written after ``seq`` are (re)added, labels gone from the database are
marked deleted. A missing, unreadable or foreign index is rebuilt from the database (so is an
index hnswlib wrote before the move to voyager: docs/design.md, "Index").

voyager is Spotify's HNSW library (built on hnswlib's algorithm) with wheels for every
platform, so installing musicsim needs no compiler; recall and speed against hnswlib at
100,000 tracks are in docs/benchmarks.md ("Packaging").
"""

from __future__ import annotations

import errno
import glob
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import voyager

from musicsim.fsutil import atomic_write_bytes
from musicsim.index.norm import LibraryNorm

M = 16
EF_CONSTRUCTION = 200


@dataclass
class AnnIndex:
    dim: int
    checksum: str
    index: voyager.Index
    norm: LibraryNorm
    deleted: set[int] = field(default_factory=set)
    seq: int = 0
    dirty: bool = False

    @classmethod
    def empty(cls, dim: int, checksum: str, capacity: int = 1024, norm: LibraryNorm | None = None) -> AnnIndex:
        """An empty index whose vectors will be made with ``norm`` (default: identity)."""
        idx = voyager.Index(
            voyager.Space.Cosine,
            num_dimensions=dim,
            M=M,
            ef_construction=EF_CONSTRUCTION,
            max_elements=max(capacity, 16),
            random_seed=1,
        )
        return cls(dim=dim, checksum=checksum, index=idx, norm=norm if norm is not None else LibraryNorm.identity(dim))

    def __len__(self) -> int:
        return self.index.num_elements - len(self.deleted)

    def live_ids(self) -> set[int]:
        return set(int(i) for i in self.index.ids) - self.deleted

    def add(self, ids: np.ndarray, vectors: np.ndarray, seq: int = 0) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        need = self.index.num_elements + len(ids)
        if need > self.index.max_elements:
            self.index.resize(max(need, 2 * self.index.max_elements))
        for i in ids:  # a re-added label was marked deleted before: bring it back
            if int(i) in self.deleted:
                self.index.unmark_deleted(int(i))
                self.deleted.discard(int(i))
        # Adding an existing label replaces its vector (a re-analysed track).
        self.index.add_items(np.asarray(vectors, dtype=np.float32), ids=[int(i) for i in ids])
        self.seq = max(self.seq, int(seq))
        self.dirty = True

    def remove(self, ids) -> None:
        present = set(int(i) for i in self.index.ids)
        for i in ids:
            i = int(i)
            if i in present and i not in self.deleted:
                self.index.mark_deleted(i)
                self.deleted.add(i)
                self.dirty = True

    def query(self, vector: np.ndarray, k: int, *, ef: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Nearest ``k`` live tracks: (ids, cosine distances)."""
        k = min(k, len(self))
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        labels, dists = self.index.query(np.asarray(vector, dtype=np.float32).reshape(1, -1), k=k, query_ef=max(ef, k))
        return labels[0].astype(np.int64), dists[0]

    def knn_all(self, X: np.ndarray, k: int, *, ef: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Nearest ``k`` live tracks of every row of ``X`` at once (all cores): (ids, distances)."""
        k = min(k, len(self))
        labels, dists = self.index.query(np.asarray(X, dtype=np.float32), k=k, num_threads=-1, query_ef=max(ef, k))
        return labels.astype(np.int64), dists

    def save(self, path: Path) -> None:
        """Atomically write the index, then its sidecar (which names the index's size)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        for name in (path.name, sidecar(path).name):  # left behind by a save that was killed
            for pattern in (glob.escape(name) + ".*.tmp", "." + glob.escape(name) + ".*.tmp"):
                for stale in path.parent.glob(pattern):
                    stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            data = self.index.as_bytes()
            with open(tmp, "wb") as f:  # Python's own write: a full disk raises, never a short file
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            size = os.path.getsize(tmp)
            if size != len(data):
                raise OSError(errno.ENOSPC, "the index file was written short (disk full?)", tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        meta = {
            "dim": self.dim,
            "checksum": self.checksum,
            "seq": self.seq,
            "deleted": sorted(self.deleted),
            "size": size,
            "norm": self.norm.to_dict(),
        }
        atomic_write_bytes(sidecar(path), json.dumps(meta).encode())
        self.dirty = False


def sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def load(path: Path, *, dim: int, checksum: str) -> AnnIndex | None:
    """The saved index, or None when it is missing, damaged, belongs to other weights or
    predates library normalisation."""
    try:
        meta = json.loads(sidecar(path).read_text())
        if meta["dim"] != dim or meta["checksum"] != checksum or os.path.getsize(path) != meta["size"]:
            return None
        norm = LibraryNorm.from_dict(meta["norm"], dim)
        idx = voyager.Index.load(str(path))
        if idx.num_dimensions != dim or idx.space != voyager.Space.Cosine:
            return None
        deleted = set(int(i) for i in meta["deleted"])
        for i in deleted:
            try:
                idx.mark_deleted(i)  # the file keeps delete marks; this is belt and braces
            except (RuntimeError, KeyError, ValueError):
                pass
        return AnnIndex(dim=dim, checksum=checksum, index=idx, norm=norm, deleted=deleted, seq=int(meta["seq"]))
    except Exception:  # noqa: BLE001 (any failure to read it, voyager's included, means: rebuild it)
        return None

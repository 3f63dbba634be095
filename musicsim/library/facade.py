"""The Library facade: the one API the CLI, the GUI and ``python -m trainer``'s library mode use.

Qt-free and thin: it opens the database (the source of truth), the model registry and the
index keeper, and hands each request to the module that does the work (``models``, ``index``,
``scan``, ``organizing``, ``finetune``, ``export``; queries in :mod:`musicsim.store.repo`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicsim import paths
from musicsim.config import Config
from musicsim.errors import NotFound
from musicsim.jobs import CancelToken, ProgressFn
from musicsim.library.index import IndexKeeper
from musicsim.library.models import ModelRegistry
from musicsim.scan.walker import exists, under
from musicsim.store import repo
from musicsim.store.db import Database
from musicsim.store.schema import Failure, Model, Track

if TYPE_CHECKING:
    from musicsim.library.organizing import Organizer
    from musicsim.model.checkpoint import LoadedModel
    from musicsim.model.embed import Embedder
    from musicsim.scan.pipeline import ScanReport

UNTRAINED_WARNING = (
    "the active model is untrained (seeded random weights): similarity is only a rough "
    "timbre match until a trained model is installed or `python -m trainer` is run"
)


@dataclass(frozen=True)
class Purged:
    """What :meth:`Library.purge` did: tracks forgotten, and the library folders not there now
    (an unmounted drive) whose missing tracks it kept."""

    count: int
    kept_roots: list[str]


@dataclass
class Hit:
    track: Track
    distance: float


class Library:
    """An open music library. ``writable=False`` opens for reading alongside a writer."""

    def __init__(
        self, db_path: str | os.PathLike | None = None, *, config: Config | None = None, writable: bool = True
    ) -> None:
        self.db = Database(db_path or paths.default_db(), writable=writable)
        self.config = config or Config.load()
        self.registry = ModelRegistry(self.db)
        self.index = IndexKeeper(self.db, self.registry.row)
        self._organizer: Organizer | None = None

    # --- the library itself ------------------------------------------------------------------

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
        self._organizer = None

    # --- models (musicsim.library.models) ------------------------------------------------------

    @property
    def model_row(self) -> Model:
        return self.registry.row

    @property
    def loaded(self) -> LoadedModel:
        return self.registry.loaded

    @property
    def trained(self) -> bool:
        return bool(self.model_row.trained)

    @property
    def replaced_default(self) -> tuple[str, str] | None:
        return self.registry.replaced_default

    def register(self, loaded: LoadedModel, *, activate: bool = False) -> Model:
        return self.registry.register(loaded, activate=activate)

    def embedder(self) -> Embedder:
        return self.registry.embedder(self.config)

    def models(self) -> list[tuple[str, bool, bool]]:
        """(name, trained, active) of every model this library knows, oldest first."""
        return self.registry.listing()

    def use_model(self, name: str) -> int:
        """Make a known model active; return how many tracks still need analysis with it."""
        row = self.registry.make_active(name)
        self.activate(row)
        with self.db.session() as s:
            done = len(repo.embedded_track_ids(s, row.id))
        return max(0, self.status()["tracks"] - done)

    def activate(self, row: Model) -> None:
        """Switch this Library object to ``row`` (already marked active in the database)."""
        with self.index.lock:
            self.index.save()
            self.registry.follow(row)
            self.index = IndexKeeper(self.db, row)
            self._organizer = None

    # --- the index (musicsim.library.index: lib.index) ----------------------------------------

    def embeddings(self, *, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(track ids, unit vectors) of every live track (see :meth:`IndexKeeper.vectors`)."""
        return self.index.vectors(raw=raw)

    # --- work -------------------------------------------------------------------------------

    @property
    def organizer(self) -> Organizer:
        """Playlists, ordering, similarity, clusters, outliers and duplicates (musicsim.library.organizing)."""
        if self._organizer is None:
            from musicsim.library.organizing import Organizer

            self._organizer = Organizer(self.db, self.index, self.config)
        return self._organizer

    def warm_up_training(self) -> None:
        """Import what training needs now (see :func:`musicsim.library.finetune.warm_up`)."""
        from musicsim.library.finetune import warm_up

        warm_up()

    def train(
        self,
        *,
        minutes: float,
        device: str = "auto",
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        **options,
    ) -> dict:
        """Fine-tune the model on this library (the trainer, in this thread), re-embed every
        track with it and make it active; the previous model stays selectable."""
        from musicsim.library.finetune import train_library

        return train_library(self, minutes=minutes, device=device, progress=progress, cancel=cancel, **options)

    def scan(
        self,
        paths_: list[str],
        *,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
        retry_failed: bool = False,
    ) -> ScanReport:
        from musicsim.library.scan import scan

        self.db.require_writer()
        self.index.ann()
        return scan(
            paths_,
            db=self.db,
            models=self.registry,
            index=self.index,
            config=self.config,
            progress=progress,
            cancel=cancel,
            retry_failed=retry_failed,
        )

    def unreachable_roots(self) -> list[str]:
        """Library folders that are not there now, or empty (an unmounted drive, a network share
        that is down): their tracks are missing, not deleted, and :meth:`purge` keeps them."""
        with self.db.session() as s:
            roots = repo.roots(s)
        return [r for r in roots if not _reachable(r)]

    def purge(self) -> Purged:
        """Delete missing tracks (and their embeddings) and failures of files that are gone,
        except under a library folder that is not there now (:meth:`unreachable_roots`)."""
        self.db.require_writer()
        away = self.unreachable_roots()
        with self.db.session() as s:
            gone = repo.purge_missing(
                s, exists, lambda path: under(path, away)
            )  # a very long path is not a missing one
        self.index.remove(gone)
        self.index.save()
        return Purged(len(gone), away)

    def prune_mel_cache(self) -> tuple[int, int]:
        """Delete log-Mel cache entries of files that are gone or changed since they were
        decoded; returns (entries removed, bytes freed). The cache is shared by every library
        on this machine; entries of unchanged files stay."""
        from musicsim.audio.features import FrontEnd
        from musicsim.melcache import MelStore

        return MelStore(None, FrontEnd()).prune()  # pruning reads each entry's own file identity

    def remove_root(self, path: str) -> None:
        """Forget a library folder (its tracks stay until purged or re-scanned elsewhere)."""
        self.db.require_writer()
        with self.db.session() as s:
            repo.remove_root(s, path)

    def export(self, out: str | os.PathLike, *, fmt: str = "npz") -> int:
        from musicsim.library.export import write_vectors

        ids, X = self.embeddings()
        with self.db.session() as s:
            path_of = repo.track_paths(s)
        return write_vectors(
            out, ids=ids, X=X, paths=[path_of[int(i)] for i in ids], model=self.model_row.name, fmt=fmt
        )

    # --- queries ----------------------------------------------------------------------------

    def resolve(self, query: str) -> list[Track]:
        """Tracks matching an id, text, or a path: any path that reaches an analysed file (a
        symlink or a hard link to it) resolves to that file's track."""
        found = self._by_file(query) if os.path.exists(query) else []
        if not found:
            with self.db.session() as s:
                found = repo.find_tracks(s, query)
        if not found:
            raise NotFound(f"no track matches '{query}'")
        return found

    def _by_file(self, query: str) -> list[Track]:
        """The track of the file ``query`` reaches: by its path, its real path, or its identity (device, inode)."""
        with self.db.session() as s:
            for path in dict.fromkeys((os.path.abspath(query), os.path.realpath(query))):
                found = repo.find_tracks(s, path)
                if found and found[0].path == path:
                    return found
            st = os.stat(query)
            for track in repo.tracks_of_size(s, st.st_size):
                try:
                    if os.path.samefile(track.path, query):
                        return [track]
                except OSError:
                    continue
        return []

    def vector(self, track_id: int) -> np.ndarray:
        """A track's library-space vector (as the index holds it)."""
        with self.db.session() as s:
            raw = repo.stored_vector(s, track_id, self.model_row.id)
        if raw is None:
            raise NotFound(f"track {track_id} has no embedding for model '{self.model_row.name}'")
        return self.index.norm.apply(raw)

    def similar(self, track_id: int, n: int = 10) -> list[Hit]:
        """The ``n`` tracks nearest to ``track_id`` (the same ranking as the app's Sort by similarity)."""
        self.vector(track_id)  # a clear error for a track without a vector
        keep = self.organizer.rank([track_id], limit=n)
        with self.db.session() as s:
            tracks = repo.tracks_by_id(s, [i for i, _ in keep])
        return [Hit(tracks[i], d) for i, d in keep if i in tracks]

    def tracks(self, *, status: str | None = "ok") -> list[Track]:
        with self.db.session() as s:
            return repo.tracks(s, status=status)

    def track_rows(self, *, since_id: int = 0) -> list[tuple]:
        """Analysed tracks with id > since_id as plain tuples (see :func:`musicsim.store.repo.track_rows`)."""
        with self.db.session() as s:
            return repo.track_rows(s, since_id=since_id)

    def failures(self) -> list[Failure]:
        with self.db.session() as s:
            return repo.failures(s)

    def status(self) -> dict:
        with self.db.session() as s:
            counts = repo.counts(s)
            roots = repo.roots(s)
        models = self.models()
        return {
            "database": str(self.db.path),
            "model": self.model_row.name,
            "trained": self.trained,
            "checksum": self.model_row.checksum,
            "tracks": counts.get("ok", 0),
            "failed": counts.get("failed", 0),
            "missing": counts.get("missing", 0),
            "degraded": counts.get("degraded", 0),
            "failures": counts.get("failures", 0),
            "models": models,
            "roots": roots,
            "indexed": len(self.index),
            "warning": self._warning(models),
        }

    def _warning(self, models: list) -> str | None:
        if self.trained:
            return None
        better = [name for name, trained, _ in models if trained]
        hint = f"; `musicsim model use {better[-1]}` switches to a trained one" if better else ""
        return UNTRAINED_WARNING + hint

    def close(self) -> None:
        try:
            self.index.save()
        finally:
            self.db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reachable(root: str) -> bool:
    """A library folder is there when it exists and holds something (an unmounted drive's
    mount point is often an empty folder); a file root is there when it exists."""
    try:
        if os.path.isdir(root):
            with os.scandir(root) as it:
                return any(True for _ in it)
        return os.path.exists(root)
    except OSError:
        return False

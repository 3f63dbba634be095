"""The GUI's adapter over the library facade (Qt-free, called from worker threads).

Every method returns plain Python data (tuples, dicts, numpy arrays), never ORM objects,
so nothing the main thread holds is tied to a database session or a thread.

The GUI talks to the core only through :class:`musicsim.library.Library`, its
``lib.organizer`` facade and ``lib.train``. A library opened read-only (another musicsim
holds its writer lock) can be browsed but not trained and cannot switch models, because
both write to the database; the window disables those actions and says why.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import importlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from musicsim.config import Config
    from musicsim.library import Library

READ_ONLY_TRAINING = (
    "Training is off: another musicsim is writing to this library, so it is open read-only "
    "and a new model could not be saved. Close the other one and open the library again."
)
READ_ONLY_MODELS = "Another musicsim is writing to this library (open read-only): switching models is off"

# Columns of the library table, in the order the track loader returns them.
TRACK_FIELDS = ("id", "title", "artist", "album", "genre", "duration", "format", "path", "year")


TEXT_FIELDS = ("title", "artist", "album", "genre", "format")


@dataclass
class TrackColumns:
    """A column store of track rows: one list per field, aligned, ids ascending.

    :meth:`prepare` (run in the worker that loads the rows) adds what sorting and
    filtering need, so the main thread never sorts 100,000 strings: for each text field
    the case-folded keys in sorted order and the matching row positions, and one
    case-folded search string per row. :meth:`extended` merges a batch of new rows into
    those caches by binary search instead of sorting again.
    """

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    title: list = field(default_factory=list)
    artist: list = field(default_factory=list)
    album: list = field(default_factory=list)
    genre: list = field(default_factory=list)
    duration: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    format: list = field(default_factory=list)
    path: list = field(default_factory=list)
    sorted_pos: dict = field(default_factory=dict)  # field -> positions, ascending by case-folded value (stable)
    sorted_keys: dict = field(default_factory=dict)  # field -> the case-folded values in that order
    hay: list | None = None  # per row: title, artist, album, genre, format and path, case-folded

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def prepared(self) -> bool:
        return self.hay is not None and len(self.sorted_pos) == len(TEXT_FIELDS)

    @classmethod
    def from_rows(cls, rows) -> TrackColumns:
        """Rows of (id, title, artist, album, genre, duration, format, path, ...) -> columns."""
        rows = sorted(rows, key=lambda r: r[0])
        if not rows:
            return cls()
        cols = list(zip(*rows))
        paths = list(cols[7])
        titles = [t or os.path.splitext(os.path.basename(p))[0] for t, p in zip(cols[1], paths)]
        return cls(
            ids=np.fromiter(cols[0], dtype=np.int64, count=len(rows)),
            title=titles,
            artist=[a or "" for a in cols[2]],
            album=[a or "" for a in cols[3]],
            genre=[g or "" for g in cols[4]],
            duration=np.array([np.nan if d is None else d for d in cols[5]], dtype=np.float64),
            format=[f or "" for f in cols[6]],
            path=paths,
        )

    def prepare(self) -> TrackColumns:
        for name in TEXT_FIELDS:
            keys = [v.casefold() for v in getattr(self, name)]
            order = sorted_positions(keys)
            self.sorted_pos[name] = np.asarray(order, dtype=np.int64)
            self.sorted_keys[name] = [keys[i] for i in order]
        self.hay = [
            "\t".join(v).casefold()
            for v in zip(self.title, self.artist, self.album, self.genre, self.format, self.path)
        ]
        return self

    def extended(self, new: TrackColumns) -> TrackColumns:
        """These rows followed by ``new`` (whose ids are all larger), caches merged."""
        n = len(self)
        out = TrackColumns(
            ids=np.concatenate([self.ids, new.ids]),
            title=self.title + new.title,
            artist=self.artist + new.artist,
            album=self.album + new.album,
            genre=self.genre + new.genre,
            duration=np.concatenate([self.duration, new.duration]),
            format=self.format + new.format,
            path=self.path + new.path,
        )
        if not self.prepared:
            return out
        if not new.prepared:
            new.prepare()
        for name in TEXT_FIELDS:
            keys, pos = self.sorted_keys[name], self.sorted_pos[name]
            new_keys = new.sorted_keys[name]  # sorted, so the insertion points do not decrease
            at = [bisect.bisect_right(keys, k) for k in new_keys]
            out.sorted_pos[name] = np.insert(pos, at, new.sorted_pos[name] + n)
            merged = np.insert(np.array(keys, dtype=object), at, np.array(new_keys, dtype=object))
            out.sorted_keys[name] = merged.tolist()
        out.hay = self.hay + new.hay
        return out

    def positions(self, ids) -> np.ndarray:
        """Row positions of track ids (-1 where unknown), vectorised."""
        q = np.asarray(ids, dtype=np.int64).ravel()
        if not len(self.ids) or not q.size:
            return np.full(q.size, -1, dtype=np.int64)
        at = np.searchsorted(self.ids, q)
        at = np.minimum(at, len(self.ids) - 1)
        return np.where(self.ids[at] == q, at, -1).astype(np.int64)


SORT_CHUNK = 8192


def _import_optional(name: str) -> None:
    try:
        importlib.import_module(name)
    except ImportError:  # an optional part missing only matters when it is used
        pass


def sorted_positions(keys: list[str]) -> list[int]:
    """Positions of ``keys`` in stable ascending order.

    One ``sorted()`` over 100,000 strings holds the GIL for ~0.1 s, which would freeze the
    GUI thread while a worker prepares the table; sorting chunks and merging them in
    Python (heapq.merge) lets the interpreter switch threads every few milliseconds.
    """
    n = len(keys)
    get = keys.__getitem__
    if n <= SORT_CHUNK:
        return sorted(range(n), key=get)
    chunks = [sorted(range(a, min(a + SORT_CHUNK, n)), key=get) for a in range(0, n, SORT_CHUNK)]
    return list(heapq.merge(*chunks, key=get))  # stable: ties keep chunk (= position) order


@dataclass
class ClusterData:
    ids: np.ndarray
    cluster: np.ndarray
    x: np.ndarray
    y: np.ndarray
    outlier: np.ndarray
    names: dict[int, str]

    @classmethod
    def empty(cls) -> ClusterData:
        z = np.zeros(0)
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), z, z, z, {})

    def __len__(self) -> int:
        return len(self.ids)


def track_tuple(t) -> tuple:
    return (int(t.id), t.title, t.artist, t.album, t.genre, t.duration, t.format, t.path, t.year)


class Backend:
    """What the GUI may ask of the library. Call from worker threads (see workers.py)."""

    def __init__(self, lib: Library) -> None:
        self.lib = lib

    @property
    def org(self):
        return self.lib.organizer  # re-created by the Library when the active model changes

    # --- capabilities -----------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        return self.lib.writable

    def set_config(self, config: Config) -> None:
        self.lib.set_config(config)

    WARM_MODULES = (
        "musicsim.library.scan",
        "musicsim.scan.pipeline",
        "musicsim.audio.decode",
        "musicsim.audio.tags",
        "musicsim.audio.midi",
        "musicsim.model.embed",
        "musicsim.organize.similar",
        "musicsim.organize.playlists",
        "musicsim.organize.order",
        "musicsim.organize.clusters",
        "musicsim.organize.outliers",
    )

    def warm_up(self, *, progress=None, cancel=None) -> None:
        """Load the model and import what scans, clustering and training use, in a background
        job started once the table is shown (showing the library needs none of it).

        Importing a large extension module (torch, scikit-learn) holds the GIL for up to
        half a second; done lazily it would freeze the window in the middle of a scan. Each
        step is one module, and ``cancel`` is checked between them (closing the window).
        """
        # A full garbage collection holds the GIL, and so freezes the window, for as long as
        # it takes to walk every object: 50-250 ms once torch, Qt and SQLAlchemy are loaded
        # (measured by tests/benchmarks/bench_gui_latency.py). The millions of objects the
        # imports make live as long as the app, so they move to the permanent generation
        # (gc.freeze) and later collections walk only what the app makes afterwards.
        # the network first: it loads torch's libraries without holding the GIL (see
        # musicsim.library.models.preload_torch), which the modules below would otherwise import
        steps = [self.lib.embedder, *(lambda n=name: _import_optional(n) for name in self.WARM_MODULES)]
        if self.writable:  # the first training step imports ~280 torch modules
            steps.append(self.lib.warm_up_training)
        gc.disable()
        try:
            for step in steps:
                if cancel is not None and cancel.cancelled:
                    return
                step()
        finally:
            gc.freeze()
            gc.enable()

    # --- library ----------------------------------------------------------------------------

    def status(self) -> dict:
        st = dict(self.lib.status())
        st["roots"] = list(st.get("roots") or [])
        st["models"] = self.models()
        return st

    def models(self) -> list[tuple[str, bool, bool]]:
        return [(str(n), bool(t), bool(a)) for n, t, a in self.lib.models()]

    def use_model(self, name: str) -> int:
        """Activate a model; return how many tracks still need analysis with it."""
        return int(self.lib.use_model(name) or 0)

    def track_columns(self, since_id: int = 0) -> TrackColumns:
        """Live tracks (id > since_id) as a column store. One query; no ORM object escapes."""
        return TrackColumns.from_rows(self.lib.track_rows(since_id=since_id)).prepare()

    def scan(self, paths: list[str], *, progress=None, cancel=None, retry_failed: bool = False):
        return self.lib.scan([str(p) for p in paths], progress=progress, cancel=cancel, retry_failed=retry_failed)

    def failures(self) -> list[tuple[str, str, str]]:
        return [(f.path, f.stage, f.reason) for f in self.lib.failures()]

    def remove_root(self, path: str) -> None:
        self.lib.remove_root(path)

    def purge(self) -> tuple[int, int, int, list[str]]:
        """(tracks forgotten, stale log-Mel cache entries removed, bytes freed, library folders
        not there now whose tracks were kept)."""
        done = self.lib.purge()
        return (done.count, *self.lib.prune_mel_cache(), done.kept_roots)

    # --- organisation -----------------------------------------------------------------------

    def rank(self, seed_ids: list[int], mode: str = "mean") -> tuple[np.ndarray, np.ndarray]:
        """Every other track, nearest to the seeds first: the ranking ``Library.similar`` (and so
        ``musicsim similar``) takes its first n from, never a second one of the GUI's own."""
        pairs = self.org.rank([int(i) for i in seed_ids], mode=mode)
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        ids, dist = zip(*pairs)
        return np.asarray(ids, dtype=np.int64), np.asarray(dist, dtype=np.float64)

    def make_playlist(self, seed_ids: list[int], **options) -> tuple[int, str, list[int], dict]:
        info = self.org.playlist([int(i) for i in seed_ids], **options)
        return int(info.id), str(info.name), [int(i) for i in info.track_ids], dict(info.stats or {})

    def playlists(self) -> list[tuple[int, str, int]]:
        return [(int(p), str(n), int(c)) for p, n, c in self.org.playlists()]

    def playlist_tracks(self, pid: int) -> list[tuple]:
        return [track_tuple(t) for t in self.org.playlist_tracks(pid)]

    def set_playlist_tracks(self, pid: int, track_ids: list[int]) -> None:
        self.org.set_playlist_tracks(pid, [int(i) for i in track_ids])

    def rename_playlist(self, pid: int, name: str) -> None:
        self.org.rename_playlist(pid, name)

    def delete_playlist(self, pid: int) -> None:
        self.org.delete_playlist(pid)

    def smooth_playlist(self, pid: int) -> tuple[list[int], dict]:
        ids = [t[0] for t in self.playlist_tracks(pid)]
        ordered, stats = self.org.smooth(ids)
        ordered = [int(i) for i in ordered]
        self.org.set_playlist_tracks(pid, ordered)
        return ordered, dict(stats or {})

    def export_playlist(self, pid: int, path: str, *, relative: bool = False) -> str:
        self.org.export_playlist(pid, path, relative=relative)
        return path

    def import_playlist(self, path: str) -> tuple[int, list[str]]:
        pid, unknown = self.org.import_playlist(path)
        return int(pid), [str(u) for u in unknown]

    def compute_clusters(self, k: int | None, *, progress=None, cancel=None) -> ClusterData:
        self.org.clusters(k, progress=progress, cancel=cancel)
        return self.cluster_data()

    def cluster_data(self) -> ClusterData:
        table = self.org.cluster_table()
        if not table:
            return ClusterData.empty()
        names = {int(c): str(n) for c, n in self.org.cluster_names().items()}
        return ClusterData(
            ids=np.array([r["track_id"] for r in table], dtype=np.int64),
            cluster=np.array([r["cluster"] for r in table], dtype=np.int64),
            x=np.array([r["x"] for r in table], dtype=np.float64),
            y=np.array([r["y"] for r in table], dtype=np.float64),
            outlier=np.array([np.nan if r.get("outlier") is None else r["outlier"] for r in table], dtype=np.float64),
            names=names,
        )

    def outliers(self, n: int = 50) -> list[tuple]:
        """(track id, title, artist, path, score, reason dict), most unusual first.

        Runs on a read lane, so it never re-clusters (a write): stale scores are ranked as
        stored and their reason says so.
        """
        out = []
        for t, score, reason in self.org.outliers(n, recompute=False):
            title = t.title or os.path.splitext(os.path.basename(t.path))[0]
            out.append((int(t.id), title, t.artist or "", t.path, float(score), dict(reason or {})))
        return out

    def duplicates(self) -> list[tuple]:
        """(distance, track A, track B) pairs that are probably the same recording, nearest
        first; each track as (id, title, path, duration). A library of fewer than two analysed
        tracks has none."""
        if len(self.org.data()[0]) < 2:
            return []

        def brief(t) -> tuple:
            return (int(t.id), t.title or os.path.splitext(os.path.basename(t.path))[0], t.path, t.duration)

        return [(float(d), brief(a), brief(b)) for a, b, d in self.org.duplicates()]

    # --- training ---------------------------------------------------------------------------

    def train(
        self, minutes: float, device: str = "auto", *, until_plateau: bool = False, progress=None, cancel=None
    ) -> dict:
        """Fine-tune on the library for ``minutes``; ``until_plateau``: until it stops improving,
        within ``minutes`` (:mod:`trainer.plateau`)."""
        # one core stays with the event loop: torch on every core stalls the window for 100s of ms
        threads = max(1, (os.cpu_count() or 1) - 1)
        return dict(
            self.lib.train(
                minutes=minutes,
                device=device,
                progress=progress,
                cancel=cancel,
                threads=threads,
                until_plateau=until_plateau,
            )
            or {}
        )

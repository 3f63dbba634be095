"""Organising by sound, over a Library: playlists, ordering, paths, clusters, outliers, duplicates.

The algorithms live in :mod:`musicsim.organize` (pure numpy); this facade feeds them the
active model's vectors and the tags from the database, and stores what should persist
(playlists; cluster, map position and outlier score per track and model).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import delete, func, select

from musicsim.errors import MusicsimError, NotFound
from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.organize import TrackMeta
from musicsim.organize.similar import Mode
from musicsim.organize.words import camelot_code
from musicsim.store import repo
from musicsim.store.schema import ClusterInfo, Meta, Playlist, PlaylistItem, Track, TrackMap

if TYPE_CHECKING:
    from musicsim.config import Config
    from musicsim.library.index import IndexKeeper
    from musicsim.store.db import Database


__all__ = ["ClusterSummary", "Organizer", "PlaylistInfo", "camelot_code", "write_playlist"]


@dataclass
class PlaylistInfo:
    id: int | None
    name: str
    track_ids: list[int]
    stats: dict = field(default_factory=dict)


@dataclass
class ClusterSummary:
    k: int
    names: dict[int, str]
    sizes: dict[int, int]
    level: int = 0  # the level shown (k groups)
    levels: tuple[int, ...] = ()  # every level of the hierarchy
    default: int = 0  # the level shown unless one is asked for


class Organizer:
    """Organising over the live tracks of ``db`` with the vectors of ``index``'s model."""

    def __init__(self, db: Database, index: IndexKeeper, config: Config) -> None:
        self.db = db
        self.index = index
        self.config = config
        self._cache: tuple | None = None
        self._parts_cache: tuple | None = None

    # --- data -------------------------------------------------------------------------------

    def data(self) -> tuple[np.ndarray, np.ndarray, dict[int, TrackMeta]]:
        """(ids, library-space unit vectors, meta) of the live tracks, cached until the database
        or the library statistics change."""
        with self.db.session() as s:
            key = (self.index.row.id, repo.max_seq(s), s.scalar(select(func.max(Track.analysed))), self.index.norm.tag)
        if self._cache is None or self._cache[0] != key:
            ids, X = self.index.vectors()
            with self.db.session() as s:
                rows = s.execute(
                    select(
                        Track.id, Track.path, Track.title, Track.artist, Track.album, Track.genre, Track.duration
                    ).where(Track.status == "ok")
                ).all()
            meta = {r[0]: TrackMeta(*r) for r in rows}
            self._cache = (key, ids, X, meta)
        return self._cache[1], self._cache[2], self._cache[3]

    def _knn(self, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Approximate k nearest (the track itself first) for every track, from the HNSW index."""
        labels, dists = self.index.knn_all(X, k, ef=self.config.ef_search)
        if labels.shape[1] < k:  # a tiny library: pad with the farthest found
            pad = k - labels.shape[1]
            labels = np.hstack([labels, np.repeat(labels[:, -1:], pad, 1)])
            dists = np.hstack([dists, np.repeat(dists[:, -1:], pad, 1)])
        return labels, dists

    def dup_threshold(self) -> float:
        """Cosine distance under which two tracks count as the same recording, for this model
        and library (:func:`musicsim.organize.outliers.duplicate_threshold`)."""
        from musicsim.organize.outliers import duplicate_threshold

        return duplicate_threshold(self.data()[1])

    def _need(self, n: int = 1) -> tuple[np.ndarray, np.ndarray, dict[int, TrackMeta]]:
        ids, X, meta = self.data()
        if len(ids) < n:
            raise MusicsimError(f"the library has {len(ids)} analysed tracks; this needs at least {n}")
        return ids, X, meta

    def descriptors(self, track_ids: list[int] | None = None) -> dict[int, dict]:
        """track id -> descriptors (tempo, key, loudness, ...: musicsim.audio.descriptors) of the
        given tracks, or of every live track; a track scanned before descriptors existed has none."""
        with self.db.session() as s:
            return repo.descriptors(s, None if track_ids is None else [int(t) for t in track_ids])

    def _parts(self) -> tuple[list, np.ndarray]:
        """The named parts of this model's track vector and how much two library tracks usually
        agree in each (musicsim.organize.explain), cached with the data."""
        from musicsim.model.arch import POOLING_LEVELS, ModelConfig
        from musicsim.organize.explain import Part, part_baseline, vector_parts

        _, X, _ = self._need(2)
        key = (id(X), X.shape)
        if self._parts_cache is None or self._parts_cache[0] != key:
            cfg = ModelConfig.from_dict(self.index.row.config)
            parts = vector_parts(cfg.parts, bands=cfg.bands, pooling_levels=POOLING_LEVELS[cfg.pooling])
            if not parts or parts[-1].stop != X.shape[1]:  # "mean" pooling: the embedding alone
                parts = [Part("overall sound (the network's embedding)", 0, X.shape[1])]
            self._parts_cache = (key, parts, part_baseline(X, parts))
        return self._parts_cache[1], self._parts_cache[2]

    def explain(self, a_id: int, b_id: int):
        """Why tracks ``a_id`` and ``b_id`` sound alike (or not): an
        :class:`~musicsim.organize.explain.Explanation` (``.text`` is one line)."""
        return self.explain_many(a_id, [b_id])[int(b_id)]

    def explain_many(self, seed_id: int, track_ids: list[int]) -> dict:
        """track id -> Explanation of its likeness to ``seed_id``."""
        from musicsim.organize import row_of
        from musicsim.organize.explain import explain_pair

        ids, X, _ = self._need(2)
        parts, base = self._parts()
        desc = self.descriptors([seed_id, *track_ids])
        rows = row_of(ids, [seed_id, *track_ids])
        return {
            int(t): explain_pair(X[rows[0]], X[r], parts, base, desc.get(int(seed_id)), desc.get(int(t)))
            for t, r in zip(track_ids, rows[1:])
        }

    # --- similarity and playlists ------------------------------------------------------------

    def rank(self, seed_ids: list[int], *, mode: Mode = "mean", limit: int | None = None) -> list[tuple[int, float]]:
        """Every other track (or the nearest ``limit``), nearest to the seeds first: exact cosine
        distances in library space. The app's "Sort by similarity" and ``musicsim similar`` both
        come here, so they always agree."""
        from musicsim.organize.similar import rank_by_seeds

        ids, X, _ = self._need()
        order, dist = rank_by_seeds(X, ids, list(seed_ids), mode=mode, limit=limit)
        return [(int(i), float(d)) for i, d in zip(order, dist)]

    def sort(self, track_ids: list[int], seed_id: int) -> list[tuple[int, float]]:
        from musicsim.organize.similar import sort_by_similarity

        ids, X, _ = self._need()
        return [(int(i), float(d)) for i, d in sort_by_similarity(X, ids, list(track_ids), seed_id)]

    def smooth(self, track_ids: list[int], *, dj: bool = False) -> tuple[list[int], dict]:
        """Re-order a list for smooth transitions (keeps its first track first). ``dj``: also
        weigh tempo closeness and key compatibility (musicsim.organize.transitions); the stats
        then say which share of the steps mix, before and after."""
        from musicsim.organize import row_of
        from musicsim.organize.order import cosine_distance_matrix, smooth_order
        from musicsim.organize.transitions import dj_cost, transition_stats

        ids, X, _ = self._need()
        if len(track_ids) < 3:
            return list(track_ids), {}
        rows = row_of(ids, list(track_ids))
        extra = None
        if dj:
            found = self.descriptors(list(track_ids))
            desc = [found.get(int(t), {}) for t in track_ids]
            D = cosine_distance_matrix(X[rows])
            extra = dj_cost(desc, D)
        order, stats = smooth_order(X[rows], start=0, extra_cost=extra)
        if dj:
            before = transition_stats(list(range(len(track_ids))), desc, D)
            after = transition_stats(order, desc, D)
            stats.update({f"before_{k}": v for k, v in before.items()})
            stats.update({f"dj_{k}": v for k, v in after.items()})
        return [int(track_ids[i]) for i in order], stats

    def path(self, a_id: int, b_id: int, *, steps: int = 10) -> list[int]:
        from musicsim.organize.order import song_path

        ids, X, _ = self._need(2)
        return [int(i) for i in song_path(X, ids, a_id, b_id, steps=steps)]

    def playlist(
        self,
        seed_ids: list[int],
        *,
        n: int = 30,
        mode: Mode = "mean",
        no_same_artist: int = 0,
        no_same_album: bool = False,
        exclude=(),
        smooth: bool = False,
        dj: bool = False,
        name: str | None = None,
        save: bool = True,
    ) -> PlaylistInfo:
        from musicsim.organize.playlists import make_playlist

        ids, X, meta = self._need(2)
        chosen = make_playlist(
            X,
            ids,
            meta,
            list(seed_ids),
            n=n,
            mode=mode,
            no_same_artist=no_same_artist,
            no_same_album=no_same_album,
            exclude=list(exclude),
            smooth=smooth,
            dup_threshold=self.dup_threshold(),
        )
        chosen = [int(i) for i in chosen]
        if dj and len(chosen) > 2:  # the smooth order again, tempo and key weighed in
            chosen = self.smooth(chosen, dj=True)[0]
        first = meta.get(int(seed_ids[0]))
        name = name or (f"Like {first.title or os.path.basename(first.path)}" if first else "Playlist")
        params = {
            "seeds": [int(i) for i in seed_ids],
            "n": n,
            "mode": mode,
            "no_same_artist": no_same_artist,
            "no_same_album": no_same_album,
            "smooth": smooth,
            "dj": dj,
            "model": self.index.row.name,
        }
        pid = self.save_playlist(name, chosen, params) if save else None
        return PlaylistInfo(pid, name, chosen, params)

    # --- stored playlists --------------------------------------------------------------------

    def save_playlist(self, name: str, track_ids: list[int], params: dict | None = None) -> int:
        self.db.require_writer()
        with self.db.session() as s:
            pl = Playlist(name=name, params=params or {})
            s.add(pl)
            s.flush()
            s.add_all(PlaylistItem(playlist_id=pl.id, position=i, track_id=t) for i, t in enumerate(track_ids))
            return pl.id

    def playlists(self) -> list[tuple[int, str, int]]:
        with self.db.session() as s:
            rows = s.execute(
                select(Playlist.id, Playlist.name, func.count(PlaylistItem.track_id))
                .outerjoin(PlaylistItem)
                .group_by(Playlist.id)
                .order_by(Playlist.id)
            ).all()
        return [(int(a), str(b), int(c)) for a, b, c in rows]

    def _playlist(self, s, pid: int) -> Playlist:
        pl = s.get(Playlist, pid)
        if pl is None:
            raise NotFound(f"no playlist with id {pid}")
        return pl

    def playlist_tracks(self, pid: int) -> list[Track]:
        with self.db.session() as s:
            self._playlist(s, pid)
            return list(
                s.scalars(
                    select(Track)
                    .join(PlaylistItem, PlaylistItem.track_id == Track.id)
                    .where(PlaylistItem.playlist_id == pid)
                    .order_by(PlaylistItem.position)
                )
            )

    def set_playlist_tracks(self, pid: int, track_ids: list[int]) -> None:
        self.db.require_writer()
        with self.db.session() as s:
            self._playlist(s, pid)
            s.execute(delete(PlaylistItem).where(PlaylistItem.playlist_id == pid))
            s.add_all(PlaylistItem(playlist_id=pid, position=i, track_id=int(t)) for i, t in enumerate(track_ids))

    def rename_playlist(self, pid: int, name: str) -> None:
        self.db.require_writer()
        with self.db.session() as s:
            self._playlist(s, pid).name = name

    def delete_playlist(self, pid: int) -> None:
        self.db.require_writer()
        with self.db.session() as s:
            s.delete(self._playlist(s, pid))

    def export_playlist(
        self, pid: int, path: str | os.PathLike, *, fmt: str | None = None, relative: bool = False
    ) -> int:
        with self.db.session() as s:
            name = self._playlist(s, pid).name
        return write_playlist(self.playlist_tracks(pid), path, fmt=fmt, relative=relative, name=name)

    def import_playlist(self, path: str | os.PathLike, name: str | None = None) -> tuple[int, list[str]]:
        """Store a playlist from an M3U/M3U8/XSPF file; paths not in the library are reported, not guessed."""
        from musicsim.organize.playlists import read_m3u, read_xspf

        path = Path(path)
        entries = read_xspf(path) if path.suffix.lower() == ".xspf" else read_m3u(path)
        with self.db.session() as s:
            known = dict(s.execute(select(Track.path, Track.id).where(Track.status == "ok")).all())
        found, unknown = [], []
        for p in entries:
            tid = known.get(os.path.abspath(str(p)))
            (found.append(tid) if tid is not None else unknown.append(str(p)))
        return self.save_playlist(name or path.stem, found, {"imported_from": str(path)}), unknown

    # --- clusters, outliers, duplicates ------------------------------------------------------

    def clusters(
        self,
        k: int | None = None,
        *,
        level: int | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> ClusterSummary:
        """Group the library at every scale (one Ward tree, 2 to about sqrt(n) groups), name each
        level's groups, place tracks on a 2-D map, score outliers; store all. ``k`` / ``level``:
        the level shown (default: the hierarchy's, :func:`musicsim.organize.hierarchy.build`)."""
        from musicsim.organize.clusters import map_2d
        from musicsim.organize.hierarchy import build, centroids
        from musicsim.organize.outliers import outlier_scores

        ids, X, meta = self._need(3)
        report(progress, "clusters", 0, 4, "clustering")
        tree = build(X)
        wanted = level if level is not None else k
        shown = tree.default if wanted is None else min(max(int(wanted), tree.levels[0]), tree.levels[-1])
        _check(cancel)
        report(progress, "clusters", 1, 4, "naming")
        names = self._level_names(tree, ids, meta)
        report(progress, "clusters", 2, 4, "map")
        xy = map_2d(X)
        _check(cancel)
        report(progress, "clusters", 3, 4, "outliers")
        labels = tree.at(shown)
        cents = centroids(X, labels)
        _, knn_d = self._knn(X, 6)  # self + 5 neighbours, from the index: no O(n^2) search
        scores, reasons = outlier_scores(X, labels, cents, k=5, knn_distances=knn_d[:, -1])
        self._store_clusters(ids, labels, cents, names[shown], xy, scores, reasons, tree.labels.T)
        self._store_hierarchy(
            {
                "levels": list(tree.levels),
                "default": tree.default,
                "shown": shown,
                "silhouette": {str(a): round(b, 4) for a, b in tree.scores.items()},
                "names": {str(a): {str(c): n for c, n in b.items()} for a, b in names.items()},
            }
        )
        report(progress, "clusters", 4, 4, "done")
        return self._summary(shown, labels, names[shown], tree.levels, tree.default)

    def _level_names(self, tree, ids: np.ndarray, meta: dict[int, TrackMeta]) -> dict[int, dict[int, str]]:
        from musicsim.organize.hierarchy import name_levels

        return name_levels(tree, ids, meta, self.descriptors())

    @staticmethod
    def _summary(shown: int, labels: np.ndarray, names: dict[int, str], levels, default: int) -> ClusterSummary:
        sizes = {int(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))}
        return ClusterSummary(len(sizes), {c: names[c] for c in sizes}, sizes, shown, tuple(levels), default)

    def hierarchy(self) -> dict:
        """The stored hierarchy: levels, default, shown, silhouette per level, names per level
        (level -> group id -> name, as strings from JSON); {} before clusters were computed."""
        import json

        with self.db.session() as s:
            row = s.get(Meta, f"hierarchy:{self.index.row.id}")
            return json.loads(row.value) if row is not None else {}

    def _store_hierarchy(self, info: dict) -> None:
        import json

        with self.db.session() as s:
            key = f"hierarchy:{self.index.row.id}"
            row = s.get(Meta, key) or Meta(key=key, value="{}")
            row.value = json.dumps(info)
            s.add(row)

    def level_labels(self) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """(track ids, labels (tracks x levels), levels) of the stored hierarchy: every level's
        groups at once, so a view moves between levels without asking again."""
        info = self.hierarchy()
        levels = tuple(int(v) for v in info.get("levels", ()))
        with self.db.session() as s:
            rows = repo.level_rows(s, self.index.row.id)
        if not rows or not levels:
            return np.zeros(0, np.int64), np.zeros((0, len(levels)), np.int64), levels
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        labels = np.stack([np.frombuffer(r[1], np.int16).astype(np.int64) for r in rows])
        return ids, labels, levels

    def show_level(self, level: int) -> ClusterSummary:
        """Make ``level`` the one shown (clusters, names, outliers' groups); computes the clusters
        first when there are none or the library changed."""
        info = self.hierarchy()
        if not info or self.clusters_stale():
            return self.clusters(level=level)
        from musicsim.organize.hierarchy import centroids

        levels = [int(v) for v in info["levels"]]
        shown = min(max(int(level), levels[0]), levels[-1])
        ids, labels, _ = self.level_labels()
        lab = labels[:, levels.index(shown)]
        names = {int(c): n for c, n in info["names"][str(shown)].items()}
        all_ids, X, _ = self.data()
        from musicsim.organize import row_of

        cents = centroids(X[row_of(all_ids, ids)], lab)
        self.db.require_writer()
        with self.db.session() as s:
            repo.set_shown_level(
                s, self.index.row.id, ids, lab, {c: (names[c], cents[c]) for c in np.unique(lab).tolist()}
            )
        info["shown"] = shown
        self._store_hierarchy(info)
        return self._summary(shown, lab, names, levels, int(info["default"]))

    def _store_clusters(self, ids, labels, centroids, names, xy, scores, reasons, levels) -> None:
        self.db.require_writer()
        mid = self.index.row.id
        with self.db.session() as s:
            s.execute(delete(TrackMap).where(TrackMap.model_id == mid))
            s.execute(delete(ClusterInfo).where(ClusterInfo.model_id == mid))
            s.add_all(
                TrackMap(
                    track_id=int(t),
                    model_id=mid,
                    cluster=int(c),
                    x=float(p[0]),
                    y=float(p[1]),
                    outlier=float(o),
                    reason=_jsonable(r),
                    levels=np.asarray(lv, np.int16).tobytes(),
                )
                for t, c, p, o, r, lv in zip(ids, labels, xy, scores, reasons, levels)
            )
            for c, n in zip(*np.unique(labels, return_counts=True)):
                s.add(
                    ClusterInfo(
                        model_id=mid,
                        cluster=int(c),
                        name=names[int(c)],
                        size=int(n),
                        centroid=np.asarray(centroids[int(c)], np.float32).tobytes(),
                    )
                )
            key = f"clusters_seq:{mid}"
            row = s.get(Meta, key) or Meta(key=key, value="0")
            row.value = str(repo.max_seq(s))
            s.add(row)

    def clusters_stale(self) -> bool:
        """True when tracks changed since the clusters were computed (or never computed)."""
        with self.db.session() as s:
            row = s.get(Meta, f"clusters_seq:{self.index.row.id}")
            return row is None or int(row.value) != repo.max_seq(s)

    def cluster_table(self) -> list[dict]:
        with self.db.session() as s:
            rows = s.execute(
                select(TrackMap.track_id, TrackMap.cluster, TrackMap.x, TrackMap.y, TrackMap.outlier)
                .join(Track, Track.id == TrackMap.track_id)
                .where(TrackMap.model_id == self.index.row.id, Track.status == "ok")
            ).all()
        return [{"track_id": t, "cluster": c, "x": x, "y": y, "outlier": o} for t, c, x, y, o in rows]

    def cluster_names(self) -> dict[int, str]:
        with self.db.session() as s:
            return {
                c.cluster: c.name
                for c in s.scalars(select(ClusterInfo).where(ClusterInfo.model_id == self.index.row.id))
            }

    def outliers(self, n: int = 20, *, recompute: bool = True) -> list[tuple[Track, float, dict]]:
        """Tracks that fit the library worst, with the reason.

        Clusters are recomputed first when tracks changed since they were (a write); with
        ``recompute=False`` the stored scores are ranked as they are, and each reason says
        ``stale: True`` when they predate the latest changes.
        """
        stale = self.clusters_stale()
        if stale and recompute:
            self.clusters()
            stale = False
        with self.db.session() as s:
            rows = s.execute(
                select(Track, TrackMap.outlier, TrackMap.reason)
                .join(TrackMap, TrackMap.track_id == Track.id)
                .where(TrackMap.model_id == self.index.row.id, Track.status == "ok")
                .order_by(TrackMap.outlier.desc())
                .limit(n)
            ).all()
        names = self.cluster_names()
        out = [(t, float(o), {**r, "cluster_name": names.get(r.get("cluster")), "stale": stale}) for t, o, r in rows]
        for _, _, r in out:
            r["why"] = ""
        if out and not stale:
            self._outlier_words(out)
        return out

    def _outlier_words(self, rows: list[tuple[Track, float, dict]]) -> None:
        """Each outlier's reason in words (``why``): what sets it apart from its group, which group."""
        from musicsim.organize import row_of
        from musicsim.organize.explain import explain_outlier
        from musicsim.organize.hierarchy import centroids

        ids, X, _ = self.data()
        table = {r["track_id"]: r["cluster"] for r in self.cluster_table()}
        known = [t for t in ids.tolist() if t in table]
        if len(known) < 3:
            return
        lab = np.array([table[t] for t in known], dtype=np.int64)
        Xk = X[row_of(ids, known)]
        cents = centroids(Xk, lab)
        parts, base = self._parts()
        desc = self.descriptors()
        library = list(desc.values())
        names = self.cluster_names()
        for t, _, r in rows:
            if t.id not in table:
                continue
            x = Xk[known.index(t.id)]
            c = int(np.argmax(cents @ x))  # its nearest group: its own but for a few tracks at a border
            group = [desc[m] for m, g in zip(known, lab.tolist()) if g == c and m != t.id and m in desc]
            r["why"] = explain_outlier(
                x, cents[c], parts, base, desc.get(t.id, {}), group, library, str(names.get(c) or f"Cluster {c}")
            )

    def duplicates(
        self, *, threshold: float | None = None, duration_tol: float = 2.0
    ) -> list[tuple[Track, Track, float]]:
        """Probably the same recording twice: nearly identical sound and the same duration."""
        from musicsim.organize.outliers import near_duplicates

        ids, X, meta = self._need()
        threshold = self.dup_threshold() if threshold is None else threshold
        cand, _ = self._knn(X, 8)
        pairs = near_duplicates(X, ids, meta, threshold=threshold, duration_tol=duration_tol, candidate_ids=cand)
        with self.db.session() as s:
            tracks = {t.id: t for t in s.scalars(select(Track).where(Track.status == "ok"))}
        return [(tracks[a], tracks[b], float(d)) for a, b, d in pairs]


def write_playlist(
    tracks: list[Track],
    path: str | os.PathLike,
    *,
    fmt: str | None = None,
    relative: bool = False,
    name: str | None = None,
) -> int:
    """Write library tracks to M3U8 or XSPF (format from the extension unless given)."""
    from musicsim.organize.playlists import write_m3u8, write_xspf

    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "m3u8").lower()
    entries = [TrackMeta(t.id, t.path, t.title, t.artist, t.album, t.genre, t.duration) for t in tracks]
    if fmt == "xspf":
        write_xspf(path, entries, name=name)
    elif fmt in ("m3u8", "m3u"):
        write_m3u8(path, entries, relative_to=path.parent if relative else None, name=name)
    else:
        raise MusicsimError(f"unknown playlist format '{fmt}' (use .m3u8 or .xspf)", path=path)
    return len(entries)


def _jsonable(d: dict) -> dict:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in d.items()}


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.check()

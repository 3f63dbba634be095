"""The library table: a column store behind a QAbstractTableModel.

Rows live in a :class:`~musicsim.gui.backend.TrackColumns` (python lists and numpy arrays,
loaded by one query in a worker). Qt never holds per-row Python objects: ``data()`` looks a
cell up by position. Sorting and filtering are done here with numpy over whole columns
(a QSortFilterProxyModel would call back into Python millions of times at 100,000 rows);
the visible order is one integer array, ``view``.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QFont

from musicsim.gui.backend import ClusterData, TrackColumns

COLUMNS = (
    ("title", "Title"),
    ("artist", "Artist"),
    ("album", "Album"),
    ("genre", "Genre"),
    ("duration", "Duration"),
    ("format", "Format"),
    ("cluster", "Cluster"),
    ("outlier", "Outlier"),
    ("distance", "Distance"),
    ("tempo", "BPM"),
    ("key", "Key"),
    ("loudness", "LUFS"),
    ("brightness", "Brightness"),
    ("percussive", "Percussive"),
)
COL = {key: i for i, (key, _) in enumerate(COLUMNS)}
TEXT_COLUMNS = ("title", "artist", "album", "genre", "format")
# The musical descriptors (musicsim.audio.descriptors): hidden until chosen from the header's menu.
DESCRIPTOR_COLUMNS = ("tempo", "loudness", "brightness", "percussive")
OPTIONAL_COLUMNS = ("tempo", "key", "loudness", "brightness", "percussive")
NUMERIC_COLUMNS = ("duration", "outlier", "distance", *DESCRIPTOR_COLUMNS)
# Filter words on descriptors: "bpm>120", "lufs<-14", "bright>2000", "perc>0.5", "key:Am" / "key:8A".
_FILTER_FIELDS = {"bpm": "tempo", "tempo": "tempo", "lufs": "loudness", "bright": "brightness", "perc": "percussive"}
TRACK_ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2


def format_duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrackTableModel(QAbstractTableModel):
    """All live tracks; ``view`` maps visible rows to store positions."""

    view_changed = Signal()  # sort, filter or content changed (counts, similarity state)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.cols = TrackColumns().prepare()
        self.cluster = np.zeros(0, dtype=np.int64)
        self.outlier = np.zeros(0, dtype=np.float64)
        self.distance = np.zeros(0, dtype=np.float64)
        self.seed = np.zeros(0, dtype=bool)
        self.cluster_names: dict[int, str] = {}
        self._cluster_data = ClusterData.empty()
        self.view = np.zeros(0, dtype=np.int64)
        self._row_of_pos: np.ndarray | None = None
        self.filter_text = ""
        self._last_mask: tuple | None = None  # (filter text, columns it ran on, mask)
        self.sort_key: str | None = None
        self.sort_order = Qt.SortOrder.AscendingOrder
        self.seed_ids: list[int] = []
        self._dist_ids: np.ndarray | None = None
        self._dist_vals: np.ndarray | None = None
        self._bold = QFont()
        self._bold.setBold(True)
        self.why: dict[int, str] = {}  # track id -> why it is like the seed (the Distance column's tooltip)
        self._descriptors: dict[int, dict] = {}
        self.desc: dict[str, np.ndarray] = {k: np.zeros(0) for k in DESCRIPTOR_COLUMNS}
        self.keys: list[str] = []
        self.camelot: list[str] = []

    # --- Qt interface -----------------------------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.view)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section][1]
            if role == Qt.ItemDataRole.ToolTipRole:
                key = COLUMNS[section][0]
                return {
                    "cluster": "Cluster of similar-sounding tracks (Library > Compute clusters)",
                    "outlier": "How unusual the track is within the library (higher: fits nowhere)",
                    "distance": "Distance to the seed track(s) of the similarity sort (0: identical); "
                    "hover a value for why",
                    "tempo": "Tempo in beats per minute (filter: bpm>120)",
                    "key": "Key and mode, with its Camelot code (filter: key:Am or key:8A)",
                    "loudness": "Integrated loudness, EBU R128 (filter: lufs<-14)",
                    "brightness": "Spectral centroid in Hz: higher sounds brighter (filter: bright>2000)",
                    "percussive": "Share of percussive energy: 0 tonal, 1 percussive (filter: perc>0.5)",
                }.get(key)
        elif role == Qt.ItemDataRole.DisplayRole:
            return str(section + 1)
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = index.row()
        if row >= len(self.view):
            return None
        pos = int(self.view[row])
        key = COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(pos, key)
        if role == TRACK_ID_ROLE:
            return int(self.cols.ids[pos])
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "distance" and int(self.cols.ids[pos]) in self.why:
                return self.why[int(self.cols.ids[pos])]
            return self.cols.path[pos]
        if role == Qt.ItemDataRole.TextAlignmentRole and key in NUMERIC_COLUMNS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.FontRole and self.seed.size and self.seed[pos]:
            return self._bold
        return None

    def _display(self, pos: int, key: str) -> str:
        if key in TEXT_COLUMNS:
            return getattr(self.cols, key)[pos]
        if key == "duration":
            return format_duration(self.cols.duration[pos])
        if key == "cluster":
            c = int(self.cluster[pos])
            return "" if c < 0 else self.cluster_names.get(c, str(c))
        if key == "outlier":
            v = self.outlier[pos]
            return "" if math.isnan(v) else f"{v:.2f}"
        if key == "distance":
            if self.seed[pos]:
                return "seed"
            v = self.distance[pos]
            return "" if math.isnan(v) else f"{v:.4f}"
        if key == "key":  # "A min (8A)": the Camelot code is what DJs mix by
            k = self.keys[pos] if pos < len(self.keys) else ""
            return f"{k} ({self.camelot[pos]})" if k else ""
        if key in DESCRIPTOR_COLUMNS:
            v = self.desc[key][pos] if pos < len(self.desc[key]) else math.nan
            return "" if math.isnan(v) else _DESC_FORMAT[key].format(v)
        return ""

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        key = COLUMNS[column][0] if 0 <= column < len(COLUMNS) else None
        self.sort_key, self.sort_order = key, order
        self._relayout()

    # --- lookups ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.cols)

    @property
    def total(self) -> int:
        return len(self.cols)

    def id_at(self, row: int) -> int:
        return int(self.cols.ids[self.view[row]])

    def ids_in_view(self) -> np.ndarray:
        return self.cols.ids[self.view]

    def _pos1(self, track_id: int) -> int:
        return int(self.cols.positions([track_id])[0])

    def row_of_id(self, track_id: int) -> int:
        pos = self._pos1(track_id)
        return -1 if pos < 0 else int(self._rows()[pos])

    def rows_of_ids(self, ids) -> np.ndarray:
        """Visible rows of these ids (hidden or unknown ids are left out), ascending."""
        pos = self.cols.positions(list(ids))
        pos = pos[pos >= 0]
        r = self._rows()[pos] if pos.size else np.zeros(0, dtype=np.int64)
        return np.sort(r[r >= 0])

    def track(self, track_id: int) -> dict | None:
        pos = self._pos1(track_id)
        if pos < 0:
            return None
        c = self.cols
        return {
            "id": int(c.ids[pos]),
            "title": c.title[pos],
            "artist": c.artist[pos],
            "album": c.album[pos],
            "genre": c.genre[pos],
            "duration": float(c.duration[pos]),
            "format": c.format[pos],
            "path": c.path[pos],
            "cluster": int(self.cluster[pos]),
            "cluster_name": self.cluster_names.get(int(self.cluster[pos]), ""),
            "outlier": float(self.outlier[pos]),
            "distance": float(self.distance[pos]),
        }

    def label(self, track_id: int) -> str:
        t = self.track(track_id)
        if t is None:
            return f"track {track_id}"
        return f"{t['artist']} – {t['title']}" if t["artist"] else t["title"]

    def _rows(self) -> np.ndarray:
        """store position -> visible row (-1 when filtered out)."""
        if self._row_of_pos is None or len(self._row_of_pos) != len(self.cols):
            rows = np.full(len(self.cols), -1, dtype=np.int64)
            rows[self.view] = np.arange(len(self.view))
            self._row_of_pos = rows
        return self._row_of_pos

    # --- content ----------------------------------------------------------------------------

    def set_tracks(self, cols: TrackColumns) -> None:
        """Replace every row (the view keeps its sort, filter and similarity state)."""
        if not cols.prepared:
            cols.prepare()
        self.layoutAboutToBeChanged.emit()
        saved = self._save_persistent()
        self.cols = cols
        self._row_of_pos = None
        self._extras(full=True)
        self._apply_view()
        self._restore_persistent(saved)
        self.layoutChanged.emit()
        self.view_changed.emit()

    def add_tracks(self, new: TrackColumns, *, merged: TrackColumns | None = None) -> int:
        """Append rows with ids above every id shown (a scan's new tracks); return how many.

        ``merged`` is ``self.cols.extended(new)`` computed in a worker (merging the sort
        caches of 100,000 rows takes ~0.1 s: not on the main thread). Rows whose id is
        already known are skipped: changed tracks come with the full reload after a scan.
        """
        if not len(new):
            return 0
        if (
            merged is not None
            and len(merged) == len(self.cols) + len(new)
            and merged.ids[: len(self.cols)].tobytes() == self.cols.ids.tobytes()
        ):
            return self._append(merged, len(new))
        fresh = new.ids > (self.cols.ids[-1] if len(self.cols) else -1)
        if not fresh.all():
            new = TrackColumns.from_rows(
                (
                    int(new.ids[j]),
                    new.title[j],
                    new.artist[j],
                    new.album[j],
                    new.genre[j],
                    None if np.isnan(new.duration[j]) else float(new.duration[j]),
                    new.format[j],
                    new.path[j],
                )
                for j in np.flatnonzero(fresh)
            )
            if not len(new):
                return 0
        return self._append(self.cols.extended(new), len(new))

    def _append(self, merged: TrackColumns, count: int) -> int:
        n_old = len(self.cols)
        plain = self.sort_key is None and not self.filter_text
        if plain:
            self.beginInsertRows(QModelIndex(), len(self.view), len(self.view) + count - 1)
            self.cols = merged
            self._extras(full=False, start=n_old)
            self.view = np.concatenate([self.view, np.arange(n_old, len(merged), dtype=np.int64)])
            self._row_of_pos = None
            self.endInsertRows()
        else:
            self.layoutAboutToBeChanged.emit()
            saved = self._save_persistent()
            self.cols = merged
            self._extras(full=False, start=n_old)
            self._apply_view()
            self._restore_persistent(saved)
            self.layoutChanged.emit()
        self.view_changed.emit()
        return count

    def _extras(self, *, full: bool, start: int = 0) -> None:
        """Cluster, outlier score, distance and seed flag per row, for rows ``start:`` (all when full)."""
        n = len(self.cols)
        if full:
            start = 0
        m = n - start
        cluster = np.full(m, -1, dtype=np.int64)
        outlier = np.full(m, np.nan)
        distance = np.full(m, np.nan)
        seed = np.zeros(m, dtype=bool)
        ids = self.cols.ids[start:]
        d = self._cluster_data
        if len(d) and m:
            at = _lookup(d.ids, ids)
            ok = at >= 0
            cluster[ok] = d.cluster[at[ok]]
            outlier[ok] = d.outlier[at[ok]]
        if self._dist_ids is not None and m:
            at = _lookup(self._dist_ids, ids)
            ok = at >= 0
            distance[ok] = self._dist_vals[at[ok]]
        if self.seed_ids and m:
            seed = np.isin(ids, np.asarray(self.seed_ids, dtype=np.int64))
        self._desc_columns()
        if full:
            self.cluster, self.outlier, self.distance, self.seed = cluster, outlier, distance, seed
        else:
            self.cluster = np.concatenate([self.cluster[:start], cluster])
            self.outlier = np.concatenate([self.outlier[:start], outlier])
            self.distance = np.concatenate([self.distance[:start], distance])
            self.seed = np.concatenate([self.seed[:start], seed])

    def set_descriptors(self, descriptors: dict[int, dict]) -> None:
        """track id -> descriptors (tempo, key, loudness, ...), shown in the optional columns."""
        self._descriptors = dict(descriptors)
        self._desc_columns()
        if self.sort_key in OPTIONAL_COLUMNS or self.filter_text:
            self._last_mask = None
            self._relayout()
        else:
            self._emit_all_changed()

    def _desc_columns(self) -> None:
        from musicsim.library.organizing import camelot_code

        ids = self.cols.ids.tolist()
        get = self._descriptors.get
        for k in DESCRIPTOR_COLUMNS:
            self.desc[k] = np.array([_num((get(i) or {}).get(k)) for i in ids], dtype=np.float64)
        rows = [get(i) or {} for i in ids]
        self.keys = [f"{d['key']} {d['mode'][:3]}" if d.get("key") and d.get("mode") else "" for d in rows]
        self.camelot = [camelot_code(d["key"], d["mode"]) if d.get("key") and d.get("mode") else "" for d in rows]

    def set_cluster_data(self, data: ClusterData) -> None:
        self._cluster_data = data
        self.cluster_names = dict(data.names)
        self._extras(full=True)
        if self.sort_key in ("cluster", "outlier"):
            self._relayout()
        else:
            self._emit_all_changed()

    def set_similarity(self, seed_ids: list[int], ids: np.ndarray, dist: np.ndarray) -> None:
        """Show distances to the seeds and sort by them (seeds first)."""
        self.seed_ids = [int(i) for i in seed_ids]
        all_ids = np.concatenate([np.asarray(ids, dtype=np.int64), np.asarray(self.seed_ids, dtype=np.int64)])
        all_d = np.concatenate([np.asarray(dist, dtype=np.float64), np.zeros(len(self.seed_ids))])
        self._dist_ids, self._dist_vals = all_ids, all_d
        self._extras(full=True)
        self.sort_key, self.sort_order = "distance", Qt.SortOrder.AscendingOrder
        self._relayout()

    def clear_similarity(self) -> None:
        self.seed_ids = []
        self._dist_ids = self._dist_vals = None
        self._extras(full=True)
        if self.sort_key == "distance":
            self.sort_key = None
            self._relayout()
        else:
            self._emit_all_changed()

    @property
    def has_similarity(self) -> bool:
        return bool(self.seed_ids)

    def set_filter(self, text: str) -> None:
        text = " ".join(text.split())
        if text == self.filter_text:
            return
        self.filter_text = text
        self._relayout()

    # --- sorting and filtering --------------------------------------------------------------

    def _order(self) -> np.ndarray:
        n = len(self.cols)
        key = self.sort_key
        desc = self.sort_order == Qt.SortOrder.DescendingOrder
        if key is None or n == 0:
            return np.arange(n, dtype=np.int64)
        if key in TEXT_COLUMNS:
            if not self.cols.prepared:
                self.cols.prepare()
            pos, keys = self.cols.sorted_pos[key], self.cols.sorted_keys[key]
            empty = bisect.bisect_right(keys, "")  # empty values sort first: show them last either way
            body = pos[empty:]
            return np.concatenate([body[::-1] if desc else body, pos[:empty]])
        if key == "cluster":
            names = sorted(self.cluster_names.items(), key=lambda kv: (kv[1].casefold(), kv[0]))
            rank = np.full(int(max([*self.cluster_names, int(self.cluster.max(initial=0))]) + 2), -1, dtype=np.int64)
            for r, (c, _name) in enumerate(names):
                rank[c] = r
            unnamed = np.flatnonzero(rank < 0)
            rank[unnamed] = len(names) + np.arange(unnamed.size)
            values = np.where(self.cluster >= 0, rank[np.maximum(self.cluster, 0)], -1).astype(np.float64)
            values[self.cluster < 0] = np.nan
        elif key == "key":
            values = np.array([_camelot_rank(c) for c in self.camelot], dtype=np.float64)
        elif key in DESCRIPTOR_COLUMNS:
            values = self.desc[key].copy()
        else:
            values = {"duration": self.cols.duration, "outlier": self.outlier, "distance": self.distance}[key].copy()
            if key == "distance":
                values[self.seed] = -1.0  # seeds first
        nan = np.isnan(values)
        values[nan] = 0.0
        order = np.argsort(-values if desc else values, kind="stable")
        return np.concatenate([order[~nan[order]], order[nan[order]]]).astype(np.int64)

    def _mask(self) -> np.ndarray | None:
        """Rows matching every word of the filter. Typing on narrows: only the rows that
        matched the shorter text are searched again."""
        text = self.filter_text.casefold()
        tokens = text.split()
        conditions = [c for c in (_condition(t) for t in tokens) if c is not None]
        if conditions:
            words = [t for t in tokens if _condition(t) is None]
            mask = self._desc_mask(conditions)
            if words:
                hay = self.cols.hay if self.cols.hay is not None else self.cols.prepare().hay
                mask &= np.fromiter((all(t in h for t in words) for h in hay), dtype=bool, count=len(hay))
            self._last_mask = None
            return mask
        if not tokens:
            self._last_mask = None
            return None
        if self.cols.hay is None:
            self.cols.prepare()
        hay = self.cols.hay
        last = self._last_mask
        rows = (
            np.flatnonzero(last[2]) if last is not None and last[1] is self.cols and text.startswith(last[0]) else None
        )
        if rows is not None and rows.size < len(hay) // 2:
            keep = np.fromiter((all(t in hay[i] for t in tokens) for i in rows.tolist()), dtype=bool, count=rows.size)
            mask = np.zeros(len(hay), dtype=bool)
            mask[rows[keep]] = True
        else:
            mask = np.fromiter((all(t in h for t in tokens) for h in hay), dtype=bool, count=len(hay))
        self._last_mask = (text, self.cols, mask)
        return mask

    def _desc_mask(self, conditions: list) -> np.ndarray:
        mask = np.ones(len(self.cols), dtype=bool)
        for name, op, value in conditions:
            if name == "key":
                mask &= np.array([_key_matches(str(value), k, c) for k, c in zip(self.keys, self.camelot)], dtype=bool)
                continue
            v = self.desc[name]
            with np.errstate(invalid="ignore"):
                ok = {">": v > value, "<": v < value, ">=": v >= value, "<=": v <= value, "=": np.isclose(v, value)}[op]
            mask &= ok & ~np.isnan(v)
        return mask

    def _apply_view(self) -> None:
        order = self._order()
        mask = self._mask()
        self.view = order if mask is None else order[mask[order]]
        self._row_of_pos = None

    def _relayout(self) -> None:
        self.layoutAboutToBeChanged.emit()
        saved = self._save_persistent()
        self._apply_view()
        self._restore_persistent(saved)
        self.layoutChanged.emit()
        self.view_changed.emit()

    def _save_persistent(self):
        old = self.persistentIndexList()
        if not old:
            return old, np.zeros(0, dtype=np.int64)
        rows = np.array([i.row() for i in old], dtype=np.int64)
        ok = (rows >= 0) & (rows < len(self.view))
        ids = np.full(len(old), -1, dtype=np.int64)
        ids[ok] = self.cols.ids[self.view[rows[ok]]]
        return old, ids

    def _restore_persistent(self, saved) -> None:
        old, ids = saved
        if not old:
            return
        pos = self.cols.positions(ids)
        rows = np.where(pos >= 0, self._rows()[np.maximum(pos, 0)], -1)
        new = [self.index(int(r), idx.column()) if r >= 0 else QModelIndex() for idx, r in zip(old, rows.tolist())]
        self.changePersistentIndexList(old, new)

    def _emit_all_changed(self) -> None:
        if len(self.view):
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.view) - 1, len(COLUMNS) - 1))
        self.view_changed.emit()


_DESC_FORMAT = {"tempo": "{:.0f}", "loudness": "{:.1f}", "brightness": "{:.0f}", "percussive": "{:.2f}"}


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) else math.nan


def _camelot_rank(code: str) -> float:
    """Camelot codes in wheel order (1A, 1B, 2A, ...), unknown last (NaN)."""
    if not code or code == "?":
        return math.nan
    return int(code[:-1]) * 2 + (code[-1] == "B")


def _condition(token: str) -> tuple[str, str, object] | None:
    """A filter word on a descriptor: ("tempo", ">", 120.0), ("key", ":", "am"), or None."""
    if token.startswith("key:") and len(token) > 4:
        return ("key", ":", token[4:])
    for op in (">=", "<=", ">", "<", "="):
        name, sep, value = token.partition(op)
        if sep and name in _FILTER_FIELDS:
            try:
                return (_FILTER_FIELDS[name], op, float(value))
            except ValueError:
                return None
    return None


def _key_matches(value: str, key: str, camelot: str) -> bool:
    """ "am" / "a minor" style ("c#", "ebm") or a Camelot code ("8a")."""
    if not key:
        return False
    if value == camelot.casefold():
        return True
    tonic, mode = key.split()
    want_minor = value.endswith("m") and len(value) > 1 and value[:-1].casefold() == tonic.casefold()
    return (value == tonic.casefold() and mode == "maj") or (want_minor and mode == "min")


def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Index of each query value in ``keys`` (any order), -1 where absent."""
    keys = np.asarray(keys, dtype=np.int64)
    if not keys.size:
        return np.full(len(query), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    at = np.minimum(np.searchsorted(keys, query, sorter=order), keys.size - 1)
    found = order[at]
    return np.where(keys[found] == query, found, -1)


__all__ = ["COLUMNS", "COL", "OPTIONAL_COLUMNS", "TRACK_ID_ROLE", "TrackTableModel", "format_duration"]

"""The library table's selection and what acts on the selected tracks alone: the map highlight,
the context menu, play, open the folder, copy the paths."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QObject, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QAbstractItemView, QMenu

from musicsim.gui.jobs import Jobs
from musicsim.gui.layout import WindowLayout, add_actions
from musicsim.gui.preview import Preview
from musicsim.gui.tablemodel import TrackTableModel, format_duration

HIGHLIGHT_LIMIT = 50_000  # more selected tracks than this are highlighted on the map only while it shows


class Selection(QObject):
    """Reads and sets the table's selection, and keeps the cluster map's highlight in step with it."""

    def __init__(self, *, ui: WindowLayout, model: TrackTableModel, jobs: Jobs, preview: Preview) -> None:
        super().__init__(ui.window)
        self.ui = ui
        self.model = model
        self.jobs = jobs
        self.preview = preview
        self.table = ui.library_page.table
        self.map = ui.cluster_page.map
        self.map.describe = self.describe_track
        self.map.selection_changed.connect(self._on_map_selection)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.table.doubleClicked.connect(lambda _i: self.play_selected() if preview.available else None)
        self._settle = QTimer(self)  # one update after a burst of selection changes (a drag, shift+arrows)
        self._settle.setSingleShot(True)
        self._settle.setInterval(80)
        self._settle.timeout.connect(self._on_selection_settled)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._settle.start())

    # --- reading ------------------------------------------------------------------------------

    def selected_rows(self) -> np.ndarray:
        """Selected rows, from the selection's ranges (selectedRows() builds one index per row:
        seconds for 100,000)."""
        parts = [np.arange(r.top(), r.bottom() + 1) for r in self.table.selectionModel().selection() if r.isValid()]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        rows = np.unique(np.concatenate(parts))
        return rows[rows < len(self.model.view)]

    def selected_ids(self) -> list[int]:
        rows = self.selected_rows()
        return self.model.cols.ids[self.model.view[rows]].tolist() if rows.size else []

    def current_id(self) -> int | None:
        idx = self.table.currentIndex()
        if idx.isValid() and self.table.selectionModel().isRowSelected(idx.row()):
            return self.model.id_at(idx.row())
        ids = self.selected_ids()
        return ids[0] if ids else None

    # --- setting ------------------------------------------------------------------------------

    def select_tracks(self, ids, *, show: bool = False) -> int:
        """Select these tracks in the table (contiguous rows merged into ranges); return how many."""
        rows = self.model.rows_of_ids(ids)
        sel = QItemSelection()
        if rows.size:
            breaks = np.flatnonzero(np.diff(rows) != 1)
            starts = np.concatenate([[rows[0]], rows[breaks + 1]])
            ends = np.concatenate([rows[breaks], [rows[-1]]])
            last = self.model.columnCount() - 1
            for a, b in zip(starts.tolist(), ends.tolist()):
                sel.select(self.model.index(a, 0), self.model.index(b, last))
        sm = self.table.selectionModel()
        sm.select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        if rows.size:
            first = self.model.index(int(rows[0]), 0)
            sm.setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.table.scrollTo(first, QAbstractItemView.ScrollHint.PositionAtCenter)
        if show and self.ui.tracks_page_shown():
            self.ui.tabs.setCurrentWidget(self.ui.library_page)
        return int(rows.size)

    def _on_selection_settled(self) -> None:
        ids = self.selected_ids()
        if self.ui.tabs.currentWidget() is self.ui.cluster_page or len(ids) < HIGHLIGHT_LIMIT:
            self.map.set_highlight(ids)
        if len(ids) == 1:
            t = self.model.track(ids[0])
            if t:
                extra = f" · {t['cluster_name']}" if t["cluster_name"] else ""
                self.jobs.notify(f"{t['path']}{extra}", timeout_ms=5000)
        elif len(ids) > 1:
            self.jobs.notify(f"{len(ids):,} tracks selected", timeout_ms=4000)

    def _on_map_selection(self, ids) -> None:
        n = self.select_tracks(ids.tolist())
        self.ui.cluster_page.info.setText(
            f"{n:,} tracks selected on the map — they are selected in the Library table too"
        )

    def _table_menu(self, pos) -> None:
        ui = self.ui
        menu = QMenu(self.table)
        add_actions(
            menu,
            (
                ui.act_similar,
                ui.act_playlist,
                ui.act_clear_similar,
                None,
                ui.act_play,
                ui.act_stop,
                ui.act_play_mpd,
                ui.act_open_player,
                None,
                ui.act_show_map,
                ui.act_open_folder,
                ui.act_copy_path,
            ),
        )
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def describe_track(self, track_id: int) -> str:
        """The map's hover text."""
        t = self.model.track(track_id)
        if t is None:
            return f"track {track_id}"
        lines = [t["title"]]
        who = " · ".join(x for x in (t["artist"], t["album"]) if x)
        if who:
            lines.append(who)
        if t["cluster_name"]:
            lines.append(f"cluster: {t['cluster_name']}")
        if np.isfinite(t["outlier"]):
            lines.append(f"outlier score: {t['outlier']:.2f}")
        dur = format_duration(t["duration"])
        if dur:
            lines.append(dur)
        return "\n".join(lines)

    # --- acting on the selection ----------------------------------------------------------------

    def show_selection_on_map(self) -> None:
        self.ui.tabs.setCurrentWidget(self.ui.cluster_page)
        self.map.set_highlight(self.selected_ids())

    def open_containing_folder(self) -> None:
        tid = self.current_id()
        t = self.model.track(tid) if tid is not None else None
        if t is None:
            return
        folder = os.path.dirname(t["path"])
        if not os.path.isdir(folder):
            self.jobs.notify(f"The folder is gone: {folder}", error=True)
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def copy_paths(self) -> None:
        paths = [self.model.track(i)["path"] for i in self.selected_ids()]
        QGuiApplication.clipboard().setText("\n".join(paths))
        self.jobs.notify(f"Copied {len(paths)} paths")

    def play_selected(self) -> None:
        tid = self.current_id()
        if tid is None:
            self.jobs.notify("Select a track to play")
            return
        self.preview.play(self.model.track(tid)["path"])


__all__ = ["Selection"]

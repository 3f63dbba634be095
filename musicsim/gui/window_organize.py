"""Organising from the main window: selection, similarity sort, playlists, clusters and outliers
(a mixin of :class:`~musicsim.gui.mainwindow.MainWindow`)."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidgetItem,
    QMenu,
)

from musicsim.gui.backend import ClusterData
from musicsim.gui.clustermap import cluster_color
from musicsim.gui.playlists import MakePlaylistDialog
from musicsim.gui.tablemodel import COL, format_duration
from musicsim.gui.window_layout import add_actions
from musicsim.gui.workers import Job


class Organize:
    """What the user does with the analysed library."""

    # ======================================================================================
    # selection and the table
    # ======================================================================================

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
        self._syncing_selection = True
        try:
            self.table.selectionModel().select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            if rows.size:
                self.table.selectionModel().setCurrentIndex(self.model.index(int(rows[0]), 0),
                                                            QItemSelectionModel.SelectionFlag.NoUpdate)
                self.table.scrollTo(self.model.index(int(rows[0]), 0), QAbstractItemView.ScrollHint.PositionAtCenter)
        finally:
            self._syncing_selection = False
        if show and self.stack.currentWidget() is self.splitter:
            self.tabs.setCurrentWidget(self.library_page)
        return int(rows.size)

    def _on_selection_settled(self) -> None:
        ids = self.selected_ids()
        if self.tabs.currentWidget() is self.cluster_page or len(ids) < 50_000:
            self.cluster_map.set_highlight(ids)
        if len(ids) == 1:
            t = self.model.track(ids[0])
            if t:
                extra = f" · {t['cluster_name']}" if t["cluster_name"] else ""
                self.notify(f"{t['path']}{extra}", timeout_ms=5000)
        elif len(ids) > 1:
            self.notify(f"{len(ids):,} tracks selected", timeout_ms=4000)

    def _on_map_selection(self, ids) -> None:
        n = self.select_tracks(ids.tolist())
        self.cluster_info.setText(f"{n:,} tracks selected on the map — they are selected in the Library table too")

    def _table_menu(self, pos) -> None:
        menu = QMenu(self)
        add_actions(menu, (self.act_similar, self.act_playlist, self.act_clear_similar, None, self.act_play,
                           self.act_stop, None, self.act_show_map, self.act_open_folder, self.act_copy_path))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _describe_track(self, track_id: int) -> str:
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

    def show_selection_on_map(self) -> None:
        self.tabs.setCurrentWidget(self.cluster_page)
        self.cluster_map.set_highlight(self.selected_ids())

    def open_containing_folder(self) -> None:
        tid = self.current_id()
        t = self.model.track(tid) if tid is not None else None
        if t is None:
            return
        folder = os.path.dirname(t["path"])
        if not os.path.isdir(folder):
            self.notify(f"The folder is gone: {folder}", error=True)
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def copy_paths(self) -> None:
        paths = [self.model.track(i)["path"] for i in self.selected_ids()]
        QGuiApplication.clipboard().setText("\n".join(paths))
        self.notify(f"Copied {len(paths)} paths")

    def play_selected(self) -> None:
        tid = self.current_id()
        if tid is None:
            self.notify("Select a track to play")
            return
        self.preview.play(self.model.track(tid)["path"])


    # ======================================================================================
    # similarity and playlists
    # ======================================================================================

    def sort_by_similarity(self, ids: list[int] | None = None) -> Job | None:
        if not self._need_library():
            return None
        seeds = list(ids) if ids else self.selected_ids()
        if not seeds:
            self.notify("Select one or more tracks first, then sort by similarity")
            return None
        if len(seeds) > 500:
            seeds = seeds[:500]
            self.notify("Using the first 500 selected tracks as seeds")
        backend = self.backend

        def done(result) -> None:
            ids_, dist = result
            self.model.set_similarity(seeds, ids_, dist)
            self.table.setColumnHidden(COL["distance"], False)
            self.table.horizontalHeader().setSortIndicator(COL["distance"], Qt.SortOrder.AscendingOrder)
            self.select_tracks(seeds)
            self.table.scrollToTop()
            self.tabs.setCurrentWidget(self.library_page)
            self._update_actions()
            self.similarity_done.emit()

        return self.run_job(lambda: backend.rank(seeds), name="Sorting by similarity", on_result=done)

    def clear_similarity(self) -> None:
        self.model.clear_similarity()
        self.table.setColumnHidden(COL["distance"], True)
        if self.model.sort_key is None:
            self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self._update_actions()

    def make_playlist_dialog(self) -> None:
        if not self._need_library():
            return
        seeds = self.selected_ids() or list(self.model.seed_ids)
        if not seeds:
            self.notify("Select one or more tracks first: the playlist is made of tracks that sound like them")
            return
        seeds = seeds[:100]
        labels = [self.model.label(s) for s in seeds]
        dlg = MakePlaylistDialog(labels, name=f"Like {labels[0]}"[:80], parent=self)
        if dlg.exec():
            self.make_playlist(seeds, **dlg.options())

    def make_playlist(self, seeds: list[int], **options) -> Job | None:
        if not self._need_library():
            return None
        backend = self.backend

        def done(result) -> None:
            pid, name, ids, _stats = result
            self.notify(f"Made playlist “{name}” with {len(ids)} tracks")
            self.refresh_playlists(select=pid)
            self.playlist_made.emit(pid)

        return self.run_job(lambda: backend.make_playlist(seeds, **options), name="Making playlist", lane="write",
                            on_result=done, user_action=True)

    def refresh_playlists(self, select: int | None = None) -> None:
        if self.backend is None:
            return

        def done(rows) -> None:
            self.playlist_panel.set_playlists(rows, select=select)
            self.playlists_loaded.emit()

        self.run_job(self.backend.playlists, name="Loading playlists", on_result=done)


    # ======================================================================================
    # clusters and outliers
    # ======================================================================================

    def compute_clusters(self, *, auto: bool = False) -> Job | None:
        if not self._need_library():
            return None
        if not self.backend.writable:
            return None
        k = self.k_spin.value() or None
        backend = self.backend

        def work(progress, cancel):
            return backend.compute_clusters(k, progress=progress, cancel=cancel)

        def failed(err) -> None:
            if auto:
                self.notify(f"Clusters not computed: {err}")
            else:
                self.job_error("Computing clusters", err, user_action=True)

        job = self.run_job(work, name="Computing clusters", lane="exclusive", long=True, on_result=self._set_clusters,
                           on_progress=self._on_long_progress, on_error=failed)
        job.done.connect(lambda j=job: self._on_long_done(j))
        self._begin_long(job, "Computing clusters…")
        self.cluster_info.setText("Computing clusters…")
        return job

    def refresh_clusters(self) -> None:
        if self.backend is None:
            return
        self.run_job(self.backend.cluster_data, name="Loading clusters", on_result=self._set_clusters)

    def _set_clusters(self, data: ClusterData) -> None:
        self.cluster_data = data
        self.model.set_cluster_data(data)
        self.cluster_map.set_data(data)
        self.legend.clear()
        for c, name, size in self.cluster_map.clusters():
            item = QListWidgetItem(f"{name}  ({size})")
            item.setData(Qt.ItemDataRole.UserRole, c)
            item.setIcon(self._swatch(c))
            self.legend.addItem(item)
        if len(data):
            k = len(self.cluster_map.clusters())
            missing = max(0, self.model.total - len(data))
            stale = f" · {missing} newer tracks not on the map: press Compute" if missing else ""
            self.cluster_info.setText(f"{k} clusters · {len(data):,} tracks{stale}")
            self.cluster_map.placeholder = ""
        else:
            self.cluster_info.setText("")
            self.cluster_map.placeholder = ("No map yet. Press Compute to group the library into clusters "
                                            "(this also scores outliers).")
        self.cluster_map.set_highlight(self.selected_ids())
        self.refresh_outliers()
        self.clusters_loaded.emit()

    def _swatch(self, cluster: int):
        from PySide6.QtGui import QIcon, QPainter, QPixmap

        pm = QPixmap(14, 14)
        pm.fill(Qt.GlobalColor.transparent)
        p = QPainter(pm)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setBrush(cluster_color(cluster))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(1, 1, 12, 12)
        p.end()
        return QIcon(pm)

    def refresh_outliers(self, n: int | None = None) -> None:
        if self.backend is None:
            return
        n = n or self.outlier_panel.n.value()
        names = dict(self.cluster_data.names)
        if not len(self.cluster_data):
            self.outlier_panel.set_rows([], names)
            return
        self.run_job(lambda: self.backend.outliers(n), name="Ranking outliers",
                     on_result=lambda rows: self.outlier_panel.set_rows(rows, names))

    def find_duplicates(self) -> Job | None:
        """Fill the Duplicates tab (in a worker; the library is only read)."""
        if not self._need_library():
            return None
        panel = self.dup_panel
        panel.stale = False
        panel.find.setEnabled(False)

        def done(rows) -> None:
            panel.find.setEnabled(True)
            panel.set_rows(rows)  # marked out of date if the library changed while it searched

        def failed(err) -> None:
            panel.find.setEnabled(True)
            panel.stale = True
            self.job_error("Finding duplicates", err, user_action=True)

        return self.run_job(self.backend.duplicates, name="Finding duplicates", on_result=done, on_error=failed)

    def _on_tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.cluster_page:
            self.cluster_map.set_highlight(self.selected_ids())
        elif self.tabs.currentWidget() is self.dup_panel and self.dup_panel.stale and self.model.total:
            self.find_duplicates()

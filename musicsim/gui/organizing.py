"""What the user does with the analysed library: sort by similarity, make playlists, compute
clusters, rank outliers, find duplicates.

Similarity goes through :meth:`Backend.rank`, which is ``lib.organizer.rank``: the same path
in the library as ``Library.similar`` and so as ``musicsim similar``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QListWidgetItem

from musicsim.gui.backend import ClusterData
from musicsim.gui.clustermap import cluster_color
from musicsim.gui.events import WindowEvents
from musicsim.gui.jobs import Jobs
from musicsim.gui.layout import WindowLayout
from musicsim.gui.playlists import MakePlaylistDialog
from musicsim.gui.selection import Selection
from musicsim.gui.session import LibrarySession
from musicsim.gui.tablemodel import COL, TrackTableModel
from musicsim.gui.workers import Job

MAX_SEEDS = 500  # a similarity sort uses at most this many selected tracks
MAX_PLAYLIST_SEEDS = 100
EXPLAIN_TOP = 200  # the nearest tracks of a similarity sort get a "why" tooltip


@dataclass
class Levels:
    """Every level of the cluster hierarchy, loaded once, so the slider needs no worker."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))  # tracks x levels
    levels: tuple[int, ...] = ()
    names: dict[int, dict[int, str]] = field(default_factory=dict)
    default: int = 0
    shown: int = 0


def load_levels(backend) -> Levels:
    """Read in a worker: the stored hierarchy of the active model."""
    org = backend.org
    info = org.hierarchy()
    ids, labels, levels = org.level_labels()
    if not info or not levels:
        return Levels()
    names = {int(k): {int(c): n for c, n in v.items()} for k, v in info.get("names", {}).items()}
    return Levels(ids, labels, levels, names, int(info.get("default", 0)), int(info.get("shown", 0)))


def load_clusters(backend) -> tuple:
    """(ClusterData, Levels, descriptors by track id), read in one worker job."""
    return backend.cluster_data(), load_levels(backend), backend.org.descriptors()


class Organizing(QObject):
    """Owns the cluster data the table, map and outliers show; ``actions_changed`` re-checks the actions."""

    def __init__(
        self,
        *,
        ui: WindowLayout,
        model: TrackTableModel,
        jobs: Jobs,
        session: LibrarySession,
        selection: Selection,
        events: WindowEvents,
        actions_changed: Callable[[], None],
    ) -> None:
        super().__init__(ui.window)
        self.ui = ui
        self.model = model
        self.jobs = jobs
        self.session = session
        self.selection = selection
        self.events = events
        self.actions_changed = actions_changed
        self.cluster_data = ClusterData.empty()
        self.page = ui.library_page
        self.clusters = ui.cluster_page
        ui.tabs.currentChanged.connect(self._on_tab_changed)
        ui.outlier_panel.refresh_requested.connect(self.refresh_outliers)
        ui.dup_panel.refresh_requested.connect(self.find_duplicates)
        ui.playlist_panel.make_requested.connect(self.make_playlist_dialog)
        ui.playlist_panel.list_changed.connect(lambda pid: self.refresh_playlists(select=pid))
        self.clusters.compute_button.clicked.connect(lambda: self.compute_clusters())
        self.levels = Levels()
        self.clusters.level_slider.valueChanged.connect(self.show_level)
        self.page.clear_button.clicked.connect(self.clear_similarity)

    # --- similarity ---------------------------------------------------------------------------

    def sort_by_similarity(self, ids: list[int] | None = None) -> Job | None:
        if not self.session.need_library():
            return None
        seeds = list(ids) if ids else self.selection.selected_ids()
        if not seeds:
            self.jobs.notify("Select one or more tracks first, then sort by similarity")
            return None
        if len(seeds) > MAX_SEEDS:
            seeds = seeds[:MAX_SEEDS]
            self.jobs.notify(f"Using the first {MAX_SEEDS} selected tracks as seeds")
        backend = self.session.backend

        def work():
            ids_, dist = backend.rank(seeds)
            top = [int(i) for i in list(ids_)[:EXPLAIN_TOP]]
            why = {t: e.multiline for t, e in backend.org.explain_many(seeds[0], top).items()} if top else {}
            return ids_, dist, why

        def done(result) -> None:
            ids_, dist, why = result
            self.model.why = why
            self.model.set_similarity(seeds, ids_, dist)
            self.page.show_distance(True)
            self.selection.select_tracks(seeds)
            self.page.table.scrollToTop()
            self.ui.tabs.setCurrentWidget(self.page)
            self.actions_changed()
            self.events.similarity_done.emit()

        return self.jobs.run_job(work, name="Sorting by similarity", on_result=done)

    def clear_similarity(self) -> None:
        self.model.clear_similarity()
        self.page.table.setColumnHidden(COL["distance"], True)
        if self.model.sort_key is None:
            self.page.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.actions_changed()

    def forget_similarity(self) -> None:
        """Drop the distances (another model is active) without touching the sort indicator."""
        self.model.clear_similarity()
        self.page.show_distance(False)

    # --- playlists ----------------------------------------------------------------------------

    def make_playlist_dialog(self) -> None:
        if not self.session.need_library():
            return
        seeds = self.selection.selected_ids() or list(self.model.seed_ids)
        if not seeds:
            self.jobs.notify("Select one or more tracks first: the playlist is made of tracks that sound like them")
            return
        seeds = seeds[:MAX_PLAYLIST_SEEDS]
        labels = [self.model.label(s) for s in seeds]
        dlg = MakePlaylistDialog(labels, name=f"Like {labels[0]}"[:80], parent=self.ui.window)
        if dlg.exec():
            self.make_playlist(seeds, **dlg.options())

    def make_playlist(self, seeds: list[int], **options) -> Job | None:
        if not self.session.need_library():
            return None
        backend = self.session.backend

        def done(result) -> None:
            pid, name, ids, _stats = result
            self.jobs.notify(f"Made playlist “{name}” with {len(ids)} tracks")
            self.refresh_playlists(select=pid)
            self.events.playlist_made.emit(pid)

        return self.jobs.run_job(
            lambda: backend.make_playlist(seeds, **options),
            name="Making playlist",
            lane="write",
            on_result=done,
            user_action=True,
        )

    def refresh_playlists(self, select: int | None = None) -> None:
        if self.session.backend is None:
            return

        def done(rows) -> None:
            self.ui.playlist_panel.set_playlists(rows, select=select)
            self.events.playlists_loaded.emit()

        self.jobs.run_job(self.session.backend.playlists, name="Loading playlists", on_result=done)

    # --- clusters and outliers ------------------------------------------------------------------

    def compute_clusters(self, *, auto: bool = False) -> Job | None:
        if not self.session.need_library() or not self.session.backend.writable:
            return None
        k = self.clusters.k_spin.value() or None
        backend = self.session.backend

        def work(progress, cancel):
            backend.compute_clusters(k, progress=progress, cancel=cancel)
            return load_clusters(backend)

        def failed(err) -> None:
            if auto:
                self.jobs.notify(f"Clusters not computed: {err}")
            else:
                self.jobs.job_error("Computing clusters", err, user_action=True)

        job = self.jobs.run_job(
            work,
            name="Computing clusters",
            lane="exclusive",
            long=True,
            on_result=self._set_clusters,
            on_progress=self.jobs.on_progress,
            on_error=failed,
        )
        self.jobs.show_long(job, "Computing clusters…")
        self.clusters.info.setText("Computing clusters…")
        return job

    def refresh_clusters(self) -> None:
        if self.session.backend is None:
            return
        backend = self.session.backend
        self.jobs.run_job(lambda: load_clusters(backend), name="Loading clusters", on_result=self._set_clusters)

    def _set_clusters(self, result) -> None:
        data, levels, descriptors = result if isinstance(result, tuple) else (result, Levels(), None)
        if descriptors is not None:
            self.model.set_descriptors(descriptors)
        self.levels = levels
        slider = self.clusters.level_slider
        self.clusters.level_row.setVisible(bool(levels.levels) and len(data) > 0)
        if levels.levels:
            slider.blockSignals(True)
            slider.setRange(levels.levels[0], levels.levels[-1])
            slider.setValue(levels.shown or levels.default)
            slider.blockSignals(False)
            self._level_text(slider.value())
        self._show_data(data)

    def _level_text(self, k: int) -> None:
        default = " (the default)" if k == self.levels.default else ""
        self.clusters.level_label.setText(f"{k} groups{default}")

    def show_level(self, k: int) -> None:
        """Show the hierarchy's level of ``k`` groups: a lookup in what is loaded (instant)."""
        lv = self.levels
        data = self.cluster_data
        if not lv.levels or not len(data) or k not in lv.levels:
            return
        at = {int(t): i for i, t in enumerate(lv.ids.tolist())}
        col = lv.labels[:, lv.levels.index(k)]
        cluster = np.array([col[at[int(t)]] if int(t) in at else -1 for t in data.ids.tolist()], dtype=np.int64)
        self._level_text(k)
        self._show_data(replace(data, cluster=cluster, names=dict(lv.names.get(k, {}))))

    def _show_data(self, data: ClusterData) -> None:
        self.cluster_data = data
        self.model.set_cluster_data(data)
        cmap = self.clusters.map
        cmap.set_data(data)
        self._fill_legend()
        if len(data):
            k = len(cmap.clusters())
            missing = max(0, self.model.total - len(data))
            stale = f" · {missing} newer tracks not on the map: press Compute" if missing else ""
            self.clusters.info.setText(f"{k} clusters · {len(data):,} tracks{stale}")
            cmap.placeholder = ""
        else:
            self.clusters.info.setText("")
            cmap.placeholder = (
                "No map yet. Press Compute to group the library into clusters (this also scores outliers)."
            )
        cmap.set_highlight(self.selection.selected_ids())
        self.refresh_outliers()
        self.events.clusters_loaded.emit()

    def _fill_legend(self) -> None:
        legend = self.clusters.legend
        legend.clear()
        for c, name, size in self.clusters.map.clusters():
            item = QListWidgetItem(f"{name}  ({size})")
            item.setData(Qt.ItemDataRole.UserRole, c)
            item.setIcon(swatch(c))
            legend.addItem(item)

    def refresh_outliers(self, n: int | None = None) -> None:
        backend = self.session.backend
        if backend is None:
            return
        panel = self.ui.outlier_panel
        n = n or panel.n.value()
        names = dict(self.cluster_data.names)
        if not len(self.cluster_data):
            panel.set_rows([], names)
            return
        self.jobs.run_job(
            lambda: backend.outliers(n), name="Ranking outliers", on_result=lambda rows: panel.set_rows(rows, names)
        )

    def find_duplicates(self) -> Job | None:
        """Fill the Duplicates tab (in a worker; the library is only read)."""
        if not self.session.need_library():
            return None
        panel = self.ui.dup_panel
        panel.stale = False
        panel.find.setEnabled(False)

        def done(rows) -> None:
            panel.find.setEnabled(True)
            panel.set_rows(rows)  # marked out of date if the library changed while it searched

        def failed(err) -> None:
            panel.find.setEnabled(True)
            panel.stale = True
            self.jobs.job_error("Finding duplicates", err, user_action=True)

        return self.jobs.run_job(
            self.session.backend.duplicates, name="Finding duplicates", on_result=done, on_error=failed
        )

    def _on_tab_changed(self, _index: int) -> None:
        current = self.ui.tabs.currentWidget()
        if current is self.clusters:
            self.clusters.map.set_highlight(self.selection.selected_ids())
        elif current is self.ui.dup_panel and self.ui.dup_panel.stale and self.model.total:
            self.find_duplicates()


def swatch(cluster: int) -> QIcon:
    """A small disc in the cluster's colour, for the legend."""
    pm = QPixmap(14, 14)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(cluster_color(cluster))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawEllipse(1, 1, 12, 12)
    p.end()
    return QIcon(pm)


__all__ = ["Organizing", "swatch"]

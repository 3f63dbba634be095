"""The main window: library table, playlists sidebar, cluster map, outliers, training.

The window is the controller: it owns the one writable Library (opened in a worker), the
:class:`~musicsim.gui.workers.JobRunner`, and turns user actions into jobs. Widgets never
call the core themselves; everything goes through :class:`~musicsim.gui.backend.Backend`
on a worker thread and comes back as plain data.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from importlib import metadata

import numpy as np
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from musicsim import __version__
from musicsim.gui.backend import Backend, ClusterData
from musicsim.gui.clustermap import ClusterMap, cluster_color
from musicsim.gui.failures import FailuresDialog
from musicsim.gui.icons import icon
from musicsim.gui.outliers import OutlierPanel
from musicsim.gui.playlists import MakePlaylistDialog, PlaylistPanel
from musicsim.gui.preview import Preview
from musicsim.gui.settings import SettingsDialog, SettingsStore
from musicsim.gui.tablemodel import COL, TrackTableModel, format_duration
from musicsim.gui.training import TrainingPanel, format_eta
from musicsim.gui.workers import Job, JobError, JobRunner
from musicsim.jobs import Progress

log = logging.getLogger("musicsim.gui")

AUTO_CLUSTER_LIMIT = 20_000  # after a scan, clusters are recomputed automatically up to this many tracks
REFRESH_MIN_MS = 1000  # table refresh during a scan: at most once a second...
REFRESH_FACTOR = 4  # ...and never more than 1/4 of the time spent loading


class MainWindow(QMainWindow):
    library_opened = Signal()
    tracks_loaded = Signal()
    scan_finished = Signal(object)  # ScanReport
    clusters_loaded = Signal()
    similarity_done = Signal()
    playlists_loaded = Signal()
    playlist_made = Signal(int)
    training_done = Signal(str)  # "finished" | "cancelled" | "failed"
    status_loaded = Signal(dict)

    def __init__(self, *, db_path=None, settings: SettingsStore | None = None, runner: JobRunner | None = None,
                 open_library: bool = True, auto_cluster_limit: int = AUTO_CLUSTER_LIMIT) -> None:
        super().__init__()
        self.setWindowTitle("musicsim")
        self.setWindowIcon(icon("musicsim"))
        self.setAcceptDrops(True)
        self.db_path = db_path
        self.settings = settings or SettingsStore()
        self.config = self.settings.config()
        self.runner = runner or JobRunner(parent=self)
        self.runner.busy_changed.connect(self._on_busy_changed)
        self.auto_cluster_limit = auto_cluster_limit
        self.lib = None
        self.backend: Backend | None = None
        self.ready = False
        self.status: dict = {}
        self.roots: list[str] = []
        self.cluster_data = ClusterData.empty()
        self.long_job: Job | None = None
        self.scan_job: Job | None = None
        self.train_job: Job | None = None
        self._refreshing = False
        self._refresh_ms = REFRESH_MIN_MS
        self._open_error: str | None = None
        self._dialog_open = False
        self._syncing_selection = False
        self._closing = False

        self.model = TrackTableModel(self)
        self.preview = Preview(self, parent=self)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_central()
        self._build_statusbar()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self._incremental_refresh)
        self._restore_window()
        self._update_actions()
        if open_library:
            self.open_library()

    # ======================================================================================
    # building
    # ======================================================================================

    def _action(self, text: str, slot, *, shortcut=None, icon_name: str | None = None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if icon_name:
            a.setIcon(icon(icon_name))
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{text.replace('…', '').replace('&', '')} ({a.shortcut().toString()})" if shortcut else tip)
        a.triggered.connect(lambda _checked=False: slot())
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        A = self._action
        self.act_add_folder = A("&Add folder…", self.add_folder_dialog, shortcut="Ctrl+O", icon_name="folder-add",
                                tip="Add a music folder to the library and analyse it")
        self.act_add_files = A("Add &files…", self.add_files_dialog, tip="Add single music files")
        self.act_import = A("&Import playlist…", lambda: self.playlist_panel.import_dialog(),
                            tip="Import an M3U8 or XSPF playlist")
        self.act_settings = A("&Settings…", self.settings_dialog, shortcut="Ctrl+,", tip="Library folders, device, analysis, model")
        self.act_quit = A("&Quit", self.close, shortcut="Ctrl+Q")
        self.act_rescan = A("&Rescan", self.rescan, shortcut="F5", icon_name="rescan",
                            tip="Look for new, changed and deleted files in the library folders")
        self.act_failures = A("&Failures…", self.show_failures, tip="Files that could not be analysed, with the reason")
        self.act_purge = A("&Forget missing tracks", self.purge, tip="Remove tracks whose files are gone")
        self.act_clusters = A("Compute &clusters", lambda: self.compute_clusters(), icon_name="clusters",
                              tip="Group the library into clusters and score outliers")
        self.act_cancel = A("&Cancel current job", self.cancel_long_job, tip="Stop the scan or training that is running")
        self.act_similar = A("Sort by &similarity", self.sort_by_similarity, shortcut="Ctrl+Shift+S",
                             icon_name="similar", tip="Order the library by how close each track sounds to the selection")
        self.act_clear_similar = A("&Clear similarity sort", self.clear_similarity, tip="Back to the normal order")
        self.act_playlist = A("Make &playlist…", self.make_playlist_dialog, shortcut="Ctrl+Shift+P",
                              icon_name="playlist", tip="A playlist of the tracks that sound most like the selection")
        self.act_play = A("&Play preview", self.play_selected, shortcut="Ctrl+P", icon_name="play",
                          tip="Play the selected track")
        self.act_stop = A("S&top", self.preview.stop, shortcut="Ctrl+.", icon_name="stop", tip="Stop the preview")
        self.act_show_map = A("Show on cluster &map", self.show_selection_on_map, shortcut="Ctrl+M",
                              tip="Highlight the selected tracks on the cluster map")
        self.act_open_folder = A("Open containing &folder", self.open_containing_folder)
        self.act_copy_path = A("&Copy path", self.copy_paths, shortcut="Ctrl+Shift+C")
        self.act_train = A("&Train on my library…", self.show_training, icon_name="train",
                           tip="Fine-tune the model on your music (background)")
        self.act_about = A("&About musicsim", self.about)
        if not self.preview.available:
            for a in (self.act_play, self.act_stop):
                a.setEnabled(False)
                a.setToolTip(self.preview.reason)
                a.setStatusTip(self.preview.reason)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (self.act_add_folder, self.act_add_files, self.act_import):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_settings)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Library")
        for a in (self.act_rescan, self.act_failures, self.act_purge):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_clusters)
        m.addSeparator()
        m.addAction(self.act_cancel)
        m = mb.addMenu("&Track")
        for a in (self.act_similar, self.act_clear_similar, self.act_playlist, None, self.act_play, self.act_stop, None,
                  self.act_show_map, self.act_open_folder, self.act_copy_path):
            m.addSeparator() if a is None else m.addAction(a)
        self.model_menu = mb.addMenu("&Model")
        self.model_group = QActionGroup(self)
        self.model_group.setExclusive(True)
        self._rebuild_model_menu([])
        m = mb.addMenu("&Help")
        m.addAction(self.act_about)

    def _rebuild_model_menu(self, models: list[tuple[str, bool, bool]]) -> None:
        self.model_menu.clear()
        for a in self.model_group.actions():
            self.model_group.removeAction(a)
        can_switch = self.backend is not None and self.backend.can_switch_model
        for name, trained, active in models:
            a = QAction(f"{name}{'' if trained else '  (untrained)'}", self)
            a.setCheckable(True)
            a.setChecked(active)
            a.setData(name)
            a.setEnabled(can_switch or active)
            if not can_switch:
                a.setToolTip("Switching models needs Library.use_model")
            a.triggered.connect(lambda _c=False, n=name: self.use_model(n))
            self.model_group.addAction(a)
            self.model_menu.addAction(a)
        if not models:
            a = self.model_menu.addAction("(opening the library…)")
            a.setEnabled(False)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self.act_train)
        self.model_menu.menuAction().setToolTip("Active model; older models stay selectable")

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setIconSize(QSize(22, 22))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.act_add_folder, self.act_rescan, None, self.act_similar, self.act_playlist, None,
                  self.act_play, self.act_stop, None, self.act_clusters, self.act_train):
            tb.addSeparator() if a is None else tb.addAction(a)

    def _build_central(self) -> None:
        self.stack = QStackedWidget()
        self.welcome = self._build_welcome()
        self.stack.addWidget(self.welcome)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.library_page = self._build_library_page()
        self.tabs.addTab(self.library_page, icon("similar"), "Library")
        self.cluster_page = self._build_cluster_page()
        self.tabs.addTab(self.cluster_page, icon("clusters"), "Clusters")
        self.outlier_panel = OutlierPanel()
        self.outlier_panel.show_track.connect(lambda tid: self.select_tracks([tid], show=True))
        self.outlier_panel.refresh_requested.connect(self.refresh_outliers)
        self.tabs.addTab(self.outlier_panel, "Outliers")
        self.training = TrainingPanel()
        self.training.start_requested.connect(self.start_training)
        self.training.cancel_requested.connect(lambda: self.train_job and self.train_job.cancel())
        self.tabs.addTab(self.training, icon("train"), "Training")
        self.tabs.currentChanged.connect(self._on_tab_changed)

        self.playlist_panel = PlaylistPanel(self)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.playlist_panel)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([250, 1000])
        self.stack.addWidget(self.splitter)
        self.setCentralWidget(self.stack)

    def _build_welcome(self) -> QWidget:
        w = QWidget()
        outer = QVBoxLayout(w)
        outer.addStretch(2)
        pic = QLabel()
        pic.setPixmap(icon("drop").pixmap(112, 112))
        pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(pic)
        title = QLabel("<h1>Drop music folders here</h1>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(title)
        self.welcome_text = QLabel(
            "Drag one or more folders (or files) from your file manager onto this window, or choose "
            "<b>File › Add folder</b>. musicsim listens to every MP3, FLAC, OGG, WAV and MIDI file, then finds "
            "tracks that sound alike, makes playlists, maps your library into clusters and points out the tracks "
            "that fit nowhere. Your music files are never changed.")
        self.welcome_text.setWordWrap(True)
        self.welcome_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.welcome_text.setMinimumWidth(520)
        self.welcome_text.setMaximumWidth(640)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.welcome_text)
        row.addStretch(1)
        outer.addLayout(row)
        brow = QHBoxLayout()
        brow.addStretch(1)
        self.welcome_button = QPushButton(icon("folder-add"), "  Add folder…")
        self.welcome_button.setIconSize(QSize(22, 22))
        self.welcome_button.setMinimumHeight(36)
        self.welcome_button.clicked.connect(self.add_folder_dialog)
        brow.addWidget(self.welcome_button)
        brow.addStretch(1)
        outer.addLayout(brow)
        self.welcome_status = QLabel("Opening the library…")
        self.welcome_status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.welcome_status.setWordWrap(True)
        self.welcome_status.setStyleSheet("color: palette(mid);")
        outer.addWidget(self.welcome_status)
        outer.addStretch(3)
        return w

    def _build_library_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(4, 4, 4, 0)
        top = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by title, artist, album, genre or path…")
        self.filter_edit.setClearButtonEnabled(True)
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(200)
        self._filter_timer.timeout.connect(lambda: self.model.set_filter(self.filter_edit.text()))
        self.filter_edit.textChanged.connect(lambda _t: self._filter_timer.start())
        top.addWidget(self.filter_edit, 1)
        self.count_label = QLabel("")
        top.addWidget(self.count_label)
        v.addLayout(top)
        self.similar_bar = QWidget()
        sb = QHBoxLayout(self.similar_bar)
        sb.setContentsMargins(6, 2, 6, 2)
        self.similar_label = QLabel("")
        self.similar_label.setTextFormat(Qt.TextFormat.RichText)
        sb.addWidget(self.similar_label, 1)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear_similarity)
        sb.addWidget(clear)
        self.similar_bar.setStyleSheet("QWidget { background: #fff4d6; }")
        self.similar_bar.setAutoFillBackground(True)
        self.similar_bar.hide()
        v.addWidget(self.similar_bar)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.setDragEnabled(False)
        vh = self.table.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 8)
        h = self.table.horizontalHeader()
        # The header asks "is this whole column selected?" when it paints, which walks every row
        # through the (Python) model: 1.6 s with 100,000 rows selected. It highlights nothing
        # here, so it gets a selection model of its own that stays empty.
        h.setHighlightSections(False)
        h.setSelectionModel(QItemSelectionModel(self.model, h))
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setStretchLastSection(False)
        h.setSortIndicatorShown(True)
        h.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        for key, width in (("title", 260), ("artist", 170), ("album", 170), ("genre", 100), ("duration", 70),
                           ("format", 60), ("cluster", 120), ("outlier", 70), ("distance", 80)):
            self.table.setColumnWidth(COL[key], width)
        self.table.setColumnHidden(COL["distance"], True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.table.doubleClicked.connect(lambda _i: self.play_selected() if self.preview.available else None)
        self._sel_timer = QTimer(self)
        self._sel_timer.setSingleShot(True)
        self._sel_timer.setInterval(80)
        self._sel_timer.timeout.connect(self._on_selection_settled)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._sel_timer.start())
        self.model.view_changed.connect(self._update_counts)
        v.addWidget(self.table, 1)
        return page

    def _build_cluster_page(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Clusters:"))
        self.k_spin = QSpinBox()
        self.k_spin.setRange(0, 200)
        self.k_spin.setSpecialValueText("auto")
        self.k_spin.setToolTip("Number of clusters; auto chooses it from the music")
        top.addWidget(self.k_spin)
        self.compute_button = QPushButton(icon("clusters"), "Compute")
        self.compute_button.clicked.connect(lambda: self.compute_clusters())
        top.addWidget(self.compute_button)
        self.cluster_info = QLabel("")
        top.addWidget(self.cluster_info, 1)
        v.addLayout(top)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.cluster_map = ClusterMap()
        self.cluster_map.describe = self._describe_track
        self.cluster_map.selection_changed.connect(self._on_map_selection)
        split.addWidget(self.cluster_map)
        self.legend = QListWidget()
        self.legend.setToolTip("Click a cluster to select its tracks")
        self.legend.itemClicked.connect(lambda item: self.cluster_map.select_cluster(int(item.data(Qt.ItemDataRole.UserRole))))
        self.legend.setMinimumWidth(170)
        self.legend.setMaximumWidth(300)
        split.addWidget(self.legend)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setSizes([900, 200])
        v.addWidget(split, 1)
        return page

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.job_widget = QWidget()
        row = QHBoxLayout(self.job_widget)
        row.setContentsMargins(0, 0, 0, 0)
        self.job_label = QLabel("")
        self.job_label.setMinimumWidth(260)
        self.job_label.setMaximumWidth(520)
        self.job_bar = QProgressBar()
        self.job_bar.setFixedWidth(180)
        self.job_bar.setTextVisible(True)
        self.job_cancel = QToolButton()
        self.job_cancel.setText("Cancel")
        self.job_cancel.setToolTip("Stop this job (finished tracks are kept)")
        self.job_cancel.clicked.connect(self.cancel_long_job)
        row.addWidget(self.job_label)
        row.addWidget(self.job_bar)
        row.addWidget(self.job_cancel)
        self.job_widget.hide()
        sb.addPermanentWidget(self.job_widget)
        self.failures_button = QToolButton()
        self.failures_button.setAutoRaise(True)
        self.failures_button.clicked.connect(self.show_failures)
        self.failures_button.hide()
        sb.addPermanentWidget(self.failures_button)
        self.model_label = QLabel("")
        sb.addPermanentWidget(self.model_label)

    # ======================================================================================
    # jobs and messages
    # ======================================================================================

    def run_job(self, fn, *, name: str, lane: str = "read", long: bool = False, on_result=None, on_error=None,
                on_progress=None, on_cancelled=None, user_action: bool = False) -> Job:
        """Run ``fn`` in the background (see workers.py); errors go to the status bar."""

        def failed(err: JobError) -> None:
            if on_error is not None:
                on_error(err)
            else:
                self.job_error(name, err, user_action=user_action)

        return self.runner.submit(fn, name=name, lane=lane, long=long, on_result=on_result, on_error=failed,
                                  on_progress=on_progress, on_cancelled=on_cancelled)

    def job_error(self, name: str, err: Exception, *, user_action: bool = False) -> None:
        tb = getattr(err, "traceback", "")
        log.warning("%s failed: %s\n%s", name, err, tb)
        msg = f"{name} failed: {err}"
        self.notify(msg, error=True)
        if user_action and not self._dialog_open and not self._closing:
            self._dialog_open = True
            try:
                QMessageBox.warning(self, "musicsim", msg)
            finally:
                self._dialog_open = False

    def notify(self, message: str, *, error: bool = False, timeout_ms: int = 8000) -> None:
        """One line in the status bar (never a dialog)."""
        if error:
            log.info("%s", message)
        self.statusBar().showMessage(message, timeout_ms if not error else 15000)

    def _need_library(self) -> bool:
        if self.backend is None:
            self.notify("The library is still opening…")
            return False
        return True

    # ======================================================================================
    # library lifecycle
    # ======================================================================================

    def open_library(self) -> None:
        from musicsim.errors import LibraryBusy
        from musicsim.services import Library

        db_path, config = self.db_path, self.config

        def open_lib():
            try:
                lib = Library(db_path, config=config, writable=True)
            except LibraryBusy:
                lib = Library(db_path, config=config, writable=False)
            try:
                Backend(lib).warm_up()
            except Exception as e:  # noqa: BLE001 - a model that fails to load is reported when used
                log.warning("warming up: %s", e)
            return lib

        self.run_job(open_lib, name="Opening library", lane="exclusive", on_result=self._on_library_opened,
                     on_error=self._on_open_failed)

    def _on_open_failed(self, err: JobError) -> None:
        self._open_error = str(err)
        self.welcome_status.setText(f"Could not open the library: {err}")
        self.notify(f"Could not open the library: {err}", error=True)
        log.error("opening the library failed: %s", getattr(err, "traceback", err))

    def _on_library_opened(self, lib) -> None:
        if self._closing:
            lib.close()
            return
        self.lib = lib
        self.backend = Backend(lib)
        self.ready = True
        if not self.backend.writable:
            self.notify("Another musicsim is writing to this library: opened read-only", error=True, timeout_ms=0)
        self.training.set_available(
            self.backend.can_train,
            "" if self.backend.can_train else
            "Training from the app needs Library.train, which this musicsim core does not have yet. "
            "Meanwhile: python -m trainer --help")
        self._update_actions()
        self.refresh_status(on_done=self._after_first_status)
        self.reload_tracks()
        self.refresh_playlists()
        self.refresh_clusters()
        self.library_opened.emit()

    def _after_first_status(self, st: dict) -> None:
        if self.config.rescan_on_start and self.roots and self.backend.writable:
            self.notify("Re-scanning the library folders (Settings › Re-scan at start)")
            self.start_scan(self.roots)

    def refresh_status(self, on_done=None) -> None:
        if self.backend is None:
            return

        def done(st: dict) -> None:
            self.status = st
            self.roots = list(st.get("roots") or [])
            self._rebuild_model_menu(st.get("models", []))
            trained = st.get("trained")
            self.model_label.setText(f"Model: {st.get('model')}{'' if trained else ' (untrained)'}")
            self.model_label.setToolTip(st.get("warning") or "")
            nfail = int(st.get("failures") or 0)
            self.failures_button.setText(f"⚠ {nfail} failed")
            self.failures_button.setToolTip("Files that could not be analysed: show the reasons")
            self.failures_button.setVisible(nfail > 0)
            self._update_page()
            self.status_loaded.emit(st)
            if on_done:
                on_done(st)

        self.run_job(self.backend.status, name="Reading library status", on_result=done)

    def reload_tracks(self) -> None:
        """Replace the table's rows with the database's (one query, in a worker)."""
        if self.backend is None:
            return

        def done(cols) -> None:
            self.model.set_tracks(cols)
            self._update_page()
            self.tracks_loaded.emit()

        self.run_job(self.backend.track_columns, name="Loading tracks", on_result=done)

    def _incremental_refresh(self) -> None:
        """During a scan: append the tracks analysed since the last refresh (throttled).

        The worker loads only rows with a larger id and merges them into a copy of the
        table's column store (sort caches included), so the main thread only swaps it in.
        """
        if self.backend is None or self._refreshing or self.scan_job is None:
            return
        self._refreshing = True
        base = self.model.cols
        since = int(base.ids[-1]) if len(base) else 0
        backend = self.backend
        t0 = time.monotonic()

        def work():
            new = backend.track_columns(since_id=since)
            return new, (base.extended(new) if len(new) else None)

        def done(result) -> None:
            self._refreshing = False
            new, merged = result
            added = self.model.add_tracks(new, merged=merged if self.model.cols is base else None)
            spent_ms = (time.monotonic() - t0) * 1000
            self._refresh_ms = int(max(REFRESH_MIN_MS, REFRESH_FACTOR * spent_ms))
            if added:
                self._update_page()
                self.tracks_loaded.emit()
            if self.scan_job is not None:
                self._refresh_timer.start(self._refresh_ms)

        def failed(err) -> None:
            self._refreshing = False
            log.info("incremental refresh failed: %s", err)
            if self.scan_job is not None:
                self._refresh_timer.start(self._refresh_ms)

        self.run_job(work, name="Refreshing tracks", on_result=done, on_error=failed)

    def _update_page(self) -> None:
        has_tracks = len(self.model) > 0
        busy = self.scan_job is not None
        if has_tracks or busy:
            self.stack.setCurrentWidget(self.splitter)
        else:
            self.stack.setCurrentWidget(self.welcome)
            if self._open_error:
                return
            if self.backend is None:
                self.welcome_status.setText("Opening the library…")
            else:
                nfail = int(self.status.get("failures") or 0)
                extra = f" {nfail} files could not be analysed (Library › Failures)." if nfail else ""
                self.welcome_status.setText(f"Library: {self.status.get('database', self.db_path or '')}.{extra}")
        self._update_counts()
        self._update_actions()

    def _update_counts(self) -> None:
        total, shown = self.model.total, len(self.model.view)
        text = f"{total:,} tracks" if shown == total else f"{shown:,} of {total:,} tracks"
        self.count_label.setText(text)
        if self.model.has_similarity:
            seeds = self.model.seed_ids
            names = ", ".join(f"<b>{self._escape(self.model.label(s))}</b>" for s in seeds[:3])
            more = f" and {len(seeds) - 3} more" if len(seeds) > 3 else ""
            self.similar_label.setText(f"Sorted by similarity to {names}{more} — nearest first; "
                                       "the Distance column shows how far each track sounds.")
            self.similar_bar.show()
        else:
            self.similar_bar.hide()

    @staticmethod
    def _escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def _update_actions(self) -> None:
        has_lib = self.backend is not None
        writable = has_lib and self.backend.writable
        busy = self.runner.exclusive_busy
        for a in (self.act_add_folder, self.act_add_files, self.act_rescan):
            a.setEnabled(writable)
        self.act_purge.setEnabled(writable and not busy)
        self.act_cancel.setEnabled(self.long_job is not None)
        has_tracks = has_lib and self.model.total > 0
        for a in (self.act_similar, self.act_playlist, self.act_show_map, self.act_open_folder, self.act_copy_path):
            a.setEnabled(has_tracks)
        self.act_clusters.setEnabled(writable and not busy and self.model.total >= 3)
        self.compute_button.setEnabled(writable and not busy and self.model.total >= 3)
        if self.preview.available:
            self.act_play.setEnabled(has_tracks)
        self.act_clear_similar.setEnabled(self.model.has_similarity)
        self.act_import.setEnabled(writable)
        self.act_failures.setEnabled(has_lib)
        self.training.set_busy_elsewhere(busy or not writable or not has_tracks)
        self.act_train.setEnabled(has_tracks)
        self.welcome_button.setEnabled(writable)

    def _on_busy_changed(self, busy: bool) -> None:
        self._update_actions()

    # ======================================================================================
    # scanning
    # ======================================================================================

    def add_folder_dialog(self) -> None:
        start = self.roots[-1] if self.roots else os.path.expanduser("~")
        path = QFileDialog.getExistingDirectory(self, "Add a music folder", start)
        if path:
            self.add_paths([path])

    def add_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Add music files", os.path.expanduser("~"),
            "Music (*.mp3 *.flac *.ogg *.oga *.opus *.wav *.aif *.aiff *.m4a *.mid *.midi *.kar);;All files (*)")
        if paths:
            self.add_paths(paths)

    def add_paths(self, paths: list[str]) -> Job | None:
        good = [os.path.abspath(p) for p in paths if os.path.exists(p)]
        gone = [p for p in paths if not os.path.exists(p)]
        if gone:
            self.notify(f"Not found: {', '.join(gone[:3])}", error=True)
        if not good:
            return None
        return self.start_scan(good)

    def rescan(self, retry_failed: bool = False) -> Job | None:
        if not self._need_library():
            return None
        if not self.roots:
            self.notify("No library folders yet: add a folder first")
            return None
        return self.start_scan(self.roots, retry_failed=retry_failed)

    def start_scan(self, paths: list[str], *, retry_failed: bool = False) -> Job | None:
        if not self._need_library():
            return None
        if not self.backend.writable:
            self.notify("The library is open read-only (another musicsim is writing to it)", error=True)
            return None
        if self.scan_job is not None and not self.scan_job.is_done and self.runner.exclusive_job() is self.scan_job:
            self.notify("A scan is running: the new folders are scanned after it")
        backend = self.backend
        paths = list(paths)
        label = os.path.basename(paths[0].rstrip(os.sep)) + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")

        def work(progress, cancel):
            return backend.scan(paths, progress=progress, cancel=cancel, retry_failed=retry_failed)

        job = self.run_job(work, name=f"Scanning {label}", lane="exclusive", long=True,
                           on_result=self._on_scan_done, on_progress=self._on_long_progress)
        job.done.connect(lambda j=job: self._on_long_done(j))
        self.scan_job = job
        self._begin_long(job, f"Scanning {label}…")
        self._update_page()
        if self.stack.currentWidget() is self.splitter and self.tabs.currentWidget() is not self.library_page:
            self.tabs.setCurrentWidget(self.library_page)
        self._refresh_ms = REFRESH_MIN_MS
        self._refresh_timer.start(self._refresh_ms)
        return job

    def _on_scan_done(self, rep) -> None:
        parts = [f"found {rep.found}", f"analysed {rep.analysed}", f"unchanged {rep.skipped}"]
        if rep.failed:
            parts.append(f"failed {rep.failed}")
        if rep.missing:
            parts.append(f"missing {rep.missing}")
        head = "Scan cancelled" if rep.cancelled else "Scan finished"
        self.notify(f"{head}: {', '.join(parts)}" + (" — see Library › Failures" if rep.failures else ""),
                    error=bool(rep.failures), timeout_ms=15000)
        self.reload_tracks()
        self.refresh_status()
        self.scan_finished.emit(rep)
        total = int(self.status.get("tracks") or 0) + rep.analysed
        if (rep.analysed or rep.missing) and not rep.cancelled and 3 <= total <= self.auto_cluster_limit:
            self.compute_clusters(auto=True)

    def _begin_long(self, job: Job, text: str) -> None:
        self.long_job = self.runner.exclusive_job() or job
        self.job_label.setText(text)
        self.job_bar.setRange(0, 0)
        self.job_widget.show()
        self._update_actions()

    def _on_long_progress(self, p: Progress) -> None:
        job = self.sender()
        if isinstance(job, Job):
            self.long_job = job
        if p.total:
            self.job_bar.setRange(0, p.total)
            self.job_bar.setValue(min(p.done, p.total))
            self.job_bar.setFormat(f"{p.done:,} / {p.total:,}")
        else:
            self.job_bar.setRange(0, 0)
        eta = f" · ETA {format_eta(p.eta_s)}" if p.eta_s is not None else ""
        current = os.path.basename(p.current) if p.current and os.sep in p.current else (p.current or "")
        name = job.name if isinstance(job, Job) else p.stage
        text = f"{name}: {current}{eta}" if current else f"{name}{eta}"
        fm = self.job_label.fontMetrics()
        self.job_label.setText(fm.elidedText(text, Qt.TextElideMode.ElideMiddle, self.job_label.maximumWidth()))
        self.job_label.setToolTip(p.current or "")

    def _on_long_done(self, job: Job) -> None:
        if job is self.scan_job:
            self.scan_job = None
            self._refresh_timer.stop()
        if job is self.train_job:
            self.train_job = None
        nxt = self.runner.exclusive_job()
        if nxt is None:
            nxt = next((j for j in self.runner.jobs if j.lane == "exclusive" and j is not job), None)
        self.long_job = nxt
        if nxt is None:
            self.job_widget.hide()
        else:
            self.job_label.setText(f"{nxt.name}…")
            self.job_bar.setRange(0, 0)
        self._update_actions()
        self._update_page()

    def cancel_long_job(self) -> None:
        job = self.runner.exclusive_job() or self.long_job
        if job is not None:
            job.cancel()
            self.job_label.setText(f"{job.name}: cancelling…")
            self.notify(f"Cancelling: {job.name}")

    def show_failures(self) -> None:
        if not self._need_library():
            return

        def done(rows) -> None:
            dlg = FailuresDialog(rows, self)
            dlg.retry_requested.connect(lambda: self.rescan(retry_failed=True))
            self._failures_dialog = dlg
            dlg.open()

        self.run_job(self.backend.failures, name="Reading failures", on_result=done)

    def purge(self) -> None:
        if not self._need_library():
            return

        def done(result: tuple[int, int, int]) -> None:
            n, removed, freed = result
            self.notify(f"Forgot {n} tracks whose files are gone"
                        + (f"; freed {freed / 2**20:.0f} MB of cached sound of changed or missing files" if removed else ""))
            self.reload_tracks()
            self.refresh_status()

        self.run_job(self.backend.purge, name="Forgetting missing tracks", lane="exclusive", on_result=done)

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
        for a in (self.act_similar, self.act_playlist, self.act_clear_similar, None, self.act_play, self.act_stop,
                  None, self.act_show_map, self.act_open_folder, self.act_copy_path):
            menu.addSeparator() if a is None else menu.addAction(a)
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

    def _on_tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.cluster_page:
            self.cluster_map.set_highlight(self.selected_ids())

    # ======================================================================================
    # training and models
    # ======================================================================================

    def show_training(self) -> None:
        if self.stack.currentWidget() is not self.splitter:
            self.stack.setCurrentWidget(self.splitter)
        self.tabs.setCurrentWidget(self.training)

    def start_training(self, minutes: float, device: str) -> Job | None:
        if not self._need_library():
            return None
        if not self.backend.can_train:
            self.training.set_available(False, "Library.train is not available in this musicsim core")
            return None
        backend = self.backend

        def work(progress, cancel):
            return backend.train(minutes, device, progress=progress, cancel=cancel)

        def progress(p: Progress) -> None:
            self.training.on_progress(p)
            self._on_long_progress(p)

        def done(result: dict) -> None:
            if result.get("cancelled"):
                self.training.finished("Training cancelled; the previous model stays active.")
                self.training_done.emit("cancelled")
            else:
                name = result.get("name") or result.get("model") or "the new model"
                if result.get("activated", True):
                    self.training.finished(f"Training finished: {name} is now active (the previous model stays "
                                           "selectable in the Model menu).")
                else:  # the album/folder check kept the previous model (trainer.guard)
                    self.training.finished(f"Training finished, but {result.get('guard') or 'the check failed'}. "
                                           f"{name} is selectable in the Model menu.")
                self.training_done.emit("finished")
            self._after_model_change()

        def cancelled() -> None:
            self.training.finished("Training cancelled; the previous model stays active.")
            self.training_done.emit("cancelled")
            self._after_model_change()

        def failed(err) -> None:
            self.training.finished(f"Training failed: {err}")
            self.job_error("Training", err)
            self.training_done.emit("failed")

        self.training.started(device)
        job = self.run_job(work, name="Training", lane="exclusive", long=True, on_result=done, on_progress=progress,
                           on_cancelled=cancelled, on_error=failed)
        job.done.connect(lambda j=job: self._on_long_done(j))
        self.train_job = job
        self._begin_long(job, "Training…")
        return job

    def use_model(self, name: str) -> None:
        if not self._need_library() or not self.backend.can_switch_model:
            return
        backend = self.backend

        def done(remaining: int) -> None:
            self.notify(f"Model {name} is now active")
            self._after_model_change()
            if remaining and self.roots:
                self.notify(f"Model {name} is now active; analysing {remaining} tracks it has not seen")
                self.start_scan(self.roots)

        job = self.run_job(lambda: backend.use_model(name), name=f"Switching to {name}", lane="exclusive",
                           on_result=done, user_action=True)
        job.done.connect(lambda j=job: self._on_long_done(j))
        self._begin_long(job, f"Switching to model {name}…")

    def _after_model_change(self) -> None:
        self.model.clear_similarity()
        self.table.setColumnHidden(COL["distance"], True)
        self.refresh_status()
        self.reload_tracks()
        self.refresh_clusters()

    # ======================================================================================
    # settings, about, window state
    # ======================================================================================

    def settings_dialog(self) -> None:
        dlg = SettingsDialog(self.settings, roots=self.roots, models=self.status.get("models", []),
                             can_switch_model=bool(self.backend and self.backend.can_switch_model), parent=self)
        dlg.add_folder_requested.connect(lambda: QTimer.singleShot(0, self.add_folder_dialog))
        dlg.rescan_requested.connect(self.rescan)
        if dlg.exec():
            dlg.save()
            self.apply_settings()
            if dlg.removed_roots and self._need_library():
                backend, gone = self.backend, list(dlg.removed_roots)
                self.run_job(lambda: [backend.remove_root(p) for p in gone], name="Removing folders",
                             lane="exclusive", on_result=lambda _: self.refresh_status())
            model = dlg.selected_model()
            if model:
                self.use_model(model)

    def apply_settings(self) -> None:
        self.config = self.settings.config()
        if self.backend is not None:
            self.backend.set_config(self.config)
        self.notify("Settings saved (they apply to the next scan)")

    def about(self) -> None:
        QMessageBox.about(self, "About musicsim", about_text(self.status))

    def _restore_window(self) -> None:
        geo = self.settings.bytes("window/geometry")
        if geo is None or not self.restoreGeometry(geo):
            self.resize(1280, 800)
        state = self.settings.bytes("window/state")
        if state is not None:
            self.restoreState(state)
        split = self.settings.bytes("window/splitter")
        if split is not None:
            self.splitter.restoreState(split)
        header = self.settings.bytes("library/header")
        if header is not None:
            self.table.horizontalHeader().restoreState(header)
            self.table.setColumnHidden(COL["distance"], True)
            self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        tab = self.settings.value("window/tab")
        if tab is not None:
            try:
                self.tabs.setCurrentIndex(int(tab))
            except (TypeError, ValueError):
                pass

    def save_window_state(self) -> None:
        s = self.settings
        s.set_value("window/geometry", self.saveGeometry())
        s.set_value("window/state", self.saveState())
        s.set_value("window/splitter", self.splitter.saveState())
        s.set_value("library/header", self.table.horizontalHeader().saveState())
        s.set_value("window/tab", self.tabs.currentIndex())
        s.sync()

    # ======================================================================================
    # drag and drop, closing
    # ======================================================================================

    @staticmethod
    def _local_paths(mime) -> list[str]:
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if self._local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if self._local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = self._local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.add_paths(paths)

    def closeEvent(self, event) -> None:  # noqa: N802
        self._closing = True
        try:
            self.save_window_state()
        except Exception as e:  # noqa: BLE001 - never block closing
            log.warning("could not save the window state: %s", e)
        self.preview.close()
        self._refresh_timer.stop()
        self.runner.cancel_all()
        if not self.runner.wait(60_000):
            log.warning("background jobs did not stop within a minute; closing anyway")
        if self.lib is not None:
            try:
                self.lib.close()
            except Exception as e:  # noqa: BLE001
                log.warning("closing the library: %s", e)
            self.lib = None
            self.backend = None
        super().closeEvent(event)


def about_text(status: dict) -> str:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    model = status.get("model", "–")
    trained = "trained" if status.get("trained") else "untrained: similarity is only a rough timbre match"
    return (f"<h3>musicsim {__version__}</h3>"
            "<p>Organise a music library by how it sounds.</p>"
            f"<p><b>Active model:</b> {model} ({trained})<br>"
            f"<b>Library:</b> {status.get('database', '–')}<br>"
            f"<b>Tracks:</b> {status.get('tracks', 0):,}</p>"
            f"<p>torch {version('torch')} · Qt {qVersion()} · PySide6 {pyside_version} · "
            f"Python {platform.python_version()} · {sys.platform}</p>")


__all__ = ["MainWindow", "about_text"]

"""The main window's widgets, actions and menus (a mixin of :class:`~musicsim.gui.mainwindow.MainWindow`).

Only construction lives here: every slot it connects is defined by the window or its other mixins."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
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

from musicsim.gui.backend import READ_ONLY_MODELS
from musicsim.gui.clustermap import ClusterMap
from musicsim.gui.duplicates import DuplicatePanel
from musicsim.gui.icons import icon
from musicsim.gui.outliers import OutlierPanel
from musicsim.gui.playlists import PlaylistPanel
from musicsim.gui.tablemodel import COL
from musicsim.gui.training import TrainingPanel


def add_actions(target, actions) -> None:
    """Add ``actions`` to a menu or toolbar; None adds a separator."""
    for a in actions:
        if a is None:
            target.addSeparator()
        else:
            target.addAction(a)


class WindowLayout:
    """Builds actions, menus, toolbar, pages and status bar of the main window."""

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
        self.act_stop.setEnabled(False)  # until something plays
        if self.preview.available:
            self.preview.playing_changed.connect(self.act_stop.setEnabled)
        else:
            for a in (self.act_play, self.act_stop):
                a.setEnabled(False)
                a.setToolTip(self.preview.reason)
                a.setStatusTip(self.preview.reason)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        add_actions(mb.addMenu("&File"), (self.act_add_folder, self.act_add_files, self.act_import, None,
                                          self.act_settings, None, self.act_quit))
        add_actions(mb.addMenu("&Library"), (self.act_rescan, self.act_failures, self.act_purge, None,
                                             self.act_clusters, None, self.act_cancel))
        add_actions(mb.addMenu("&Track"), (self.act_similar, self.act_clear_similar, self.act_playlist, None,
                                           self.act_play, self.act_stop, None,
                                           self.act_show_map, self.act_open_folder, self.act_copy_path))
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
        can_switch = self.backend is not None and self.backend.writable
        for name, trained, active in models:
            a = QAction(f"{name}{'' if trained else '  (untrained)'}", self)
            a.setCheckable(True)
            a.setChecked(active)
            a.setData(name)
            a.setEnabled(can_switch or active)
            if not can_switch:
                a.setToolTip(READ_ONLY_MODELS)
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
        add_actions(tb, (self.act_add_folder, self.act_rescan, None, self.act_similar, self.act_playlist, None,
                         self.act_play, self.act_stop, None, self.act_clusters, self.act_train))

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
        self.dup_panel = DuplicatePanel()
        self.dup_panel.show_track.connect(lambda tid: self.select_tracks([tid], show=True))
        self.dup_panel.refresh_requested.connect(self.find_duplicates)
        self.tracks_loaded.connect(self.dup_panel.mark_stale)
        self.tabs.addTab(self.dup_panel, "Duplicates")
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

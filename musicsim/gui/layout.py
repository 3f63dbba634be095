"""The main window's frame: actions, menus, toolbar, tabs and the status bar's labels, and the
window state saved between runs.

Construction only: :mod:`musicsim.gui.mainwindow` connects the actions to the controllers.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QSplitter, QStackedWidget, QTabWidget, QToolButton

from musicsim.gui.backend import READ_ONLY_MODELS
from musicsim.gui.duplicates import DuplicatePanel
from musicsim.gui.icons import icon
from musicsim.gui.jobs import Jobs
from musicsim.gui.outliers import OutlierPanel
from musicsim.gui.pages import ClusterPage, LibraryPage, WelcomePage
from musicsim.gui.playlists import PlaylistPanel
from musicsim.gui.preview import Preview
from musicsim.gui.session import LibrarySession
from musicsim.gui.settings import SettingsStore
from musicsim.gui.tablemodel import COL, TrackTableModel
from musicsim.gui.training import TrainingPanel

# (attribute, text, shortcut, icon, tip)
ACTIONS = (
    ("act_add_folder", "&Add folder…", "Ctrl+O", "folder-add", "Add a music folder to the library and analyse it"),
    ("act_add_files", "Add &files…", None, None, "Add single music files"),
    ("act_import", "&Import playlist…", None, None, "Import an M3U8 or XSPF playlist"),
    ("act_settings", "&Settings…", "Ctrl+,", None, "Library folders, device, analysis, model"),
    ("act_quit", "&Quit", "Ctrl+Q", None, ""),
    ("act_rescan", "&Rescan", "F5", "rescan", "Look for new, changed and deleted files in the library folders"),
    ("act_failures", "&Failures…", None, None, "Files that could not be analysed, with the reason"),
    ("act_purge", "&Forget missing tracks", None, None, "Remove tracks whose files are gone"),
    ("act_clusters", "Compute &clusters", None, "clusters", "Group the library into clusters and score outliers"),
    ("act_cancel", "&Cancel current job", None, None, "Stop the scan or training that is running"),
    (
        "act_similar",
        "Sort by &similarity",
        "Ctrl+Shift+S",
        "similar",
        "Order the library by how close each track sounds to the selection",
    ),
    ("act_clear_similar", "&Clear similarity sort", None, None, "Back to the normal order"),
    (
        "act_playlist",
        "Make &playlist…",
        "Ctrl+Shift+P",
        "playlist",
        "A playlist of the tracks that sound most like the selection",
    ),
    ("act_play", "&Play preview", "Ctrl+P", "play", "Play the selected track"),
    ("act_stop", "S&top", "Ctrl+.", "stop", "Stop the preview"),
    ("act_play_mpd", "Play in &MPD", None, None, "Queue the selected tracks in MPD (Settings › Players)"),
    ("act_open_player", "&Open in player", None, None, "Open the selected tracks in the desktop's music player"),
    (
        "act_mpd_radio",
        "Sound-alike &radio in MPD",
        None,
        None,
        "Keep MPD's queue topped up with tracks like the one playing",
    ),
    ("act_show_map", "Show on cluster &map", "Ctrl+M", None, "Highlight the selected tracks on the cluster map"),
    ("act_open_folder", "Open containing &folder", None, None, ""),
    ("act_copy_path", "&Copy path", "Ctrl+Shift+C", None, ""),
    ("act_train", "&Train on my library…", None, "train", "Fine-tune the model on your music (background)"),
    ("act_about", "&About musicsim", None, None, ""),
)
TABS_BEFORE_DUPLICATES = ("Library", "Clusters", "Outliers", "Training")  # settings that stored the tab's index


def add_actions(target, actions) -> None:
    """Add ``actions`` to a menu or toolbar; None adds a separator."""
    for a in actions:
        if a is None:
            target.addSeparator()
        else:
            target.addAction(a)


class WindowLayout:
    """Builds and holds the window's actions (``act_*``), menus, toolbar, pages and tabs."""

    def __init__(
        self, window: QMainWindow, *, model: TrackTableModel, jobs: Jobs, session: LibrarySession, preview: Preview
    ) -> None:
        self.window = window
        self.preview = preview
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_central(model, jobs, session)
        self._build_statusbar()

    def _action(self, text: str, shortcut: str | None, icon_name: str | None, tip: str) -> QAction:
        a = QAction(text, self.window)
        if icon_name:
            a.setIcon(icon(icon_name))
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{text.replace('…', '').replace('&', '')} ({a.shortcut().toString()})" if shortcut else tip)
        self.window.addAction(a)
        return a

    def _build_actions(self) -> None:
        for name, text, shortcut, icon_name, tip in ACTIONS:
            setattr(self, name, self._action(text, shortcut, icon_name, tip))
        self.act_stop.setEnabled(False)  # until something plays
        if self.preview.available:
            self.preview.playing_changed.connect(self.act_stop.setEnabled)
        else:
            for a in (self.act_play, self.act_stop):
                a.setEnabled(False)
                a.setToolTip(self.preview.reason)
                a.setStatusTip(self.preview.reason)

    def _build_menus(self) -> None:
        mb = self.window.menuBar()
        add_actions(
            mb.addMenu("&File"),
            (self.act_add_folder, self.act_add_files, self.act_import, None, self.act_settings, None, self.act_quit),
        )
        add_actions(
            mb.addMenu("&Library"),
            (self.act_rescan, self.act_failures, self.act_purge, None, self.act_clusters, None, self.act_cancel),
        )
        add_actions(
            mb.addMenu("&Track"),
            (
                self.act_similar,
                self.act_clear_similar,
                self.act_playlist,
                None,
                self.act_play,
                self.act_stop,
                self.act_play_mpd,
                self.act_mpd_radio,
                self.act_open_player,
                None,
                self.act_show_map,
                self.act_open_folder,
                self.act_copy_path,
            ),
        )
        self.model_menu = mb.addMenu("&Model")
        self.model_group = QActionGroup(self.window)
        self.model_group.setExclusive(True)
        self.rebuild_model_menu([], can_switch=False, on_pick=lambda _name: None)
        mb.addMenu("&Help").addAction(self.act_about)

    def rebuild_model_menu(
        self, models: list[tuple[str, bool, bool]], *, can_switch: bool, on_pick: Callable[[str], None]
    ) -> None:
        """One checkable entry per (name, trained, active) model; ``on_pick(name)`` switches to it."""
        self.model_menu.clear()
        for a in self.model_group.actions():
            self.model_group.removeAction(a)
        for name, trained, active in models:
            a = QAction(f"{name}{'' if trained else '  (untrained)'}", self.window)
            a.setCheckable(True)
            a.setChecked(active)
            a.setData(name)
            a.setEnabled(can_switch or active)
            if not can_switch:
                a.setToolTip(READ_ONLY_MODELS)
            a.triggered.connect(lambda _c=False, n=name: on_pick(n))
            self.model_group.addAction(a)
            self.model_menu.addAction(a)
        if not models:
            self.model_menu.addAction("(opening the library…)").setEnabled(False)
        self.model_menu.addSeparator()
        self.model_menu.addAction(self.act_train)
        self.model_menu.menuAction().setToolTip("Active model; older models stay selectable")

    def _build_toolbar(self) -> None:
        tb = self.window.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setIconSize(QSize(22, 22))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        add_actions(
            tb,
            (
                self.act_add_folder,
                self.act_rescan,
                None,
                self.act_similar,
                self.act_playlist,
                None,
                self.act_play,
                self.act_stop,
                None,
                self.act_clusters,
                self.act_train,
            ),
        )

    def _build_central(self, model: TrackTableModel, jobs: Jobs, session: LibrarySession) -> None:
        self.stack = QStackedWidget()
        self.welcome = WelcomePage()
        self.stack.addWidget(self.welcome)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.library_page = LibraryPage(model)
        self.tabs.addTab(self.library_page, icon("similar"), "Library")
        self.cluster_page = ClusterPage()
        self.tabs.addTab(self.cluster_page, icon("clusters"), "Clusters")
        self.outlier_panel = OutlierPanel()
        self.tabs.addTab(self.outlier_panel, "Outliers")
        self.dup_panel = DuplicatePanel()
        self.tabs.addTab(self.dup_panel, "Duplicates")
        self.training = TrainingPanel()
        self.tabs.addTab(self.training, icon("train"), "Training")
        self.playlist_panel = PlaylistPanel(jobs=jobs, session=session)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.playlist_panel)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([250, 1000])
        self.stack.addWidget(self.splitter)
        self.window.setCentralWidget(self.stack)

    def _build_statusbar(self) -> None:
        sb = self.window.statusBar()
        self.failures_button = QToolButton()
        self.failures_button.setAutoRaise(True)
        self.failures_button.hide()
        sb.addPermanentWidget(self.failures_button)
        self.model_label = QLabel("")
        sb.addPermanentWidget(self.model_label)

    # --- pages ------------------------------------------------------------------------------

    def show_tracks_page(self, shown: bool) -> None:
        """The tabs (the library has tracks, or a scan is filling it) or the first-run screen."""
        self.stack.setCurrentWidget(self.splitter if shown else self.welcome)

    def tracks_page_shown(self) -> bool:
        return self.stack.currentWidget() is self.splitter

    def show_tab(self, page) -> None:
        if not self.tracks_page_shown():
            self.stack.setCurrentWidget(self.splitter)
        self.tabs.setCurrentWidget(page)

    # --- state between runs -------------------------------------------------------------------

    def restore_state(self, settings: SettingsStore) -> None:
        w = self.window
        geo = settings.bytes("window/geometry")
        if geo is None or not w.restoreGeometry(geo):
            w.resize(1280, 800)
        state = settings.bytes("window/state")
        if state is not None:
            w.restoreState(state)
        split = settings.bytes("window/splitter")
        if split is not None:
            self.splitter.restoreState(split)
        header = settings.bytes("library/header")
        if header is not None:
            table = self.library_page.table
            table.horizontalHeader().restoreState(header)
            table.setColumnHidden(COL["distance"], True)
            table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self._restore_tab(settings.value("window/tab"))

    def _restore_tab(self, tab) -> None:
        if tab is None:
            return
        tab = str(tab)
        if tab.isdigit():  # saved by a version that stored the index, before the Duplicates tab
            tab = dict(enumerate(TABS_BEFORE_DUPLICATES)).get(int(tab), "")
        titles = [self.tabs.tabText(i) for i in range(self.tabs.count())]
        if tab in titles:
            self.tabs.setCurrentIndex(titles.index(tab))

    def save_state(self, settings: SettingsStore) -> None:
        settings.set_value("window/geometry", self.window.saveGeometry())
        settings.set_value("window/state", self.window.saveState())
        settings.set_value("window/splitter", self.splitter.saveState())
        settings.set_value("library/header", self.library_page.table.horizontalHeader().saveState())
        settings.set_value("window/tab", self.tabs.tabText(self.tabs.currentIndex()))  # by name: tabs may be added
        settings.sync()


__all__ = ["ACTIONS", "WindowLayout", "add_actions"]

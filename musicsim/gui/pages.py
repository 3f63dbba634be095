"""The main window's pages: the first-run screen, the library table and the cluster map.

Widgets only: what their buttons do is wired by :mod:`musicsim.gui.mainwindow`.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from musicsim.gui.clustermap import ClusterMap
from musicsim.gui.icons import icon
from musicsim.gui.tablemodel import COL, COLUMNS, OPTIONAL_COLUMNS, TrackTableModel

WELCOME = (
    "Drag one or more folders (or files) from your file manager onto this window, or choose "
    "<b>File › Add folder</b>. musicsim listens to every MP3, FLAC, OGG, WAV and MIDI file, then finds "
    "tracks that sound alike, makes playlists, maps your library into clusters and points out the tracks "
    "that fit nowhere. Your music files are never changed."
)
COLUMN_WIDTHS = (
    ("title", 260),
    ("artist", 170),
    ("album", 170),
    ("genre", 100),
    ("duration", 70),
    ("format", 60),
    ("cluster", 120),
    ("outlier", 70),
    ("distance", 80),
)


def centred(widget: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(widget)
    row.addStretch(1)
    return row


class WelcomePage(QWidget):
    """Shown while the library has no tracks: drop folders here, or press the button."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(2)
        pic = QLabel()
        pic.setPixmap(icon("drop").pixmap(112, 112))
        pic.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(pic)
        title = QLabel("<h1>Drop music folders here</h1>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(title)
        self.text = QLabel(WELCOME)
        self.text.setWordWrap(True)
        self.text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.text.setMinimumWidth(520)
        self.text.setMaximumWidth(640)
        outer.addLayout(centred(self.text))
        self.button = QPushButton(icon("folder-add"), "  Add folder…")
        self.button.setIconSize(QSize(22, 22))
        self.button.setMinimumHeight(36)
        outer.addLayout(centred(self.button))
        self.status = QLabel("Opening the library…")
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color: palette(mid);")
        outer.addWidget(self.status)
        outer.addStretch(3)

    def show_library(self, status: dict | None, db_path) -> None:
        """Which library is open (``status`` None: still opening) and how many files failed."""
        if status is None:
            self.status.setText("Opening the library…")
            return
        nfail = int(status.get("failures") or 0)
        extra = f" {nfail} files could not be analysed (Library › Failures)." if nfail else ""
        self.status.setText(f"Library: {status.get('database', db_path or '')}.{extra}")


class LibraryPage(QWidget):
    """The filter box, the similarity banner and the track table over ``model``."""

    def __init__(self, model: TrackTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.loading = False  # the library is still opening: no rows yet, and none known missing
        v = QVBoxLayout(self)
        v.setContentsMargins(4, 4, 4, 0)
        v.addLayout(self._build_filter_row())
        v.addWidget(self._build_similar_bar())
        self.table = self._build_table()
        v.addWidget(self.table, 1)
        model.view_changed.connect(self.update_counts)

    def _build_filter_row(self) -> QHBoxLayout:
        top = QHBoxLayout()
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText(
            "Filter by title, artist, album, genre or path… (or bpm>120, key:Am, lufs<-14)"
        )
        self.filter_edit.setClearButtonEnabled(True)
        self._filter_timer = QTimer(self)  # filter once typing pauses, not on every key
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(200)
        self._filter_timer.timeout.connect(lambda: self.model.set_filter(self.filter_edit.text()))
        self.filter_edit.textChanged.connect(lambda _t: self._filter_timer.start())
        top.addWidget(self.filter_edit, 1)
        self.count_label = QLabel("")
        top.addWidget(self.count_label)
        return top

    def _build_similar_bar(self) -> QWidget:
        self.similar_bar = QWidget()
        sb = QHBoxLayout(self.similar_bar)
        sb.setContentsMargins(6, 2, 6, 2)
        self.similar_label = QLabel("")
        self.similar_label.setTextFormat(Qt.TextFormat.RichText)
        sb.addWidget(self.similar_label, 1)
        self.clear_button = QPushButton("Clear")
        sb.addWidget(self.clear_button)
        self.similar_bar.setStyleSheet("QWidget { background: #fff4d6; }")
        self.similar_bar.setAutoFillBackground(True)
        self.similar_bar.hide()
        return self.similar_bar

    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.model)
        table.setSortingEnabled(True)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        table.setShowGrid(False)
        table.setDragEnabled(False)
        vh = table.verticalHeader()
        vh.setVisible(False)
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(self.fontMetrics().height() + 8)
        h = table.horizontalHeader()
        # The header asks "is this whole column selected?" when it paints, which walks every row
        # through the (Python) model: 1.6 s with 100,000 rows selected. It highlights nothing
        # here, so it gets a selection model of its own that stays empty.
        h.setHighlightSections(False)
        h.setSelectionModel(QItemSelectionModel(self.model, h))
        h.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        h.setStretchLastSection(False)
        h.setSortIndicatorShown(True)
        h.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        for key, width in COLUMN_WIDTHS:
            table.setColumnWidth(COL[key], width)
        table.setColumnHidden(COL["distance"], True)
        for key in OPTIONAL_COLUMNS:  # the descriptors: shown from the header's menu
            table.setColumnHidden(COL[key], True)
        h.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        h.customContextMenuRequested.connect(lambda pos: self.column_menu().exec(h.mapToGlobal(pos)))
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        return table

    def column_menu(self) -> QMenu:
        """Show or hide the optional columns (tempo, key, loudness, brightness, texture)."""
        menu = QMenu(self)
        names = dict(COLUMNS)
        for key in OPTIONAL_COLUMNS:
            act = menu.addAction(names[key])
            act.setCheckable(True)
            act.setChecked(not self.table.isColumnHidden(COL[key]))
            act.toggled.connect(lambda on, k=key: self.table.setColumnHidden(COL[k], not on))
        return menu

    def show_distance(self, shown: bool) -> None:
        """The Distance column, sorted ascending while shown."""
        self.table.setColumnHidden(COL["distance"], not shown)
        if shown:
            self.table.horizontalHeader().setSortIndicator(COL["distance"], Qt.SortOrder.AscendingOrder)

    def set_loading(self, loading: bool) -> None:
        """Say that the library is opening (shown instead of the first-run screen meanwhile)."""
        self.loading = loading
        self.update_counts()

    def update_counts(self) -> None:
        total, shown = self.model.total, len(self.model.view)
        if self.loading and not total:
            self.count_label.setText("Opening the library…")
        else:
            self.count_label.setText(f"{total:,} tracks" if shown == total else f"{shown:,} of {total:,} tracks")
        if self.model.has_similarity:
            seeds = self.model.seed_ids
            names = ", ".join(f"<b>{escape(self.model.label(s))}</b>" for s in seeds[:3])
            more = f" and {len(seeds) - 3} more" if len(seeds) > 3 else ""
            self.similar_label.setText(
                f"Sorted by similarity to {names}{more} — nearest first; "
                "the Distance column shows how far each track sounds."
            )
            self.similar_bar.show()
        else:
            self.similar_bar.hide()


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ClusterPage(QWidget):
    """The cluster map with its legend; clicking a legend entry selects that cluster's tracks."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        top.addWidget(QLabel("Clusters:"))
        self.k_spin = QSpinBox()
        self.k_spin.setRange(0, 200)
        self.k_spin.setSpecialValueText("auto")
        self.k_spin.setToolTip("Number of clusters; auto chooses it from the music")
        top.addWidget(self.k_spin)
        self.compute_button = QPushButton(icon("clusters"), "Compute")
        top.addWidget(self.compute_button)
        self.info = QLabel("")
        top.addWidget(self.info, 1)
        v.addLayout(top)
        levels = QHBoxLayout()
        self.level_title = QLabel("Scale: coarse")
        levels.addWidget(self.level_title)
        self.level_slider = QSlider(Qt.Orientation.Horizontal)
        self.level_slider.setToolTip("Move between coarse and fine groupings (instant: computed once)")
        self.level_slider.setPageStep(1)
        levels.addWidget(self.level_slider, 1)
        levels.addWidget(QLabel("fine"))
        self.level_label = QLabel("")
        levels.addWidget(self.level_label)
        self.level_row = QWidget()
        self.level_row.setLayout(levels)
        self.level_row.setVisible(False)
        v.addWidget(self.level_row)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.map = ClusterMap()
        split.addWidget(self.map)
        self.legend = QListWidget()
        self.legend.setToolTip("Click a cluster to select its tracks")
        self.legend.itemClicked.connect(lambda item: self.map.select_cluster(int(item.data(Qt.ItemDataRole.UserRole))))
        self.legend.setMinimumWidth(170)
        self.legend.setMaximumWidth(300)
        split.addWidget(self.legend)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setSizes([900, 200])
        v.addWidget(split, 1)


__all__ = ["ClusterPage", "LibraryPage", "WelcomePage", "escape"]

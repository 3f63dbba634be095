"""Duplicates: pairs of tracks that are probably the same recording (near-identical sound and
the same duration), e.g. one album ripped twice or kept as both OGG and MP3.

The panel only shows them: musicsim never deletes or changes music files. The user opens the
folders and decides.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTableWidgetItem, QVBoxLayout, QWidget

from musicsim.gui.tablemodel import format_duration
from musicsim.gui.tables import NumItem, row_table

HEADERS = ("Distance", "Track", "Folder", "Same recording as", "Folder", "Length")
# Columns whose cell names a track (double-click shows that one): the first or the second.
_TRACK_OF_COLUMN = {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 0}


class DuplicatePanel(QWidget):
    """Emits ``show_track(id)`` on double-click (the track of the clicked side) and
    ``refresh_requested()`` from the button."""

    show_track = Signal(int)
    refresh_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.stale = True  # the library changed since the rows were found
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.find = QPushButton("Find duplicates")
        self.find.setToolTip(
            "Look for tracks that are the same recording twice: near-identical sound and the "
            "same duration (another format, another rip). Nothing is deleted."
        )
        self.find.clicked.connect(self.refresh_requested.emit)
        top.addWidget(self.find)
        top.addStretch(1)
        self.info = QLabel("")
        top.addWidget(self.info)
        layout.addLayout(top)
        self.table = row_table(self, HEADERS, (70, 220, 180, 220, 180))
        self.table.cellDoubleClicked.connect(lambda r, c: self.show_track.emit(self.track_id(r, _TRACK_OF_COLUMN[c])))
        layout.addWidget(self.table, 1)
        self.empty = QLabel("")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty)
        self.set_rows(None)

    def mark_stale(self) -> None:
        """The library changed: the rows may be out of date (searched again when the tab is
        shown next, or by the button)."""
        self.stale = True
        self._show_info()

    def _show_info(self) -> None:
        n = self.table.rowCount()
        if not n:
            self.info.setText("")
        elif self.stale:  # also for rows a search delivers after the library changed during it
            self.info.setText(f"{n} pairs · the library changed since: press Find duplicates again")
        else:
            self.info.setText(f"{n} pairs · double-click a track to show it in the library")

    def track_id(self, row: int, side: int = 0) -> int:
        item = self.table.item(row, 1 if side == 0 else 3)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else -1

    def set_rows(self, rows: list[tuple] | None) -> None:
        """rows: (distance, track A, track B), each track (id, title, path, duration); None
        before any search."""
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows or ()))
        for r, (dist, a, b) in enumerate(rows or ()):
            self.table.setItem(r, 0, NumItem(dist, f"{dist:.4f}"))
            for col, (tid, title, path, _dur) in ((1, a), (3, b)):
                t = QTableWidgetItem(title)
                t.setData(Qt.ItemDataRole.UserRole, tid)
                t.setToolTip(path)
                self.table.setItem(r, col, t)
                folder = QTableWidgetItem(os.path.basename(os.path.dirname(path)))
                folder.setToolTip(os.path.dirname(path))
                self.table.setItem(r, col + 1, folder)
            self.table.setItem(r, 5, NumItem(a[3] or 0.0, format_duration(a[3])))
        self.table.setSortingEnabled(True)
        self.table.sortItems(0, Qt.SortOrder.AscendingOrder)
        if rows is None:
            self.empty.setText("Press “Find duplicates” to look for tracks that are the same recording twice.")
        else:
            self.empty.setText("No duplicates: no two tracks sound the same and last as long.")
        self.empty.setVisible(not rows)
        self.table.setVisible(bool(rows))
        self._show_info()

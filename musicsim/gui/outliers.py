"""Outliers: tracks ranked by how badly they fit the library, with the reason."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QTableWidgetItem, QVBoxLayout, QWidget

from musicsim.gui.tables import NumItem, row_table

HEADERS = ("Score", "Title", "Artist", "Nearest cluster", "Why it stands out")


def reason_text(reason: dict) -> str:
    """One line: what sets the track apart from its nearest group in words; else how far from its
    cluster's centre (against the cluster's usual spread) and from its nearest neighbours."""
    if reason.get("stale"):
        return "tracks changed since the clusters were computed: press Compute (Clusters tab) for the reasons"
    parts = [str(reason["why"])] if reason.get("why") else []  # in words: what sets it apart, from which group
    cd, spread = reason.get("centroid_distance"), reason.get("cluster_spread")
    if cd is not None:
        if spread:
            parts.append(f"{cd / spread:.1f}× the usual distance to its cluster centre ({cd:.4f} vs {spread:.4f})")
        else:
            parts.append(f"{cd:.4f} from its cluster centre")
    knn = reason.get("knn_distance")
    if knn is not None:
        parts.append(f"nearest neighbours at {knn:.4f}")
    return " · ".join(parts) or "–"


class OutlierPanel(QWidget):
    """Emits ``show_track(id)`` on double-click; ``refresh_requested(n)`` from the button."""

    show_track = Signal(int)
    refresh_requested = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show the"))
        self.n = QSpinBox()
        self.n.setRange(5, 5000)
        self.n.setValue(50)
        top.addWidget(self.n)
        top.addWidget(QLabel("most unusual tracks"))
        self.refresh = QPushButton("Refresh")
        self.refresh.clicked.connect(lambda: self.refresh_requested.emit(self.n.value()))
        top.addWidget(self.refresh)
        top.addStretch(1)
        self.info = QLabel("")
        top.addWidget(self.info)
        layout.addLayout(top)
        self.table = row_table(self, HEADERS, (70, 220, 160, 150))
        self.table.cellDoubleClicked.connect(lambda r, _c: self.show_track.emit(self.track_id(r)))
        layout.addWidget(self.table, 1)
        self.empty = QLabel("Outlier scores come with the cluster map: compute clusters first (Clusters tab).")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        layout.addWidget(self.empty)
        self.set_rows([], {})

    def track_id(self, row: int) -> int:
        item = self.table.item(row, 1)
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else -1

    def set_rows(self, rows: list[tuple], names: dict[int, str]) -> None:
        """rows: (track id, title, artist, path, score, reason dict), most unusual first."""
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for r, (tid, title, artist, path, score, reason) in enumerate(rows):
            c = reason.get("cluster")
            cname = reason.get("cluster_name") or (names.get(int(c), f"Cluster {c}") if c is not None else "–")
            self.table.setItem(r, 0, NumItem(score))
            t = QTableWidgetItem(title)
            t.setData(Qt.ItemDataRole.UserRole, tid)
            t.setToolTip(path)
            self.table.setItem(r, 1, t)
            self.table.setItem(r, 2, QTableWidgetItem(artist))
            self.table.setItem(r, 3, QTableWidgetItem(cname))
            why = QTableWidgetItem(reason_text(reason))
            why.setToolTip(why.text())
            self.table.setItem(r, 4, why)
        self.table.setSortingEnabled(True)
        self.table.sortItems(0, Qt.SortOrder.DescendingOrder)
        self.empty.setVisible(not rows)
        self.table.setVisible(bool(rows))
        self.info.setText(f"{len(rows)} tracks" if rows else "")

"""The Failures dialog: files that could not be analysed, with the reason."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)


class FailuresDialog(QDialog):
    retry_requested = Signal()

    def __init__(self, rows: list[tuple[str, str, str]], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Failures")
        self.resize(900, 420)
        layout = QVBoxLayout(self)
        text = (
            f"{len(rows)} files could not be analysed. They are skipped by later scans until they change "
            "(or you retry them)."
            if rows
            else "Every file was analysed: no failures."
        )
        layout.addWidget(QLabel(text))
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(("File", "Stage", "Reason"))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        for r, (path, stage, reason) in enumerate(rows):
            for c, v in enumerate((path, stage, reason)):
                item = QTableWidgetItem(v)
                item.setToolTip(v)
                self.table.setItem(r, c, item)
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        h.setStretchLastSection(True)
        self.table.setColumnWidth(0, 420)
        self.table.setColumnWidth(1, 80)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        retry = QPushButton("Retry failed files")
        retry.setEnabled(bool(rows))
        retry.clicked.connect(lambda: (self.retry_requested.emit(), self.accept()))
        buttons.addButton(retry, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)

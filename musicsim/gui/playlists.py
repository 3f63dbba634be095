"""Playlists: the sidebar (list, tracks re-ordered by drag, smooth order, export) and the
"Make playlist" dialog."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from musicsim.gui.jobs import Jobs
from musicsim.gui.session import LibrarySession
from musicsim.gui.tablemodel import format_duration

PLAYLIST_FILTERS = "M3U8 playlist (*.m3u8);;XSPF playlist (*.xspf)"


class MakePlaylistDialog(QDialog):
    """N nearest tracks to the seeds, with the organisation options."""

    def __init__(self, seed_labels: list[str], *, name: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Make playlist")
        form = QFormLayout(self)
        seeds = ", ".join(seed_labels[:3]) + (f" and {len(seed_labels) - 3} more" if len(seed_labels) > 3 else "")
        label = QLabel(f"Tracks that sound like <b>{seeds}</b>")
        label.setWordWrap(True)
        form.addRow(label)
        self.name = QLineEdit(name)
        form.addRow("Name", self.name)
        self.n = QSpinBox()
        self.n.setRange(1, 10_000)
        self.n.setValue(30)
        form.addRow("Tracks", self.n)
        self.mode = QComboBox()
        self.mode.addItem("a blend of all seeds", "mean")
        self.mode.addItem("close to any seed", "best")
        self.mode.setEnabled(len(seed_labels) > 1)
        form.addRow("Similar to", self.mode)
        self.artist = QSpinBox()
        self.artist.setRange(0, 100)
        self.artist.setSpecialValueText("off")
        self.artist.setToolTip("No artist twice within this many tracks")
        form.addRow("No same artist within", self.artist)
        self.album = QCheckBox("no two tracks from one album")
        form.addRow("", self.album)
        self.smooth = QCheckBox("order for smooth transitions")
        self.smooth.setChecked(True)
        form.addRow("", self.smooth)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def options(self) -> dict:
        return {
            "n": self.n.value(),
            "mode": self.mode.currentData(),
            "no_same_artist": self.artist.value(),
            "no_same_album": self.album.isChecked(),
            "smooth": self.smooth.isChecked(),
            "name": self.name.text().strip() or None,
        }


class PlaylistTracks(QListWidget):
    """A playlist's tracks; drag to re-order. Emits ``reordered(ids)`` after a move."""

    reordered = Signal(list)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.model().rowsMoved.connect(lambda *_: self.reordered.emit(self.track_ids()))

    def track_ids(self) -> list[int]:
        return [int(self.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.count())]

    def move_row(self, src: int, dest: int) -> None:
        """Move one row (what a drag does); ``dest`` is the row it ends up at."""
        if src == dest:
            return
        self.model().moveRow(self.rootIndex(), src, self.rootIndex(), dest + 1 if dest > src else dest)


class PlaylistPanel(QWidget):
    """The sidebar: its jobs run on ``jobs`` against ``session``'s library.

    It asks the window for what is not its own through signals: ``make_requested`` (the
    "Make playlist" dialog), ``show_track(id)`` (select it in the table) and
    ``list_changed(pid or None)`` (reload the list, selecting that playlist).
    """

    make_requested = Signal()
    show_track = Signal(int)
    list_changed = Signal(object)

    def __init__(self, *, jobs: Jobs, session: LibrarySession, parent=None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.session = session
        self.current_pid: int | None = None
        self._names: dict[int, str] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        title = QLabel("<b>Playlists</b>")
        layout.addWidget(title)
        self.list = QListWidget()
        self.list.setMaximumHeight(170)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemDoubleClicked.connect(lambda _item: self.rename())
        layout.addWidget(self.list)
        row = QHBoxLayout()
        self.new_button = QPushButton("New…")
        self.new_button.setToolTip("Make a playlist of tracks that sound like the selected ones (Ctrl+Shift+P)")
        self.new_button.clicked.connect(lambda: self.make_requested.emit())
        more = QToolButton()
        more.setText("More")
        more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(more)
        self.rename_action = menu.addAction("Rename…", self.rename)
        self.delete_action = menu.addAction("Delete", self.delete)
        menu.addSeparator()
        menu.addAction("Import playlist…", self.import_dialog)
        more.setMenu(menu)
        row.addWidget(self.new_button)
        row.addWidget(more)
        row.addStretch(1)
        layout.addLayout(row)

        self.header = QLabel("")
        self.header.setWordWrap(True)
        layout.addWidget(self.header)
        self.tracks = PlaylistTracks()
        self.tracks.reordered.connect(self._save_order)
        self.tracks.itemDoubleClicked.connect(
            lambda item: self.show_track.emit(int(item.data(Qt.ItemDataRole.UserRole)))
        )
        layout.addWidget(self.tracks, 1)
        self.why = QLabel("")  # why the current track follows the one before it
        self.why.setWordWrap(True)
        self.why.setToolTip("Why the selected track follows the one before it")
        layout.addWidget(self.why)
        self.tracks.currentRowChanged.connect(self._explain_row)
        row2 = QHBoxLayout()
        self.smooth_button = QPushButton("Smooth order")
        self.smooth_button.setToolTip("Re-order so that consecutive tracks sound alike")
        self.smooth_button.clicked.connect(self.smooth)
        self.dj_check = QCheckBox("DJ")
        self.dj_check.setToolTip(
            "Smooth order that also keeps tempi within 6 % and keys that mix (Camelot: same, relative, a fifth)"
        )
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        emenu = QMenu(self.export_button)
        emenu.addAction("As M3U8…", lambda: self.export_dialog("m3u8"))
        emenu.addAction("As XSPF…", lambda: self.export_dialog("xspf"))
        emenu.addSeparator()
        self.relative = QAction("Relative paths (M3U8)", emenu)
        self.relative.setCheckable(True)
        emenu.addAction(self.relative)
        self.export_button.setMenu(emenu)
        row2.addWidget(self.smooth_button)
        row2.addWidget(self.dj_check)
        row2.addWidget(self.export_button)
        row2.addStretch(1)
        layout.addLayout(row2)
        self._update_buttons()

    # --- content ----------------------------------------------------------------------------

    def set_playlists(self, rows: list[tuple[int, str, int]], *, select: int | None = None) -> None:
        keep = select if select is not None else self.current_pid
        self.list.blockSignals(True)
        self.list.clear()
        self._names = {}
        current = None
        for pid, name, count in rows:
            item = QListWidgetItem(f"{name}  ({count})")
            item.setData(Qt.ItemDataRole.UserRole, pid)
            self.list.addItem(item)
            self._names[pid] = name
            if pid == keep:
                current = item
        self.list.blockSignals(False)
        if current is not None:
            self.list.setCurrentItem(current)
            if select is not None or self.current_pid != keep:
                self._on_current(current, None)
            else:
                self._load(keep)
        else:
            self.current_pid = None
            self.tracks.clear()
            self.header.setText("" if rows else "No playlists yet. Select tracks and choose Make playlist.")
        self._update_buttons()

    def set_tracks(self, pid: int, rows: list[tuple]) -> None:
        if pid != self.current_pid:
            return
        self.tracks.clear()
        total = 0.0
        for r in rows:
            tid, title, artist, _album, _genre, duration, _fmt, path = r[:8]
            title = title or os.path.splitext(os.path.basename(path))[0]
            item = QListWidgetItem(f"{artist} – {title}" if artist else title)
            item.setData(Qt.ItemDataRole.UserRole, int(tid))
            item.setToolTip(f"{path}\n{format_duration(duration) if duration else ''}")
            if not os.path.exists(path):
                item.setForeground(Qt.GlobalColor.gray)
                item.setToolTip(f"{path}\n(file not found)")
            self.tracks.addItem(item)
            total += duration or 0.0
        name = self._names.get(pid, "")
        self.header.setText(f"<b>{name}</b>: {len(rows)} tracks, {format_duration(total)}")
        self._update_buttons()

    def _on_current(self, item, _prev) -> None:
        self.current_pid = int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None
        self.tracks.clear()
        self.header.setText("")
        if self.current_pid is not None:
            self._load(self.current_pid)
        self._update_buttons()

    def _load(self, pid: int) -> None:
        self.jobs.run_job(
            lambda: self.session.backend.playlist_tracks(pid),
            name="Loading playlist",
            on_result=lambda rows: self.set_tracks(pid, rows),
        )

    def _update_buttons(self) -> None:
        has = self.current_pid is not None
        for w in (self.smooth_button, self.export_button):
            w.setEnabled(has and self.tracks.count() > 0)
        self.rename_action.setEnabled(has)
        self.delete_action.setEnabled(has)

    # --- actions ----------------------------------------------------------------------------

    def _save_order(self, ids: list[int]) -> None:
        pid = self.current_pid
        if pid is None:
            return
        self.jobs.run_job(
            lambda: self.session.backend.set_playlist_tracks(pid, ids),
            name="Saving playlist order",
            lane="write",
            on_result=lambda _r: self.jobs.notify("Playlist order saved"),
        )

    def _explain_row(self, row: int) -> None:
        """A line saying what the selected track shares with the one before it (in a worker)."""
        self.why.setText("")
        if row < 1 or self.session.backend is None:
            return
        prev, cur = (int(self.tracks.item(r).data(Qt.ItemDataRole.UserRole)) for r in (row - 1, row))
        org = self.session.backend.org
        label = self.tracks.item(row - 1).text()

        def done(text: str) -> None:
            if self.tracks.currentRow() == row:
                self.why.setText(f"After “{label}”: {text}")

        self.jobs.run_job(lambda: org.explain(prev, cur).text, name="Explaining", on_result=done)

    def smooth(self) -> None:
        pid = self.current_pid
        if pid is None:
            return
        if self.dj_check.isChecked():
            self._smooth_dj(pid)
            return

        def done(result):
            ordered, stats = result
            self._load(pid)
            if stats.get("length") is not None and stats.get("random_length"):
                self.jobs.notify(
                    f"Smooth order: total step {stats['length']:.2f} (a random order: {stats['random_length']:.2f})"
                )
            else:
                self.jobs.notify("Playlist ordered for smooth transitions")

        self.jobs.run_job(
            lambda: self.session.backend.smooth_playlist(pid), name="Ordering playlist", lane="write", on_result=done
        )

    def _smooth_dj(self, pid: int) -> None:
        backend = self.session.backend

        def work():
            ids = [int(t[0]) for t in backend.playlist_tracks(pid)]
            ordered, stats = backend.org.smooth(ids, dj=True)
            backend.org.set_playlist_tracks(pid, ordered)
            return stats

        def done(stats: dict) -> None:
            self._load(pid)
            if "dj_both_ok" in stats:
                self.jobs.notify(
                    f"DJ order: {stats['dj_both_ok']:.0%} of the steps keep tempo and key "
                    f"(before: {stats['before_both_ok']:.0%})"
                )

        self.jobs.run_job(work, name="Ordering playlist", lane="write", on_result=done)

    def export_dialog(self, fmt: str = "m3u8") -> None:
        if self.current_pid is None:
            return
        name = self._names.get(self.current_pid, "playlist")
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in name).strip() or "playlist"
        start = os.path.join(os.path.expanduser("~"), f"{safe}.{fmt}")
        path, _ = QFileDialog.getSaveFileName(
            self, "Export playlist", start, PLAYLIST_FILTERS if fmt == "m3u8" else "XSPF playlist (*.xspf)"
        )
        if path:
            if not path.lower().endswith((".m3u8", ".m3u", ".xspf")):
                path += f".{fmt}"
            self.export_to(path)

    def export_to(self, path: str, on_done=None):
        pid = self.current_pid
        relative = self.relative.isChecked() and not path.lower().endswith(".xspf")

        def done(p):
            self.jobs.notify(f"Exported playlist to {p}")
            if on_done:
                on_done(p)

        return self.jobs.run_job(
            lambda: self.session.backend.export_playlist(pid, path, relative=relative),
            name="Exporting playlist",
            on_result=done,
            user_action=True,
        )

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import playlist", os.path.expanduser("~"), "Playlists (*.m3u8 *.m3u *.xspf)"
        )
        if path:
            self.import_from(path)

    def import_from(self, path: str):
        def done(result):
            pid, unknown = result
            self.list_changed.emit(pid)
            msg = f"Imported {os.path.basename(path)}"
            if unknown:
                msg += f"; {len(unknown)} entries are not in the library"
            self.jobs.notify(msg)

        return self.jobs.run_job(
            lambda: self.session.backend.import_playlist(path),
            name="Importing playlist",
            lane="write",
            on_result=done,
            user_action=True,
        )

    def rename(self) -> None:
        pid = self.current_pid
        if pid is None:
            return
        name, ok = QInputDialog.getText(self, "Rename playlist", "Name", text=self._names.get(pid, ""))
        if ok and name.strip():
            self.jobs.run_job(
                lambda: self.session.backend.rename_playlist(pid, name.strip()),
                name="Renaming playlist",
                lane="write",
                on_result=lambda _r: self.list_changed.emit(None),
            )

    def delete(self) -> None:
        pid = self.current_pid
        if pid is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete playlist",
            f"Delete the playlist “{self._names.get(pid, '')}”? The music files are not touched.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.current_pid = None
            self.jobs.run_job(
                lambda: self.session.backend.delete_playlist(pid),
                name="Deleting playlist",
                lane="write",
                on_result=lambda _r: self.list_changed.emit(None),
            )

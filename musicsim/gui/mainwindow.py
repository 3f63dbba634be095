"""The main window: library table, playlists sidebar, cluster map, outliers, duplicates, training.

The window is the controller: it owns the one writable Library (opened in a worker), the
:class:`~musicsim.gui.workers.JobRunner`, and turns user actions into jobs. Widgets never
call the core themselves; everything goes through :class:`~musicsim.gui.backend.Backend`
on a worker thread and comes back as plain data.

The window's parts live in mixins beside it: construction (``window_layout``), scans and
training (``window_jobs``), and what is done with the analysed library (``window_organize``).
"""

from __future__ import annotations

import logging
import platform
import sys
from importlib import metadata

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QMainWindow,
    QMessageBox,
)

from musicsim import __version__
from musicsim.gui.backend import READ_ONLY_TRAINING, Backend, ClusterData
from musicsim.gui.icons import icon
from musicsim.gui.preview import Preview
from musicsim.gui.settings import SettingsDialog, SettingsStore
from musicsim.gui.tablemodel import COL, TrackTableModel
from musicsim.gui.window_jobs import REFRESH_MIN_MS, LongJobs
from musicsim.gui.window_layout import WindowLayout
from musicsim.gui.window_organize import Organize
from musicsim.gui.workers import Job, JobError, JobRunner

log = logging.getLogger("musicsim.gui")

AUTO_CLUSTER_LIMIT = 20_000  # after a scan, clusters are recomputed automatically up to this many tracks


class MainWindow(WindowLayout, LongJobs, Organize, QMainWindow):
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
        from musicsim.library import Library

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
        self.training.set_available(self.backend.writable, "" if self.backend.writable else READ_ONLY_TRAINING)
        self._update_actions()
        self.refresh_status(on_done=self._after_first_status)
        self.reload_tracks()
        self.refresh_playlists()
        self.refresh_clusters()
        self.library_opened.emit()

    def _after_first_status(self, st: dict) -> None:
        if not (self.roots and self.backend.writable):
            return
        replaced = getattr(self.lib, "replaced_default", None)
        if replaced:
            why = (f"This version of musicsim comes with a new built-in model ({replaced[1]}): "
                   "analysing the library again with it")
        elif self.config.rescan_on_start:
            why = "Re-scanning the library folders (Settings › Re-scan at start)"
        else:
            return
        self.notify(why)
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
    # settings, about, window state
    # ======================================================================================

    def settings_dialog(self) -> None:
        dlg = SettingsDialog(self.settings, roots=self.roots, models=self.status.get("models", []),
                             can_switch_model=bool(self.backend and self.backend.writable), parent=self)
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
            tab = str(tab)
            if tab.isdigit():  # saved by a version that stored the index, before the Duplicates tab
                tab = dict(enumerate(("Library", "Clusters", "Outliers", "Training"))).get(int(tab), "")
            titles = [self.tabs.tabText(i) for i in range(self.tabs.count())]
            if tab in titles:
                self.tabs.setCurrentIndex(titles.index(tab))

    def save_window_state(self) -> None:
        s = self.settings
        s.set_value("window/geometry", self.saveGeometry())
        s.set_value("window/state", self.saveState())
        s.set_value("window/splitter", self.splitter.saveState())
        s.set_value("library/header", self.table.horizontalHeader().saveState())
        s.set_value("window/tab", self.tabs.tabText(self.tabs.currentIndex()))  # by name: tabs may be added
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

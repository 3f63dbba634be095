"""The main window: library table, playlists sidebar, cluster map, outliers, duplicates, training.

The window composes controllers, each owning its own state and given what it needs:

``jobs``            :class:`~musicsim.gui.jobs.Jobs`: background work, messages, the long job in the status bar
``session``         :class:`~musicsim.gui.session.LibrarySession`: the open Library (through its Backend)
``ui``              :class:`~musicsim.gui.layout.WindowLayout`: actions, menus, toolbar, pages, tabs
``selection``       :class:`~musicsim.gui.selection.Selection`: the table's selection and what acts on it
``organizing``      :class:`~musicsim.gui.organizing.Organizing`: similarity, playlists, clusters, outliers,
                    duplicates
``scanning``        :class:`~musicsim.gui.scanning.Scanning`: scans, failures, forgetting missing tracks
``training_jobs``   :class:`~musicsim.gui.training_jobs.TrainingJobs`: training runs and model switches
``watching``        :class:`~musicsim.gui.watching.Watching`: the library folders watched, changes analysed
``players``         :class:`~musicsim.gui.players.Players`: Play in MPD, Open in player

They announce what happened on ``events`` (:class:`~musicsim.gui.events.WindowEvents`); this
module connects the actions and the events to them. Widgets never call the core: everything
goes through the Backend on a worker thread and comes back as plain data.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMainWindow, QMessageBox

from musicsim.gui.about import about_text
from musicsim.gui.backend import READ_ONLY_TRAINING
from musicsim.gui.events import WindowEvents
from musicsim.gui.icons import icon
from musicsim.gui.jobs import Jobs
from musicsim.gui.layout import WindowLayout
from musicsim.gui.notices import show_once
from musicsim.gui.organizing import Organizing
from musicsim.gui.players import Players
from musicsim.gui.preview import Preview
from musicsim.gui.scanning import Scanning
from musicsim.gui.selection import Selection
from musicsim.gui.session import LibrarySession
from musicsim.gui.settings import SettingsDialog, SettingsStore
from musicsim.gui.tablemodel import TrackTableModel
from musicsim.gui.training_jobs import TrainingJobs
from musicsim.gui.watching import Watching
from musicsim.gui.workers import JobRunner

log = logging.getLogger("musicsim.gui")

AUTO_CLUSTER_LIMIT = 20_000  # after a scan, clusters are recomputed automatically up to this many tracks


class MainWindow(QMainWindow):
    def __init__(
        self,
        *,
        db_path=None,
        settings: SettingsStore | None = None,
        runner: JobRunner | None = None,
        open_library: bool = True,
        auto_cluster_limit: int = AUTO_CLUSTER_LIMIT,
    ) -> None:
        super().__init__()
        self.setWindowTitle("musicsim")
        self.setWindowIcon(icon("musicsim"))
        self.setAcceptDrops(True)
        self.settings = settings or SettingsStore()
        self.runner = runner or JobRunner(parent=self)
        self.events = WindowEvents(self)
        self.model = TrackTableModel(self)
        self.jobs = Jobs(self.runner, self)
        self._build_controllers(db_path, auto_cluster_limit)
        self._wire_actions()
        self._wire_events()
        self.ui.restore_state(self.settings)
        self.update_page()  # an existing library opens on its (loading) table, never the first-run screen
        if open_library:
            self.open_library()

    def _build_controllers(self, db_path, auto_cluster_limit: int) -> None:
        """Each controller gets what it uses, in the order they depend on each other."""
        self.session = LibrarySession(
            db_path=db_path, settings=self.settings, jobs=self.jobs, events=self.events, model=self.model, parent=self
        )
        self.preview = Preview(jobs=self.jobs, session=self.session, parent=self)
        self.ui = WindowLayout(self, model=self.model, jobs=self.jobs, session=self.session, preview=self.preview)
        self.selection = Selection(ui=self.ui, model=self.model, jobs=self.jobs, preview=self.preview)
        self.organizing = Organizing(
            ui=self.ui,
            model=self.model,
            jobs=self.jobs,
            session=self.session,
            selection=self.selection,
            events=self.events,
            actions_changed=self.update_actions,
        )
        self.scanning = Scanning(
            parent=self,
            jobs=self.jobs,
            session=self.session,
            model=self.model,
            events=self.events,
            on_started=self._on_scan_started,
            compute_clusters=self.organizing.compute_clusters,
            auto_cluster_limit=auto_cluster_limit,
        )
        self.training_jobs = TrainingJobs(
            jobs=self.jobs,
            session=self.session,
            panel=self.ui.training,
            events=self.events,
            rescan=self.scanning.start_scan,
            parent=self,
        )
        self.watching = Watching(window=self, jobs=self.jobs, session=self.session, events=self.events)
        ui = self.ui
        self.players = Players(
            jobs=self.jobs,
            session=self.session,
            selected_ids=self.selection.selected_ids,
            playlist_panel=ui.playlist_panel,
            act_mpd=ui.act_play_mpd,
            act_open=ui.act_open_player,
            act_radio=ui.act_mpd_radio,
        )

    def _wire_actions(self) -> None:
        ui, sel, org, scan = self.ui, self.selection, self.organizing, self.scanning
        slots = {
            ui.act_add_folder: scan.add_folder_dialog,
            ui.act_add_files: scan.add_files_dialog,
            ui.act_import: ui.playlist_panel.import_dialog,
            ui.act_settings: self.settings_dialog,
            ui.act_quit: self.close,
            ui.act_rescan: scan.rescan,
            ui.act_failures: scan.show_failures,
            ui.act_purge: scan.purge,
            ui.act_clusters: org.compute_clusters,
            ui.act_cancel: self.jobs.cancel_long_job,
            ui.act_similar: org.sort_by_similarity,
            ui.act_clear_similar: org.clear_similarity,
            ui.act_playlist: org.make_playlist_dialog,
            ui.act_play: sel.play_selected,
            ui.act_stop: self.preview.stop,
            ui.act_show_map: sel.show_selection_on_map,
            ui.act_open_folder: sel.open_containing_folder,
            ui.act_copy_path: sel.copy_paths,
            ui.act_train: self.show_training,
            ui.act_about: self.about,
        }
        for action, slot in slots.items():
            action.triggered.connect(lambda _checked=False, s=slot: s())  # slots take no "checked" argument
        ui.welcome.button.clicked.connect(scan.add_folder_dialog)
        ui.failures_button.clicked.connect(scan.show_failures)
        for panel in (ui.outlier_panel, ui.dup_panel, ui.playlist_panel):
            panel.show_track.connect(lambda tid: sel.select_tracks([tid], show=True))

    def _wire_events(self) -> None:
        self.runner.busy_changed.connect(lambda _busy: self.update_actions())
        self.jobs.long_changed.connect(self.update_page)
        self.events.status_loaded.connect(self._show_status)
        self.events.tracks_loaded.connect(self.update_page)
        self.events.tracks_loaded.connect(self.ui.dup_panel.mark_stale)
        self.events.model_changed.connect(self._after_model_change)

    # --- the library ----------------------------------------------------------------------------

    def open_library(self) -> None:
        self.session.open(on_opened=self._on_library_opened, on_failed=self._on_open_failed)

    def _on_open_failed(self, message: str) -> None:
        self.update_page()
        self.ui.welcome.status.setText(f"Could not open the library: {message}")

    def _on_library_opened(self) -> None:
        writable = self.session.writable
        self.ui.training.set_available(writable, "" if writable else READ_ONLY_TRAINING)
        self.update_actions()
        self.session.refresh_status(on_done=self._after_first_status)
        self.session.reload_tracks()
        self.organizing.refresh_playlists()
        self.organizing.refresh_clusters()
        self.events.library_opened.emit()
        QTimer.singleShot(0, lambda: show_once(self, self.settings))  # no FluidSynth: say so, once per user

    def _after_first_status(self, _status: dict) -> None:
        session = self.session
        if not (session.roots and session.writable):
            return
        replaced = getattr(session.lib, "replaced_default", None)
        if replaced:
            why = (
                f"This version of musicsim comes with a new built-in model ({replaced[1]}): "
                "analysing the library again with it"
            )
        elif session.config.rescan_on_start:
            why = "Re-scanning the library folders (Settings › Re-scan at start)"
        else:
            return
        self.jobs.notify(why)
        self.scanning.start_scan(session.roots)

    def _show_status(self, st: dict) -> None:
        ui = self.ui
        ui.rebuild_model_menu(
            st.get("models", []), can_switch=self.session.writable, on_pick=self.training_jobs.use_model
        )
        trained = st.get("trained")
        ui.model_label.setText(f"Model: {st.get('model')}{'' if trained else ' (untrained)'}")
        ui.model_label.setToolTip(st.get("warning") or "")
        nfail = int(st.get("failures") or 0)
        ui.failures_button.setText(f"⚠ {nfail} failed")
        ui.failures_button.setToolTip("Files that could not be analysed: show the reasons")
        ui.failures_button.setVisible(nfail > 0)
        self.update_page()

    def _after_model_change(self) -> None:
        self.organizing.forget_similarity()
        self.session.refresh_status()
        self.session.reload_tracks()
        self.organizing.refresh_clusters()

    # --- what is shown and enabled ----------------------------------------------------------------

    def update_page(self) -> None:
        """The tabs once there are tracks (or a scan fills them in), else the first-run screen."""
        session = self.session
        self.ui.show_tracks_page(session.loading or len(self.model) > 0 or self.scanning.scan_job is not None)
        if not self.ui.tracks_page_shown() and not session.open_error:
            self.ui.welcome.show_library(None if session.backend is None else session.status, session.db_path)
        self.ui.library_page.set_loading(session.loading)
        self.update_actions()

    def update_actions(self) -> None:
        ui = self.ui
        has_lib = self.session.backend is not None
        writable = self.session.writable
        busy = self.runner.exclusive_busy
        has_tracks = has_lib and self.model.total > 0
        can_cluster = writable and not busy and self.model.total >= 3
        for a in (ui.act_add_folder, ui.act_add_files, ui.act_rescan, ui.act_import):
            a.setEnabled(writable)
        ui.act_purge.setEnabled(writable and not busy)
        ui.act_cancel.setEnabled(self.jobs.long_job is not None)
        for a in (ui.act_similar, ui.act_playlist, ui.act_show_map, ui.act_open_folder, ui.act_copy_path, ui.act_train):
            a.setEnabled(has_tracks)
        for a in (ui.act_play_mpd, ui.act_open_player):
            a.setEnabled(has_tracks)
        ui.act_clusters.setEnabled(can_cluster)
        ui.cluster_page.compute_button.setEnabled(can_cluster)
        if self.preview.available:
            ui.act_play.setEnabled(has_tracks)
        ui.act_clear_similar.setEnabled(self.model.has_similarity)
        ui.act_failures.setEnabled(has_lib)
        ui.training.set_busy_elsewhere(busy or not writable or not has_tracks)
        ui.welcome.button.setEnabled(writable)

    def _on_scan_started(self) -> None:
        self.update_page()
        if self.ui.tracks_page_shown() and self.ui.tabs.currentWidget() is not self.ui.library_page:
            self.ui.tabs.setCurrentWidget(self.ui.library_page)

    def show_training(self) -> None:
        self.ui.show_tab(self.ui.training)

    # --- settings and about -----------------------------------------------------------------------

    def settings_dialog(self) -> None:
        session = self.session
        dlg = SettingsDialog(
            self.settings,
            roots=session.roots,
            models=session.status.get("models", []),
            can_switch_model=session.writable,
            parent=self,
        )
        dlg.add_folder_requested.connect(lambda: QTimer.singleShot(0, self.scanning.add_folder_dialog))
        dlg.rescan_requested.connect(self.scanning.rescan)
        if not dlg.exec():
            return
        dlg.save()
        self.apply_settings()
        if dlg.removed_roots and session.need_library():
            backend, gone = session.backend, list(dlg.removed_roots)
            self.jobs.run_job(
                lambda: [backend.remove_root(p) for p in gone],
                name="Removing folders",
                lane="exclusive",
                on_result=lambda _: session.refresh_status(),
            )
        model = dlg.selected_model()
        if model:
            self.training_jobs.use_model(model)

    def apply_settings(self) -> None:
        self.session.apply_settings()
        self.watching.sync()
        self.jobs.notify("Settings saved (they apply to the next scan)")

    def about(self) -> None:
        QMessageBox.about(self, "About musicsim", about_text(self.session.status))

    # --- drag and drop, closing -------------------------------------------------------------------

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
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = self._local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.scanning.add_paths(paths)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.jobs.closing = True
        try:
            self.ui.save_state(self.settings)
        except Exception as e:  # noqa: BLE001 - never block closing
            log.warning("could not save the window state: %s", e)
        self.preview.close()
        self.watching.stop()
        self.scanning.stop_refreshing()
        self.runner.cancel_all()
        if not self.runner.wait(60_000):
            log.warning("background jobs did not stop within a minute; closing anyway")
        self.session.close()
        super().closeEvent(event)


__all__ = ["MainWindow", "about_text"]

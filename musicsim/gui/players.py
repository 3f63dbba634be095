"""Play in MPD and Open in player, for the table's selection and for a playlist (its context menu).

The work is :mod:`musicsim.library.players` on a worker (MPD over the network may be slow to
answer); the outcome, and the tracks outside MPD's music directory, go to the status bar.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from musicsim.gui.jobs import Jobs
from musicsim.gui.session import LibrarySession
from musicsim.library import players

RADIO_EVERY_MS = 2000


class Players(QObject):
    """Hands tracks to MPD or to the desktop's player.

    ``selected_ids`` gives the table's selection; ``playlist_panel`` is the sidebar, whose list
    gets a context menu with the same two actions for its current playlist.
    """

    def __init__(
        self,
        *,
        jobs: Jobs,
        session: LibrarySession,
        selected_ids: Callable[[], list[int]],
        playlist_panel,
        act_mpd: QAction,
        act_open: QAction,
        act_radio: QAction,
    ) -> None:
        super().__init__(playlist_panel)
        self.jobs, self.session, self.selected_ids, self.panel = jobs, session, selected_ids, playlist_panel
        act_mpd.triggered.connect(lambda _c=False: self.play_in_mpd(self.selected_ids()))
        act_open.triggered.connect(lambda _c=False: self.open_in_player(self.selected_ids()))
        self.act_radio = act_radio
        act_radio.setCheckable(True)
        act_radio.toggled.connect(self.set_radio)
        self.radio: players.Radio | None = None
        self._stepping = False
        self._radio_timer = QTimer(self)
        self._radio_timer.setInterval(RADIO_EVERY_MS)
        self._radio_timer.timeout.connect(self._radio_step)
        lst = playlist_panel.list
        lst.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        lst.customContextMenuRequested.connect(self._playlist_menu)

    def _playlist_menu(self, pos) -> None:
        pid = self.panel.current_pid
        if pid is None:
            return
        menu = QMenu(self.panel.list)
        menu.addAction("Play in MPD", lambda: self.play_in_mpd(playlist=pid))
        menu.addAction("Open in player", lambda: self.open_in_player(playlist=pid))
        menu.addAction(self.act_radio)
        menu.popup(self.panel.list.viewport().mapToGlobal(pos))

    def _tracks(self, ids: list[int] | None, playlist: int | None):
        lib = self.session.lib
        if playlist is not None:
            names = {p: n for p, n, _ in lib.organizer.playlists()}
            return lib.organizer.playlist_tracks(playlist), names.get(playlist, "playlist")
        by_id = {t.id: t for t in lib.tracks()}
        tracks = [by_id[i] for i in ids or [] if i in by_id]
        name = (tracks[0].title or os.path.basename(tracks[0].path)) if tracks else "selection"
        return tracks, name

    def play_in_mpd(self, ids: list[int] | None = None, *, playlist: int | None = None):
        if not self.session.need_library():
            return None
        if not ids and playlist is None:
            self.jobs.notify("Select tracks, or right-click a playlist, to play in MPD")
            return None

        def work():
            tracks, _ = self._tracks(ids, playlist)
            return len(tracks), players.play_in_mpd(self.session.lib, tracks)

        return self.jobs.run_job(work, name="Play in MPD", on_result=self._mpd_done, user_action=True)

    def _mpd_done(self, result) -> None:
        total, rep = result
        text = f"Queued {rep.added} of {total} track(s) in MPD"
        if rep.outside:
            text += f"; {len(rep.outside)} outside MPD's music directory (e.g. {rep.outside[0]})"
        if rep.unknown:
            text += f"; {len(rep.unknown)} unknown to MPD's database"
        self.jobs.notify(text, error=bool(rep.outside or rep.unknown))

    def open_in_player(self, ids: list[int] | None = None, *, playlist: int | None = None):
        if not self.session.need_library():
            return None
        if not ids and playlist is None:
            self.jobs.notify("Select tracks, or right-click a playlist, to open in a player")
            return None
        command = self.session.config.player_command

        def work():
            tracks, name = self._tracks(ids, playlist)
            return len(tracks), players.open_in_player(tracks, name=name, command=command)

        def done(result) -> None:
            n, path = result
            self.jobs.notify(f"Opened {n} track(s) in the default player ({path})")

        return self.jobs.run_job(work, name="Open in player", on_result=done, user_action=True)

    # --- the sound-alike radio ----------------------------------------------------------------

    def set_radio(self, on: bool) -> None:
        """Start or stop keeping MPD's queue topped up (steps and the disconnect run one at a time)."""
        if not on:
            self._radio_timer.stop()
            old, self.radio = self.radio, None
            if old is not None:
                self.jobs.run_job(lambda: players.disconnect(old.client), name="Stopping the radio", lane="write")
            return
        if self.radio is not None or not self.session.need_library():
            return
        lib, cfg = self.session.lib, self.session.config

        def start() -> players.Radio:
            client = players.connect(cfg.player_mpd_address)
            with players.mpd_errors(cfg.player_mpd_address):
                return players.Radio(lib, client, players.music_dir(client, cfg.player_mpd_music_dir))

        def started(radio: players.Radio) -> None:
            if not self.act_radio.isChecked():
                players.disconnect(radio.client)
                return
            self.radio = radio
            self._radio_timer.start()
            self._radio_step()
            self.jobs.notify("Sound-alike radio on: MPD's queue is kept topped up")

        self.jobs.run_job(start, name="Sound-alike radio", on_result=started, on_error=self._radio_failed)

    def _radio_step(self) -> None:
        radio = self.radio
        if radio is None or self._stepping:
            return
        self._stepping = True

        def work() -> list[int]:
            with players.mpd_errors():
                return radio.step()

        def done(added: list[int]) -> None:
            self._stepping = False
            if added:
                self.jobs.notify(f"Radio: queued {len(added)} sound-alike track(s)")

        def failed(err) -> None:
            self._stepping = False
            self._radio_failed(err)

        self.jobs.run_job(work, name="Radio", lane="write", on_result=done, on_error=failed)

    def _radio_failed(self, err) -> None:
        self.jobs.notify(f"Sound-alike radio stopped: {err}", error=True)
        self.act_radio.setChecked(False)


__all__ = ["Players"]

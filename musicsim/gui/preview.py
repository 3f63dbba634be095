"""Preview: play the selected track with QtMultimedia; MIDI is rendered to a WAV first.

QtMultimedia ships in PySide6-Addons, which is optional: without it the Play action is
disabled and its tooltip says why.
"""

from __future__ import annotations

import os
import tempfile

from PySide6.QtCore import QObject, QUrl, Signal

from musicsim.audio.sniff import MIDI_EXTENSIONS
from musicsim.gui.jobs import Jobs
from musicsim.gui.session import LibrarySession

PREVIEW_SECONDS = 300.0  # MIDI preview renders at most this much


def _multimedia():
    try:
        from PySide6 import QtMultimedia
    except ImportError as e:
        return None, (
            "Preview needs QtMultimedia, which this Qt installation lacks "
            f"(install PySide6-Addons: pip install PySide6-Addons) [{e}]"
        )
    return QtMultimedia, ""


def render_midi_to_wav(path: str, out_dir: str, soundfont: str | None) -> str:
    """Worker: render a MIDI file with musicsim's renderer and write a 16-bit WAV."""
    import soundfile

    from musicsim.audio.midi import render_midi

    sr = 22050
    audio, _degraded, _renderer = render_midi(path, sr=sr, soundfont=soundfont or None, max_seconds=PREVIEW_SECONDS)
    out = os.path.join(out_dir, f"preview-{abs(hash(path)) & 0xFFFFFFFF:08x}.wav")
    soundfile.write(out, audio, sr, subtype="PCM_16")
    return out


class Preview(QObject):
    """One player for the whole window: MIDI renders on ``jobs``, with ``session``'s sound font."""

    playing_changed = Signal(bool)  # True from play() (a MIDI file renders first) until stopped or ended

    def __init__(self, *, jobs: Jobs, session: LibrarySession, parent=None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.session = session
        self.player = None
        self.output = None
        self.current: str | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._rendered: dict[str, str] = {}
        mm, self.reason = _multimedia()
        self.available = mm is not None
        if mm is None:
            return
        try:
            self.player = mm.QMediaPlayer(self)
            self.output = mm.QAudioOutput(self)
            self.player.setAudioOutput(self.output)
            self.output.setVolume(0.8)
            self.player.playbackStateChanged.connect(
                lambda s: self.playing_changed.emit(s == mm.QMediaPlayer.PlaybackState.PlayingState)
            )
            self.player.errorOccurred.connect(lambda _e, msg: self.jobs.notify(f"Preview: {msg}", error=True))
        except Exception as e:  # noqa: BLE001 - no audio backend on this machine
            self.available, self.reason = False, f"Preview is unavailable: {e}"
            self.player = None

    def play(self, path: str) -> None:
        if not self.available:
            self.jobs.notify(self.reason, error=True)
            return
        if not os.path.exists(path):
            self.jobs.notify(f"Cannot play {path}: the file is gone", error=True)
            return
        self.stop()
        self.current = path
        self.playing_changed.emit(True)
        if path.lower().endswith(tuple(MIDI_EXTENSIONS)):
            if path in self._rendered and os.path.exists(self._rendered[path]):
                self._start(self._rendered[path])
                return
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="musicsim-preview-")
            out_dir, soundfont = self._tmp.name, self.session.config.soundfont

            def rendered(wav: str) -> None:
                self._rendered[path] = wav
                if self.current == path:
                    self._start(wav)

            self.jobs.run_job(
                lambda: render_midi_to_wav(path, out_dir, soundfont), name="Rendering MIDI", on_result=rendered
            )
            self.jobs.notify(f"Rendering {os.path.basename(path)} for preview…")
        else:
            self._start(path)

    def _start(self, path: str) -> None:
        self.player.setSource(QUrl.fromLocalFile(path))
        self.player.play()
        self.jobs.notify(f"Playing {os.path.basename(self.current or path)}")

    def stop(self) -> None:
        if self.player is not None:
            self.player.stop()
        self.current = None
        self.playing_changed.emit(False)

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

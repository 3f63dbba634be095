"""Notices the app shows once per user, not on every start: what this installation lacks.

Today one: FluidSynth's library is missing, so MIDI is rendered by the simple fallback synthesizer
(tracks marked degraded). The notice says how to get it on this platform
(:func:`musicsim.resources.fluidsynth_hint`) and is remembered in the settings once shown.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from musicsim.gui.settings import SettingsStore

FLUIDSYNTH_SHOWN = "notices/fluidsynth_missing_shown"


def fluidsynth_notice() -> str | None:
    """The notice's text when FluidSynth is missing, else None."""
    from musicsim.audio.midi import fluidsynth_available
    from musicsim.resources import fluidsynth_missing_note

    return None if fluidsynth_available() else fluidsynth_missing_note()


def show_once(parent: QWidget, settings: SettingsStore, text: str | None = None) -> QMessageBox | None:
    """Show the FluidSynth notice (non-modal) unless it was shown before; return the box shown."""
    text = fluidsynth_notice() if text is None else text
    if not text or str(settings.value(FLUIDSYNTH_SHOWN, "")).lower() in ("true", "1"):
        return None
    settings.set_value(FLUIDSYNTH_SHOWN, True)
    box = QMessageBox(
        QMessageBox.Icon.Information, "MIDI without FluidSynth", text[:1].upper() + text[1:], parent=parent
    )
    box.setModal(False)
    box.show()
    return box

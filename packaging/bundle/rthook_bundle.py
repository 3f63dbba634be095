"""PyInstaller runtime hook: point musicsim at what the bundle carries before anything loads.

FluidSynth's library sits in ``fluidsynth/`` inside the bundle; pyfluidsynth finds its library
with ``ctypes.util.find_library``, which only looks in the system's places, so that lookup is
answered from the bundle for FluidSynth's names. The General MIDI SoundFont in ``soundfonts/``
becomes the default unless the user chose one (``MUSICSIM_SOUNDFONT`` or the settings).
"""

import ctypes.util
import glob
import os
import sys

_BASE = getattr(sys, "_MEIPASS", os.path.dirname(sys.executable))
_FLUID = sorted(glob.glob(os.path.join(_BASE, "fluidsynth", "*fluidsynth*")))
_system_find_library = ctypes.util.find_library


def _find_library(name):
    if "fluidsynth" in name and _FLUID:
        return _FLUID[0]
    return _system_find_library(name)


ctypes.util.find_library = _find_library
_fonts = sorted(glob.glob(os.path.join(_BASE, "soundfonts", "*.sf[23]")))
if _fonts:
    os.environ.setdefault("MUSICSIM_SOUNDFONT", _fonts[0])

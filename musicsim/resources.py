"""Where the files musicsim ships live: the default model and its card, icons, desktop files.

The top-level ``resources/`` folder of the checkout is their source. A wheel (and the
PyInstaller bundle) carries them inside the package as ``musicsim/_resources/`` (``setup.py``
maps the folder there at build time), so an installed musicsim finds them without a
checkout. That copy wins when it is there; otherwise (a checkout, an editable install) the
checkout's folder is used. Ground floor: imports nothing of musicsim.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def root() -> Path:
    """The resources folder in use: the installed copy, else the checkout's ``resources/``."""
    installed = _PACKAGE / "_resources"
    return installed if installed.is_dir() else _PACKAGE.parent / "resources"


def default_model() -> Path:
    """The shipped model (``models/default.pt``); it may be absent in a stripped checkout."""
    return root() / "models" / "default.pt"


def icons_dir() -> Path:
    """The app's SVG icons (``icons/*.svg``)."""
    return root() / "icons"


def desktop_dir() -> Path:
    """Desktop integration: the ``.desktop`` file, AppStream MetaInfo, hicolor icons."""
    return root() / "desktop"


# --- what the platform provides --------------------------------------------------------------

_LINUX_FLUIDSYNTH = (  # (ID or ID_LIKE word in /etc/os-release, the command)
    ("debian", "sudo apt install libfluidsynth3 fluid-soundfont-gm"),
    ("ubuntu", "sudo apt install libfluidsynth3 fluid-soundfont-gm"),
    ("fedora", "sudo dnf install fluidsynth-libs fluid-soundfont-gm"),
    ("rhel", "sudo dnf install fluidsynth-libs fluid-soundfont-gm"),
    ("suse", "sudo zypper install fluidsynth"),
    ("arch", "sudo pacman -S fluidsynth soundfont-fluid"),
)


def _os_release_ids(path: str = "/etc/os-release") -> list[str]:
    """``ID`` then the words of ``ID_LIKE`` from os-release (empty when unreadable)."""
    fields = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                fields[key] = value.strip().strip("\"'").lower()
    except OSError:
        return []
    return [fields.get("ID", ""), *fields.get("ID_LIKE", "").split()]


def fluidsynth_hint(platform: str | None = None, os_release: str = "/etc/os-release") -> str:
    """How to get FluidSynth's library (and a General MIDI SoundFont) on this platform: one
    line for ``musicsim status`` and the app's one-time notice. The standalone bundle carries
    both, so it never needs this."""
    import sys

    platform = platform or sys.platform
    if platform == "darwin":
        return "brew install fluid-synth"
    if platform == "win32":
        return "install FluidSynth for Windows (its bin folder, with libfluidsynth-3.dll, on PATH)"
    ids = _os_release_ids(os_release)
    for word, command in _LINUX_FLUIDSYNTH:
        if word in ids:
            return command
    return "install your distribution's FluidSynth library (libfluidsynth) and a General MIDI SoundFont"


def fluidsynth_missing_note() -> str:
    """The one sentence shown when FluidSynth's library is missing (the caller checks that)."""
    return (
        "FluidSynth was not found, so MIDI is rendered by a simple synthesizer (marked degraded); "
        f"to get it: {fluidsynth_hint()}"
    )

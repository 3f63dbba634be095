"""The About box's text: versions of musicsim, its model and what it runs on."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from musicsim import __version__


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
    return (
        f"<h3>musicsim {__version__}</h3>"
        "<p>Organise a music library by how it sounds.</p>"
        f"<p><b>Active model:</b> {model} ({trained})<br>"
        f"<b>Library:</b> {status.get('database', '–')}<br>"
        f"<b>Tracks:</b> {status.get('tracks', 0):,}</p>"
        f"<p>torch {version('torch')} · Qt {qVersion()} · PySide6 {pyside_version} · "
        f"Python {platform.python_version()} · {sys.platform}</p>"
    )


__all__ = ["about_text"]

"""Icons from ``resources/icons/`` (SVG) with a fallback to the style's standard icons."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QStyle

from musicsim import resources

ICON_DIRS = (resources.icons_dir(),)  # the checkout's resources/icons or the installed copy
FALLBACK = {
    "folder-add": QStyle.StandardPixmap.SP_DirOpenIcon,
    "rescan": QStyle.StandardPixmap.SP_BrowserReload,
    "play": QStyle.StandardPixmap.SP_MediaPlay,
    "stop": QStyle.StandardPixmap.SP_MediaStop,
    "similar": QStyle.StandardPixmap.SP_ArrowDown,
    "playlist": QStyle.StandardPixmap.SP_FileDialogListView,
    "clusters": QStyle.StandardPixmap.SP_FileDialogDetailedView,
    "train": QStyle.StandardPixmap.SP_ComputerIcon,
    "musicsim": QStyle.StandardPixmap.SP_MediaVolume,
    "drop": QStyle.StandardPixmap.SP_DirOpenIcon,
}


def icon_path(name: str) -> Path | None:
    for d in ICON_DIRS:
        p = d / f"{name}.svg"
        if p.is_file():
            return p
    return None


@cache
def icon(name: str) -> QIcon:
    p = icon_path(name)
    if p is not None:
        ic = QIcon(str(p))
        if not ic.isNull():
            return ic
    std = FALLBACK.get(name)
    return QApplication.style().standardIcon(std) if std is not None else QIcon()

"""``musicsim install-desktop``: put the app in the desktop's menu, for the current user only.

Copies the shipped desktop files (:func:`musicsim.resources.desktop_dir`) into the user's XDG data
folder (``$XDG_DATA_HOME``, else ``~/.local/share``): the ``.desktop`` entry (its ``Exec`` pointing
at this installation's launcher, so it works whether ``~/.local/bin`` is on the desktop's PATH or
not), the AppStream MetaInfo, the scalable icon and the PNG sizes in the hicolor theme. A manifest
(``musicsim/desktop-install.json`` there) records every file written and every folder created, so
``--uninstall`` removes exactly those and nothing else. Desktops watch these folders, so no cache is
rebuilt (a rebuilt cache would be a file this command did not install).

Needs no library: :func:`musicsim.cli.main` runs it before any library opens.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from musicsim.cli.handoffs import Handoff

APP_ID = "org.musicsim.musicsim"
MANIFEST = Path("musicsim") / "desktop-install.json"
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def data_home() -> Path:
    """``$XDG_DATA_HOME`` when it is an absolute path (the spec ignores others), else ~/.local/share."""
    env = os.environ.get("XDG_DATA_HOME", "")
    return Path(env) if env and os.path.isabs(env) else Path.home() / ".local" / "share"


def launcher() -> list[str]:
    """The command that starts this installation's app: the bundle's program, the ``musicsim-gui``
    script beside this Python (a venv, pipx, uv tool), or ``python -m musicsim gui``."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "gui"]
    bindir = Path(sys.executable).parent
    for name in ("musicsim-gui", "musicsim-gui.exe"):
        if (bindir / name).is_file():
            return [str(bindir / name)]
    return [sys.executable, "-m", "musicsim", "gui"]


def _quote(arg: str) -> str:
    """One Exec argument, quoted as the Desktop Entry spec asks when it holds a reserved character."""
    if not any(c in _RESERVED for c in arg):
        return arg
    return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'


def desktop_entry(command: list[str]) -> str:
    """The shipped ``.desktop`` file with ``Exec`` and ``TryExec`` naming ``command``."""
    src = (_source() / f"{APP_ID}.desktop").read_text(encoding="utf-8")
    lines = []
    for line in src.splitlines():
        if line.startswith("Exec="):
            line = "Exec=" + " ".join(_quote(a.replace("%", "%%")) for a in command) + " %F"
        elif line.startswith("TryExec="):
            line = "TryExec=" + command[0]
        lines.append(line)
    return "\n".join(lines) + "\n"


def _source() -> Path:
    from musicsim.resources import desktop_dir

    return desktop_dir()


def planned(command: list[str]) -> dict[str, bytes]:
    """Every file to write, by path relative to the data folder, with its content."""
    from musicsim.resources import icons_dir

    src = _source()
    files = {
        f"applications/{APP_ID}.desktop": desktop_entry(command).encode(),
        f"metainfo/{APP_ID}.metainfo.xml": (src / f"{APP_ID}.metainfo.xml").read_bytes(),
        f"icons/hicolor/scalable/apps/{APP_ID}.svg": (icons_dir() / "musicsim.svg").read_bytes(),
    }
    for png in sorted((src / "icons").glob("*x*.png")):
        files[f"icons/hicolor/{png.stem}/apps/{APP_ID}.png"] = png.read_bytes()
    return files


def install(root: Path, command: list[str]) -> list[Path]:
    """Write the files under ``root`` and the manifest; return the files written."""
    if (root / MANIFEST).exists():
        uninstall(root)  # a re-install replaces the last one exactly
    created: list[str] = []
    written = []
    for rel, data in planned(command).items():
        dest = root / rel
        missing = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]
        dest.parent.mkdir(parents=True, exist_ok=True)
        created += [str(p) for p in reversed(missing)]
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        written.append(dest)
    manifest = root / MANIFEST
    if not manifest.parent.exists():
        created.append(str(manifest.parent))
    manifest.parent.mkdir(parents=True, exist_ok=True)
    record = {"app_id": APP_ID, "exec": command, "files": [str(p) for p in written], "created_dirs": created}
    manifest.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return written


def uninstall(root: Path) -> list[Path]:
    """Remove what the manifest lists (files, then the folders it created when empty); return the files removed."""
    manifest = root / MANIFEST
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    removed = []
    for f in record.get("files", []):
        p = Path(f)
        if p.is_file() or p.is_symlink():
            p.unlink()
            removed.append(p)
    manifest.unlink()
    for d in sorted(record.get("created_dirs", []), key=lambda d: -len(Path(d).parts)):
        try:
            Path(d).rmdir()  # only when empty: what the user put there stays
        except OSError:
            pass
    return removed


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uninstall", action="store_true", help="remove exactly what the last install-desktop installed")
    p.add_argument("--exec", dest="exec_command", metavar="COMMAND", help="the command the menu entry runs")


def run(args: argparse.Namespace) -> int:
    root = data_home()
    if args.uninstall:
        removed = uninstall(root)
        print(f"removed {len(removed)} files from {root}" if removed else f"nothing installed in {root}")
        return 0
    command = args.exec_command.split() if args.exec_command else launcher()
    if not shutil.which(command[0]) and not Path(command[0]).is_file():
        print(f"musicsim: warning: {command[0]} was not found; the menu entry may not start", file=sys.stderr)
    written = install(root, command)
    print(f"installed {len(written)} files in {root} (menu entry runs: {' '.join(command)})")
    print(f"remove them with: musicsim install-desktop --uninstall (manifest: {root / MANIFEST})")
    return 0


INSTALL_DESKTOP = Handoff(
    "install-desktop",
    "add musicsim to the desktop's menu for this user (icon, file associations); --uninstall removes it",
    _arguments,
)

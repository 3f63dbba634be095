"""``musicsim install-desktop`` against a temporary XDG_DATA_HOME, and the shipped desktop files."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from musicsim import resources
from musicsim.cli import main
from musicsim.cli.desktop import APP_ID, MANIFEST, desktop_entry


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    root = tmp_path / "xdg"
    (root / "applications").mkdir(parents=True)
    (root / "applications" / "someone-else.desktop").write_text("[Desktop Entry]\n")
    monkeypatch.setenv("XDG_DATA_HOME", str(root))
    return root


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_install_then_uninstall_leaves_exactly_what_was_there(xdg, capsys):
    before = _files(xdg)
    assert main(["install-desktop", "--exec", "/opt/musicsim/musicsim gui"]) == 0
    after = set(_files(xdg)) - set(before)
    assert {
        f"applications/{APP_ID}.desktop",
        f"metainfo/{APP_ID}.metainfo.xml",
        f"icons/hicolor/scalable/apps/{APP_ID}.svg",
        f"icons/hicolor/48x48/apps/{APP_ID}.png",
        f"icons/hicolor/512x512/apps/{APP_ID}.png",
        MANIFEST.as_posix(),
    } <= after
    entry = (xdg / "applications" / f"{APP_ID}.desktop").read_text()
    assert "Exec=/opt/musicsim/musicsim gui %F" in entry and "TryExec=/opt/musicsim/musicsim" in entry
    assert main(["install-desktop"]) == 0  # again: replaces, never duplicates
    assert main(["install-desktop", "--uninstall"]) == 0
    assert _files(xdg) == before
    assert sorted(p.name for p in xdg.iterdir()) == ["applications"]  # the folders it made are gone too
    assert main(["install-desktop", "--uninstall"]) == 0
    assert "nothing installed" in capsys.readouterr().out


def test_uninstall_keeps_what_the_user_added_in_its_folders(xdg):
    assert main(["install-desktop"]) == 0
    mine = xdg / "icons" / "hicolor" / "48x48" / "apps" / "mine.png"
    mine.write_bytes(b"png")
    assert main(["install-desktop", "--uninstall"]) == 0
    assert mine.is_file() and not (xdg / "applications" / f"{APP_ID}.desktop").exists()


def test_exec_is_quoted_as_the_desktop_spec_asks():
    entry = desktop_entry(["/home/a b/venv/bin/musicsim-gui"])
    assert 'Exec="/home/a b/venv/bin/musicsim-gui" %F' in entry


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils not installed")
def test_the_installed_desktop_entry_validates(xdg):
    assert main(["install-desktop", "--exec", "/usr/bin/musicsim-gui"]) == 0
    run = subprocess.run(
        ["desktop-file-validate", str(xdg / "applications" / f"{APP_ID}.desktop")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.skipif(not shutil.which("appstreamcli"), reason="appstream not installed")
def test_the_metainfo_validates_offline():
    path = resources.desktop_dir() / f"{APP_ID}.metainfo.xml"
    run = subprocess.run(["appstreamcli", "validate", "--no-net", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_png_size_is_rendered():
    sizes = sorted(int(p.stem.split("x")[0]) for p in (resources.desktop_dir() / "icons").glob("*.png"))
    assert sizes == [16, 24, 32, 48, 64, 128, 256, 512]

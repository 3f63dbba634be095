"""The wheel works without the checkout: built here, installed into a fresh venv in a temporary
folder, and run from there (the CLI, a scan, ``similar``, ``python -m trainer --help``, the app
offscreen, ``install-desktop``).

Installing torch and Qt afresh would take minutes, so the venv sees the dependencies already
installed in this environment through a *view*: a folder of links to this environment's
site-packages entries, without musicsim's own (its dist-info and the editable install's finder
and ``.pth``, which would lead back to the checkout). The wheel is installed with
``pip install --no-index`` *with* its dependency check, so a dependency the wheel declares but
the view lacks fails the test instead of being fetched. Every process runs from a temporary
folder with no ``PYTHONPATH``, and the test asserts that ``musicsim``, its resources and
``trainer`` are imported from the venv, and that the checkout is not on ``sys.path``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "CHANGELOG.md")
SOURCE_DIRS = ("musicsim", "trainer", "resources")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _copy_sources(dest: Path) -> Path:
    """The files a build reads, copied so that building never writes into the checkout."""
    dest.mkdir()
    for name in SOURCES:
        shutil.copy2(REPO / name, dest / name)
    for name in SOURCE_DIRS:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _is_ours(name: str) -> bool:
    low = name.lower()
    return low.startswith(("musicsim", "__editable__", "trainer")) or low.endswith(".pth") or low == "__pycache__"


def _dependency_view(dest: Path) -> Path:
    """Links to this environment's installed packages, musicsim's own left out."""
    dest.mkdir()
    site = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for sp in site:
        for entry in sp.iterdir():
            if not _is_ours(entry.name) and not (dest / entry.name).exists():
                (dest / entry.name).symlink_to(entry)
    return dest


def _clean_env(tmp: Path, venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        MUSICSIM_HOME=str(tmp / "home"),
        XDG_DATA_HOME=str(tmp / "xdg"),
        QT_QPA_PLATFORM="offscreen",
        PYTHONNOUSERSITE="1",
    )
    return env


def _run(cmd: list, *, cwd: Path, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(tmp, venv, env): the wheel built from a copy of the sources and installed into a fresh venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(tmp / "src")
    run = tmp / "cwd"
    run.mkdir()
    env0 = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", tmp / "dist", src], cwd=run, env=env0)
    wheels = sorted((tmp / "dist").glob("musicsim-*.whl"))
    assert len(wheels) == 1 and sorted((tmp / "dist").glob("musicsim-*.tar.gz"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=run, env=env0)
    py = venv / "bin" / "python"
    purelib = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=run, env=env0)
    view = _dependency_view(tmp / "deps")
    Path(purelib.stdout.strip(), "_musicsim_test_deps.pth").write_text(f"{view}\n")
    env = _clean_env(tmp, venv)
    # --no-index: dependencies must already be there (in the view); nothing is downloaded.
    _run([py, "-m", "pip", "install", "-q", "--no-index", "--find-links", tmp / "dist", "musicsim"], cwd=run, env=env)
    return tmp, venv, env


def test_the_wheel_carries_the_resources_and_entry_points(installed):
    tmp, venv, env = installed
    py = venv / "bin" / "python"
    code = (
        "import sys, musicsim, trainer, musicsim.resources as r, musicsim.model.checkpoint as c;"
        "print(musicsim.__file__); print(trainer.__file__); print(r.root()); print(c.DEFAULT_RESOURCE);"
        "print(repr(sys.path))"
    )
    out = _run([py, "-c", code], cwd=tmp / "cwd", env=env).stdout.splitlines()
    mod, tr, root, model, path = out[0], out[1], out[2], out[3], out[4]
    for p in (mod, tr, root, model):
        assert Path(p).resolve().is_relative_to(venv.resolve()), p
    assert Path(model).is_file() and Path(root, "models", "MODEL_CARD.md").is_file()
    assert Path(root, "icons", "musicsim.svg").is_file() and Path(root, "desktop", "icons", "48x48.png").is_file()
    assert str(REPO) not in path
    for script in ("musicsim", "musicsim-gui"):
        assert (venv / "bin" / script).is_file()
    assert _run([venv / "bin" / "musicsim", "--version"], cwd=tmp / "cwd", env=env).stdout.strip() == "musicsim 0.1.0"
    assert "usage" in _run([py, "-m", "trainer", "--help"], cwd=tmp / "cwd", env=env).stdout.lower()


def test_scan_and_similar_from_the_installed_wheel(installed):
    from tests.fixtures.generate import make_library

    tmp, venv, env = installed
    music = tmp / "music"
    files = make_library(music, per_family=2, seconds=4.0, formats=(".wav", ".flac", ".ogg"))
    ms = venv / "bin" / "musicsim"
    scan = _run([ms, "scan", music], cwd=tmp / "cwd", env=env)
    assert f"analysed {len(files)}" in scan.stdout
    seed = next(p for p, fam in files.items() if fam == "sine")
    similar = _run([ms, "similar", seed, "-n", "3", "--json"], cwd=tmp / "cwd", env=env)
    assert "sine" in similar.stdout
    assert "trained" in _run([ms, "status"], cwd=tmp / "cwd", env=env).stdout


def test_the_app_opens_offscreen_from_the_installed_wheel(installed):
    tmp, venv, env = installed
    env = dict(env, MUSICSIM_GUI_QUIT_AFTER_MS="200")
    _run([venv / "bin" / "musicsim-gui", "--settings", tmp / "settings.ini"], cwd=tmp / "cwd", env=env)


def test_install_desktop_points_the_menu_at_the_installed_app(installed):
    tmp, venv, env = installed
    ms = venv / "bin" / "musicsim"
    _run([ms, "install-desktop"], cwd=tmp / "cwd", env=env)
    entry = (tmp / "xdg" / "applications" / "org.musicsim.musicsim.desktop").read_text()
    assert f"Exec={venv / 'bin' / 'musicsim-gui'} %F" in entry
    _run([ms, "install-desktop", "--uninstall"], cwd=tmp / "cwd", env=env)
    assert not any(p.is_file() for p in (tmp / "xdg").rglob("*"))

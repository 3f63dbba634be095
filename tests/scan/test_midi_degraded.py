import os
import subprocess
import sys
from pathlib import Path

from musicsim.library import Library
from tests.fixtures.generate import write_midi

REPO = Path(__file__).resolve().parents[2]


def _scan(root, db, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "musicsim", "--db", str(db), "scan", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_midi_rendered_with_fluidsynth_is_not_degraded(tmp_path):
    write_midi(tmp_path / "m" / "song.mid", program=40, seconds=5.0)
    assert _scan(tmp_path / "m", tmp_path / "a.db").returncode == 0
    with Library(tmp_path / "a.db", writable=False) as lib:
        (t,) = lib.tracks()
        assert not t.degraded and t.renderer.startswith("fluidsynth")
        assert t.extra.get("instruments")


def test_midi_without_fluidsynth_is_marked_degraded(tmp_path):
    shim = tmp_path / "shim"
    shim.mkdir()
    # What Python sees on a machine without libfluidsynth: the binding fails to import.
    (shim / "fluidsynth.py").write_text("raise ImportError('Couldn\\'t find the FluidSynth library.')\n")
    write_midi(tmp_path / "m" / "song.mid", program=0, seconds=5.0)
    db = tmp_path / "d.db"
    run = _scan(tmp_path / "m", db, {"PYTHONPATH": f"{shim}{os.pathsep}{REPO}"})
    assert run.returncode == 0, run.stderr
    with Library(db, writable=False) as lib:
        (t,) = lib.tracks()
        assert t.degraded and "fluidsynth" not in t.renderer
        assert lib.status()["degraded"] == 1
    status = subprocess.run(
        [sys.executable, "-m", "musicsim", "--db", str(db), "status"], capture_output=True, text=True, timeout=120
    )
    assert "degraded: 1 MIDI" in status.stdout

"""Without FluidSynth's library, ``musicsim status`` and the app (once) say how to get it here."""

from __future__ import annotations

import argparse

import pytest

from musicsim import resources


@pytest.mark.parametrize(
    ("os_release", "expected"),
    [
        ('ID=debian\nVERSION_ID="12"\n', "apt install libfluidsynth3"),
        ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "apt install libfluidsynth3"),
        ("ID=fedora\n", "dnf install fluidsynth-libs"),
        ('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', "zypper install fluidsynth"),
        ("ID=endeavouros\nID_LIKE=arch\n", "pacman -S fluidsynth"),
        ("ID=plan9\n", "your distribution's FluidSynth library"),
    ],
)
def test_the_hint_names_this_distributions_package(tmp_path, os_release, expected):
    f = tmp_path / "os-release"
    f.write_text(os_release)
    assert expected in resources.fluidsynth_hint("linux", os_release=str(f))


def test_the_hint_on_macos_windows_and_without_os_release(tmp_path):
    assert resources.fluidsynth_hint("darwin") == "brew install fluid-synth"
    assert "libfluidsynth-3.dll" in resources.fluidsynth_hint("win32")
    assert "FluidSynth" in resources.fluidsynth_hint("linux", os_release=str(tmp_path / "none"))


class _Lib:
    """What ``status`` reads of a library."""

    def status(self) -> dict:
        counts = dict(tracks=0, indexed=0, failed=0, missing=0, degraded=0)
        return dict(database="db", model="m", trained=True, checksum="c", roots=[], warning=None, **counts)


def test_status_says_how_to_get_fluidsynth_when_it_is_missing(monkeypatch, capsys):
    from musicsim.audio import midi
    from musicsim.cli.library import status

    monkeypatch.setattr(midi, "fluidsynth_available", lambda: False)
    assert status(_Lib(), argparse.Namespace()) == 0
    out = capsys.readouterr().out
    assert "midi:     FluidSynth was not found" in out and resources.fluidsynth_hint() in out
    monkeypatch.setattr(midi, "fluidsynth_available", lambda: True)
    status(_Lib(), argparse.Namespace())
    assert "FluidSynth" not in capsys.readouterr().out


@pytest.mark.gui
def test_the_app_says_it_once(qtbot, tmp_path):
    from musicsim.gui.notices import show_once
    from musicsim.gui.settings import SettingsStore

    settings = SettingsStore(tmp_path / "settings.ini")
    box = show_once(None, settings, text="FluidSynth was not found; to get it: brew install fluid-synth")
    assert box is not None and "brew install fluid-synth" in box.text() and not box.isModal()
    box.close()
    assert show_once(None, settings, text="again") is None
    assert show_once(None, SettingsStore(tmp_path / "settings.ini"), text="again") is None  # remembered

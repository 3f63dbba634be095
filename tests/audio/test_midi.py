"""MIDI rendering with FluidSynth, the degraded sine fallback, and MIDI failure modes."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from musicsim.audio import decode, midi
from musicsim.audio.midi import find_soundfont, fluidsynth_available, midi_info, render_midi
from musicsim.errors import DecodeError
from tests.fixtures.generate import write_midi

needs_fluidsynth = pytest.mark.skipif(not fluidsynth_available(), reason="FluidSynth not installed")


@pytest.fixture(scope="module")
def tune(tmp_path_factory) -> Path:
    return write_midi(tmp_path_factory.mktemp("midi") / "tune.mid", program=0, variant=1, seconds=4.0, title="A Tune")


@pytest.fixture()
def no_fluidsynth(monkeypatch):
    monkeypatch.setattr(midi, "fluidsynth_available", lambda: False)


@needs_fluidsynth
def test_fluidsynth_render_is_not_degraded(tune):
    audio, degraded, renderer = render_midi(tune, sr=16000)
    sf2, _ = find_soundfont()
    assert not degraded and renderer == f"fluidsynth:{Path(sf2).name}"
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 3.5 < len(audio) / 16000 < 6.5
    assert np.abs(audio).max() == pytest.approx(0.9, abs=1e-3)


@needs_fluidsynth
def test_fluidsynth_renders_drums(tmp_path):
    audio, degraded, _ = render_midi(write_midi(tmp_path / "beat.mid", drums=True, seconds=2.0))
    assert not degraded and np.abs(audio).max() > 0.5


def test_degraded_render_without_fluidsynth(tune, tmp_path, no_fluidsynth):
    audio, degraded, renderer = render_midi(tune)
    assert degraded and renderer == "pretty_midi-sine"
    assert audio.dtype == np.float32 and np.abs(audio).max() == pytest.approx(0.9, abs=1e-3)
    drums, degraded, _ = render_midi(write_midi(tmp_path / "beat.mid", drums=True, seconds=2.0))
    assert degraded and np.isfinite(drums).all() and np.abs(drums).max() > 0.5
    dec = decode.decode_for_analysis(tune)
    assert dec.degraded and dec.renderer == "pretty_midi-sine"


def test_degraded_render_without_soundfont(tune, monkeypatch):
    monkeypatch.setattr(midi, "find_soundfont", lambda configured=None: (None, "none"))
    assert render_midi(tune)[1:] == (True, "pretty_midi-sine")


def test_no_notes_is_decode_error(tmp_path):
    path = write_midi(tmp_path / "silence.mid", notes=False)
    with pytest.raises(DecodeError) as info:
        render_midi(path)
    assert str(info.value) == f"{path}: MIDI file has no notes"
    with pytest.raises(DecodeError, match="no notes"):
        decode.decode_for_analysis(path)


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"", "empty file"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "not a MIDI file"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\xff\xff\x00\x90", "truncated MIDI file"),
    ],
)
def test_corrupt_midi_is_decode_error(tmp_path, content, reason):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    for call in (render_midi, midi_info, decode.load):
        with pytest.raises(DecodeError, match=reason) as info:
            call(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_absurd_length_is_capped(tmp_path, no_fluidsynth):
    # ~16.7 s per beat, notes spread over hours: rendering all of it would take gigabytes.
    mf = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=16_777_215, time=0)])
    for _ in range(600):
        track += [
            mido.Message("note_on", note=60, velocity=100, time=0),
            mido.Message("note_off", note=60, velocity=0, time=96),
        ]
    mf.tracks.append(track)
    path = tmp_path / "slow.mid"
    mf.save(path)
    assert midi_info(path)["duration"] > 3600
    audio, _, _ = render_midi(path, sr=8000, max_seconds=30.0)
    assert len(audio) / 8000 < 30.0 + 5.0


def test_midi_info(tune, tmp_path):
    info = midi_info(tune)
    assert info["title"] == "A Tune" and info["tempo"] == pytest.approx(120.0)
    assert info["instruments"] == ["Part 1"] and 3.5 < info["duration"] < 4.5
    unnamed = write_midi(tmp_path / "plain.mid", program=40)
    assert midi_info(unnamed)["title"] is None


def test_find_soundfont_order(tmp_path, monkeypatch):
    configured = tmp_path / "mine.sf2"
    configured.write_bytes(b"RIFF")
    env = tmp_path / "env.sf2"
    env.write_bytes(b"RIFF")
    monkeypatch.setenv("MUSICSIM_SOUNDFONT", str(env))
    assert find_soundfont(str(configured)) == (str(configured), f"configured SoundFont {configured}")
    path, description = find_soundfont(str(tmp_path / "gone.sf2"))
    assert path == str(env) and "not found" in description and "MUSICSIM_SOUNDFONT" in description
    monkeypatch.delenv("MUSICSIM_SOUNDFONT")
    path, description = find_soundfont()
    assert path is not None and Path(path).is_file() and "\n" not in description
    monkeypatch.setattr(midi, "_SYSTEM_SOUNDFONTS", ())
    monkeypatch.setattr(midi, "_SOUNDFONT_GLOBS", ())
    path, description = find_soundfont()
    assert Path(path).name == "TimGM6mb.sf2" and "pretty_midi" in description


@needs_fluidsynth
def test_configured_soundfont_is_used(tune):
    sf2, _ = find_soundfont()
    audio, degraded, renderer = render_midi(tune, soundfont=sf2)
    assert not degraded and renderer.endswith(Path(sf2).name)
    assert np.array_equal(audio, render_midi(tune)[0])  # same SoundFont, deterministic render

"""Descriptors of generated pieces of known tempo, key, level and texture."""

from __future__ import annotations

import numpy as np
import pytest

from musicsim.audio.descriptors import compute, describe, estimate_key, loudness
from tests.fixtures.musical import piece

SR = 22050


def _tempo_close(est: float | None, ref: float) -> bool:
    return est is not None and any(abs(est - ref * f) <= 0.04 * ref * f for f in (1.0, 2.0, 0.5))


@pytest.mark.parametrize(("tempo", "key", "mode"), [(95.0, "A", "minor"), (140.0, "Eb", "major")])
def test_tempo_and_key_of_a_generated_piece(tempo, key, mode):
    d = compute([piece(tempo=tempo, key=key, mode=mode, timbre="flute", seconds=16)], SR)
    assert _tempo_close(d.tempo, tempo)
    assert (d.key, d.mode) == (key, mode)
    assert 0 < d.key_confidence <= 1 and 0.3 < d.beat_clarity <= 1


def test_loudness_matches_pyloudnorm_and_the_level_set():
    import pyloudnorm

    y = piece(seconds=12, level_db=-20) * np.where(np.arange(12 * SR) < 8 * SR, 1.0, 0.1).astype(np.float32)
    ref = pyloudnorm.Meter(SR).integrated_loudness(y.astype(np.float64))
    ours, lra = loudness(y, SR)
    assert abs(ours - ref) < 0.01
    assert lra > 10  # a 20 dB step between the loud and the quiet part
    quieter, _ = loudness(y * 0.1, SR)
    assert abs((ours - quieter) - 20.0) < 0.05


def test_percussive_and_bright_tell_textures_apart():
    drums = compute([piece(timbre="flute", seconds=10, drums=True)], SR)
    tonal = compute([piece(timbre="flute", seconds=10, drums=False)], SR)
    assert drums.percussive > tonal.percussive + 0.05
    assert drums.brightness > tonal.brightness


def test_silence_and_short_audio_give_none_not_an_error():
    assert compute([np.zeros(SR, np.float32)], SR).tempo is None
    assert compute([], SR).loudness is None
    out = describe([np.zeros(10, np.float32)], SR)
    assert out["loudness"] is None and out["seconds"] >= 0


def test_key_profile_of_a_c_major_scale():
    chroma = np.zeros(12)
    chroma[[0, 2, 4, 5, 7, 9, 11]] = 1.0
    chroma[[0, 4, 7]] += 1.0
    assert estimate_key(chroma)[:2] == ("C", "major")
    assert estimate_key(np.ones(12)) == (None, None, None)


def test_tempo_and_key_from_the_first_pass_windows():
    """A long piece seen only through short windows (the first pass): evidence pooled per
    window, so the seams between windows add no false beat."""
    from musicsim.audio.decode import window_starts

    y = piece(tempo=112.0, key="D", mode="major", timbre="flute", seconds=90, drums=True)
    windows = [y[int(s * SR) : int(s * SR) + 3 * SR] for s in window_starts(90.0, 16, 3.0)]
    d = compute(windows, SR)
    assert _tempo_close(d.tempo, 112.0)
    assert (d.key, d.mode) == ("D", "major")
    whole = compute([y], SR)
    assert abs(d.brightness - whole.brightness) < 0.15 * whole.brightness
    assert abs(d.percussive - whole.percussive) < 0.1

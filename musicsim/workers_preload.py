"""Imported once by the worker forkserver (:mod:`musicsim.workers`): the decoding stack, and
one description of a short generated signal, so that librosa's just-in-time compiled
functions are compiled once here and every forked worker inherits them (about 5 s a worker
otherwise paid on its first file)."""

import librosa.decompose  # noqa: F401
import librosa.feature  # noqa: F401
import librosa.filters  # noqa: F401
import librosa.onset  # noqa: F401
import numpy as np
import pyloudnorm  # noqa: F401
import scipy.signal  # noqa: F401

import musicsim.audio.decode  # noqa: F401
import musicsim.audio.tags  # noqa: F401
from musicsim.audio.descriptors import compute


def _warm() -> None:
    sr = 22050
    t = np.arange(4 * sr, dtype=np.float32) / sr
    clicks = (np.sin(2 * np.pi * 440 * t) * (t % 0.5 < 0.05)).astype(np.float32)
    try:
        compute([clicks], sr)
        compute([clicks[: 2 * sr], clicks[2 * sr :]], sr)
    except Exception:  # noqa: BLE001 - a failed warm-up only costs the workers their first-file time
        pass


_warm()

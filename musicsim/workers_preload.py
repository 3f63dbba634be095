"""Imported once by the worker forkserver (:mod:`musicsim.workers`): the decoding stack."""

import librosa.decompose  # noqa: F401
import librosa.feature  # noqa: F401
import librosa.filters  # noqa: F401
import librosa.onset  # noqa: F401
import pyloudnorm  # noqa: F401
import scipy.signal  # noqa: F401

import musicsim.audio.decode  # noqa: F401
import musicsim.audio.descriptors  # noqa: F401
import musicsim.audio.tags  # noqa: F401

"""Baselines every evaluation prints beside the model: classic MFCC statistics and the same
network with untrained (seeded) weights."""

from __future__ import annotations

import numpy as np

from musicsim.audio.features import FrontEnd
from musicsim.model.checkpoint import LoadedModel, untrained_model
from musicsim.model.resnet import ModelConfig

N_MFCC = 20


def mfcc_stats(mel_db: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
    """Mean and standard deviation over time of ``n_mfcc`` MFCCs, computed (DCT-II) from
    log-Mel dB frames ``[n_mels, frames]``, the same frames the network sees."""
    import librosa

    S = np.asarray(mel_db, dtype=np.float32)
    if S.shape[1] < 2:
        S = np.repeat(S, 2, axis=1)
    m = librosa.feature.mfcc(S=S, n_mfcc=n_mfcc)
    return np.concatenate([m.mean(axis=1), m.std(axis=1)]).astype(np.float32)


def standardise(X: np.ndarray) -> np.ndarray:
    """Z-score every feature over the evaluated tracks (unsupervised; MFCC 0 would dominate)."""
    X = np.asarray(X, np.float64)
    sd = X.std(axis=0)
    return ((X - X.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def untrained_like(cfg: ModelConfig, fe: FrontEnd) -> LoadedModel:
    """The evaluated architecture with seeded, untrained weights."""
    return untrained_model(cfg, fe)

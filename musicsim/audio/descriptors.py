"""Musical descriptors of a decoded track: tempo, key, loudness, brightness, percussiveness.

Computed in the scan's decode workers from the audio already decoded (no second decode).
The field's libraries do the work: librosa's onset envelope, beat tracker, harmonic /
percussive separation and chroma; pyloudnorm's BS.1770 K-weighting and integrated
loudness (EBU R128). Written here, because none of them does it: the key from chroma
with the Krumhansl-Kessler profiles, the beat's clarity (autocorrelation of the onset
envelope at the beat period) and the loudness range (EBU Tech 3342: short-term loudness,
gated, 95th minus 10th percentile).

Rhythm and tonality are read from one excerpt of at most :data:`EXCERPT_SECONDS` from the
middle of the track, which keeps the cost within a tenth of the scan (docs/benchmarks.md);
loudness from every decoded sample.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

EXCERPT_SECONDS = 30.0
_N_FFT = 2048
_HOP = 512
PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl and Kessler's probe-tone ratings (1982), C major and C minor.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Descriptors:
    """What a person hears first in a track. ``None`` where it cannot be told (silence, too short)."""

    tempo: float | None = None  # beats per minute
    beat_clarity: float | None = None  # 0 (no steady pulse) .. 1 (a metronome)
    key: str | None = None  # tonic, e.g. "F#"
    mode: str | None = None  # "major" | "minor"
    key_confidence: float | None = None  # 0 .. 1: how much better the key fits than the next best
    loudness: float | None = None  # integrated loudness, LUFS
    loudness_range: float | None = None  # LU (EBU Tech 3342)
    brightness: float | None = None  # median spectral centroid, Hz
    percussive: float | None = None  # share of the percussive part's energy, 0 (tonal) .. 1 (percussive)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def key_name(self) -> str | None:
        """ "A minor", "Eb major"."""
        return f"{self.key} {self.mode}" if self.key and self.mode else None


def compute(chunks: list[np.ndarray], sr: int, *, excerpt_seconds: float = EXCERPT_SECONDS) -> Descriptors:
    """Descriptors of one track from its decoded mono chunks (float32 at ``sr``).

    Never raises on odd audio: what cannot be measured is None.
    """
    chunks = [np.asarray(c, dtype=np.float32) for c in chunks if len(c)]
    if not chunks:
        return Descriptors()
    loud, lra = loudness(np.concatenate(chunks), sr)
    y = _excerpt(chunks, sr, excerpt_seconds)
    if y.size < _N_FFT * 2 or not np.any(y):
        return Descriptors(loudness=loud, loudness_range=lra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Descriptors(loudness=loud, loudness_range=lra, **_spectral(y, sr))


def describe(chunks: list[np.ndarray], sr: int) -> dict:
    """:func:`compute` as the scan's decode worker calls it: a plain dict (picklable, the
    database's columns) plus ``seconds`` it took; never raises (a descriptor must not cost
    the track its analysis: on an unexpected error every value is None)."""
    t0 = time.perf_counter()
    try:
        values = compute(chunks, sr).as_dict()
    except Exception:  # noqa: BLE001 - a library bug on odd audio costs the descriptors only
        values = Descriptors().as_dict()
    return {**values, "seconds": time.perf_counter() - t0}


def _excerpt(chunks: list[np.ndarray], sr: int, seconds: float) -> np.ndarray:
    """The middle ``seconds`` of the longest chunk (windows of a long track are joined when short)."""
    want = int(seconds * sr)
    y = max(chunks, key=len)
    if len(y) < want // 2 and len(chunks) > 1:
        y = np.concatenate(chunks)
    if len(y) > want:
        start = (len(y) - want) // 2
        y = y[start : start + want]
    return y


def _spectral(y: np.ndarray, sr: int) -> dict:
    import librosa

    S = np.abs(librosa.stft(y, n_fft=_N_FFT, hop_length=_HOP))
    power = S**2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=64)
    harm, perc = librosa.decompose.hpss(mel, kernel_size=17)
    total = float(harm.sum() + perc.sum())
    percussive = float(perc.sum() / total) if total > 0 else None
    env = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=_HOP)
    tempo, clarity = _tempo(env, sr)
    centroid = librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=_N_FFT)[0]
    energy = S.sum(axis=0)
    voiced = centroid[energy > 1e-3 * energy.max()] if energy.max() > 0 else centroid
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=_N_FFT, tuning=0.0)
    key, mode, conf = estimate_key(chroma.mean(axis=1))
    return {
        "tempo": tempo,
        "beat_clarity": clarity,
        "key": key,
        "mode": mode,
        "key_confidence": conf,
        "brightness": float(np.median(voiced)) if voiced.size else None,
        "percussive": percussive,
    }


def _tempo(env: np.ndarray, sr: int) -> tuple[float | None, float | None]:
    """Tempo from librosa's beat tracker; clarity from the onset envelope's autocorrelation
    at the beat period (how much of the envelope repeats with the beat)."""
    import librosa

    if env.size < 8 or not np.any(env):
        return None, None
    bpm_arr, _ = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=_HOP)
    bpm = float(np.atleast_1d(bpm_arr)[0])
    if not math.isfinite(bpm) or bpm <= 0:
        return None, None
    e = env - env.mean()
    ac = np.correlate(e, e, mode="full")[e.size - 1 :]
    if ac[0] <= 0:
        return bpm, 0.0
    lag = sr * 60.0 / (_HOP * bpm)
    lo, hi = int(math.floor(lag)), int(math.ceil(lag)) + 1
    if hi >= ac.size:
        return bpm, 0.0
    return round(bpm, 2), float(np.clip(ac[lo:hi].max() / ac[0], 0.0, 1.0))


def estimate_key(chroma: np.ndarray) -> tuple[str | None, str | None, float | None]:
    """Key and mode of a 12-bin pitch-class profile (C first) by the Krumhansl-Kessler profiles.

    Returns (tonic, "major" | "minor", confidence): the confidence is the gap between the
    best and the second-best key's correlation, scaled to 0..1.
    """
    c = np.asarray(chroma, dtype=np.float64)
    if c.shape != (12,) or not np.isfinite(c).all() or c.std() == 0:
        return None, None, None
    scores = np.array([[np.corrcoef(np.roll(p, t), c)[0, 1] for t in range(12)] for p in (_MAJOR, _MINOR)])
    best = np.unravel_index(int(np.argmax(scores)), scores.shape)
    ranked = np.sort(scores.ravel())
    conf = float(np.clip((ranked[-1] - ranked[-2]) / 0.2, 0.0, 1.0))
    return PITCHES[int(best[1])], ("major", "minor")[int(best[0])], round(conf, 3)


def loudness(y: np.ndarray, sr: int) -> tuple[float | None, float | None]:
    """(integrated loudness in LUFS, loudness range in LU) of a mono signal; None when silent or short.

    The signal is K-weighted once with pyloudnorm's BS.1770 filters. Integrated loudness is
    BS.1770-4's gating (400-ms blocks, 75 % overlap, -70 LUFS and -10 LU gates) as
    pyloudnorm's ``integrated_loudness`` computes it (equal to it to 0.01 LU, a test checks),
    vectorised here because that loops over the blocks in Python and filters again. The
    range follows EBU Tech 3342: 3-s short-term loudness every second, gated at -70 LUFS
    and 20 LU below their mean, 95th minus 10th percentile.
    """
    import pyloudnorm

    if y.size < int(0.4 * sr) + 1:
        return None, None
    meter = pyloudnorm.Meter(sr)
    k = y.astype(np.float64)
    for stage in meter._filters.values():  # the meter's own K-weighting (high shelf, high pass)
        k = stage.apply_filter(k)
    sq = np.concatenate([[0.0], np.cumsum(k * k)])
    lufs = _gated(sq, sr, block=0.4, step=0.1, relative=-10.0, mean=True)
    if lufs is None:
        return None, None
    st = _gated(sq, sr, block=3.0, step=1.0, relative=-20.0, mean=False)
    lra = 0.0 if st is None or st.size == 0 else float(np.percentile(st, 95) - np.percentile(st, 10))
    return round(lufs, 2), round(lra, 2)


def _gated(sq: np.ndarray, sr: int, *, block: float, step: float, relative: float, mean: bool):
    """Blocks' loudness from a cumulative sum of squares, gated absolutely (-70) and relatively;
    ``mean``: their power mean in LUFS, else the gated blocks' loudness values."""
    n = sq.size - 1
    win = int(block * sr)
    if n < win:
        return None if mean else np.zeros(0)
    # pyloudnorm's block count and bounds (BS.1770-4 eq. 3)
    count = int(np.round((n / sr - block) / step)) + 1
    j = np.arange(count)
    lo = (block * (j * step / block) * sr).astype(np.int64)
    hi = np.minimum((block * (j * step / block + 1) * sr).astype(np.int64), n)
    z = (sq[hi] - sq[lo]) / win
    with np.errstate(divide="ignore"):
        lj = -0.691 + 10 * np.log10(z)
    keep = lj >= -70.0
    if not keep.any():
        return None if mean else np.zeros(0)
    gamma = -0.691 + 10 * np.log10(z[keep].mean()) + relative
    keep &= lj > gamma
    if mean:
        return float(-0.691 + 10 * np.log10(z[keep].mean())) if keep.any() else None
    return lj[keep]


__all__ = ["Descriptors", "compute", "describe", "estimate_key", "loudness", "PITCHES"]

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

import functools
import math
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

EXCERPT_SECONDS = 20.0
_N_FFT = 1024
_HOP = 512
PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl and Kessler's probe-tone ratings (1982), C major and C minor.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Each of the 24 keys' profile (major on C, C#, ..., then minor), standardised: a product with a
# standardised chroma vector, divided by 12, is their correlation.
_PROFILES = np.array([np.roll(p, t) for p in (_MAJOR, _MINOR) for t in range(12)])
_PROFILES = (_PROFILES - _PROFILES.mean(axis=1, keepdims=True)) / _PROFILES.std(axis=1, keepdims=True)


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
    loud, lra = loudness(chunks, sr)
    pieces = _pieces(chunks, sr, excerpt_seconds)
    if sum(p.size for p in pieces) < _N_FFT * 2 or not any(np.any(p) for p in pieces):
        return Descriptors(loudness=loud, loudness_range=lra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Descriptors(loudness=loud, loudness_range=lra, **_spectral(pieces, sr))


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


def _pieces(chunks: list[np.ndarray], sr: int, seconds: float) -> list[np.ndarray]:
    """What rhythm and tonality are read from: the middle ``seconds`` of the longest chunk, or,
    when the track was decoded as short windows (the first pass, long tracks), evenly spaced
    windows adding up to about ``seconds``, each analysed on its own and their evidence
    pooled: joining them would put a false onset at every seam."""
    want = int(seconds * sr)
    y = max(chunks, key=len)
    if len(y) >= want // 2 or len(chunks) == 1:
        if len(y) > want:
            start = (len(y) - want) // 2
            y = y[start : start + want]
        return [y]
    usable = [c for c in chunks if len(c) >= 2 * _N_FFT]
    if not usable:
        return [np.concatenate(chunks)[:want]]
    mean_len = max(1.0, float(np.mean([len(c) for c in usable])))
    keep = max(1, min(len(usable), int(round(want / mean_len))))
    picks = np.unique(np.linspace(0, len(usable) - 1, keep).round().astype(int))
    return [usable[i] for i in picks]


def _spectral(pieces: list[np.ndarray], sr: int) -> dict:
    """Two short-time spectra keep this cheap: a fine time grid (1024-point frames every 512
    samples) for the onset envelope, the percussive share and the brightness, and a fine
    frequency grid (4096-point frames, side by side) for the chroma, where semitones must be
    apart; the chroma is averaged over the excerpt, and overlapping frames (twice the cost)
    measured the same key accuracy. Each piece is analysed alone; their frames and onset
    envelopes are pooled."""
    import librosa

    Ss, envs, chromas, perc_sum, total = [], [], [], 0.0, 0.0
    for y in pieces:
        S = np.abs(_stft(y, _N_FFT, _HOP))
        mel = _bank("mel", sr) @ (S * S)  # librosa's filterbanks, applied by one matrix product
        perc_sum += _percussive_energy(mel, 9)
        total += float(mel.sum())
        envs.append(librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=_HOP))
        Ss.append(S)
        if len(y) >= 4 * _N_FFT:
            tonal = np.square(np.abs(_stft(y, 4 * _N_FFT, 4 * _N_FFT)))
            chromas.append(_max_normalised(_bank("chroma", sr) @ tonal))  # as chroma_stft
    percussive = perc_sum / total if total > 0 else None
    tempo, clarity = _tempo(envs, sr)
    S = np.concatenate(Ss, axis=1)
    energy = S.sum(axis=0)
    # The spectral centroid as librosa's spectral_centroid computes it (each frame's magnitude
    # spectrum as weights over the bin frequencies), as one matrix product.
    centroid = (librosa.fft_frequencies(sr=sr, n_fft=_N_FFT).astype(np.float32) @ S) / np.maximum(energy, _TINY)
    voiced = centroid[energy > 1e-3 * energy.max()] if energy.max() > 0 else centroid
    chroma_mean = np.concatenate(chromas, axis=1).mean(axis=1) if chromas else np.zeros(12)
    key, mode, conf = estimate_key(chroma_mean)
    return {
        "tempo": tempo,
        "beat_clarity": clarity,
        "key": key,
        "mode": mode,
        "key_confidence": conf,
        "brightness": round(float(np.median(voiced)), 1) if voiced.size else None,
        "percussive": round(percussive, 4) if percussive is not None else None,
    }


_TINY = np.finfo(np.float32).tiny


def _stft(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``librosa.stft(y, n_fft=n_fft, hop_length=hop)`` (Hann window, centred frames, zero
    padding) in single precision: one real FFT of all frames with scipy, at less than half
    librosa's cost, which computes in double precision and checks its input on every call."""
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy import fft

    edge = np.zeros(n_fft // 2, np.float32)
    padded = np.concatenate([edge, np.asarray(y, np.float32), edge])
    frames = sliding_window_view(padded, n_fft)[::hop] * _window(n_fft)
    return fft.rfft(frames, axis=-1).T


@functools.lru_cache(maxsize=4)
def _window(n_fft: int) -> np.ndarray:
    from scipy.signal import get_window

    return get_window("hann", n_fft, fftbins=True).astype(np.float32)


# Paeth's and Devillard's network of 19 compare-and-swap steps that leaves the median of nine
# values in place 4.
_MEDIAN9 = (
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
    (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
)  # fmt: skip


def _median(S: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``scipy.ndimage.median_filter`` of size ``k`` along ``axis`` (mode "reflect"), the same
    values: for k = 9 (the descriptors' kernel) by a sorting network over nine shifted copies,
    elementwise minima and maxima of whole arrays (scipy's rank filter took a third of the
    descriptors' time, and partitioning many nine-value windows still a tenth); otherwise by
    partitioning sliding windows."""
    from numpy.lib.stride_tricks import sliding_window_view

    n, h = S.shape[axis], k // 2
    if n >= h:  # as np.pad(mode="symmetric"), which costs more than the filter on these small arrays
        first, last = (
            np.flip(S.take(np.arange(h), axis=axis), axis),
            np.flip(S.take(np.arange(n - h, n), axis=axis), axis),
        )
        padded = np.concatenate([first, S, last], axis=axis)
    else:
        pad = [(0, 0)] * S.ndim
        pad[axis] = (h, h)
        padded = np.pad(S, pad, mode="symmetric")
    if k != 9:
        return np.partition(sliding_window_view(padded, k, axis=axis), h, axis=-1)[..., h]
    where = [slice(None)] * S.ndim
    p = []
    for i in range(9):
        where[axis] = slice(i, i + n)
        p.append(padded[tuple(where)])
    for a, b in _MEDIAN9:
        p[a], p[b] = np.minimum(p[a], p[b]), np.maximum(p[a], p[b])
    return p[4]


def _percussive_energy(S: np.ndarray, k: int) -> float:
    """The energy of the percussive part of ``librosa.decompose.hpss(S, kernel_size=k)`` (its
    median filters, :func:`_median`, and its soft mask of power 2, splitting where both parts
    are silent), as one sum: the two masks add up to one, so the harmonic part is the rest."""
    harm, perc = _median(S, k, axis=-1), _median(S, k, axis=-2)
    peak = np.maximum(harm, perc)
    silent = peak < _TINY
    peak[silent] = 1.0
    h, p = np.square(harm / peak), np.square(perc / peak)  # scaled as librosa.util.softmask does
    mask = np.where(silent, np.float32(0.5), p / np.where(silent, np.float32(1.0), h + p))
    return float(np.dot(S.ravel(), mask.ravel()))


def _max_normalised(C: np.ndarray) -> np.ndarray:
    """Each column divided by its largest value, as ``librosa.util.normalize(C, norm=np.inf,
    axis=0)`` does (a silent column stays as it is), without its per-call checks."""
    peak = C.max(axis=0, keepdims=True)
    return C / np.where(peak < _TINY, np.float32(1.0), peak)


@functools.lru_cache(maxsize=8)
def _bank(kind: str, sr: int) -> np.ndarray:
    import librosa

    if kind == "mel":
        return librosa.filters.mel(sr=sr, n_fft=_N_FFT, n_mels=40).astype(np.float32)
    return librosa.filters.chroma(sr=sr, n_fft=4 * _N_FFT, tuning=0.0).astype(np.float32)


def _autocorrelation(envs: list[np.ndarray], win: int, centre: bool) -> np.ndarray:
    """The onset envelopes' autocorrelation up to lag ``win``: one envelope's as librosa computes
    it; several (windows of a track) pooled per lag and divided by how many frame pairs each
    lag has, so that short windows do not favour short lags (fast tempi).

    Not ``centre``d, the envelopes are never negative and neither is their autocorrelation,
    but the FFT's rounding leaves values just below zero where it should be zero; librosa's
    tempo estimator (the log of a millionfold) turned those into NaN and so into its slowest
    tempo. They are clipped to zero."""
    import librosa

    if len(envs) == 1:
        e = envs[0] - envs[0].mean() if centre else envs[0]
        out = librosa.autocorrelate(e, max_size=win)
    else:
        total, pairs = np.zeros(win), np.zeros(win)
        for env in envs:
            e = env - env.mean() if centre else env
            n = min(win, e.size)
            total[:n] += librosa.autocorrelate(e, max_size=n)
            pairs[:n] += e.size - np.arange(n)
        ok = pairs > 0
        out = np.zeros(win)
        out[ok] = total[ok] / pairs[ok]
        out = out[: int(ok.sum())]
    return out if centre else np.maximum(out, 0.0)


def _tempo(envs: list[np.ndarray], sr: int) -> tuple[float | None, float | None]:
    """Tempo by librosa's estimator (its log-normal prior around 120 BPM over the onset
    envelope's autocorrelation) given the whole excerpt's autocorrelation (or the windows'
    pooled, :func:`_autocorrelation`) as one tempogram column (its frame-by-frame tempogram
    cost most of the time), refined between lags by a parabola; the beat's clarity is the
    mean-removed envelope's autocorrelation at the beat period (how much of the envelope
    repeats with the beat)."""
    import librosa

    envs = [e for e in envs if e.size >= 16]
    if not envs or not any(np.any(e) for e in envs):
        return None, None
    env = np.concatenate(envs)
    win = min(int(librosa.time_to_frames(8.0, sr=sr, hop_length=_HOP)), max(e.size for e in envs))
    ac = _autocorrelation(envs, win, centre=False)
    if ac.size < 4 or ac.max() <= 0:
        return None, None
    bpm = float(
        np.atleast_1d(librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=_HOP, tg=(ac / ac.max())[:, None]))[0]
    )
    if not math.isfinite(bpm) or bpm <= 0:
        return None, None
    lag = int(round(sr * 60.0 / (_HOP * bpm)))
    if 1 <= lag < ac.size - 1:
        a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
        bend = a - 2 * b + c
        shift = 0.5 * (a - c) / bend if bend < 0 else 0.0
        bpm = sr * 60.0 / (_HOP * (lag + float(np.clip(shift, -0.5, 0.5))))
    ec = _autocorrelation(envs, win, centre=True)
    clarity = float(np.clip(ec[lag] / ec[0], 0.0, 1.0)) if ec[0] > 0 and lag < ec.size else 0.0
    return round(bpm, 2), round(clarity, 4)


def estimate_key(chroma: np.ndarray) -> tuple[str | None, str | None, float | None]:
    """Key and mode of a 12-bin pitch-class profile (C first) by the Krumhansl-Kessler profiles.

    Returns (tonic, "major" | "minor", confidence): the confidence is the gap between the
    best and the second-best key's correlation, scaled to 0..1.
    """
    c = np.asarray(chroma, dtype=np.float64)
    if c.shape != (12,) or not np.isfinite(c).all() or c.std() == 0:
        return None, None, None
    scores = (_PROFILES @ ((c - c.mean()) / c.std())).reshape(2, 12) / 12  # Pearson's r with each key
    best = np.unravel_index(int(np.argmax(scores)), scores.shape)
    ranked = np.sort(scores.ravel())
    conf = float(np.clip((ranked[-1] - ranked[-2]) / 0.2, 0.0, 1.0))
    return PITCHES[int(best[1])], ("major", "minor")[int(best[0])], round(conf, 3)


@functools.lru_cache(maxsize=4)
def _k_weighting(sr: int) -> np.ndarray:
    """pyloudnorm's BS.1770 K-weighting filters at ``sr`` as second-order sections, their
    pass-band gain folded into the first (designed once per rate)."""
    import pyloudnorm
    from scipy.signal import tf2sos

    meter = pyloudnorm.Meter(sr)
    sos = np.vstack([tf2sos(f.b, f.a) for f in meter._filters.values()])  # the meter's own K-weighting
    sos[0, :3] *= float(np.prod([f.passband_gain for f in meter._filters.values()]))
    return sos


@functools.lru_cache(maxsize=4)
def _k_power(sr: int, step: int) -> np.ndarray:
    """Weights that turn a ``step``-sample block's real FFT, as interleaved float32 real and
    imaginary parts, into the sum of squares of the K-weighted block (Parseval's theorem with
    the K-weighting's power response at each bin; the bins between 0 and Nyquist count twice)."""
    from scipy.signal import sosfreqz

    _, h = sosfreqz(_k_weighting(sr), worN=np.fft.rfftfreq(step, 1.0 / sr), fs=sr)
    twice = np.full(h.size, 2.0)
    twice[0] = 1.0
    if step % 2 == 0:
        twice[-1] = 1.0
    return np.repeat(np.abs(h) ** 2 * twice / step, 2).astype(np.float32)


_FILTER_BELOW = 30.0  # seconds: shorter signals are K-weighted by filtering every sample
_STEPS_AT_ONCE = 64  # 100-ms steps transformed together: a few hundred KB, within the CPU's cache


def _k_weighted_steps(chunks: list[np.ndarray], sr: int, step: int) -> np.ndarray:
    """The sum of squares of the K-weighted signal over each ``step`` samples of the chunks
    joined (the last step zero-padded).

    Long signals from each step's spectrum, a few dozen steps at a time: a third of the cost
    of filtering every sample, within 0.03 LU of it on music (the filter's few milliseconds of
    memory wrap around within each step instead of running into the next; docs/benchmarks.md).
    Shorter than :data:`_FILTER_BELOW` (a sound effect, whose few steps each count), by
    filtering, exactly as pyloudnorm."""
    if sum(c.size for c in chunks) < _FILTER_BELOW * sr:
        from scipy.signal import sosfilt

        k = sosfilt(_k_weighting(sr).astype(np.float32), np.concatenate(chunks))
        k = np.pad(k, (0, -k.size % step)).reshape(-1, step)
        return np.einsum("ij,ij->i", k, k).astype(np.float64)
    from scipy import fft

    weights, out = _k_power(sr, step), []

    def energy(block: np.ndarray) -> np.ndarray:
        return np.square(fft.rfft(block, axis=-1).view(np.float32)) @ weights

    carry = np.zeros(0, np.float32)  # the start of a step that the next chunk completes, as if joined
    for y in chunks:
        start = 0
        if carry.size:
            start = step - carry.size
            if y.size < start:
                carry = np.concatenate([carry, y])
                continue
            out.append(energy(np.concatenate([carry, y[:start]])[None, :]))
        whole = start + (y.size - start) // step * step
        for i in range(start, whole, _STEPS_AT_ONCE * step):
            out.append(energy(y[i : min(whole, i + _STEPS_AT_ONCE * step)].reshape(-1, step)))
        carry = y[whole:]
    if carry.size:
        out.append(energy(np.pad(carry, (0, step - carry.size))[None, :]))
    return np.concatenate(out).astype(np.float64)


def loudness(y: np.ndarray | list[np.ndarray], sr: int) -> tuple[float | None, float | None]:
    """(integrated loudness in LUFS, loudness range in LU) of a mono signal, or of the chunks
    decoded from one track; None when silent or short.

    BS.1770-4's integrated loudness (K-weighting, 400-ms blocks every 100 ms, -70 LUFS and
    -10 LU gates) as pyloudnorm's ``integrated_loudness`` computes it, within 0.02 LU of it (a
    test checks; EBU Tech 3341 allows 0.1), but from the K-weighted energy of each 100-ms step
    (:func:`_k_weighted_steps`): pyloudnorm filters every sample and loops over the blocks in
    Python. The range follows EBU Tech 3342: 3-s short-term loudness every second, gated at
    -70 LUFS and 20 LU below their mean, 95th minus 10th percentile.
    """
    chunks = [np.asarray(c, np.float32) for c in ([y] if isinstance(y, np.ndarray) else y) if len(c)]
    size = sum(c.size for c in chunks)
    step = int(round(0.1 * sr))
    if size < 4 * step + 1:
        return None, None
    steps = _k_weighted_steps(chunks, sr, step)
    blocks = int(np.round((size / sr - 0.4) / 0.1)) + 1  # pyloudnorm's block count
    lufs = _gated(steps, step, 4, blocks, relative=-10.0)
    if lufs is None:
        return None, None
    st = _gated(steps, step, 30, max(0, (steps.size - 30) // 10 + 1), relative=-20.0, stride=10, values=True)
    lra = 0.0 if st is None or st.size == 0 else float(np.percentile(st, 95) - np.percentile(st, 10))
    return round(float(lufs), 2), round(lra, 2)


def _gated(
    steps: np.ndarray, step: int, width: int, count: int, *, relative: float, stride: int = 1, values: bool = False
):
    """Gated loudness of ``count`` blocks of ``width`` 100-ms steps every ``stride`` steps:
    their power mean in LUFS, or (``values``) the loudness of each block kept."""
    if count <= 0:
        return None
    padded = np.pad(steps, (0, max(0, (count - 1) * stride + width - steps.size)))
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    start = np.arange(count) * stride
    z = (csum[start + width] - csum[start]) / (width * step)  # mean square of each block
    with np.errstate(divide="ignore"):
        lj = -0.691 + 10 * np.log10(z)
    keep = lj >= -70.0
    if not keep.any():
        return None
    gamma = -0.691 + 10 * np.log10(z[keep].mean()) + relative
    keep &= lj > gamma
    if values:
        return lj[keep]
    return float(-0.691 + 10 * np.log10(z[keep].mean())) if keep.any() else None


__all__ = ["Descriptors", "compute", "describe", "estimate_key", "loudness", "PITCHES"]

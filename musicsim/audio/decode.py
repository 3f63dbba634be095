"""Decode any supported music file to mono float32 samples at a fixed rate.

libsndfile (bundled with the ``soundfile`` wheel) reads MP3, FLAC, Ogg/Opus, WAV and AIFF;
an ``ffmpeg`` subprocess (:mod:`musicsim.audio.ffmpeg`) reads the container formats libsndfile
cannot (M4A, AAC, WMA); MIDI is rendered by :mod:`musicsim.audio.midi`. Files are only ever
opened for reading.

libsndfile is trusted only where the file's structure agrees with its header
(:mod:`musicsim.audio.structure`): a length it does not know or that is impossible, MP3 frames
that add up to another length, joined or chained streams, and reading that stops early or
fails all send the file to ffmpeg, which decodes it to its end (docs/design.md, "Decoding
that tells the truth").

Every failure raises :class:`~musicsim.errors.DecodeError` (or a subclass) with a one-line
reason, so a library scan can record it and move on.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field

import numpy as np
import soundfile
import soxr

from musicsim.audio import midi
from musicsim.audio.ffmpeg import FfmpegSource
from musicsim.audio.sniff import MIDI_EXTENSIONS, check_file, check_samples
from musicsim.audio.structure import codec_label, declared_data_bytes, ogg_is_chained, scan_mpeg
from musicsim.errors import DecodeError

FFMPEG_EXTENSIONS = frozenset({".m4a", ".aac", ".mp4", ".wma"})

_FORMAT_NAMES = {
    ".mp3": "MP3",
    ".flac": "FLAC",
    ".ogg": "Ogg",
    ".oga": "Ogg",
    ".opus": "Opus",
    ".wav": "WAV",
    ".aif": "AIFF",
    ".aiff": "AIFF",
    ".m4a": "M4A",
    ".aac": "AAC",
    ".mp4": "MP4",
    ".wma": "WMA",
}
# ~3 s at 44.1 kHz: large enough that per-call overhead vanishes, small enough that a
# whole-track decode never holds more than one multi-channel block besides the mono output.
_BLOCK_FRAMES = 1 << 17
_ONE_SHOT_SECONDS = 120  # reads up to this long are resampled in one call
_UNKNOWN_SECONDS = 1e6  # libsndfile says ~2**63 frames when a header does not know its length
_PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
_PCM_BYTES.update({"ULAW": 1, "ALAW": 1})


@dataclass
class Decoded:
    """Audio prepared for analysis: one or more contiguous stretches of a track."""

    chunks: list[np.ndarray]
    starts: list[float]
    duration: float
    sr: int
    degraded: bool = False
    renderer: str = ""
    warnings: list[str] = field(default_factory=list)  # the decoders' complaints, for the log


class _Unreliable(Exception):
    """libsndfile cannot be trusted with this file after all (it stopped early or failed reading)."""

    def __init__(self, why: str, error: DecodeError | None = None) -> None:
        super().__init__(why)
        self.why, self.error = why, error


class _Source:
    """A decodable track: ``duration`` in seconds (None: unknown until decoded) and ``read(offset, seconds)``."""

    degraded = False
    renderer = ""
    duration: float | None = 0.0
    sr: int  # set by each subclass
    exact = True  # the length is known, not merely a header's promise
    warnings: list[str]

    def read(self, offset: float, seconds: float | None) -> np.ndarray:
        raise NotImplementedError

    def read_many(self, offsets: list[float], seconds: float) -> list[np.ndarray]:
        return [self.read(offset, seconds) for offset in offsets]

    def read_capped(self, cap_seconds: float | None) -> tuple[np.ndarray | None, float]:
        """The whole track when it lasts at most ``cap_seconds`` (else None), and its length."""
        audio = self.read(0.0, None if cap_seconds is None else cap_seconds + 1.0)
        if cap_seconds is not None and len(audio) > cap_seconds * self.sr:
            self.duration = self._measure()
            return None, self.duration
        self.duration = len(audio) / self.sr
        return audio, self.duration

    def _measure(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _SndfileSource(_Source):
    renderer = "libsndfile"

    def __init__(self, path: str | os.PathLike, ext: str, sr: int) -> None:
        self.path, self.ext, self.sr = path, ext, sr
        self.warnings = []
        try:
            self.f = soundfile.SoundFile(os.fspath(path), "r")
        except Exception as exc:
            raise self._error(exc) from None
        if not 1000 <= self.f.samplerate <= 1_000_000 or self.f.channels < 1:
            self.f.close()
            raise DecodeError(
                f"implausible {_FORMAT_NAMES[ext]} header ({self.f.samplerate} Hz, {self.f.channels} channels)",
                path=path,
            )
        self._pos = 0  # frame the next read starts at
        self.error: DecodeError | None = None  # the reason to give should ffmpeg fail too
        header = self.f.frames / self.f.samplerate
        self.doubt = self._doubt(header)  # why the header cannot be trusted, or None
        self.duration = None if header <= 0 or header > _UNKNOWN_SECONDS else header
        self.header_frames = self.f.frames if self.duration is not None else None

    def _doubt(self, header: float) -> str | None:
        """Why libsndfile's view of this file is not to be trusted, or None."""
        f = self.f
        if header <= 0 or header > _UNKNOWN_SECONDS:
            return "the header does not say how long the audio is"
        width = _PCM_BYTES.get(f.subtype) if f.format not in ("FLAC", "OGG", "MPEG") else None
        size = os.stat(self.path).st_size
        if width and f.frames * f.channels * width > size + width * f.channels:
            return f"the header promises {header:.1f} s, more than the file can hold"
        if self.ext == ".mp3" or f.subtype.startswith("MPEG"):
            scan = scan_mpeg(self.path)
            if scan is not None and scan.frames == 0:
                self.error = DecodeError(
                    "truncated or not MPEG audio: no complete audio frame in the file", path=self.path
                )
                return "no MPEG audio frames found (another codec inside?)"
            if scan is not None and scan.several_streams:
                return "several MPEG streams joined in one file"
            if scan is not None and abs(scan.seconds - header) > 0.03 * scan.seconds + 0.15:
                return f"the header says {header:.1f} s, the MPEG frames add up to {scan.seconds:.1f} s"
        if f.format == "OGG" and ogg_is_chained(self.path):
            return "chained Ogg streams (libsndfile reads only the first)"
        return None

    def _seek(self, start: int) -> None:
        """Go to frame ``start``; formats libsndfile cannot seek in (GSM 6.10 WAV) are re-read."""
        if start == self._pos:
            return
        try:
            self.f.seek(start)
            self._pos = start
            return
        except Exception:
            pass
        if start < self._pos:
            self.f.close()
            self.f = soundfile.SoundFile(os.fspath(self.path), "r")
            self._pos = 0
        while self._pos < start:  # skip forward block by block: memory stays bounded
            got = len(self.f.read(min(_BLOCK_FRAMES, start - self._pos), dtype="float32", always_2d=True))
            if got == 0:
                break
            self._pos += got

    def _error(self, exc: Exception) -> DecodeError:
        msg = getattr(exc, "error_string", None) or str(exc)
        if "does not exist" in msg and os.path.isfile(self.path):  # libsndfile's catch-all
            msg = "no decodable audio data found"
        if "unimplemented format" in msg:
            label = codec_label(self.path, self.ext)
            if label:
                return _precise(f"unsupported codec: {label}", self.path)
        if self.ext == ".mp3" and (scan := scan_mpeg(self.path)) is not None and scan.frames == 0:
            return _precise("truncated or not MPEG audio: no complete audio frame in the file", self.path)
        return DecodeError(f"truncated or corrupt {_FORMAT_NAMES[self.ext]}: {msg}", path=self.path)

    def read(self, offset: float, seconds: float | None) -> np.ndarray:
        f, sr_in = self.f, self.f.samplerate
        start = int(round(offset * sr_in))
        remaining = None if seconds is None else int(round(seconds * sr_in))
        # A window (up to two minutes) is resampled in one call, a third faster than streaming
        # it and the same samples; longer reads stream, so memory stays one block plus the
        # mono output, whatever the length.
        whole = remaining is not None and remaining <= _ONE_SHOT_SECONDS * sr_in
        stream = None if sr_in == self.sr or whole else soxr.ResampleStream(sr_in, self.sr, 1, dtype="float32")
        out: list[np.ndarray] = []
        try:
            self._seek(start)
            f = self.f
            while remaining is None or remaining > 0:
                want = _BLOCK_FRAMES if remaining is None else min(_BLOCK_FRAMES, remaining)
                block = f.read(want, dtype="float32", always_2d=True)
                self._pos += len(block)
                if len(block) == 0:
                    break
                mono = _mono(block)
                check_samples(mono, self.path)
                out.append(stream.resample_chunk(mono) if stream else mono)
                if remaining is not None:
                    remaining -= len(block)
                if len(block) < want:
                    break
        except DecodeError:
            raise
        except Exception as exc:
            raise _Unreliable(f"libsndfile failed at {self._pos / sr_in:.1f} s", self._error(exc)) from None
        if stream is not None:
            out.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
        audio = np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)
        if whole and sr_in != self.sr and audio.size:
            audio = soxr.resample(audio, sr_in, self.sr, quality="HQ").astype(np.float32, copy=False)
        return audio

    def _measure(self) -> float:
        self._seek(0)
        frames = 0
        while got := len(self.f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)):
            frames += got
        self._pos = frames
        return frames / self.f.samplerate

    def close(self) -> None:
        self.f.close()


class _RenderedSource(_Source):
    """MIDI, rendered whole (up to the length decode_for_analysis allows) or in windows."""

    def __init__(self, path: str | os.PathLike, sr: int, soundfont: str | None) -> None:
        self.path, self.sr, self.soundfont = path, sr, soundfont
        self.warnings = []
        self.pm = midi.load(path)
        self.length = midi.playing_time(self.pm)
        self.duration = self.length

    def read(self, offset: float, seconds: float | None) -> np.ndarray:
        return self.read_many([offset], self.length + 1.0 if seconds is None else seconds)[0]

    def read_many(self, offsets: list[float], seconds: float) -> list[np.ndarray]:
        chunks, self.degraded, self.renderer = midi.render_windows(
            self.pm, offsets, seconds, sr=self.sr, soundfont=self.soundfont, path=self.path
        )
        return chunks


def _ffmpeg_instead(path: str | os.PathLike, ext: str, sr: int, why: str, error: DecodeError | None) -> FfmpegSource:
    """ffmpeg, decoding to the end, for a file libsndfile cannot be trusted with."""
    if shutil.which("ffmpeg") is None:
        if error is not None:
            raise error
        raise DecodeError(f"{why}; ffmpeg is needed to read this file and is not installed", path=path)
    src = FfmpegSource(path, _FORMAT_NAMES[ext], sr, exact=True)
    src.warnings.append(f"decoded with ffmpeg: {why}")
    src.preferred_error = error
    return src


def _open(path: str | os.PathLike, sr: int, soundfont: str | None) -> _Source | FfmpegSource:
    if int(sr) != sr or not 1000 <= sr <= 384_000:
        raise ValueError(f"sr must be an integer between 1000 and 384000, got {sr!r}")
    sr = int(sr)
    ext = check_file(path)
    if ext in MIDI_EXTENSIONS:
        return _RenderedSource(path, sr, soundfont)
    if ext in FFMPEG_EXTENSIONS:
        return FfmpegSource(path, _FORMAT_NAMES[ext], sr, exact=False)
    try:
        src = _SndfileSource(path, ext, sr)
    except DecodeError as err:
        # Some files libsndfile rejects (other codecs in a WAV, ADTS named .mp3) are fine for ffmpeg.
        return _ffmpeg_instead(path, ext, sr, f"libsndfile cannot open it ({err.reason})", err)
    if src.doubt is not None and shutil.which("ffmpeg") is not None:
        src.close()
        return _ffmpeg_instead(path, ext, sr, src.doubt, src.error)
    return src


_PRECISE = ("no audio stream", "unsupported codec", "truncated")


def _precise(reason: str, path) -> DecodeError:
    err = DecodeError(reason, path=path)
    err.precise = True  # type: ignore[attr-defined]
    return err


def _reason(ffmpeg_error: DecodeError, other: DecodeError | None, path, ext: str) -> DecodeError:
    """The more telling of ffmpeg's and libsndfile's reasons, when both failed."""
    label = codec_label(path, ext) if ffmpeg_error.reason.startswith("unsupported codec") else None
    if label:
        return _precise(f"unsupported codec: {label}", path)
    if other is not None and getattr(other, "precise", False):
        return other
    if other is None or ffmpeg_error.reason.startswith(_PRECISE):
        return ffmpeg_error
    return other


def _read(src: _Source | FfmpegSource, fn):
    """``fn(src)``, turning an ffmpeg failure into the most telling reason."""
    try:
        return fn(src)
    except DecodeError as err:
        if not isinstance(src, FfmpegSource):
            raise
        raise _reason(err, src.preferred_error, src.path, check_file(src.path)) from None


def probe_duration(path: str | os.PathLike, *, soundfont: str | None = None) -> float:
    """Return the duration of a track in seconds without decoding it.

    Parameters
    ----------
    path : str or PathLike
        Audio or MIDI file.
    soundfont : str, optional
        Unused for audio; MIDI duration comes from its note events, not a rendering.

    Raises
    ------
    DecodeError
        If the file cannot be read.
    """
    ext = check_file(path)
    if ext in MIDI_EXTENSIONS:
        return float(midi.midi_info(path)["duration"])
    src = _open(path, 22050, soundfont)
    try:
        if src.duration is None:  # a header that does not know: measured by decoding
            return src.read_capped(0.0)[1]
        return src.duration
    finally:
        src.close()


def load(
    path: str | os.PathLike,
    *,
    sr: int = 22050,
    offset: float = 0.0,
    duration: float | None = None,
    soundfont: str | None = None,
) -> np.ndarray:
    """Decode (part of) a track to mono float32 at ``sr``.

    Parameters
    ----------
    path : str or PathLike
        Audio or MIDI file; opened read-only.
    sr : int
        Target sample rate in Hz.
    offset : float
        Start time in seconds; decoding seeks there rather than decoding from the start.
    duration : float, optional
        Seconds to decode; ``None`` reads to the end.
    soundfont : str, optional
        SoundFont used to render MIDI (see :func:`musicsim.audio.midi.find_soundfont`).

    Returns
    -------
    np.ndarray
        1-D float32 array.

    Raises
    ------
    DecodeError
        If the file cannot be decoded or yields no samples.
    """
    if offset < 0 or (duration is not None and duration <= 0):
        raise ValueError("offset must be >= 0 and duration > 0")
    src = _open(path, sr, soundfont)
    try:
        try:
            audio = _read(src, lambda s: s.read(offset, duration))
        except _Unreliable as bad:
            src.close()
            src = _ffmpeg_instead(path, check_file(path), sr, bad.why, bad.error)
            audio = _read(src, lambda s: s.read(offset, duration))
    finally:
        src.close()
    if audio.size == 0:
        raise _no_samples(path)
    return audio


def _no_samples(path: str | os.PathLike) -> DecodeError:
    declared = declared_data_bytes(path)
    if declared == 0:
        return DecodeError("no audio samples: the file holds none", path=path)
    return DecodeError("truncated: no audio samples after the header (it ends before its audio data)", path=path)


def decode_for_analysis(
    path: str | os.PathLike,
    *,
    sr: int = 22050,
    windows: int = 0,
    window_seconds: float = 6.0,
    max_seconds: float = 720.0,
    soundfont: str | None = None,
    first_pass: bool = False,
) -> Decoded:
    """Decode a track, or evenly spread windows of a long one, for embedding.

    Parameters
    ----------
    path : str or PathLike
        Audio or MIDI file; opened read-only.
    sr : int
        Target sample rate in Hz.
    windows : int
        0 decodes the whole track when it lasts at most ``max_seconds``; otherwise (or when
        positive) that many windows are decoded at offsets spread from start to end.
    window_seconds : float
        Length of each window in seconds.
    max_seconds : float
        Longest track decoded whole; longer tracks get ``ceil(max_seconds / window_seconds)``
        windows, each read by seeking, so memory stays bounded for very long files.
    soundfont : str, optional
        SoundFont used to render MIDI.
    first_pass : bool
        With ``windows == 0``: the fast first pass, :func:`first_pass_windows` windows by the
        track's length (a short track is still decoded whole), read by seeking, so most of a
        long track is never decoded.

    Returns
    -------
    Decoded
        A track shorter than the windows would cover comes back whole, as one chunk.

    Raises
    ------
    DecodeError
        If the file cannot be decoded or yields no samples.
    """
    if windows < 0 or window_seconds <= 0 or max_seconds <= 0:
        raise ValueError("windows must be >= 0; window_seconds and max_seconds > 0")
    fixed = windows if windows > 0 else math.ceil(max_seconds / window_seconds)

    def count(duration: float | None) -> int:
        if windows > 0 or not first_pass or duration is None:
            return fixed
        return min(fixed, first_pass_windows(duration, window_seconds))

    src = _open(path, sr, soundfont)
    try:
        try:
            dec = _read(src, lambda s: _analyse(s, count(s.duration), window_seconds))
        except _Unreliable as bad:  # libsndfile stopped early or failed: ffmpeg reads to the end
            src.close()
            src = _ffmpeg_instead(path, check_file(path), sr, bad.why, bad.error)
            dec = _read(src, lambda s: _analyse(s, count(s.duration), window_seconds))
    finally:
        src.close()
    if not dec.chunks or dec.chunks[0].size == 0:
        raise _no_samples(path)
    dec.warnings = list(src.warnings)
    return dec


# The first pass: windows every FIRST_PASS_SPACING seconds of a track, at least
# FIRST_PASS_MIN and at most FIRST_PASS_MAX of them (chosen by measurement: docs/design.md,
# "The first pass").
FIRST_PASS_SPACING = 10.0
FIRST_PASS_MIN = 24
FIRST_PASS_MAX = 32


def first_pass_windows(duration: float, window_seconds: float) -> int:
    """How many windows of ``window_seconds`` the first pass decodes of a track lasting
    ``duration`` seconds (a track they would mostly cover is decoded whole instead)."""
    n = int(round(duration / FIRST_PASS_SPACING))
    return max(FIRST_PASS_MIN, min(FIRST_PASS_MAX, n))


def _mono(block: np.ndarray) -> np.ndarray:
    """The channels' mean of a ``[frames, channels]`` float32 block, contiguous. A matrix-vector
    product: numpy's ``mean(axis=1)`` over two columns took as long as decoding them."""
    if block.shape[1] == 1:
        return np.ascontiguousarray(block[:, 0])
    return block @ np.full(block.shape[1], 1.0 / block.shape[1], dtype=np.float32)


def window_starts(total: float, n: int, window_seconds: float) -> list[float]:
    """Start times of ``n`` windows of ``window_seconds`` spread evenly from the start to the
    end of a track of ``total`` seconds (one window: the middle)."""
    if n <= 1:
        return [max(0.0, (total - window_seconds) / 2)]
    step = (total - window_seconds) / (n - 1)
    return [i * step for i in range(n)]


def _analyse(src: _Source | FfmpegSource, n: int, window_seconds: float) -> Decoded:
    """The whole track when it lasts at most ``n`` windows, else ``n`` windows spread over its real length."""
    sr, cap = src.sr, n * window_seconds
    if src.duration is None:  # a header that does not know: decode, and keep it if short enough
        audio, total = src.read_capped(cap)
    elif src.duration <= cap:
        audio = src.read(0.0, None)
        total = len(audio) / sr  # the decoded length beats a header's estimate
    else:
        audio, total = None, src.duration
    if audio is not None:
        _check_complete(src, [audio], [0.0], None)
        return Decoded([audio], [0.0], total, sr, src.degraded, src.renderer)
    starts = window_starts(total, n, window_seconds)
    chunks = src.read_many(starts, window_seconds)
    _check_complete(src, chunks, starts, window_seconds)
    return Decoded(chunks, starts, total, sr, src.degraded, src.renderer)


def _check_complete(src: _Source | FfmpegSource, chunks: list[np.ndarray], starts: list[float], window) -> None:
    """Raise _Unreliable when libsndfile (or ffmpeg seeking by an index) delivered less than the
    header or index promised: it stopped early, and ffmpeg must decode the file to its end."""
    if src.duration is None or not (isinstance(src, _SndfileSource) or not src.exact):
        return
    for start, chunk in zip(starts, chunks, strict=True):
        want = (src.duration - start) if window is None else min(window, src.duration - start)
        got = len(chunk) / src.sr
        if got < 0.97 * want - 0.1:
            raise _Unreliable(
                f"{src.renderer} stopped at {start + got:.1f} s of the {src.duration:.1f} s its header promises"
            )

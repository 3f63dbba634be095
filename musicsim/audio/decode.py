"""Decode any supported music file to mono float32 samples at a fixed rate.

libsndfile (bundled with the ``soundfile`` wheel) reads MP3, FLAC, Ogg/Opus, WAV and AIFF;
an ``ffmpeg`` subprocess reads the container formats libsndfile cannot (M4A, AAC, WMA);
MIDI is rendered by :mod:`musicsim.audio.midi`. Files are only ever opened for reading.

Every failure raises :class:`~musicsim.errors.DecodeError` (or a subclass) with a one-line
reason, so a library scan can record it and move on.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from musicsim.audio import midi
from musicsim.audio.sniff import MIDI_EXTENSIONS, check_file, check_samples
from musicsim.errors import DecodeError, MissingDecoder

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
_FFMPEG_BATCH = 30  # windows per ffmpeg process; keeps command lines short (Windows: 32k chars)


@dataclass
class Decoded:
    """Audio prepared for analysis: one or more contiguous stretches of a track."""

    chunks: list[np.ndarray]
    starts: list[float]
    duration: float
    sr: int
    degraded: bool = False
    renderer: str = ""


class _Source:
    """A decodable track: ``duration`` in seconds and ``read(offset, seconds)`` -> mono at sr."""

    degraded = False
    renderer = ""
    duration = 0.0
    sr: int  # set by each subclass

    def read(self, offset: float, seconds: float | None) -> np.ndarray:
        raise NotImplementedError

    def read_many(self, offsets: list[float], seconds: float) -> list[np.ndarray]:
        return [self.read(offset, seconds) for offset in offsets]

    def close(self) -> None:
        pass


class _SndfileSource(_Source):
    renderer = "libsndfile"

    def __init__(self, path: str | os.PathLike, ext: str, sr: int) -> None:
        self.path, self.ext, self.sr = path, ext, sr
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
        self.duration = max(self.f.frames, 0) / self.f.samplerate
        self._pos = 0  # frame the next read starts at

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
        return DecodeError(f"truncated or corrupt {_FORMAT_NAMES[self.ext]}: {msg}", path=self.path)

    def read(self, offset: float, seconds: float | None) -> np.ndarray:
        f, sr_in = self.f, self.f.samplerate
        start = min(int(round(offset * sr_in)), max(f.frames, 0))
        remaining = None if seconds is None else int(round(seconds * sr_in))
        # Streaming resampler: memory stays one block plus the mono output, whatever the length.
        stream = None if sr_in == self.sr else soxr.ResampleStream(sr_in, self.sr, 1, dtype="float32")
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
                mono = np.ascontiguousarray(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0])
                check_samples(mono, self.path)
                out.append(stream.resample_chunk(mono) if stream else mono)
                if remaining is not None:
                    remaining -= len(block)
                if len(block) < want:
                    break
        except DecodeError:
            raise
        except Exception as exc:
            raise self._error(exc) from None
        if stream is not None:
            out.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)

    def close(self) -> None:
        self.f.close()


def _run(cmd: list[str], *, path, timeout: float) -> subprocess.CompletedProcess:
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console flashes on Windows
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, creationflags=flags)
    except subprocess.TimeoutExpired:
        raise DecodeError(f"{Path(cmd[0]).stem} timed out after {timeout:.0f} s", path=path) from None
    except OSError as exc:
        raise MissingDecoder(f"cannot run {cmd[0]}: {exc.strerror or exc}", path=path) from None


def _stderr_reason(proc: subprocess.CompletedProcess, path) -> str:
    lines = [ln.strip() for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    msg = lines[-1] if lines else f"exit status {proc.returncode}"
    for name in (os.fspath(Path(path).absolute()), os.fspath(path)):  # the caller adds the path
        msg = msg.replace("file:" + name, "").replace(name, "")
    return msg.strip(" :")[:200]


class _FfmpegSource(_Source):
    renderer = "ffmpeg"

    def __init__(self, path: str | os.PathLike, ext: str, sr: int) -> None:
        self.path, self.ext, self.sr = path, ext, sr
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise MissingDecoder(f"ffmpeg is not installed; needed for {ext}", path=path)
        self.ffmpeg: str = ffmpeg
        # "file:" keeps names starting with "-" or containing "proto:" from being misread.
        self.url = "file:" + os.fspath(Path(path).absolute())
        self.duration = self._probe()

    def _probe(self) -> float:
        ffprobe = shutil.which("ffprobe")
        if ffprobe is None:  # ffmpeg alone can still measure by decoding at a low rate
            return len(self._decode(0.0, None, sr=8000)) / 8000
        proc = _run(
            [
                ffprobe,
                "-v",
                "error",
                "-select_streams",
                "a:0",
                "-show_entries",
                "stream=duration:format=duration",
                "-of",
                "json",
                self.url,
            ],
            path=self.path,
            timeout=60,
        )
        if proc.returncode != 0:
            raise DecodeError(
                f"corrupt or unreadable {_FORMAT_NAMES[self.ext]}: {_stderr_reason(proc, self.path)}", path=self.path
            )
        try:
            info = json.loads(proc.stdout or b"{}")
        except ValueError:
            info = {}
        if not info.get("streams"):
            raise DecodeError("no audio stream in file", path=self.path)
        for value in (info["streams"][0].get("duration"), info.get("format", {}).get("duration")):
            try:
                if value is not None and math.isfinite(float(value)) and float(value) > 0:
                    return float(value)
            except ValueError:
                pass
        return len(self._decode(0.0, None, sr=8000)) / 8000

    def _decode(self, offset: float, seconds: float | None, *, sr: int) -> np.ndarray:
        cmd = [self.ffmpeg, "-nostdin", "-v", "error"]
        if offset > 0:
            cmd += ["-ss", f"{offset:.6f}"]  # before -i: seeks in the input, no full decode
        cmd += ["-i", self.url, "-map", "0:a:0", "-vn", "-sn", "-dn"]
        if seconds is not None:
            cmd += ["-t", f"{seconds:.6f}"]
        cmd += ["-ac", "1", "-ar", str(sr), "-f", "f32le", "-"]
        # Generous: ffmpeg decodes far faster than real time, but a hang must still end.
        span = seconds if seconds is not None else (self.duration or 36000.0)
        proc = _run(cmd, path=self.path, timeout=60 + 0.05 * span)
        if proc.returncode != 0:
            reason = _stderr_reason(proc, self.path)
            if "matches no streams" in reason:
                raise DecodeError("no audio stream in file", path=self.path)
            raise DecodeError(f"corrupt or unreadable {_FORMAT_NAMES[self.ext]}: {reason}", path=self.path)
        audio = np.frombuffer(proc.stdout[: len(proc.stdout) // 4 * 4], dtype="<f4").astype(np.float32)
        check_samples(audio, self.path)
        return audio

    def read(self, offset: float, seconds: float | None) -> np.ndarray:
        return self._decode(offset, seconds, sr=self.sr)

    def read_many(self, offsets: list[float], seconds: float) -> list[np.ndarray]:
        # One ffmpeg process per batch of windows, each an input seeked with -ss: process
        # start-up dominates a 6 s window, so this is ~10x faster than one process each.
        out: list[np.ndarray] = []
        with tempfile.TemporaryDirectory(prefix="musicsim-") as tmp:
            for first in range(0, len(offsets), _FFMPEG_BATCH):
                batch = offsets[first : first + _FFMPEG_BATCH]
                cmd = [self.ffmpeg, "-nostdin", "-v", "error", "-y"]
                for offset in batch:
                    cmd += ["-ss", f"{offset:.6f}", "-t", f"{seconds:.6f}", "-i", self.url]
                names = [os.path.join(tmp, f"{i}.f32") for i in range(len(batch))]
                for i, name in enumerate(names):
                    cmd += ["-map", f"{i}:a:0", "-ac", "1", "-ar", str(self.sr), "-f", "f32le", name]
                proc = _run(cmd, path=self.path, timeout=60 + 2 * seconds * len(batch))
                if proc.returncode != 0:
                    raise DecodeError(
                        f"corrupt or unreadable {_FORMAT_NAMES[self.ext]}: {_stderr_reason(proc, self.path)}",
                        path=self.path,
                    )
                for name in names:
                    audio = np.fromfile(name, dtype="<f4").astype(np.float32)
                    check_samples(audio, self.path)
                    out.append(audio)
        return out


class _RenderedSource(_Source):
    """MIDI, rendered once to memory (rendering is capped in length by midi.render_midi)."""

    def __init__(self, path: str | os.PathLike, sr: int, soundfont: str | None) -> None:
        self.audio, self.degraded, self.renderer = midi.render_midi(path, sr=sr, soundfont=soundfont)
        self.sr = sr
        self.duration = len(self.audio) / sr

    def read(self, offset: float, seconds: float | None) -> np.ndarray:
        start = int(round(offset * self.sr))
        stop = None if seconds is None else start + int(round(seconds * self.sr))
        return self.audio[start:stop]


def _mp3_lacks_length_header(path: str | os.PathLike) -> bool:
    """True for an MP3 without a Xing/Info/VBRI header.

    libsndfile then guesses the length from the first frame's bitrate and stops decoding
    there, silently truncating VBR files (a 60 s file can come back as 20 s); ffmpeg reads
    to the end of the file.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(10)
            if head[:3] == b"ID3" and len(head) == 10:  # skip the ID3v2 tag (syncsafe size)
                size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F
                fh.seek(10 + size + (10 if head[5] & 0x10 else 0))
            else:
                fh.seek(0)
            data = fh.read(8192)
    except OSError:
        return False
    for i in range(len(data) - 1):
        if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0:
            return not any(tag in data[i : i + 200] for tag in (b"Xing", b"Info", b"VBRI"))
    return False


def _open(path: str | os.PathLike, sr: int, soundfont: str | None) -> _Source:
    if int(sr) != sr or not 1000 <= sr <= 384_000:
        raise ValueError(f"sr must be an integer between 1000 and 384000, got {sr!r}")
    sr = int(sr)
    ext = check_file(path)
    if ext in MIDI_EXTENSIONS:
        return _RenderedSource(path, sr, soundfont)
    if ext in FFMPEG_EXTENSIONS or (
        ext == ".mp3" and shutil.which("ffmpeg") is not None and _mp3_lacks_length_header(path)
    ):
        return _FfmpegSource(path, ext, sr)
    try:
        return _SndfileSource(path, ext, sr)
    except DecodeError as err:
        # Some files libsndfile rejects (odd WAV codecs, MP3 quirks) are fine for ffmpeg;
        # if ffmpeg also fails, libsndfile's reason is the more useful one to report.
        if shutil.which("ffmpeg") is None:
            raise
        try:
            return _FfmpegSource(path, ext, sr)
        except DecodeError:
            raise err from None


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
    src.close()
    return src.duration


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
        audio = src.read(offset, duration)
    finally:
        src.close()
    if audio.size == 0:
        raise DecodeError("no audio samples", path=path)
    return audio


def decode_for_analysis(
    path: str | os.PathLike,
    *,
    sr: int = 22050,
    windows: int = 0,
    window_seconds: float = 6.0,
    max_seconds: float = 720.0,
    soundfont: str | None = None,
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
    src = _open(path, sr, soundfont)
    sr = src.sr
    try:
        total = src.duration
        n = windows if windows > 0 else math.ceil(max_seconds / window_seconds)
        if (windows == 0 and total <= max_seconds) or total <= n * window_seconds:
            starts: list[float] = [0.0]
            chunks = [src.read(0.0, None)]
            total = len(chunks[0]) / sr  # the decoded length beats a header's estimate
        else:
            step = (total - window_seconds) / (n - 1) if n > 1 else (total - window_seconds) / 2
            starts = [i * step if n > 1 else step for i in range(n)]
            chunks = src.read_many(starts, window_seconds)
            # A header may overstate the length (VBR MP3): drop windows that came back empty.
            kept = [(s, c) for s, c in zip(starts, chunks, strict=True) if c.size]
            if kept and len(kept) < len(starts):
                total = kept[-1][0] + len(kept[-1][1]) / sr
            starts, chunks = [s for s, _ in kept], [c for _, c in kept]
    finally:
        src.close()
    if not chunks or chunks[0].size == 0:
        raise DecodeError("no audio samples", path=path)
    return Decoded(chunks=chunks, starts=starts, duration=total, sr=sr, degraded=src.degraded, renderer=src.renderer)

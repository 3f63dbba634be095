"""Decoding with an ``ffmpeg`` subprocess: the formats libsndfile cannot read, and every file
whose header libsndfile would trust wrongly.

Two ways to read a file:

- *indexed* (M4A, AAC, WMA, whose containers carry an index): the length comes from
  ffprobe and windows are read by seeking (``-ss`` before ``-i``);
- *exact* (a header that lies or does not know, several streams in one file): nothing the
  file says about its length is believed. The file is decoded to its end, so the length is
  what was decoded; windows of a long file are cut from a second pass over the stream, as
  seeking in such a file lands wherever its lying header says.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from musicsim.audio.sniff import check_samples
from musicsim.errors import DecodeError, MissingDecoder

_FFMPEG_BATCH = 30  # windows per ffmpeg process; keeps command lines short (Windows: 32k chars)
_PIPE_BYTES = 1 << 20


def run(cmd: list[str], *, path, timeout: float) -> subprocess.CompletedProcess:
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console flashes on Windows
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, creationflags=flags)
    except subprocess.TimeoutExpired:
        raise DecodeError(f"{Path(cmd[0]).stem} timed out after {timeout:.0f} s", path=path) from None
    except OSError as exc:
        raise MissingDecoder(f"cannot run {cmd[0]}: {exc.strerror or exc}", path=path) from None


def _lines(stderr: bytes, path) -> list[str]:
    out = []
    for line in stderr.decode("utf-8", "replace").splitlines():
        for name in (os.fspath(Path(path).absolute()), os.fspath(path)):  # the caller adds the path
            line = line.replace("file:" + name, "").replace(name, "")
        line = line.strip(" :")
        if line:
            out.append(line[:200])
    return out


def reason(stderr: bytes, path, *, returncode: int = 1, fmt: str = "file") -> str:
    """A one-line reason for ffmpeg's failure, in the words issue 28 asks for."""
    lines = _lines(stderr, path)
    text = " ".join(lines).lower()
    last = lines[-1] if lines else f"exit status {returncode}"
    if "matches no streams" in text or "does not contain any stream" in text:
        return "no audio stream in file"
    if "decoder (codec" in text or "decoder not found" in text or "unknown codec" in text:
        return f"unsupported codec: {last}"
    if "end of file" in text or "input/output error" in text:
        return f"truncated {fmt}: the file ends before its audio starts"
    return f"corrupt or unreadable {fmt}: {last}"


class FfmpegSource:
    """A track decoded by ffmpeg (see the module docstring for *indexed* and *exact*)."""

    renderer = "ffmpeg"
    degraded = False

    def __init__(self, path: str | os.PathLike, fmt: str, sr: int, *, exact: bool) -> None:
        self.path, self.fmt, self.sr, self.exact = path, fmt, sr, exact
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise MissingDecoder(f"ffmpeg is not installed; needed for {Path(path).suffix.lower()}", path=path)
        self.ffmpeg: str = ffmpeg
        self.warnings: list[str] = []
        self.preferred_error: DecodeError | None = None  # libsndfile's reason, should ffmpeg fail too
        # "file:" keeps names starting with "-" or containing "proto:" from being misread.
        self.url = "file:" + os.fspath(Path(path).absolute())
        self.duration: float | None = None if exact else self._probe()

    # --- indexed -------------------------------------------------------------------------------

    def _probe(self) -> float | None:
        ffprobe = shutil.which("ffprobe")
        if ffprobe is None:
            return None  # measured by decoding instead
        entries = "stream=duration:format=duration"
        cmd = [ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries", entries, "-of", "json", self.url]
        proc = run(cmd, path=self.path, timeout=60)
        if proc.returncode != 0:
            raise DecodeError(reason(proc.stderr, self.path, fmt=self.fmt), path=self.path)
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
        return None

    def _cmd(self, offset: float = 0.0, seconds: float | None = None) -> list[str]:
        cmd = [self.ffmpeg, "-nostdin", "-v", "error"]
        if offset > 0:
            cmd += ["-ss", f"{offset:.6f}"]  # before -i: seeks in the input, no full decode
        cmd += ["-i", self.url, "-map", "0:a:0", "-vn", "-sn", "-dn"]
        if seconds is not None:
            cmd += ["-t", f"{seconds:.6f}"]
        return cmd + ["-ac", "1", "-ar", str(self.sr), "-f", "f32le", "-"]

    def read(self, offset: float, seconds: float | None) -> np.ndarray:
        if offset == 0 and seconds is None:
            audio, _ = self.read_capped(None)
            assert audio is not None
            return audio
        span = seconds if seconds is not None else (self.duration or 36000.0)
        proc = run(self._cmd(offset, seconds), path=self.path, timeout=60 + 0.05 * span)
        if proc.returncode != 0:
            raise DecodeError(reason(proc.stderr, self.path, fmt=self.fmt), path=self.path)
        self.warnings += _lines(proc.stderr, self.path)
        audio = np.frombuffer(proc.stdout[: len(proc.stdout) // 4 * 4], dtype="<f4").astype(np.float32)
        check_samples(audio, self.path)
        return audio

    def read_many(self, offsets: list[float], seconds: float) -> list[np.ndarray]:
        if self.exact:
            return self._cut_windows(offsets, seconds)
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
                proc = run(cmd, path=self.path, timeout=60 + 2 * seconds * len(batch))
                if proc.returncode != 0:
                    raise DecodeError(reason(proc.stderr, self.path, fmt=self.fmt), path=self.path)
                self.warnings += _lines(proc.stderr, self.path)
                for name in names:
                    audio = np.fromfile(name, dtype="<f4").astype(np.float32)
                    check_samples(audio, self.path)
                    out.append(audio)
        return out

    # --- exact: decode to the end ------------------------------------------------------------------

    def _stream(self, consume) -> int:
        """Decode the whole first audio stream, passing blocks of samples to ``consume``; returns the sample count."""
        # Generous: ffmpeg decodes far faster than real time, but a hang must still end.
        limit = 60 + 0.05 * (self.duration or 36000.0)
        deadline = time.monotonic() + limit
        total = 0
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    self._cmd(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, creationflags=flags
                )
            except OSError as exc:
                raise MissingDecoder(f"cannot run {self.ffmpeg}: {exc.strerror or exc}", path=self.path) from None
            assert proc.stdout is not None
            tail = b""
            try:
                while True:
                    data = proc.stdout.read(_PIPE_BYTES)
                    if not data:
                        break
                    data, tail = tail + data, b""
                    cut = len(data) // 4 * 4
                    data, tail = data[:cut], data[cut:]
                    block = np.frombuffer(data, dtype="<f4").astype(np.float32)
                    check_samples(block, self.path)
                    consume(total, block)
                    total += len(block)
                    if time.monotonic() > deadline:
                        raise DecodeError(f"ffmpeg timed out after {limit:.0f} s", path=self.path)
                code = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            err.seek(0)
            stderr = err.read()
        if code != 0 and total == 0:
            raise DecodeError(reason(stderr, self.path, returncode=code, fmt=self.fmt), path=self.path)
        self.warnings += _lines(stderr, self.path)
        return total

    def read_capped(self, cap_seconds: float | None) -> tuple[np.ndarray | None, float]:
        """Decode to the end: ``(audio, seconds)`` when it lasts at most ``cap_seconds``, else
        ``(None, seconds)`` (the audio past the cap is counted, never kept)."""
        cap = None if cap_seconds is None else int(cap_seconds * self.sr) + 1
        kept: list[np.ndarray] = []
        held = [0]

        def keep(start: int, block: np.ndarray) -> None:
            if cap is None or held[0] + len(block) <= cap:
                kept.append(block)
                held[0] += len(block)
            elif kept:
                kept.clear()  # too long for one piece: only the length is wanted now

        total = self._stream(keep)
        self.duration = total / self.sr
        if cap is not None and total > cap:
            return None, self.duration
        return (np.concatenate(kept) if kept else np.zeros(0, np.float32)), self.duration

    def _cut_windows(self, offsets: list[float], seconds: float) -> list[np.ndarray]:
        """Windows cut from one pass over the decoded stream (exact, whatever the file's index says)."""
        n = int(round(seconds * self.sr))
        spans = [(int(round(o * self.sr)), int(round(o * self.sr)) + n) for o in offsets]
        parts: list[list[np.ndarray]] = [[] for _ in spans]

        def cut(start: int, block: np.ndarray) -> None:
            end = start + len(block)
            for k, (a, b) in enumerate(spans):
                if a < end and b > start:
                    parts[k].append(block[max(a - start, 0) : min(b, end) - start])

        self._stream(cut)
        return [np.concatenate(p) if p else np.zeros(0, np.float32) for p in parts]

    def close(self) -> None:
        pass

"""Is this file plausibly audio? Cheap checks made before any decoder touches a file, and a
sanity check of decoded samples: each failure is a one-line :class:`~musicsim.errors.DecodeError`."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

from musicsim.errors import DecodeError, UnsupportedFormat

AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".aif", ".aiff", ".m4a", ".aac", ".mp4", ".wma"}
)
MIDI_EXTENSIONS = frozenset({".mid", ".midi", ".kar"})
SUPPORTED_EXTENSIONS = AUDIO_EXTENSIONS | MIDI_EXTENSIONS

_AUDIO_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM", b"ID3", b"MThd", b"caff", b"\x30\x26\xb2\x75")
_OTHER_MAGIC = (
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"%PDF", "PDF"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a program"),
    (b"\x1f\x8b", "gzip"),
    (b"Rar!", "RAR archive"),
    (b"7z\xbc\xaf", "7z archive"),
    (b"SQLite format 3", "SQLite database"),
)


def _utf16_text(head: bytes) -> bool:
    """A UTF-16 text file: its byte-order mark (FF FE) also looks like an MPEG frame sync."""
    if not head.startswith((b"\xff\xfe", b"\xfe\xff")) or len(head) < 8:
        return False
    text = head[2 : len(head) // 2 * 2].decode("utf-16-le" if head[0] == 0xFF else "utf-16-be", "replace")
    text = text.rstrip("\ufffd")  # a character cut by the read
    # Mostly ASCII as well as printable: audio bytes read as UTF-16 are printable CJK often
    # enough, ASCII almost never (1 code unit in 512).
    return (
        bool(text)
        and sum(ch < "\x80" for ch in text) * 2 >= len(text)
        and all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
    )


def sniff(head: bytes) -> str | None:
    """Name what ``head`` looks like when it is clearly not audio, else None."""
    if _utf16_text(head):
        return "text"
    if head.startswith(_AUDIO_MAGIC) or head[4:8] == b"ftyp":
        return None
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG/ADTS frame sync
        return None
    for magic, kind in _OTHER_MAGIC:
        if head.startswith(magic):
            return kind
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a multi-byte char cut by the read is still text
            return None
        text = head[: exc.start].decode("utf-8")
    text = text.lstrip("\ufeff")
    if text and all(ch.isprintable() or ch in "\t\r\n\f" for ch in text):
        return "text"
    return None


def check_file(path: str | os.PathLike) -> str:
    """Validate extension and content of ``path``; return the lower-case extension."""
    ext = Path(path).suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise UnsupportedFormat(f"unsupported file type {ext or '(no extension)'}", path=path)
    try:
        head = read_head(path, 512)
    except OSError as exc:
        raise DecodeError.from_os_error(exc, path) from None
    if not head:
        raise DecodeError("empty file", path=path)
    kind = sniff(head)
    if kind:
        raise DecodeError(f"not an audio file (looks like {kind})", path=path)
    return ext


# Full scale is 1.0; float files scaled like 32-bit integers reach ~2e9. Beyond 1e10 the
# samples are garbage (uninitialised memory, a corrupt header) and would overflow the
# float32 spectrogram into NaN embeddings.
_MAX_SAMPLE = 1e10


def check_samples(audio: np.ndarray, path) -> None:
    if not audio.size:
        return
    # Two reductions and no temporary array: max and min propagate NaN, and an infinity is their value.
    hi, lo = float(audio.max()), float(audio.min())
    if not (math.isfinite(hi) and math.isfinite(lo)):
        raise DecodeError("audio contains NaN or infinite samples", path=path)
    peak = max(hi, -lo)
    if peak > _MAX_SAMPLE:
        raise DecodeError(
            f"implausible sample values (peak {peak:.1e}, full scale is 1); the file is corrupt", path=path
        )


def read_head(path: str | os.PathLike, n: int) -> bytes:
    """The first ``n`` bytes of a regular file, without ever blocking.

    Opened non-blocking and checked with fstat, so a FIFO or device that replaced a music
    file (or was named like one) raises instead of hanging the decoder.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        if not stat.S_ISREG(st.st_mode):
            raise DecodeError("not a regular file (a pipe, socket or device)", path=path)
        return os.read(fd, n)
    finally:
        os.close(fd)

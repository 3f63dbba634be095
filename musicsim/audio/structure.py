"""What a file's own structure says about its audio, read without decoding it.

A header can lie about the length (a partial download, a tagger that rewrote a Xing header
badly) or describe only the first of several streams (MP3 files joined with ``cat``, chained
Ogg). These cheap scans let the decoder decide whether libsndfile's idea of a file can be
trusted, or whether ffmpeg must decode it to the end:

- :func:`scan_mpeg` walks every MPEG audio frame header of an MP3 (a few milliseconds for a
  5-minute file) and adds up the frames' durations;
- :func:`ogg_is_chained` finds an Ogg stream that starts after another ended;
- :func:`codec_label` names the codec a WAV or AIFF-C header declares, for a precise reason.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field

# kbit/s by [version is MPEG-1][layer 1..3][index]
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_MAX_SCAN_BYTES = 1 << 30  # an MP3 over 1 GiB is not walked frame by frame


def _header(b1: int, b2: int, b3: int) -> tuple[int, int, int, int] | None:
    """(version id, layer, sample rate, frame length in bytes) of an MPEG audio frame header."""
    version, layer_bits = (b1 >> 3) & 3, (b1 >> 1) & 3
    rate_index, bitrate_index = (b2 >> 2) & 3, b2 >> 4
    if version == 1 or layer_bits == 0 or rate_index == 3 or bitrate_index in (0, 15):
        return None  # reserved values, ADTS (layer 0) or free format
    layer = 4 - layer_bits
    mpeg1 = version == 3
    rate = _RATES[version][rate_index]
    kbps = _BITRATES[(mpeg1, layer)][bitrate_index]
    pad = (b2 >> 1) & 1
    if layer == 1:
        length = (12000 * kbps // rate + pad) * 4
    elif layer == 3 and not mpeg1:
        length = 72000 * kbps // rate + pad
    else:
        length = 144000 * kbps // rate + pad
    return version, layer, rate, length


def _samples(version: int, layer: int) -> int:
    return 384 if layer == 1 else 1152 if layer == 2 or version == 3 else 576


@dataclass
class MpegScan:
    """What walking the frames of an MPEG audio file found."""

    seconds: float = 0.0  # audio frames only (Xing/Info frames excluded)
    frames: int = 0
    kinds: set = field(default_factory=set)  # (version id, layer)
    rates: set = field(default_factory=set)
    info_frames: int = 0  # Xing/Info/VBRI frames: more than one means joined files
    tags_inside: int = 0  # ID3v2 tags after the first frame: joined tagged files
    junk_bytes: int = 0  # bytes that were neither frames nor tags

    @property
    def several_streams(self) -> bool:
        return len(self.rates) > 1 or len(self.kinds) > 1 or self.info_frames > 1 or self.tags_inside > 0


def _id3_size(data, i: int) -> int:
    h = data[i : i + 10]
    if len(h) < 10:
        return len(h)
    size = (h[6] & 0x7F) << 21 | (h[7] & 0x7F) << 14 | (h[8] & 0x7F) << 7 | h[9] & 0x7F
    return 10 + size + (10 if h[5] & 0x10 else 0)


def scan_mpeg(path: str | os.PathLike) -> MpegScan | None:
    """Walk the MPEG audio frames of ``path``; None when the file cannot be walked (free format, huge, unreadable)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0 or size > _MAX_SCAN_BYTES:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _walk(data, size)
    except (OSError, ValueError):
        return None


_INFO_TAGS = (b"Xing", b"Info")


def _tag_offset(version: int, layer: int, mono: bool) -> int:
    """Where a Xing/Info tag starts in a Layer III frame: right after the side information,
    whose size depends on the version and on mono or not (0: not Layer III)."""
    if layer != 3:
        return 0
    return 4 + ((17 if mono else 32) if version == 3 else (9 if mono else 17))


def _loose_info(data, i: int) -> bool:
    """A Xing/Info tag anywhere in the first 40 bytes of a frame (not Layer III)."""
    return data.find(b"Xing", i + 4, i + 40) >= 0 or data.find(b"Info", i + 4, i + 40) >= 0


def _walk(data, n: int) -> MpegScan:
    scan = MpegScan()
    i = _id3_size(data, 0) if data[:3] == b"ID3" else 0
    in_sync = False  # the previous frame ended where this one starts
    seconds = 0.0
    headers: dict[int, tuple[int, int, int, int, int] | None] = {}  # parsed once per distinct header
    counted: dict[tuple[int, int, int], int] = {}  # (version, layer, rate) -> audio frames
    while i + 4 <= n:
        if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0:
            key = data[i + 1] << 10 | data[i + 2] << 2 | data[i + 3] >> 6  # the channel mode too
            if key in headers:
                h = headers[key]
            else:
                p = _header(data[i + 1], data[i + 2], data[i + 3])
                h = headers[key] = None if p is None else (*p, _tag_offset(p[0], p[1], data[i + 3] >= 0xC0))
            if h is not None:
                version, layer, rate, length, tag_at = h
                nxt = i + length
                # Out of sync, a frame counts only when the next one follows it (or the file ends).
                if in_sync or nxt + 2 > n or (data[nxt] == 0xFF and data[nxt + 1] & 0xE0 == 0xE0):
                    if nxt > n:
                        break  # a frame cut by the end of the file: no audio in it
                    # A Xing/Info/VBRI header frame, not audio: for Layer III one comparison at
                    # the tag's place (searching 36 bytes twice cost a third of the walk).
                    tagged = data[i + tag_at : i + tag_at + 4] in _INFO_TAGS if tag_at else _loose_info(data, i)
                    if tagged or data[i + 36 : i + 40] == b"VBRI":
                        scan.info_frames += 1
                    else:
                        k = (version, layer, rate)
                        counted[k] = counted.get(k, 0) + 1
                    i, in_sync = nxt, True
                    continue
        if data[i : i + 3] == b"ID3":
            if counted:
                scan.tags_inside += 1
            i += max(_id3_size(data, i), 3)
            in_sync = False
            continue
        if data[i : i + 3] == b"TAG" and n - i >= 128:
            i += 128
            in_sync = False
            continue
        if data[i : i + 8] == b"APETAGEX" and i + 16 <= n:
            i += 32 + struct.unpack_from("<I", data, i + 12)[0]
            in_sync = False
            continue
        j = data.find(b"\xff", i + 1)
        j = n if j < 0 else j
        scan.junk_bytes += j - i
        i, in_sync = j, False
    for (version, layer, rate), frames in counted.items():
        seconds += frames * _samples(version, layer) / rate
        scan.frames += frames
        scan.rates.add(rate)
        scan.kinds.add((version, layer))
    scan.seconds = seconds
    return scan


def ogg_is_chained(path: str | os.PathLike) -> bool:
    """True when a new logical stream begins after another's pages (chained Ogg, as stream
    recorders write): libsndfile decodes only the first such stream."""
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                # The first page whose header type has no "beginning of stream" flag ends the
                # opening group of BOS pages (several there are multiplexed, not chained).
                i = 0
                while i >= 0 and data[i + 5 : i + 6] and data[i + 5] & 0x02:
                    i = data.find(b"OggS", i + 4)
                return i >= 0 and data.find(b"OggS\x00\x02", i) >= 0
    except (OSError, ValueError):
        return False


def codec_label(path: str | os.PathLike, ext: str) -> str | None:
    """The codec a WAV (format tag) or AIFF-C (compression type) header names, e.g. ``"WAV format tag 0x4A43"``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        i = head.find(b"fmt ", 12)
        if i >= 0 and i + 10 <= len(head):
            return f"WAV format tag 0x{struct.unpack_from('<H', head, i + 8)[0]:04X}"
    if head[:4] == b"FORM" and head[8:12] == b"AIFC":
        i = head.find(b"COMM", 12)
        if i >= 0 and i + 30 <= len(head):
            kind = head[i + 26 : i + 30].decode("latin-1")
            return f"AIFF-C compression '{kind}'" if kind.isprintable() else "AIFF-C compression (unreadable)"
    return None


def declared_data_bytes(path: str | os.PathLike) -> int | None:
    """The size a WAV ``data`` or AIFF ``SSND`` chunk header declares (0xFFFFFFFF: unknown), or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        tag, fmt = b"data", "<I"
    elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        tag, fmt = b"SSND", ">I"
    else:
        return None
    i = 12
    while i + 8 <= len(head):  # walk the chunks: the tag's bytes may also occur inside another chunk
        size = struct.unpack_from(fmt, head, i + 4)[0]
        if head[i : i + 4] == tag:
            return size
        i += 8 + size + (size & 1)
    return None

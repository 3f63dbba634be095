"""A hostile music folder: every kind of bad input a real library throws at a scanner.

``make_corpus(root)`` writes it and returns one :class:`Case` per distinct bad (or odd but
valid) input, each with what a scan must do with it:

``ok``       analysed (a valid file in an odd shape: 8 channels, 192 kHz, emoji name...)
``fail``     recorded as a failure naming the file, with a one-line reason (``hint`` in it)
``either``   analysed or failed, never a crash or a hang (e.g. a truncated MP3 that still
             decodes in part)
``ignored``  never reaches a decoder and is not recorded (hidden files, FIFOs, devices,
             dangling links, other extensions)
``walkfail`` the walker reports it (unreadable folder, symlink pointing at itself)
``alias``    one of several routes to one file (hard link, symlink); ``hint`` names the
             group: exactly one route of a group is analysed, none fails

Also usable alone: ``python -m tests.robustness.corpus DIR`` writes a corpus and prints it.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from tests.fixtures.generate import synth, write_audio, write_midi

EXPECTS = ("ok", "fail", "either", "ignored", "walkfail", "alias")
LONG_SR = 8000


@dataclass(frozen=True)
class Case:
    kind: str  # distinct name of the bad input, e.g. "mp3/truncated-10%"
    path: Path
    expect: str
    hint: str = ""  # a word the failure reason must contain (lower case); for aliases the group
    bad: bool = True  # False for the valid control files
    needs_dac: bool = False  # only fails when permission bits are enforced (not as root)


@dataclass
class Corpus:
    root: Path
    cases: list[Case] = field(default_factory=list)

    def add(
        self, kind: str, path: Path, expect: str, hint: str = "", *, bad: bool = True, needs_dac: bool = False
    ) -> Path:
        assert expect in EXPECTS, expect
        assert all(c.kind != kind for c in self.cases), f"duplicate kind {kind}"
        self.cases.append(Case(kind, Path(path), expect, hint, bad, needs_dac))
        return Path(path)

    @property
    def bad_count(self) -> int:
        return sum(c.bad for c in self.cases)

    def by_expect(self, expect: str) -> list[Case]:
        return [c for c in self.cases if c.expect == expect]


# ------------------------------------------------------------------------ byte builders


def wav_bytes(
    payload: bytes,
    *,
    fmt_tag: int = 1,
    channels: int = 1,
    sr: int = 22050,
    bits: int = 16,
    data_size: int | None = None,
    riff_size: int | None = None,
) -> bytes:
    """A RIFF/WAVE file with a hand-made header (sizes may lie)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, sr, (sr * block) & 0xFFFFFFFF, block, bits)
    data_size = len(payload) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size & 0xFFFFFFFF)
    riff = 4 + len(body) - 4 + len(payload) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", riff & 0xFFFFFFFF) + body + payload


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def mtrk(events: list[tuple[int, bytes]], *, end: bool = True, length: int | None = None) -> bytes:
    body = b"".join(vlq(d) + e for d, e in events) + (b"\x00\xff\x2f\x00" if end else b"")
    return b"MTrk" + struct.pack(">I", len(body) if length is None else length) + body


def smf(
    tracks: list[bytes], *, fmt: int = 1, division: int = 480, ntracks: int | None = None, header_len: int = 6
) -> bytes:
    hdr = struct.pack(">HHH", fmt, len(tracks) if ntracks is None else ntracks, division & 0xFFFF)
    hdr = (hdr + b"\x00" * header_len)[:header_len] if header_len != 6 else hdr
    return b"MThd" + struct.pack(">I", header_len) + hdr + b"".join(tracks)


def tempo(us_per_beat: int) -> bytes:
    return b"\xff\x51\x03" + us_per_beat.to_bytes(3, "big")


def melody(n: int = 8, *, step: int = 240, channel: int = 0, pitch: int = 60) -> list[tuple[int, bytes]]:
    ev: list[tuple[int, bytes]] = []
    for i in range(n):
        ev.append((0 if i == 0 else step // 2, bytes([0x90 | channel, pitch + (i % 12), 100])))
        ev.append((step // 2, bytes([0x80 | channel, pitch + (i % 12), 0])))
    return ev


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def id3_frame(fid: bytes, payload: bytes, *, v4: bool = True) -> bytes:
    size = syncsafe(len(payload)) if v4 else struct.pack(">I", len(payload))
    return fid + size + b"\x00\x00" + payload


def id3_tag(frames: bytes, *, version: int = 4, flags: int = 0, size: int | None = None) -> bytes:
    return b"ID3" + bytes([version, 0, flags]) + syncsafe(len(frames) if size is None else size) + frames


# ------------------------------------------------------------------------------ sources


def make_sources(folder: Path, seconds: float = 1.5) -> dict[str, Path]:
    """Valid, tagged short files of every format the corpus mutates (outside the corpus)."""
    folder.mkdir(parents=True, exist_ok=True)
    tags = {"title": "Source tone", "artist": "Corpus", "album": "Hostile", "tracknumber": "1"}
    audio = synth("chord", seconds=seconds, variant=1)
    out = {}
    for ext in (".mp3", ".flac", ".ogg", ".wav", ".m4a"):
        out[ext] = write_audio(folder / f"src{ext}", audio, tags=tags)
    # libsndfile writes Opus only at 8/12/16/24/48 kHz
    out[".opus"] = write_audio(
        folder / "src.opus", synth("chord", seconds=seconds, sr=48000, variant=1), sr=48000, tags=tags
    )
    out[".mid"] = write_midi(folder / "src.mid", program=0, seconds=3.0, title="Source melody")
    return out


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _flip(data: bytes, start: float, end: float, seed: int, *, every: int = 1) -> bytes:
    """Overwrite data[start:end] (fractions) with random bytes (every n-th byte)."""
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    i, j = int(len(b) * start), int(len(b) * end)
    idx = np.arange(i, j, every)
    b_arr = np.frombuffer(bytes(b), np.uint8).copy()
    b_arr[idx] = rng.integers(0, 256, idx.size, dtype=np.uint8)
    return b_arr.tobytes()


def _short_wav(path: Path, seconds: float = 0.6, variant: int = 0, sr: int = 22050) -> Path:
    return write_audio(path, synth("sine", seconds=seconds, sr=sr, variant=variant), sr=sr)


# ------------------------------------------------------------------------------ corpus


def make_corpus(root: str | os.PathLike, *, long_hours: float = 10.0) -> Corpus:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    c = Corpus(root)
    work = Path(tempfile.mkdtemp(prefix="corpus-src-"))
    try:
        src = make_sources(work)
        raw = {ext: p.read_bytes() for ext, p in src.items()}
        _formats(c, root / "formats", raw)
        _misnamed(c, root / "misnamed", raw)
        _tags(c, root / "tags", raw, src)
        _lengths(c, root / "lengths", long_hours)
        _layouts(c, root / "layouts")
        _midi(c, root / "midi", raw)
        _names(c, root / "names", raw)
        _filesystem(c, root / "fs", raw)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return c


def _formats(c: Corpus, d: Path, raw: dict[str, bytes]) -> None:
    for ext in (".mp3", ".flac", ".ogg", ".opus", ".wav", ".m4a", ".mid", ".aiff"):
        c.add(f"empty{ext}", _write(d / f"empty{ext}", b""), "fail", "empty")
    mp3, flac, ogg, opus, m4a = raw[".mp3"], raw[".flac"], raw[".ogg"], raw[".opus"], raw[".m4a"]
    c.add("mp3/truncated-10%", _write(d / "trunc10.mp3", mp3[: len(mp3) // 10]), "either")
    c.add("mp3/truncated-60%", _write(d / "trunc60.mp3", mp3[: len(mp3) * 6 // 10]), "either")
    c.add("mp3/header-only", _write(d / "header_only.mp3", mp3[:64]), "either")
    c.add("mp3/corrupt-middle", _write(d / "corrupt_middle.mp3", _flip(mp3, 0.3, 0.7, 1)), "either")
    c.add("mp3/corrupt-sprinkled", _write(d / "corrupt_sprinkled.mp3", _flip(mp3, 0.05, 1.0, 2, every=97)), "either")
    c.add("mp3/no-frame-sync", _write(d / "no_sync.mp3", mp3.replace(b"\xff", b"\x7f")), "either")
    c.add("mp3/frames-zeroed", _write(d / "zeroed.mp3", mp3[:2000] + bytes(len(mp3) - 2000)), "either")
    c.add("flac/truncated-50%", _write(d / "trunc50.flac", flac[: len(flac) // 2]), "either")
    c.add("flac/streaminfo-only", _write(d / "streaminfo_only.flac", flac[:42]), "either")
    c.add("flac/corrupt-frames", _write(d / "corrupt_frames.flac", _flip(flac, 0.2, 0.9, 3)), "either")
    bad_rate = bytearray(flac)
    bad_rate[18:21] = b"\x00\x00\x00"  # STREAMINFO sample rate 0 (and channel bits)
    c.add("flac/sample-rate-zero", _write(d / "rate_zero.flac", bytes(bad_rate)), "either")
    c.add("flac/magic-only", _write(d / "magic_only.flac", b"fLaC"), "fail")
    c.add("ogg/truncated-40%", _write(d / "trunc40.ogg", ogg[: len(ogg) * 4 // 10]), "either")
    c.add("ogg/first-page-only", _write(d / "first_page.ogg", ogg[:58]), "either")
    c.add("ogg/corrupt-pages", _write(d / "corrupt_pages.ogg", _flip(ogg, 0.1, 0.9, 4, every=13)), "either")
    c.add("ogg/capture-pattern-only", _write(d / "oggs_only.ogg", b"OggS" + bytes(200)), "fail")
    c.add("opus/truncated-50%", _write(d / "trunc50.opus", opus[: len(opus) // 2]), "either")
    c.add("opus/corrupt", _write(d / "corrupt.opus", _flip(opus, 0.15, 0.95, 5, every=7)), "either")
    c.add("opus/head-only", _write(d / "head_only.opus", opus[:47]), "either")
    c.add("m4a/truncated-50%", _write(d / "trunc50.m4a", m4a[: len(m4a) // 2]), "either")
    c.add("m4a/corrupt", _write(d / "corrupt.m4a", _flip(m4a, 0.0, 1.0, 6, every=11)), "either")
    tone = pcm16(synth("sine", seconds=0.5))
    c.add("wav/header-only", _write(d / "header_only.wav", wav_bytes(b"")), "fail")
    c.add("wav/data-size-lies-huge", _write(d / "size_lies.wav", wav_bytes(tone, data_size=0xFFFFFFF0)), "either")
    c.add("wav/riff-size-zero", _write(d / "riff_zero.wav", wav_bytes(tone, riff_size=0)), "either")
    c.add("wav/sample-rate-zero", _write(d / "rate0.wav", wav_bytes(tone, sr=0)), "fail")
    c.add("wav/sample-rate-4GHz", _write(d / "rate4g.wav", wav_bytes(tone, sr=0xFFFFFFFF)), "fail")
    c.add("wav/zero-channels", _write(d / "chan0.wav", wav_bytes(tone, channels=0)), "fail")
    c.add("wav/unknown-codec", _write(d / "codec.wav", wav_bytes(tone, fmt_tag=0x7777)), "fail")
    c.add("wav/bits-per-sample-3", _write(d / "bits3.wav", wav_bytes(tone, bits=3)), "either")
    nan = np.full(4000, np.nan, np.float32)
    nan[::2] = 0.1
    c.add(
        "wav/float-nan",
        _write(d / "nan.wav", wav_bytes(nan.astype("<f4").tobytes(), fmt_tag=3, bits=32)),
        "fail",
        "nan",
    )
    inf = np.where(np.arange(4000) % 50 == 0, np.inf, 0.2).astype("<f4")
    c.add("wav/float-inf", _write(d / "inf.wav", wav_bytes(inf.tobytes(), fmt_tag=3, bits=32)), "fail", "infinite")
    huge = (synth("sine", seconds=1.0) * 3e38).astype("<f4")
    c.add(
        "wav/float-3e38",
        _write(d / "huge_float.wav", wav_bytes(huge.tobytes(), fmt_tag=3, bits=32)),
        "fail",
        "implausible",
    )
    c.add("aiff/truncated", _write(d / "trunc.aiff", _aiff_truncated()), "either")


def _aiff_truncated() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "a.aiff"
        soundfile.write(p, synth("sine", seconds=0.5), 22050, format="AIFF")
        data = p.read_bytes()
    return data[: len(data) // 3]


def _misnamed(c: Corpus, d: Path, raw: dict[str, bytes]) -> None:
    c.add("text-as-mp3", _write(d / "notes.mp3", b"Shopping list\nmilk\neggs\n"), "fail", "text")
    c.add("utf16-text-as-mp3", _write(d / "utf16.mp3", "\ufeffHello, this is text".encode("utf-16-le")), "fail", "text")
    c.add("html-as-ogg", _write(d / "page.ogg", b"<!DOCTYPE html><html><body>404</body></html>\n"), "fail", "text")
    c.add("png-as-mp3", _write(d / "cover.mp3", png_bytes()), "fail", "png")
    c.add("jpeg-as-flac", _write(d / "photo.flac", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300)), "fail")
    c.add("gif-as-opus", _write(d / "anim.opus", b"GIF89a" + bytes(100)), "fail", "gif")
    c.add("pdf-as-wav", _write(d / "doc.wav", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), "fail", "pdf")
    c.add("zip-as-m4a", _write(d / "archive.m4a", b"PK\x03\x04" + bytes(200)), "fail", "zip")
    c.add("elf-as-mp3", _write(d / "program.mp3", b"\x7fELF\x02\x01\x01" + bytes(400)), "fail", "program")
    c.add("sqlite-as-flac", _write(d / "db.flac", b"SQLite format 3\x00" + bytes(500)), "fail", "sqlite")
    c.add("random-bytes-as-mp3", _write(d / "random.mp3", np.random.default_rng(7).bytes(20000)), "fail")
    c.add("zero-bytes-as-mp3", _write(d / "zeros.mp3", bytes(8192)), "fail")
    c.add("midi-as-mp3", _write(d / "song_midi.mp3", raw[".mid"]), "fail")
    c.add("mp3-as-mid", _write(d / "song_mp3.mid", raw[".mp3"]), "fail", "midi")
    c.add("wav-as-mp3", _write(d / "really_wav.mp3", raw[".wav"]), "either")
    c.add("flac-as-ogg", _write(d / "really_flac.ogg", raw[".flac"]), "either")
    c.add("text-as-mid", _write(d / "lyrics.mid", b"la la la\n"), "fail", "text")


def _tags(c: Corpus, d: Path, raw: dict[str, bytes], src: dict[str, Path]) -> None:
    import mutagen
    from mutagen import id3
    from mutagen.flac import FLAC, Picture

    d.mkdir(parents=True, exist_ok=True)
    mp3 = raw[".mp3"]
    audio = (
        mp3[10 + int.from_bytes(mp3[6:10], "big") :] if mp3[:3] == b"ID3" else mp3
    )  # (tag is small, no syncsafe>127)
    rng = np.random.default_rng(11)

    p = _write(d / "huge_picture.mp3", mp3)
    f = id3.ID3(p)
    f.add(id3.APIC(encoding=3, mime="image/png", type=3, desc="cover", data=png_bytes() + rng.bytes(12 * 2**20)))
    f.add(id3.TXXX(encoding=3, desc="notes", text=["x" * 200_000]))
    f.save(p)
    c.add("id3/12MB-picture-and-200k-text", p, "ok")

    many = b"".join(id3_frame(b"TXXX", b"\x03" + f"k{i}\x00v{i}".encode()) for i in range(5000))
    c.add("id3/5000-frames", _write(d / "many_frames.mp3", id3_tag(many) + audio), "ok")

    c.add("id3/size-beyond-eof", _write(d / "size_beyond_eof.mp3", id3_tag(b"", size=0x0FFFFFFF) + audio), "either")
    garbage = b"".join(
        id3_frame(bytes(rng.integers(65, 91, 4, dtype=np.uint8)), rng.bytes(int(n))) for n in rng.integers(1, 400, 40)
    )
    c.add("id3/garbage-frames", _write(d / "garbage_frames.mp3", id3_tag(garbage) + audio), "either")
    lying = id3_frame(b"TIT2", b"\x03short")[:4] + syncsafe(0x0FFFFFF) + b"\x00\x00\x03short"
    c.add("id3/frame-size-lies", _write(d / "frame_size_lies.mp3", id3_tag(lying + bytes(64)) + audio), "either")
    odd = (
        id3_frame(b"TIT2", b"\x01" + "\ufeffTitel \u00fc\u00df \U0001f3b5".encode("utf-16-le"))
        + id3_frame(b"TPE1", b"\x00Caf\xe9 \xff\xfe")  # Latin-1 with odd bytes
        + id3_frame(b"TALB", b"\x02" + "\u65e5\u672c\u8a9e".encode("utf-16-be"))
        + id3_frame(b"TCON", b"\x03Rock \xc3\x28 invalid utf8 \xed\xa0\x80")
        + id3_frame(b"TDRC", b"\x03\x00\x00\x00")
        + id3_frame(b"TRCK", b"\x03-7/\xff")
        + id3_frame(b"TPE2", b"\x07bad encoding byte")
        + id3_frame(b"COMM", b"\x01eng" + b"\xff\xfe\x00")
    )
    c.add("id3/odd-encodings", _write(d / "odd_encodings.mp3", id3_tag(odd) + audio), "ok")
    v22 = b"ID3\x02\x00\x00" + syncsafe(20) + b"TT2" + (9).to_bytes(3, "big") + b"\x00Old tag\x00" + bytes(5)
    c.add("id3/v2.2", _write(d / "v22.mp3", v22 + audio), "ok")
    c.add(
        "id3/v2.9-unknown-version",
        _write(d / "v29.mp3", b"ID3\x09\x00\x00" + syncsafe(30) + rng.bytes(30) + audio),
        "either",
    )
    c.add(
        "id3/unsync-and-bogus-ext-header",
        _write(d / "unsync_ext.mp3", id3_tag(struct.pack(">I", 0x7FFFFFFF) + bytes(40), flags=0xC0) + audio),
        "either",
    )
    c.add("id3/v1-garbage", _write(d / "v1_garbage.mp3", audio + b"TAG" + rng.bytes(125)), "ok")
    c.add(
        "id3/tag-only-no-audio",
        _write(d / "tag_only.mp3", id3_tag(id3_frame(b"TIT2", b"\x03Nothing") + bytes(4000))),
        "fail",
    )
    c.add(
        "id3/1MB-padding",
        _write(d / "padding.mp3", id3_tag(id3_frame(b"TIT2", b"\x03Padded") + bytes(2**20)) + audio),
        "ok",
    )
    c.add(
        "ape/garbage-footer",
        _write(d / "ape.mp3", audio + b"APETAGEX" + struct.pack("<IIII", 2000, 0xFFFFFFFF, 99, 0) + bytes(8)),
        "either",
    )

    p = _write(d / "huge_comment.flac", raw[".flac"])
    fl = FLAC(p)
    fl["title"] = "t" * 300_000
    fl["artist"] = ["a", "\x00\x01\x02", "\u202eevil rtl", "\U0001f480" * 50]
    fl["date"] = "not a year"
    fl["tracknumber"] = "-3"
    pic = Picture()
    pic.data = rng.bytes(8 * 2**20)
    pic.mime = "image/jpeg"
    fl.add_picture(pic)
    fl.save()
    c.add("flac/300k-title-8MB-picture", p, "ok")
    p = _write(d / "bad_vorbis_comment.flac", raw[".flac"])
    data = bytearray(p.read_bytes())
    at = data.find(b"Source tone")
    if at > 0:
        data[at : at + 4] = b"\xff\xfe\xc3\x28"  # invalid UTF-8 inside a Vorbis comment
    p.write_bytes(bytes(data))
    c.add("flac/invalid-utf8-comment", p, "either")
    p = _write(d / "weird_keys.ogg", raw[".ogg"])
    og = mutagen.File(p)
    og["x-custom"] = "\x00\x01 control"
    og["ARTIST"] = ["\ud7ff", "x" * 5000]
    og["METADATA_BLOCK_PICTURE"] = "!!!not base64!!!"
    og.save()
    c.add("ogg/odd-comments", p, "ok")
    p = _write(d / "wav_id3.wav", raw[".wav"])
    data = p.read_bytes()
    junk = b"id3 " + struct.pack("<I", 0x7FFFFFF0) + b"ID3\x04\x00\x00" + syncsafe(100)
    c.add("wav/id3-chunk-size-lies", _write(d / "wav_id3.wav", data + junk), "either")


def _lengths(c: Corpus, d: Path, long_hours: float) -> None:
    c.add("length/1-sample", _write(d / "one_sample.wav", wav_bytes(pcm16(np.array([0.5])))), "either")
    c.add("length/10ms", _short_wav(d / "ten_ms.wav", 0.01), "either")
    c.add("length/0.5s", _short_wav(d / "half_second.wav", 0.5), "ok")
    c.add("length/1s-mp3", write_audio(d / "one_second.mp3", synth("chord", seconds=1.0)), "ok")
    c.add("length/1s-flac", write_audio(d / "one_second.flac", synth("noise", seconds=1.0)), "ok")
    c.add("length/one-mp3-frame", _write(d / "one_frame.mp3", _first_mp3_frames(d, 1)), "either")
    c.add("length/silent-3s", write_audio(d / "silent.wav", np.zeros(3 * 22050, np.float32)), "either")
    c.add("length/silent-flac", write_audio(d / "silent.flac", np.zeros(22050, np.float32)), "either")
    c.add("length/dc-full-scale", write_audio(d / "dc.wav", np.ones(22050, np.float32)), "either")
    c.add("length/square-clipped", write_audio(d / "square.wav", np.sign(synth("sine", seconds=1.0)) * 1.0), "ok")
    c.add(f"length/{long_hours:g}-hours-sparse-wav", write_long_wav(d / "ten_hours.wav", hours=long_hours), "ok")


def write_long_wav(path: Path, *, hours: float = 10.0, sr: int = LONG_SR) -> Path:
    """A sparse 16-bit WAV: silence (holes) with a 2 s tone every hour; no disk space used."""
    frames = int(hours * 3600 * sr)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = wav_bytes(b"", sr=sr, data_size=frames * 2, riff_size=36 + frames * 2)
    tone = pcm16(synth("chord", seconds=2.0, sr=sr))
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + frames * 2)
        for h in range(int(hours) + 1):
            at = min(h * 3600 * sr, max(frames - 2 * sr, 0))
            f.seek(len(header) + at * 2)
            f.write(tone[: (frames - at) * 2])
    return path


def _first_mp3_frames(d: Path, n: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        data = write_audio(Path(tmp) / "x.mp3", synth("sine", seconds=0.3)).read_bytes()
    if data[:3] == b"ID3":
        data = data[10 + int.from_bytes(data[6:10], "big") :]
    return data[: 418 * n + 1]


def _layouts(c: Corpus, d: Path) -> None:
    rates = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000, 192000)
    for i, sr in enumerate(rates):
        ch = i % 8 + 1
        audio = np.stack([synth("sine", seconds=0.6, sr=sr, variant=k) for k in range(ch)], axis=1)
        ext = ".flac" if sr <= 96000 else ".wav"
        c.add(f"layout/{ch}ch-{sr}Hz", write_audio(d / f"ch{ch}_{sr}{ext}", audio, sr=sr), "ok", bad=False)
    tone = synth("chord", seconds=0.6)
    for subtype in ("PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM"):
        p = d / f"sub_{subtype.lower()}.wav"
        soundfile.write(p, tone, 22050, subtype=subtype)
        c.add(f"wav/{subtype}", p, "ok", bad=False)
    p = d / "gsm.wav"
    soundfile.write(p, synth("chord", seconds=0.6, sr=8000), 8000, subtype="GSM610")
    c.add("wav/GSM610", p, "ok", bad=False)
    p = d / "rf64.wav"
    soundfile.write(p, tone, 22050, format="RF64")
    c.add("wav/RF64", p, "ok", bad=False)
    c.add("ogg/6ch", write_audio(d / "six.ogg", np.stack([tone] * 6, axis=1)), "ok", bad=False)


def _midi(c: Corpus, d: Path, raw: dict[str, bytes]) -> None:
    prog = (0, b"\xc0\x00")
    c.add("midi/no-notes", _write(d / "no_notes.mid", smf([mtrk([(0, tempo(500000)), prog])])), "fail", "no notes")
    c.add(
        "midi/velocity-zero-only",
        _write(d / "vel0.mid", smf([mtrk([(0, b"\x90\x3c\x00"), (480, b"\x90\x3e\x00")])])),
        "fail",
        "no notes",
    )
    c.add("midi/drums-only", write_midi(d / "drums.mid", drums=True, seconds=2.0), "ok")
    c.add("midi/tempo-1us", _write(d / "tempo_fast.mid", smf([mtrk([(0, tempo(1))] + melody(16))])), "either")
    c.add(
        "midi/tempo-16.7s",
        _write(d / "tempo_slow.mid", smf([mtrk([(0, tempo(0xFFFFFF))] + melody(4, step=120))])),
        "ok",
    )
    c.add("midi/tempo-zero", _write(d / "tempo_zero.mid", smf([mtrk([(0, tempo(0))] + melody(8))])), "either")
    changes = [(1, tempo(1 + (i * 7919) % 0xFFFFFF)) for i in range(20000)]
    c.add("midi/20000-tempo-changes", _write(d / "tempo_storm.mid", smf([mtrk(changes + melody(8))])), "either")
    tracks = [mtrk([(0, tempo(500000))])]
    for i in range(3000):
        ch = i % 16
        tracks.append(
            mtrk(
                [
                    (0, bytes([0xC0 | ch, i % 128])),
                    (i % 97, bytes([0x90 | ch, 40 + i % 40, 80])),
                    (240, bytes([0x80 | ch, 40 + i % 40, 0])),
                ]
            )
        )
    c.add("midi/3000-tracks", _write(d / "many_tracks.mid", smf(tracks)), "ok")
    c.add("midi/65535-tracks-claimed", _write(d / "claims_tracks.mid", smf([mtrk(melody(8))], ntracks=65535)), "either")
    c.add(
        "midi/mtrk-length-beyond-eof", _write(d / "mtrk_len.mid", smf([mtrk(melody(8), length=0x7FFFFFFF)])), "either"
    )
    c.add("midi/header-length-0", _write(d / "hdr0.mid", smf([mtrk(melody(8))], header_len=0)), "either")
    c.add("midi/header-length-200", _write(d / "hdr200.mid", smf([mtrk(melody(8))], header_len=200)), "either")
    c.add("midi/division-zero", _write(d / "division0.mid", smf([mtrk(melody(8))], division=0)), "either")
    c.add("midi/smpte-division", _write(d / "smpte.mid", smf([mtrk(melody(8))], division=0xE728)), "either")
    c.add(
        "midi/format-2", _write(d / "format2.mid", smf([mtrk(melody(8)), mtrk(melody(8, pitch=48))], fmt=2)), "either"
    )
    c.add("midi/format-99", _write(d / "format99.mid", smf([mtrk(melody(8))], fmt=99)), "either")
    c.add(
        "midi/orphan-running-status", _write(d / "running.mid", smf([mtrk([(0, b"\x3c\x40")] + melody(4))])), "either"
    )
    trunc = smf([mtrk(melody(8))])
    c.add("midi/truncated-mid-event", _write(d / "truncated.mid", trunc[: len(trunc) - 7]), "either")
    c.add(
        "midi/unterminated-sysex",
        _write(d / "sysex.mid", smf([mtrk([(0, b"\xf0" + vlq(100000) + b"\x7e\x7f")], end=False)])),
        "either",
    )
    c.add(
        "midi/meta-length-huge",
        _write(d / "meta_huge.mid", smf([mtrk([(0, b"\xff\x03" + vlq(0x0FFFFFFF) + b"name")], end=False)])),
        "either",
    )
    c.add(
        "midi/unknown-chunk",
        _write(d / "xchunk.mid", smf([b"XFIH" + struct.pack(">I", 50) + bytes(50), mtrk(melody(8))])),
        "either",
    )
    c.add("midi/junk-after-MThd", _write(d / "junk.mid", b"MThd" + np.random.default_rng(3).bytes(3000)), "either")
    c.add(
        "midi/note-never-released",
        _write(d / "stuck.mid", smf([mtrk([(0, b"\x90\x3c\x64"), (480, b"\x90\x40\x64")])])),
        "either",
    )
    c.add(
        "midi/huge-delta",
        _write(
            d / "huge_delta.mid",
            smf(
                [
                    mtrk(
                        [
                            (0, b"\x90\x3c\x64"),
                            (0x0FFFFFFF, b"\x80\x3c\x00"),
                            (0, b"\x90\x3e\x64"),
                            (480, b"\x80\x3e\x00"),
                        ]
                    )
                ]
            ),
        ),
        "either",
    )
    c.add(
        "midi/data-bytes-out-of-range",
        _write(d / "range.mid", smf([mtrk([(0, b"\x90\x3c\xff"), (480, b"\x80\xc8\x00")] + melody(4))])),
        "either",
    )
    odd_name = "Title\nwith newline\x00\x1b[31m and ESC \u00e9".encode("latin-1", "replace")
    c.add(
        "midi/track-name-control-chars",
        _write(d / "odd_title.mid", smf([mtrk([(0, b"\xff\x03" + vlq(len(odd_name)) + odd_name)] + melody(8))])),
        "ok",
    )
    c.add(
        "midi/rmid-riff-wrapped",
        _write(
            d / "wrapped.mid",
            b"RIFF"
            + struct.pack("<I", len(raw[".mid"]) + 12)
            + b"RMIDdata"
            + struct.pack("<I", len(raw[".mid"]))
            + raw[".mid"],
        ),
        "ok",
        bad=False,
    )
    c.add("midi/kar", _write(d / "karaoke.kar", raw[".mid"]), "ok", bad=False)


_NAMES = {
    "names/non-ascii": "Ünïcödé – café ñ.wav",
    "names/cjk": "日本語の歌.flac",
    "names/emoji": "🎵🔥💀 party.wav",
    "names/rtl-override": "evil\u202ekcod.wav",
    "names/newline": "new\nline.wav",
    "names/carriage-return": "carriage\rreturn.wav",
    "names/tab": "tab\there.wav",
    "names/quotes": 'it\'s "quoted".wav',
    "names/sql": "x'); DROP TABLE tracks;--.wav",
    "names/like-wildcards": "100% _under_ [x].wav",
    "names/leading-dash": "-i dash.m4a",
    "names/url-like": "file:colon http:.mp3",
    "names/backslash": "back\\slash.wav",
    "names/spaces": "  spaced  out  .wav",
    "names/upper-ext": "LOUD.WAV",
    "names/nfc": "caf\u00e9.wav",
    "names/nfd": "cafe\u0301.wav",
    "names/shell-meta": "$(touch pwned) `x` | &.wav",
}


def _names(c: Corpus, d: Path, raw: dict[str, bytes]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for i, (kind, name) in enumerate(_NAMES.items()):
        ext = Path(name).suffix.lower()
        data = raw[ext] if ext in (".m4a", ".mp3", ".flac") else None
        p = d / name
        if data is not None:
            _write(p, data)
        else:
            _short_wav(p, 0.6, variant=i)
        c.add(kind, p, "ok")
    stem = "ü" * 125  # 250 bytes of UTF-8 + ".wav" = 254 bytes
    long_name = stem + "x.wav"
    assert len(long_name.encode()) == 255
    c.add("names/255-bytes", _short_wav(d / long_name, 0.6), "ok")
    c.add(
        "names/bad-file-with-newline", _write(d / "broken\nsong.mp3", b"not audio at all, just text\n"), "fail", "text"
    )
    deep = d.joinpath(*[f"level{i:02d}" for i in range(40)])
    c.add("names/40-folders-deep", _short_wav(deep / "deep.wav", 0.6), "ok")
    try:  # a name that is not valid UTF-8 (possible on Linux file systems)
        bad = os.path.join(os.fsencode(d), b"latin1 caf\xe9 \xff.wav")
        with open(bad, "wb") as f:
            f.write(raw[".wav"])
        c.add("names/not-utf8-bytes", Path(os.fsdecode(bad)), "fail", "utf-8")
    except (OSError, UnicodeError):
        pass


def _filesystem(c: Corpus, d: Path, raw: dict[str, bytes]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    c.add("fs/hidden-file", _write(d / ".hidden.wav", raw[".wav"]), "ignored")
    c.add("fs/hidden-folder", _write(d / ".cache" / "x.wav", raw[".wav"]), "ignored")
    c.add("fs/other-extension", _write(d / "cover.jpg", png_bytes()), "ignored")
    c.add("fs/no-extension", _write(d / "README", b"hello"), "ignored")
    c.add("fs/folder-named-like-music", _short_wav(d / "album.mp3" / "inside.wav", 0.6), "ok")
    unreadable = _write(d / "locked" / "unreadable.wav", raw[".wav"])
    os.chmod(unreadable, 0)
    c.add("fs/unreadable-file", unreadable, "fail", "permission", needs_dac=True)
    sealed = d / "sealed"
    _write(sealed / "inside.wav", raw[".wav"])
    os.chmod(sealed, 0)
    c.add("fs/unreadable-folder", sealed, "walkfail", "not readable", needs_dac=True)
    loops = d / "loops"
    loops.mkdir()
    os.symlink("..", loops / "up")  # folder loop
    os.symlink(loops, loops / "self_dir")  # folder loop via absolute path
    c.add("fs/symlink-loop-to-parent", loops / "up", "ignored")
    c.add("fs/symlink-loop-to-self-dir", loops / "self_dir", "ignored")
    os.symlink("selfish.mp3", loops / "selfish.mp3")  # link to itself: ELOOP
    c.add("fs/symlink-to-itself", loops / "selfish.mp3", "walkfail", "symbolic links")
    os.symlink("a_loop.mp3", loops / "b_loop.mp3")
    os.symlink("b_loop.mp3", loops / "a_loop.mp3")
    c.add("fs/symlink-cycle-of-two", loops / "a_loop.mp3", "walkfail", "symbolic links")
    os.symlink("nowhere/gone.mp3", d / "dangling.mp3")
    c.add("fs/dangling-symlink", d / "dangling.mp3", "ignored")
    os.mkfifo(d / "pipe.mp3")
    c.add("fs/fifo-named-mp3", d / "pipe.mp3", "ignored")
    os.symlink("/dev/zero", d / "zero.flac")
    c.add("fs/symlink-to-dev-zero", d / "zero.flac", "ignored")
    os.symlink("/dev/urandom", d / "urandom.mp3")
    c.add("fs/symlink-to-dev-urandom", d / "urandom.mp3", "ignored")
    orig = _short_wav(d / "original.wav", 0.6, variant=3)
    c.add("fs/link-target", orig, "alias", "same-file", bad=False)
    os.link(orig, d / "hardlink.wav")
    c.add("fs/hard-link", d / "hardlink.wav", "alias", "same-file")
    os.symlink("original.wav", d / "symlink.wav")
    c.add("fs/symlink-to-file", d / "symlink.wav", "alias", "same-file")
    shared = _short_wav(d / "shared" / "in_shared.wav", 0.6, variant=4)
    c.add("fs/file-in-linked-folder", shared, "ok", bad=False)
    os.symlink(str(d / "shared"), d / "zz_shared_again")  # walked after "shared": a second route
    c.add("fs/symlink-to-sibling-folder", d / "zz_shared_again", "ignored")


def file_stat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def is_regular(path: Path) -> bool:
    st = file_stat(path)
    return st is not None and stat.S_ISREG(st.st_mode)


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else tempfile.mkdtemp(prefix="hostile-"))
    corpus = make_corpus(root)
    for case in corpus.cases:
        print(f"{case.expect:8s} {case.kind:38s} {case.path!s:.90}")
    print(f"{len(corpus.cases)} cases, {corpus.bad_count} distinct bad inputs, in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

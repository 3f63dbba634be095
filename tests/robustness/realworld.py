"""A corpus of valid-but-awkward files a twenty-year-old collection gathers, each with its real length.

``make_realworld(root)`` builds it with the real tools that make such files (ffmpeg, sox,
flac, lame, oggenc, opusenc, cat) and returns one :class:`RealCase` per file:

``seconds``  the length of the audio really in the file (from how it was built, or for a cut
             file what the format's own reference decoder plays: ``flac -F``, ``oggdec``,
             ``opusdec``), or None for a file that must fail
``reason``   for a file that must fail: words its one-line reason must contain

The classes (issue 28): headers that do not know or lie about the length, several streams in
one file, MIDI that a strict parser calls corrupt, containers wrapping another codec, and the
failures whose reasons must be precise. Lengths are seconds at low sample rates, except where
length is the point (those are longer than ``LONG`` and meant to be analysed in windows).

Usable alone: ``python -m tests.robustness.realworld DIR`` writes the corpus and prints it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

TOOLS = ("ffmpeg", "sox", "flac", "lame", "oggenc", "oggdec", "opusenc", "opusdec")
LONG = 60.0  # the max_seconds the corpus is scanned with: longer cases are analysed in windows
PARTIAL_PROMISED, PARTIAL_HELD = 300.0, 30.0  # a download that promises 5 minutes and holds half of one


@dataclass(frozen=True)
class RealCase:
    name: str  # class/what, e.g. "mp3/cat-different-rates"
    path: Path
    seconds: float | None  # real audio length; None: must fail
    reason: tuple[str, ...] = ()  # words (lower case) the failure reason must contain


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _run(*cmd: str | Path, stdout=None) -> None:
    subprocess.run([str(c) for c in cmd], check=True, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE)


def _ff(*args: str | Path) -> None:
    _run("ffmpeg", "-nostdin", "-v", "error", "-y", *args)


def _pipe_to(path: Path, *cmd: str | Path) -> None:
    """Run ``cmd`` writing to stdout, redirected to ``path``: the tool cannot seek back to fix its header."""
    with open(path, "wb") as out:
        _run(*cmd, stdout=out)


def _tone(seconds: float, sr: int, seed: int) -> np.ndarray:
    """A few seconds of varied music-like audio: chords that change each second, with a pulse."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    roots = rng.uniform(110, 440, size=int(seconds) + 2)
    f = roots[(t).astype(int)]
    phase = np.cumsum(2 * np.pi * f / sr)
    pulse = 0.6 + 0.4 * (np.sin(2 * np.pi * (2 + seed % 3) * t) > 0)
    x = (np.sin(phase) + 0.5 * np.sin(1.5 * phase) + 0.3 * np.sin(2.01 * phase)) * pulse
    return (0.3 * x).astype(np.float32)


def _wav(path: Path, seconds: float, sr: int, seed: int = 0, *, channels: int = 1) -> Path:
    x = _tone(seconds, sr, seed)
    soundfile.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, sr, subtype="PCM_16")
    return path


def _cut(src: Path, dest: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def _length(wav: Path) -> float:
    info = soundfile.info(str(wav))
    return info.frames / info.samplerate


class _Builder:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root.parent / (root.name + "-work")
        self.root.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        self.cases: list[RealCase] = []
        self._n = 0

    def src(self, seconds: float, sr: int, *, channels: int = 1) -> Path:
        """A fresh WAV source in the work folder (never part of the corpus)."""
        self._n += 1
        return _wav(self.work / f"src{self._n}.wav", seconds, sr, self._n, channels=channels)

    def tmp(self, name: str) -> Path:
        self._n += 1
        return self.work / f"t{self._n}-{name}"

    def out(self, name: str) -> Path:
        path = self.root / (name.replace("/", "-"))
        return path

    def ok(self, name: str, path: Path, seconds: float) -> None:
        self.cases.append(RealCase(name, path, seconds))

    def fail(self, name: str, path: Path, *words: str) -> None:
        self.cases.append(RealCase(name, path, None, tuple(words)))

    def reference(self, path: Path, decoder: Callable[[Path, Path], None]) -> float:
        """What the format's own reference decoder plays of ``path``, in seconds."""
        wav = self.tmp("ref.wav")
        decoder(path, wav)
        return _length(wav)


def _patch(path: Path, offset: int, fmt: str, *values: int) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))


def _chunk_offset(data: bytes, tag: bytes, start: int = 12) -> int:
    """Offset of a RIFF/AIFF chunk header (first after ``start``)."""
    i = data.find(tag, start)
    assert i >= 0, tag
    return i


# --------------------------------------------------------------- headers that lie or do not know


def _lying_headers(b: _Builder) -> None:
    sr = 8000
    src = b.src(6, sr)
    p = b.out("flac/ffmpeg-pipe.flac")
    _pipe_to(p, "ffmpeg", "-nostdin", "-v", "error", "-i", src, "-f", "flac", "pipe:1")
    b.ok("flac/ffmpeg-pipe", p, 6)
    p = b.out("flac/sox-pipe.flac")
    _pipe_to(p, "sox", src, "-t", "flac", "-")
    b.ok("flac/sox-pipe", p, 6)
    long_src = b.src(100, sr)
    p = b.out("flac/pipe-unknown-long.flac")
    _pipe_to(p, "ffmpeg", "-nostdin", "-v", "error", "-i", long_src, "-f", "flac", "pipe:1")
    b.ok("flac/pipe-unknown-long", p, 100)

    p = b.out("wav/ffmpeg-pipe.wav")
    _pipe_to(p, "ffmpeg", "-nostdin", "-v", "error", "-i", src, "-f", "wav", "pipe:1")
    b.ok("wav/ffmpeg-pipe", p, 6)
    p = b.out("wav/sox-pipe.wav")
    _pipe_to(p, "sox", src, "-t", "wav", "-")
    b.ok("wav/sox-pipe", p, 6)
    for name, value, source, seconds in (
        ("wav/sizes-zero", 0, src, 6),
        ("wav/sizes-ffffffff", 0xFFFFFFFF, src, 6),
        ("wav/sizes-zero-long", 0, long_src, 100),
    ):
        p = b.out(name + ".wav")
        shutil.copy(source, p)
        data = p.read_bytes()
        _patch(p, 4, "<I", value)  # a recorder that crashed before it wrote the sizes
        _patch(p, _chunk_offset(data, b"data") + 4, "<I", value)
        b.ok(name, p, seconds)

    p = b.out("aiff/sox-pipe.aiff")
    _pipe_to(p, "sox", src, "-t", "aiff", "-")
    b.ok("aiff/sox-pipe", p, 6)
    p = b.out("aiff/ffmpeg-pipe.aiff")
    _pipe_to(p, "ffmpeg", "-nostdin", "-v", "error", "-i", src, "-f", "aiff", "pipe:1")
    b.ok("aiff/ffmpeg-pipe", p, 6)
    p = b.out("aiff/sizes-zero.aiff")
    _ff("-i", src, p)
    data = p.read_bytes()
    _patch(p, 4, ">I", 0)
    _patch(p, _chunk_offset(data, b"COMM") + 10, ">I", 0)  # numSampleFrames
    _patch(p, _chunk_offset(data, b"SSND") + 4, ">I", 0)
    b.ok("aiff/sizes-zero", p, 6)

    _partial_downloads(b)
    _mp3_headers(b)
    _stale_seektables(b)


def _partial_downloads(b: _Builder) -> None:
    """Each promises PARTIAL_PROMISED seconds in its header and holds about PARTIAL_HELD."""
    sr = 8000
    full = b.src(PARTIAL_PROMISED, sr)
    frac = PARTIAL_HELD / PARTIAL_PROMISED
    p = _cut(full, b.out("wav/partial-download.wav"), frac)
    b.ok("wav/partial-download", p, (p.stat().st_size - 44) / 2 / sr)
    aiff = b.tmp("full.aiff")
    _ff("-i", full, aiff)
    p = _cut(aiff, b.out("aiff/partial-download.aiff"), frac)
    b.ok("aiff/partial-download", p, (p.stat().st_size - 54) / 2 / sr)

    flac = b.tmp("full.flac")
    _run("flac", "-s", "-f", "-o", flac, full)
    p = _cut(flac, b.out("flac/partial-download.flac"), frac)
    b.ok("flac/partial-download", p, b.reference(p, lambda i, o: _run("flac", "-s", "-d", "-F", "-f", "-o", o, i)))

    mp3 = b.tmp("full.mp3")
    _run("lame", "--quiet", "-b", "32", full, mp3)  # CBR with an Info header counting every frame
    p = _cut(mp3, b.out("mp3/partial-download.mp3"), frac)
    b.ok("mp3/partial-download", p, PARTIAL_PROMISED * frac)

    ogg = b.tmp("full.ogg")
    _run("oggenc", "-Q", "-q", "0", "-o", ogg, full)
    p = _cut(ogg, b.out("ogg/partial-download.ogg"), frac)
    b.ok("ogg/partial-download", p, b.reference(p, lambda i, o: _run("oggdec", "-Q", "-o", o, i)))

    opus = b.tmp("full.opus")
    _run("opusenc", "--quiet", "--bitrate", "16", full, opus)
    p = _cut(opus, b.out("opus/partial-download.opus"), frac)
    b.ok("opus/partial-download", p, b.reference(p, lambda i, o: _run("opusdec", "--quiet", "--rate", "8000", i, o)))


def _xing(data: bytes) -> int:
    i = data.find(b"Xing")
    if i < 0:
        i = data.find(b"Info")
    assert i > 0, "no Xing/Info header"
    return i


def _mp3_headers(b: _Builder) -> None:
    for name, seconds, sr, scale in (("mp3/vbr-xing-off", 8, 22050, 0.5), ("mp3/vbr-xing-off-long", 100, 16000, 0.3)):
        mp3 = b.out(name + ".mp3")
        _run("lame", "--quiet", "-V", "6", b.src(seconds, sr), mp3)
        data = mp3.read_bytes()
        i = _xing(data)
        flags = struct.unpack_from(">I", data, i + 4)[0]
        assert flags & 3 == 3  # frames and bytes fields present
        frames, size = struct.unpack_from(">II", data, i + 8)
        _patch(mp3, i + 8, ">II", int(frames * scale), int(size * scale))  # a tagger that rewrote it badly
        b.ok(name, mp3, seconds)
    p = b.out("mp3/vbr-no-xing.mp3")
    _run("lame", "--quiet", "-t", "-V", "2", b.src(8, 22050), p)
    b.ok("mp3/vbr-no-xing", p, 8)
    mp3 = b.tmp("cut.mp3")
    _run("lame", "--quiet", "-b", "64", b.src(10, 22050), mp3)
    p = _cut(mp3, b.out("mp3/truncated-mid-frame.mp3"), 0.6)
    b.ok("mp3/truncated-mid-frame", p, 6)
    wav = b.src(6, 8000)
    p = b.out("wav/truncated-mid-sample.wav")
    p.write_bytes(wav.read_bytes()[: 44 + 2 * 8000 * 3 + 1])
    b.ok("wav/truncated-mid-sample", p, 3)


def _flac_frames(data: bytes) -> tuple[bytes, bytes]:
    """Split a FLAC file into (marker + metadata blocks, audio frames)."""
    assert data[:4] == b"fLaC"
    i = 4
    while True:
        last, size = data[i] & 0x80, int.from_bytes(data[i + 1 : i + 4], "big")
        i += 4 + size
        if last:
            return data[:i], data[i:]


def _stale_seektables(b: _Builder) -> None:
    """The metadata (seek table included) of one encoding over the frames of another: a tag
    editor or a re-encode that kept the old seek table. The seek points then land mid-frame."""
    for name, seconds in (("flac/stale-seektable", 8), ("flac/stale-seektable-long", 100)):
        src = b.src(seconds, 8000)
        old, new = b.tmp("old.flac"), b.tmp("new.flac")
        _run("flac", "-s", "-f", "-0", "--blocksize=4608", "-S", "1s", "-o", old, src)
        _run("flac", "-s", "-f", "-8", "--blocksize=1152", "-S", "1s", "-o", new, src)
        meta, _ = _flac_frames(old.read_bytes())
        _, frames = _flac_frames(new.read_bytes())
        p = b.out(name + ".flac")
        p.write_bytes(meta + frames)
        b.ok(name, p, seconds)


# ------------------------------------------------------------------ several streams in one file


def _cat(dest: Path, parts: list[Path]) -> Path:
    dest.write_bytes(b"".join(p.read_bytes() for p in parts))
    return dest


def _several_streams(b: _Builder) -> None:
    def mp3(seconds: float, sr: int, *opts: str) -> Path:
        out = b.tmp("part.mp3")
        _run("lame", "--quiet", *opts, b.src(seconds, sr), out)
        return out

    b.ok("mp3/cat-same-rate", _cat(b.out("mp3/cat-same-rate.mp3"), [mp3(4, 22050), mp3(4, 22050)]), 8)
    parts = [mp3(3, 22050), mp3(3, 44100), mp3(3, 16000)]
    b.ok("mp3/cat-different-rates", _cat(b.out("mp3/cat-different-rates.mp3"), parts), 9)
    tagged = []
    for i in range(2):
        part = mp3(4, 22050, "-V", "4", "--tt", f"Part {i}", "--ta", "Someone", "--add-id3v2")
        tagged.append(part)
    b.ok("mp3/cat-vbr-tagged", _cat(b.out("mp3/cat-vbr-tagged.mp3"), tagged), 8)
    b.ok("mp3/cat-long", _cat(b.out("mp3/cat-long.mp3"), [mp3(50, 16000), mp3(50, 16000)]), 100)

    def ogg(seconds: float, sr: int) -> Path:
        out = b.tmp("part.ogg")
        _run("oggenc", "-Q", "-q", "0", "-o", out, b.src(seconds, sr))
        return out

    def opus(seconds: float, sr: int) -> Path:
        out = b.tmp("part.opus")
        _run("opusenc", "--quiet", "--bitrate", "24", b.src(seconds, sr), out)
        return out

    b.ok("ogg/vorbis-chained", _cat(b.out("ogg/vorbis-chained.ogg"), [ogg(4, 22050), ogg(4, 22050)]), 8)
    b.ok("ogg/vorbis-chained-rates", _cat(b.out("ogg/vorbis-chained-rates.ogg"), [ogg(4, 22050), ogg(4, 44100)]), 8)
    radio = [ogg(2, 22050) for _ in range(5)]  # a stream recorder: a new link at every title change
    b.ok("ogg/vorbis-chained-radio", _cat(b.out("ogg/vorbis-chained-radio.ogg"), radio), 10)
    b.ok("ogg/vorbis-chained-long", _cat(b.out("ogg/vorbis-chained-long.ogg"), [ogg(50, 8000), ogg(50, 8000)]), 100)
    b.ok("opus/chained", _cat(b.out("opus/chained.opus"), [opus(4, 16000), opus(4, 16000)]), 8)

    a, c = b.src(6, 22050), b.src(3, 22050)
    p = b.out("m4a/two-audio-streams.m4a")
    _ff("-i", a, "-i", c, "-map", "0:a", "-map", "1:a", "-c:a", "aac", "-b:a", "48k", p)
    b.ok("m4a/two-audio-streams", p, 6)
    p = b.out("ogg/two-multiplexed-streams.ogg")
    _ff("-i", a, "-i", c, "-map", "0:a", "-map", "1:a", "-c:a", "libvorbis", "-q:a", "0", p)
    b.ok("ogg/two-multiplexed-streams", p, 6)
    cover = b.tmp("cover.png")
    _ff("-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1", cover)
    p = b.out("m4a/cover-stream-first.m4a")
    _ff(
        "-i",
        cover,
        "-i",
        a,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "mjpeg",
        "-disposition:v:0",
        "attached_pic",
        "-c:a",
        "aac",
        "-b:a",
        "48k",
        p,
    )
    b.ok("m4a/cover-stream-first", p, 6)
    p = b.out("mp3/huge-cover-art.mp3")
    _run("lame", "--quiet", "--ti", cover, b.src(5, 22050), p)
    b.ok("mp3/huge-cover-art", p, 5)


# ----------------------------------------------------------------------------------- MIDI


def _midi(
    path: Path,
    *,
    tpq: int,
    bpm: float,
    seconds: float,
    parts: int = 4,
    release: bool = True,
    note_beats: float = 0.5,
) -> Path:
    """A quartet of parts playing steady notes for ``seconds`` at ``tpq`` ticks per beat."""
    import mido

    mf = mido.MidiFile(type=1, ticks_per_beat=tpq)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=int(round(60e6 / bpm)), time=0)])
    mf.tracks.append(conductor)
    beats = int(seconds * bpm / 60)
    step = int(tpq * note_beats)
    for part in range(parts):
        tr = mido.MidiTrack([mido.Message("program_change", channel=part, program=40 + min(part, 3), time=0)])
        n = int(beats / note_beats)
        for i in range(n):
            pitch = 55 + 7 * part + (i * 5) % 12
            tr.append(mido.Message("note_on", channel=part, note=pitch, velocity=70, time=0))
            if release:
                tr.append(mido.Message("note_off", channel=part, note=pitch, velocity=0, time=step))
            else:
                tr.append(mido.Message("control_change", channel=part, control=1, value=i % 128, time=step))
        mf.tracks.append(tr)
    mf.save(str(path))
    return path


def _midi_cases(b: _Builder) -> None:
    # A 40-minute quartet exported at 10,080 ticks per beat: 24 million ticks.
    b.ok("midi/10080-tpq-40min", _midi(b.out("midi/10080-tpq-40min.mid"), tpq=10080, bpm=60, seconds=2400), 2400)
    # 32,767 ticks per beat (the most a header holds) at a fast tempo: 11 million ticks in 50 s.
    b.ok("midi/32767-tpq-50s", _midi(b.out("midi/32767-tpq-50s.mid"), tpq=32767, bpm=400, seconds=50), 50)
    b.ok("midi/960-tpq-control", _midi(b.out("midi/960-tpq-control.mid"), tpq=960, bpm=120, seconds=8), 8)
    p = _midi(b.out("midi/notes-never-released.mid"), tpq=480, bpm=120, seconds=8, release=False)
    b.fail("midi/notes-never-released", p, "never released")
    full = _midi(b.tmp("whole.mid"), tpq=480, bpm=120, seconds=8, parts=1)
    b.fail("midi/truncated", _cut(full, b.out("midi/truncated.mid"), 0.5), "truncated")
    # At 3.6 beats per minute (the slowest tempo a file can state) 8,640 notes play for 40 hours.
    p = _midi(b.out("midi/absurdly-long.mid"), tpq=96, bpm=3.6, seconds=144000, parts=1, note_beats=1)
    b.fail("midi/absurdly-long", p, "too long")


# ------------------------------------------------------------------ containers wrapping codecs


def _containers(b: _Builder) -> None:
    src = b.src(6, 22050)
    for name, args in (
        ("wav/mp3-in-riff", ("-c:a", "libmp3lame", "-b:a", "64k", "-f", "wav")),
        ("wav/mp2-in-riff", ("-c:a", "mp2", "-b:a", "64k", "-f", "wav")),
        ("wav/ima-adpcm", ("-c:a", "adpcm_ima_wav", "-f", "wav")),
        ("wav/ms-adpcm", ("-c:a", "adpcm_ms", "-f", "wav")),
        ("aiff/aifc-ima4", ("-c:a", "adpcm_ima_qt", "-f", "aiff")),
        ("aiff/aifc-sowt", ("-c:a", "pcm_s16le", "-f", "aiff")),
        ("aiff/aifc-float", ("-c:a", "pcm_f32be", "-f", "aiff")),
        ("aiff/aifc-ulaw", ("-c:a", "pcm_mulaw", "-f", "aiff")),
        ("mp3/adts-aac-named-mp3", ("-c:a", "aac", "-b:a", "48k", "-f", "adts")),
        ("mp3/mp2-named-mp3", ("-c:a", "mp2", "-b:a", "64k", "-f", "mp2")),
        ("m4a/alac", ("-c:a", "alac", "-f", "ipod")),
    ):
        ext = "." + name.split("/")[0]
        p = b.out(name + ext)
        _ff("-i", src, *args, p)
        b.ok(name, p, 6)
    p = b.out("aiff/aifc-gsm.aiff")
    _run("sox", src, "-r", "8000", "-e", "gsm-full-rate", b.work / "gsm.aifc")
    shutil.move(b.work / "gsm.aifc", p)
    b.ok("aiff/aifc-gsm", p, 6)
    p = b.out("ogg/flac-in-ogg.ogg")
    _run("flac", "-s", "-f", "--ogg", "-o", p, src)
    b.ok("ogg/flac-in-ogg", p, 6)
    p = b.out("ogg/opus-named-ogg.ogg")
    _run("opusenc", "--quiet", src, p)
    b.ok("ogg/opus-named-ogg", p, 6)
    p = b.out("wav/mp3-named-wav.wav")
    _run("lame", "--quiet", src, p)
    b.ok("wav/mp3-named-wav", p, 6)
    p = b.out("flac/id3v2-before-flac.flac")
    flac = b.tmp("plain.flac")
    _run("flac", "-s", "-f", "-o", flac, src)
    id3 = b.tmp("tag.mp3")
    _run("lame", "--quiet", "--id3v2-only", "--tt", "Tagged by a player", b.src(1, 8000), id3)
    raw = id3.read_bytes()
    size = 10 + ((raw[6] & 0x7F) << 21 | (raw[7] & 0x7F) << 14 | (raw[8] & 0x7F) << 7 | raw[9] & 0x7F)
    p.write_bytes(raw[:size] + flac.read_bytes())
    b.ok("flac/id3v2-before-flac", p, 6)


# ------------------------------------------------------------------- failures, precisely worded


def _failures(b: _Builder) -> None:
    p = b.out("m4a/no-audio-stream.m4a")
    _ff("-f", "lavfi", "-i", "color=c=blue:s=64x64:d=2", "-c:v", "mjpeg", "-f", "mp4", p)
    b.fail("m4a/no-audio-stream", p, "no audio stream")
    p = b.out("ogg/video-only.ogg")
    _ff("-f", "lavfi", "-i", "color=c=blue:s=64x64:d=2", "-c:v", "libtheora", p)
    b.fail("ogg/video-only", p, "no audio stream")
    p = b.out("wav/unknown-codec.wav")
    shutil.copy(b.src(3, 8000), p)
    _patch(p, 20, "<H", 0x4A43)  # a format tag no decoder knows
    b.fail("wav/unknown-codec", p, "unsupported codec")
    p = b.out("aiff/aifc-unknown-codec.aiff")
    _ff("-i", b.src(3, 8000), "-c:a", "pcm_s16le", "-f", "aiff", p)
    data = p.read_bytes()
    comm = _chunk_offset(data, b"COMM")
    p.write_bytes(data[: comm + 8 + 18] + b"ZZZZ" + data[comm + 8 + 22 :])
    b.fail("aiff/aifc-unknown-codec", p, "unsupported codec")
    flac = b.tmp("short.flac")
    _run("flac", "-s", "-f", "-o", flac, b.src(3, 8000))
    p = b.out("flac/truncated-in-header.flac")
    p.write_bytes(flac.read_bytes()[:30])
    b.fail("flac/truncated-in-header", p, "truncated")
    p = b.out("wav/header-only.wav")
    p.write_bytes(b.src(3, 8000).read_bytes()[:44])
    b.fail("wav/header-only", p, "truncated")
    ogg = b.tmp("short.ogg")
    _run("oggenc", "-Q", "-o", ogg, b.src(3, 8000))
    p = b.out("ogg/headers-only.ogg")
    p.write_bytes(ogg.read_bytes()[:200])
    b.fail("ogg/headers-only", p, "truncated")
    mp3 = b.tmp("tagged.mp3")
    _run("lame", "--quiet", "--id3v2-only", "--tt", "Only a tag", b.src(3, 8000), mp3)
    raw = mp3.read_bytes()
    size = 10 + ((raw[6] & 0x7F) << 21 | (raw[7] & 0x7F) << 14 | (raw[8] & 0x7F) << 7 | raw[9] & 0x7F)
    p = b.out("mp3/tag-only-download.mp3")
    p.write_bytes(raw[: size + 20])  # the download stopped inside the first frame
    b.fail("mp3/tag-only-download", p, "truncated")


def make_realworld(root: Path) -> list[RealCase]:
    """Write the corpus under ``root`` (sources and intermediates go to a sibling folder)."""
    b = _Builder(Path(root))
    for group in (_lying_headers, _several_streams, _midi_cases, _containers, _failures):
        group(b)
    shutil.rmtree(b.work, ignore_errors=True)
    names = [c.name for c in b.cases]
    assert len(set(names)) == len(names), "duplicate case names"
    return b.cases


if __name__ == "__main__":
    import time

    t0 = time.perf_counter()
    for case in make_realworld(Path(sys.argv[1])):
        what = f"{case.seconds:8.2f} s" if case.seconds is not None else "fails: " + ", ".join(case.reason)
        print(f"{case.name:32s} {what}")
    print(f"built in {time.perf_counter() - t0:.1f} s")

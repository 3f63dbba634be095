"""Fuzz targets shared by tests/robustness/test_fuzz.py (bounded, hypothesis) and
tests/benchmarks/fuzz_inputs.py (long runs).

A target takes the path of one generated input file and either returns normally (its
result checked against the function's contract) or raises a
:class:`~musicsim.errors.MusicsimError`. Anything else is a crash; running past the time
limit is a hang.
"""

from __future__ import annotations

import math
import os
import random
import struct
from pathlib import Path

import numpy as np

from musicsim.errors import MusicsimError

TAG_KEYS = {"title", "artist", "album", "albumartist", "genre", "year", "tracknumber", "duration", "extra"}
RENDER_SR = 8000
RENDER_SECONDS = 4.0

# ------------------------------------------------------------------------------ mutations

OPS = ("flip", "insert", "delete", "truncate", "dup", "int", "zero", "splice")
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7F7F7F7F, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def mutate(
    data: bytes, ops: list[tuple[str, float, int, bytes]], splice_with: bytes = b"", *, skew: bool = True
) -> bytes:
    """Apply mutations to ``data``. Each op is (name, position 0..1, a number, some bytes).

    With ``skew`` positions favour the start, where headers and tags live.
    """
    b = bytearray(data)
    for name, frac, num, blob in ops:
        pos = int((frac**2 if skew else frac) * len(b)) if b else 0
        if name == "flip" and b:
            b[min(pos, len(b) - 1)] ^= (num % 255) + 1
        elif name == "insert":
            b[pos:pos] = blob or bytes([num % 256])
        elif name == "delete":
            del b[pos : pos + 1 + num % 512]
        elif name == "truncate":
            del b[pos:]
        elif name == "dup":
            b[pos:pos] = b[pos : pos + 1 + num % 2048]
        elif name == "int":
            value = INTERESTING[num % len(INTERESTING)]
            width, order = ((1, ">"), (2, ">"), (2, "<"), (4, ">"), (4, "<"))[num // len(INTERESTING) % 5]
            packed = struct.pack(order + {1: "B", 2: "H", 4: "I"}[width], value & ((1 << (8 * width)) - 1))
            b[pos : pos + width] = packed
        elif name == "zero":
            b[pos : pos + 1 + num % 256] = bytes(len(b[pos : pos + 1 + num % 256]))
        elif name == "splice" and splice_with:
            cut = int(frac * len(splice_with))
            b[pos:] = splice_with[cut:]
    return bytes(b)


def _smf_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    chunks, i = [], 0
    while i + 8 <= len(data):
        tag, size = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "big")
        if i + 8 + size > len(data):
            return None
        chunks.append((tag, data[i + 8 : i + 8 + size]))
        i += 8 + size
    return chunks if chunks and i == len(data) else None


def mutate_midi(data: bytes, ops: list[tuple[str, float, int, bytes]], splice_with: bytes = b"") -> bytes:
    """Mutate inside the chunks of a Standard MIDI File and rewrite the chunk lengths, so the
    damage reaches events, tempos and notes rather than stopping at a length check."""
    chunks = _smf_chunks(data)
    if chunks is None:
        return mutate(data, ops, splice_with, skew=False)
    for op in ops:
        i = op[2] % len(chunks)
        tag, body = chunks[i]
        chunks[i] = (tag, mutate(body, [op], skew=False))
    return b"".join(tag + len(body).to_bytes(4, "big") + body for tag, body in chunks)


def random_ops(rng: random.Random, max_ops: int = 8) -> list[tuple[str, float, int, bytes]]:
    return [
        (rng.choice(OPS), rng.random(), rng.randrange(1 << 16), rng.randbytes(rng.randrange(0, 48)))
        for _ in range(rng.randint(1, max_ops))
    ]


# ------------------------------------------------------------------------------ seeds


def make_seeds(folder: Path) -> dict[str, Path]:
    """Small real files to mutate: tagged audio of each format and MIDI of several shapes."""
    import mutagen
    from mutagen import id3

    from tests.fixtures.generate import write_midi
    from tests.robustness.corpus import make_sources, mtrk, smf, tempo

    folder.mkdir(parents=True, exist_ok=True)
    src = make_sources(folder, seconds=0.5)
    seeds = {f"audio{ext}": p for ext, p in src.items() if ext != ".mid"}
    mp3 = seeds["audio.mp3"]
    tags = id3.ID3(mp3)
    tags.add(id3.TXXX(encoding=1, desc="odd", text=["\u00fcber \U0001f3b5"]))
    tags.add(id3.COMM(encoding=3, lang="eng", desc="c", text=["comment"]))
    tags.add(id3.APIC(encoding=0, mime="image/png", type=3, desc="", data=b"\x89PNG\r\n\x1a\n" + bytes(64)))
    tags.save(mp3, v2_version=3)
    v24 = folder / "audio_v24.mp3"
    v24.write_bytes(mp3.read_bytes())
    t = id3.ID3(v24)
    t.save(v24, v2_version=4)
    seeds["audio_v24.mp3"] = v24
    fl = mutagen.File(seeds["audio.flac"])
    fl["genre"] = ["a", "b"]
    fl["date"] = "1999-01-02"
    fl.save()
    seeds["melody.mid"] = src[".mid"]
    seeds["drums.mid"] = write_midi(folder / "drums.mid", drums=True, seconds=2.0)
    multi = smf(
        [
            mtrk([(0, tempo(400000)), (0, b"\xff\x03\x05Title")]),
            mtrk(
                [
                    (0, b"\xc0\x18"),
                    (0, b"\x90\x40\x50"),
                    (240, b"\x80\x40\x00"),
                    (0, b"\xe0\x00\x50"),
                    (0, b"\xb0\x07\x64"),
                    (0, b"\x90\x43\x50"),
                    (240, b"\x80\x43\x00"),
                ]
            ),
            mtrk(
                [
                    (0, tempo(600000)),
                    (0, b"\xc9\x00"),
                    (0, b"\x99\x24\x64"),
                    (120, b"\x89\x24\x00"),
                    (0, b"\xf0\x03\x7e\x7f\xf7"),
                    (0, b"\xff\x58\x04\x04\x02\x18\x08"),
                ]
            ),
        ]
    )
    seeds["multi.mid"] = folder / "multi.mid"
    seeds["multi.mid"].write_bytes(multi)
    return seeds


# ------------------------------------------------------------------------------ targets


def check_tags(path: Path) -> None:
    from musicsim.audio.tags import read_tags

    out = read_tags(path)
    assert set(out) == TAG_KEYS, sorted(out)
    for key in ("title", "artist", "album", "albumartist", "genre"):
        v = out[key]
        assert v is None or (isinstance(v, str) and v and len(v) <= 1000 and "\n" not in v), (key, v)
    for key in ("year", "tracknumber"):
        assert out[key] is None or (isinstance(out[key], int) and out[key] > 0), (key, out[key])
    d = out["duration"]
    assert d is None or (isinstance(d, float) and math.isfinite(d) and d >= 0), d
    assert isinstance(out["extra"], dict) and len(out["extra"]) <= 60


def check_midi_info(path: Path) -> None:
    from musicsim.audio.midi import midi_info

    info = midi_info(path)
    assert isinstance(info["duration"], float) and math.isfinite(info["duration"]) and info["duration"] >= 0
    assert info["tempo"] is None or (isinstance(info["tempo"], float) and math.isfinite(info["tempo"]))
    assert isinstance(info["instruments"], list) and all(isinstance(n, str) for n in info["instruments"])


def check_render(path: Path) -> None:
    from musicsim.audio.midi import render_midi

    audio, degraded, renderer = render_midi(path, sr=RENDER_SR, max_seconds=RENDER_SECONDS)
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.isfinite(audio).all()
    assert len(audio) <= (RENDER_SECONDS + 2.0 + 3.0) * RENDER_SR, len(audio) / RENDER_SR
    assert float(np.abs(audio).max(initial=0.0)) <= 0.9 + 1e-4


def check_decode(path: Path) -> None:
    from musicsim.audio.decode import decode_for_analysis

    dec = decode_for_analysis(path, sr=8000, windows=2, window_seconds=2.0, max_seconds=60.0)
    assert dec.chunks and all(c.dtype == np.float32 and np.isfinite(c).all() for c in dec.chunks)
    assert math.isfinite(dec.duration) and dec.duration >= 0


def check_m3u(path: Path) -> None:
    from musicsim.organize.playlists import read_m3u

    out = read_m3u(path)
    assert isinstance(out, list) and all(isinstance(p, Path) for p in out)


def check_xspf(path: Path) -> None:
    from musicsim.organize.playlists import read_xspf

    out = read_xspf(path)
    assert isinstance(out, list) and all(isinstance(p, Path) for p in out)


def run_target(check, path: Path) -> str:
    """'ok' or 'refused' (a MusicsimError); any other exception propagates."""
    try:
        check(path)
    except MusicsimError as e:
        assert "\n" not in str(e), str(e)
        return "refused"
    return "ok"


# ------------------------------------------------------------------------------ playlists

_PIECES = (
    "/music/a.mp3",
    "rel/b.flac",
    "..\\..\\win\\c.mp3",
    "C:\\Music\\d.mp3",
    "file:///music/e%20f.mp3",
    "file://localhost/x.mp3",
    "file://server/share/y.mp3",
    "file:///C:/Music/z.mp3",
    "file://[::1/q.mp3",
    "file://[bad",
    "http://radio.example/stream",
    "#EXTINF:123,Artist - Title",
    "#EXTM3U",
    "   ",
    "%ZZ%%",
    "file:%",
    "\ufeff",
    "\x00",
    "\u2028",
    "..",
    ".",
    "/",
    "~/m.mp3",
    "\\\\?\\C:\\x.mp3",
)


def random_m3u(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(0, 30)):
        r = rng.random()
        if r < 0.5:
            lines.append(rng.choice(_PIECES))
        elif r < 0.8:
            lines.append(
                "".join(
                    chr(rng.choice((rng.randrange(32, 127), rng.randrange(0, 0x3000), rng.randrange(0, 32))))
                    for _ in range(rng.randint(0, 40))
                )
            )
        else:
            lines.append(rng.choice(_PIECES) + rng.choice(_PIECES))
    text = rng.choice(("\n", "\r\n", "\r")).join(lines)
    enc = rng.choice(("utf-8", "utf-8-sig", "latin-1", "utf-16", "raw"))
    if enc == "raw":
        return rng.randbytes(rng.randint(0, 400))
    return text.encode(enc, "surrogatepass") if enc.startswith("utf") else text.encode(enc, "replace")


def xspf_doc(locations: list[str], titles: list[str], *, dtd: bool = False, ns: bool = True) -> bytes:
    from xml.sax.saxutils import escape

    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    if dtd:
        head += '<!DOCTYPE playlist [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>\n'
    xmlns = ' xmlns="http://xspf.org/ns/0/"' if ns else ""
    tracks = "".join(
        f"<track><location>{escape(loc)}</location><title>{escape(t)}</title></track>"
        for loc, t in zip(locations, titles + [""] * len(locations))
    )
    return (head + f'<playlist version="1"{xmlns}><trackList>{tracks}</trackList></playlist>').encode(
        "utf-8", "surrogatepass"
    )


def random_xspf(rng: random.Random) -> bytes:
    n = rng.randint(0, 12)
    locs = [rng.choice(_PIECES) for _ in range(n)]
    doc = xspf_doc(locs, [rng.choice(_PIECES) for _ in range(n)], dtd=rng.random() < 0.1, ns=rng.random() < 0.8)
    if rng.random() < 0.5:
        doc = mutate(doc, random_ops(rng, 4))
    return doc


def write_input(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    with open(path, "wb") as f:
        f.write(data)
    return path


def environment_note() -> str:
    from musicsim.audio.midi import find_soundfont, fluidsynth_available

    sf, _ = find_soundfont(None)
    return f"fluidsynth={'yes' if fluidsynth_available() else 'no'} soundfont={sf} pid={os.getpid()}"

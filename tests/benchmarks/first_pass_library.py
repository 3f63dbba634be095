"""Generate a library of MP3 songs for the first-pass benchmark (nothing here is real music).

    python tests/benchmarks/first_pass_library.py OUT_DIR [--count 500] [--jobs 2] [--first 0]

Each track is a stereo 44.1 kHz, 192 kbit/s MP3 (LAME, ID3 tags) of 2.5 to 5.5 minutes
(4 on average, like a pop library): a chord progression played by one of ten instrument
families (harmonic spectra and envelopes), a bass line and, for most families, drums at
the track's tempo, in sections with changing loudness. Sub-folders are the families, so
``trainer.evaluate`` can also report on the set. Deterministic: track i is the same on every
machine. Needs the ``lame`` program (Debian: ``apt-get install lame``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SR = 44100
# name: (harmonic amplitudes, decay per second, drums?, tempo range)
FAMILIES = {
    "organ": ([1, 0.8, 0.6, 0.5, 0.4, 0.3], 0.0, False, (60, 90)),
    "pluck": ([1, 0.5, 0.33, 0.25, 0.2, 0.16, 0.14], 4.0, True, (90, 130)),
    "pad": ([1, 0.2, 0.05], 0.0, False, (50, 80)),
    "brass": ([1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3], 0.5, True, (100, 140)),
    "bell": ([1, 0.0, 0.6, 0.0, 0.4, 0.0, 0.3], 2.0, False, (70, 100)),
    "square": ([1, 0, 0.33, 0, 0.2, 0, 0.14, 0, 0.11], 0.2, True, (120, 170)),
    "flute": ([1, 0.1, 0.05], 0.3, False, (80, 110)),
    "saw": ([1 / k for k in range(1, 12)], 1.0, True, (125, 150)),
    "piano": ([1, 0.6, 0.3, 0.2, 0.1, 0.05], 2.5, False, (70, 120)),
    "chip": ([1, 0.7, 0, 0.5, 0, 0.3], 6.0, True, (140, 180)),
}
PROGRESSIONS = ([0, 5, 7, 0], [0, 9, 5, 7], [0, 7, 9, 5], [0, 3, 10, 5], [0, 8, 3, 10])


def synth(i: int) -> tuple[str, np.ndarray, dict]:
    """Track ``i``: its family, stereo int16 samples and tags."""
    names = sorted(FAMILIES)
    family = names[i % len(names)]
    harmonics, decay, drums, (lo, hi) = FAMILIES[family]
    rng = np.random.default_rng(1000 + i)
    seconds = float(rng.uniform(150, 330))
    bpm = float(rng.uniform(lo, hi))
    root = 110.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    minor = bool(rng.integers(0, 2))
    prog = PROGRESSIONS[int(rng.integers(0, len(PROGRESSIONS)))]
    beat = 60.0 / bpm
    bar = 4 * beat
    n = int(seconds * SR)
    out = np.zeros(n, np.float32)
    t_bar = np.arange(int(bar * SR)) / SR
    env = np.exp(-decay * (t_bar % beat)) if decay else np.ones_like(t_bar)
    bright = float(rng.uniform(0.6, 1.4))
    bars = []  # one bar per chord of the progression, reused: the song repeats them
    for step in prog:
        third = 3 if minor else 4
        chord = [root * 2 ** ((step + s) / 12) for s in (0, third, 7)]
        tone = np.zeros_like(t_bar)
        for f in chord:
            for k, a in enumerate(harmonics, 1):
                if a and f * k < 10000:
                    tone += a * bright ** (k - 1) * np.sin(2 * np.pi * f * k * t_bar + k)
        bass = 0.6 * np.sin(2 * np.pi * chord[0] / 2 * t_bar) * np.exp(-1.5 * (t_bar % (2 * beat)))
        bars.append((0.08 * tone * env + 0.15 * bass).astype(np.float32))
    for b, start in enumerate(range(0, n, len(t_bar))):
        section = 0.5 + 0.5 * ((b // 8) % 2)  # verse / chorus loudness
        seg = bars[b % len(bars)] * section
        end = min(n, start + len(seg))
        out[start:end] += seg[: end - start]
    if drums:
        kick = np.sin(2 * np.pi * 55 * np.arange(int(0.15 * SR)) / SR) * np.exp(
            -np.arange(int(0.15 * SR)) / (0.04 * SR)
        )
        hat = rng.standard_normal(int(0.05 * SR)) * np.exp(-np.arange(int(0.05 * SR)) / (0.008 * SR))
        for k in range(int(seconds / beat)):
            at = int(k * beat * SR)
            for sound, gain, every in ((kick, 0.5, 1), (hat, 0.12, 1)):
                if k % every == 0 and at + len(sound) < n:
                    out[at : at + len(sound)] += gain * sound.astype(np.float32)
            off = int((k + 0.5) * beat * SR)
            if off + len(hat) < n:
                out[off : off + len(hat)] += 0.08 * hat.astype(np.float32)
    out += 0.003 * rng.standard_normal(n).astype(np.float32)
    fade = min(n // 4, 2 * SR)
    out[:fade] *= np.linspace(0, 1, fade, dtype=np.float32)
    out[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    out /= max(1e-6, float(np.abs(out).max())) / 0.9
    delay = int(rng.integers(5, 40))
    stereo = np.stack([out, np.concatenate([np.zeros(delay, np.float32), out[:-delay]])], axis=1)
    tags = {"title": f"Track {i:04d}", "artist": f"Generated {family}", "album": f"{family} {i // 50}"}
    return family, (stereo * 32767).astype("<i2"), tags


def make_one(args: tuple[int, str]) -> str:
    i, out_dir = args
    family, pcm, tags = synth(i)
    path = Path(out_dir) / family / f"{i:04d}.mp3"
    if path.exists():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.part")  # two generators may share a folder
    cmd = ["lame", "-r", "-s", "44.1", "--bitwidth", "16", "--signed", "--little-endian", "-m", "j", "-b", "192"]
    cmd += ["-q", "7", "--silent", "--tt", tags["title"], "--ta", tags["artist"], "--tl", tags["album"], "-", str(tmp)]
    subprocess.run(cmd, input=pcm.tobytes(), check=True, stderr=subprocess.DEVNULL)
    os.replace(tmp, path)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--first", type=int, default=0, help="start at this track number (to share the work out)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    if shutil.which("lame") is None:
        print("first_pass_library: the lame program is needed (apt-get install lame)", file=sys.stderr)
        return 2
    with ProcessPoolExecutor(args.jobs) as pool:
        for k, _ in enumerate(pool.map(make_one, [(i, args.out) for i in range(args.first, args.count)]), 1):
            if k % 50 == 0:
                print(f"{k}/{args.count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

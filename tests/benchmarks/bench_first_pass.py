"""The first pass against fully decoding the same files and against Musly, in one run.

    python tests/benchmarks/bench_first_pass.py LIBRARY [LIBRARY ...] [--workers N] [--full] [--no-musly]

For each folder, on the same files and the same cores, one after the other:

* **full decode**: every file decoded to its end at its own rate by libsndfile (what any
  whole-track analysis must at least do), in one process per core; and again by
  ``librosa.load`` at 22.05 kHz (mono, soxr_hq), the way analysis tools load a track;
* **first pass**: ``musicsim`` scanning the folder into a fresh library with its default
  settings (``analysis = fast``), workers as ``--workers`` (default one per core);
* **full analysis** (``--full``): the same scan with ``analysis = full``;
* **Musly** (``pymusly``, when installed: ``pip install pymusly``): its excerpt mode (30 s from
  the middle of each track, the Musly command line's default) and its whole-track mode, with the ``timbre`` method,
  one process per core, each with its own jukebox.

Prints tracks/hour and times real time for each, the ratios the first pass must reach
(at least 2x the full decode; at least 1.25x Musly per core) and the peak memory of each
step, all processes together (proportional set size, sampled every 0.5 s, so shared pages
count once). Make a test library of generated songs with ``first_pass_library.py``.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musicsim.audio.sniff import AUDIO_EXTENSIONS, MIDI_EXTENSIONS  # noqa: E402
from musicsim.workers import decode_pool  # noqa: E402


class MemorySampler:
    """Peak total proportional set size (MB) of this process and all its descendants."""

    def __init__(self, interval: float = 0.5) -> None:
        # Reading smaps_rollup walks every mapping of each process under its memory-map lock:
        # every 0.1 s it slowed the scan it measured.
        self.interval, self.peak, self._stop = interval, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(_pss_kb(p) for p in _tree(os.getpid())) / 1024)
            self._stop.wait(self.interval)


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _decode_native(path: str) -> float:
    import soundfile

    from musicsim.audio.decode import load

    if Path(path).suffix.lower() in MIDI_EXTENSIONS:
        return len(load(path, sr=22050)) / 22050  # MIDI has no native rate: rendering is its decoding
    n = 0
    with soundfile.SoundFile(path) as f:
        for block in f.blocks(blocksize=1 << 17, dtype="float32"):
            n += len(block)
        return n / f.samplerate


def _decode_librosa(path: str) -> float:
    """librosa's own load: decoded, mixed to mono and resampled to 22.05 kHz (soxr_hq)."""
    import librosa

    from musicsim.audio.decode import load

    if Path(path).suffix.lower() in MIDI_EXTENSIONS:
        return len(load(path, sr=22050)) / 22050
    return len(librosa.load(path, sr=22050, mono=True)[0]) / 22050


def timed_map(fn, files: list[str], workers: int) -> tuple[float, float, float]:
    """(seconds, audio seconds, peak MB) of ``fn`` over ``files`` in ``workers`` processes."""
    with MemorySampler() as mem:
        t0 = time.perf_counter()
        with decode_pool(workers) as pool:
            audio = sum(pool.map(fn, files, chunksize=4))
        wall = time.perf_counter() - t0
    return wall, audio, mem.peak


_JUKEBOX = None


def _musly_one(path: str, excerpt: float = 30.0) -> float:
    """1.0 when Musly analysed ``path`` (``excerpt`` seconds; 0: the whole track), else 0.0."""
    global _JUKEBOX
    import pymusly

    if _JUKEBOX is None:
        pymusly.set_musly_loglevel(0)
        _JUKEBOX = pymusly.MuslyJukebox("timbre")
    try:
        _JUKEBOX.track_from_audiofile(path, excerpt, -48.0)  # musly's own defaults: 30 s, centred, from 48 s
    except pymusly.MuslyError:  # e.g. a sound effect shorter than Musly's analysis frame
        return 0.0
    return 1.0


def scan(folder: str, analysis: str, workers: int) -> tuple[float, object, float]:
    from musicsim.config import Config
    from musicsim.library import Library

    cfg = Config.load({"workers": workers, "analysis": analysis})
    with tempfile.TemporaryDirectory() as tmp, MemorySampler() as mem:
        home = Path(tmp)
        os.environ["MUSICSIM_HOME"] = str(home)  # a cold mel cache, not the user's
        with Library(home / "bench.db", config=cfg) as lib:
            t0 = time.perf_counter()
            rep = lib.scan([folder])
            wall = time.perf_counter() - t0
    return wall, rep, mem.peak


def music_files(folder: str) -> list[str]:
    """The files a scan of ``folder`` analyses (the scanner's own walk: hidden folders skipped)."""
    from musicsim.scan.walker import walk

    exts = AUDIO_EXTENSIONS | MIDI_EXTENSIONS
    return sorted(e.path for e in walk([folder]) if Path(e.path).suffix.lower() in exts)


def bench_folder(folder: str, cores: int, musly: bool, full: bool) -> None:
    files = music_files(folder)
    print(f"\n{folder}: {len(files)} files")
    rows: dict[str, tuple[float, int, float]] = {}  # name: (seconds, tracks, peak MB)
    wall, audio, peak = timed_map(_decode_native, files, cores)
    print(f"audio: {audio / 60:.0f} min ({audio / max(len(files), 1):.0f} s per file)")
    print(f"{'step':38s} {'seconds':>8s} {'tracks':>7s} {'tracks/h':>9s} {'per core/h':>10s}", end="")
    print(f" {'x real time':>11s} {'peak MB':>8s}")

    def row(name: str, wall: float, n: int, peak: float) -> None:
        rows[name] = (wall, n, peak)
        rate = n / wall * 3600
        rt = audio / wall * n / max(len(files), 1)
        print(f"{name:38s} {wall:8.1f} {n:7d} {rate:9.0f} {rate / cores:10.0f} {rt:11.0f} {peak:8.0f}", flush=True)

    row("full decode (native rate)", wall, len(files), peak)
    wall, _, peak = timed_map(_decode_librosa, files, cores)
    row("full decode, librosa.load at 22.05 kHz", wall, len(files), peak)
    wall, rep, peak = scan(folder, "fast", cores)
    row("musicsim first pass", wall, rep.analysed, peak)
    stages = {k: round(v / max(rep.analysed, 1) * 1000) for k, v in rep.stage_seconds.items()}
    if musly:
        audio_files = [f for f in files if Path(f).suffix.lower() in AUDIO_EXTENSIONS]
        for name, excerpt in (("Musly excerpt mode (30 s)", 30.0), ("Musly whole track", 0.0)):
            wall, done, peak = timed_map(functools.partial(_musly_one, excerpt=excerpt), audio_files, cores)
            row(name, wall, len(audio_files), peak)
            if done < len(audio_files):
                print(f"  Musly could not analyse {len(audio_files) - int(done)} of them (counted as done)")
    if full:
        wall, rep_full, peak = scan(folder, "full", cores)
        row("musicsim full analysis", wall, rep_full.analysed, peak)
    fp = rows["musicsim first pass"][1] / rows["musicsim first pass"][0]
    for name in (
        "full decode (native rate)",
        "full decode, librosa.load at 22.05 kHz",
        "Musly excerpt mode (30 s)",
        "Musly whole track",
    ):
        if name in rows:
            print(f"first pass / {name}: {fp / (rows[name][1] / rows[name][0]):.2f}x (tracks per second)")
    print(f"first pass stages, ms per track (decode summed over workers): {stages}")
    for path, reason in rep.failures:
        print(f"  failed: {path}: {reason}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("libraries", nargs="+")
    ap.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    ap.add_argument("--full", action="store_true", help="also time musicsim's full analysis")
    ap.add_argument("--no-musly", action="store_true")
    args = ap.parse_args(argv)
    cores = args.workers or os.cpu_count() or 1
    try:
        import pymusly  # noqa: F401

        musly = not args.no_musly
    except ImportError:
        musly = False
        print("pymusly is not installed: no Musly row (pip install pymusly)")
    print(f"{cores} processes per step; peak memory: all processes together (PSS)")
    for folder in args.libraries:
        bench_folder(folder, cores, musly, args.full)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How many copies of the same recording the duplicate finder finds in a real library, and
what else it pairs.

    python tests/benchmarks/bench_duplicates.py LIBRARY_DIR [--copies 20] [--bitrate 96k]

Scans LIBRARY_DIR (e.g. the library built by ../shared/data/dev_library.sh, which holds each
OGG track again as MP3) into a fresh temporary database, plus ``--copies`` of its audio tracks
re-encoded to MP3 by ffmpeg at ``--bitrate``. Two files count as the same recording when one
is a generated copy of the other, or when their names match (``stick.ogg`` and ``stick.mp3``;
``GAME/stick.ogg`` and ``GAME-stick.mp3``). Then, for the shipped threshold rule and a few
others over the same vectors, it prints the copies found and the other pairs, and lists the
other pairs of the shipped rule so a reader can judge them (two names for identical audio
happen in real libraries). Never writes to LIBRARY_DIR.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musicsim.library import Library  # noqa: E402

AUDIO = {".ogg", ".opus", ".mp3", ".flac", ".wav", ".m4a"}


def same_name(a: Path, b: Path) -> bool:
    return a.suffix != b.suffix and (
        a.stem == b.stem or a.stem == f"{b.parent.name}-{b.stem}" or b.stem == f"{a.parent.name}-{a.stem}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("--copies", type=int, default=20, help="tracks to re-encode as MP3 copies (default 20)")
    ap.add_argument("--bitrate", default="96k")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    lib_dir = Path(args.library).resolve()
    audio = sorted(
        p
        for p in lib_dir.rglob("*")
        if p.suffix.lower() in AUDIO
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(lib_dir).parts)
    )
    with tempfile.TemporaryDirectory() as tmp:
        copies_dir = Path(tmp) / "copies"
        copies_dir.mkdir()
        made: dict[str, str] = {}
        for i, src in enumerate(random.Random(args.seed).sample(audio, min(args.copies, len(audio)))):
            dst = copies_dir / f"copy{i:03d}.mp3"
            subprocess.run(
                [
                    "ffmpeg",
                    "-nostdin",
                    "-loglevel",
                    "error",
                    "-i",
                    str(src),
                    "-map",
                    "0:a:0",
                    "-b:a",
                    args.bitrate,
                    str(dst),
                ],
                check=True,
            )
            made[str(dst)] = str(src)
        with Library(Path(tmp) / "bench.db") as lib:
            t0 = time.perf_counter()
            lib.scan([str(lib_dir), str(copies_dir)])
            scan_s = time.perf_counter() - t0
            tracks = {t.id: t for t in lib.tracks()}
            paths = {t.path for t in tracks.values()}

            group = {p: p for p in paths}  # union-find: a copy of a copy is a copy

            def root(p: str) -> str:
                while group[p] != p:
                    p = group[p]
                return p

            for a in paths:
                for b in paths:
                    if made.get(a) == b or same_name(Path(a), Path(b)):
                        group[root(a)] = root(b)

            def truth(a: str, b: str) -> bool:
                return root(a) == root(b)

            every = [(a, b) for a in paths for b in paths if a < b and truth(a, b)]
            ids, X, _ = lib.organizer.data()
            shipped = lib.organizer.dup_threshold()
            sims = X @ X.T
            median_pair = float(np.median(1.0 - sims[np.triu_indices(len(ids), 1)]))
            np.fill_diagonal(sims, -np.inf)
            previous = min(0.02, 0.25 * float(np.median(1.0 - sims.max(1))))
            print(
                f"{lib.model_row.name}: {len(tracks)} tracks ({len(made)} generated copies) scanned in {scan_s:.0f} s; "
                f"{len(every)} pairs are the same recording; median distance between two tracks {median_pair:.3f}"
            )
            rules = [("shipped: 0.1 x median pair", shipped), ("previous: min(0.02, nearest/4)", previous)]
            rules += [(f"{f} x median pair", f * median_pair) for f in (0.05, 0.15, 0.2, 0.3)]
            for name, thr in rules:
                pairs = lib.organizer.duplicates(threshold=thr)
                found = sum(truth(a.path, b.path) for a, b, _ in pairs)
                others = [(a, b, d) for a, b, d in pairs if not truth(a.path, b.path)]
                long_others = sum(min(a.duration or 0, b.duration or 0) >= 10 for a, b, _ in others)
                print(
                    f"{name:32s} threshold {thr:.4f}: found {found}/{len(every)}, "
                    f"other pairs {len(others)} ({long_others} of tracks >= 10 s)"
                )
                if thr == shipped:
                    for a, b, d in others:
                        print(f"    other: {d:.4f}  {a.duration or 0:.1f} s  {a.path}  |  {b.path}")
                    got = {frozenset((a.path, b.path)) for a, b, _ in pairs}
                    for a, b in every:
                        if frozenset((a, b)) not in got:
                            print(f"    missed: {a}  |  {b}")


if __name__ == "__main__":
    main()

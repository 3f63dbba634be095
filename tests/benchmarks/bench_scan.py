"""Indexing throughput and `similar` latency on a real library.

    python tests/benchmarks/bench_scan.py LIBRARY_DIR [--workers N] [--windows N]

LIBRARY_DIR: e.g. the library built by ../shared/data/dev_library.sh. Scans it into a fresh
temporary database, then prints tracks/s, times real time, seconds per stage (decode is
summed over worker processes; features, model and store run in the main process), peak
memory of the main process and of the workers, and the median latency of `similar`.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musicsim.config import Config  # noqa: E402
from musicsim.library import Library  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--windows", type=int, default=0)
    args = ap.parse_args()
    cfg = Config.load({"workers": args.workers, "analysis_windows": args.windows})
    with tempfile.TemporaryDirectory() as tmp, Library(Path(tmp) / "bench.db", config=cfg) as lib:
        t0 = time.perf_counter()
        rep = lib.scan([args.library])
        wall = time.perf_counter() - t0
        ids, _ = lib.embeddings()
        lat = []
        for tid in ids.tolist() * max(1, 200 // max(len(ids), 1)):
            t = time.perf_counter()
            lib.similar(int(tid), n=10)
            lat.append(time.perf_counter() - t)
        model = lib.model_row.name
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = rep.worker_peak_mb
    print(f"library: {args.library}  model: {model}  workers: {cfg.effective_workers()}  windows: {args.windows}")
    print(f"tracks: {rep.analysed} analysed, {rep.failed} failed, {rep.audio_seconds / 60:.1f} min of audio")
    print(f"wall: {wall:.1f} s  -> {rep.analysed / wall:.2f} tracks/s, {rep.audio_seconds / wall:.1f}x real time")
    for stage, sec in rep.stage_seconds.items():
        print(f"  {stage:9s} {sec:7.1f} s  ({sec / max(rep.analysed, 1) * 1000:.0f} ms/track)")
    print(f"peak memory: main {self_mb:.0f} MB, largest worker {child_mb:.0f} MB")
    print(f"similar (top 10): median {statistics.median(lat) * 1000:.2f} ms over {len(lat)} queries")
    for path, reason in rep.failures:
        print(f"  failed: {path}: {reason}")


if __name__ == "__main__":
    main()

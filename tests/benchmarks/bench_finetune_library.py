"""Fine-tune the shipped model on a whole library, end to end, at default settings (a script).

    python tests/benchmarks/bench_finetune_library.py [--tracks 500] [--library DIR] [--cold] [--freeze N]
        [--mutual-positives P]

Generates ``--tracks`` tracks of 2.5-5.5 minutes (mean 4 min; four timbre families, lengths
spread like a real library's) unless ``--library`` names real music, scans them into a fresh
library (which fills the mel cache as a by-product), then runs what "Train on my library"
and ``python -m trainer --db LIBRARY`` run: fine-tune the shipped model with the default
options, re-embed every track, and apply the album/folder check. Prints the wall time of each
stage (measured from the trainer's progress reports) and in all. ``--cold`` trains from an
empty mel cache instead, as a library scanned with the cache turned off would; ``--freeze N``
keeps N stages instead of the fine-tune's default (0: every layer, the default before issue 32);
``--mutual-positives 0`` takes no positive from another track (the default before issue 32).
The issue's target: 500 tracks in under 15 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def generate(root: Path, n: int, seed: int = 0) -> float:
    """``n`` 16-bit WAV tracks in family folders; returns the minutes of audio written."""
    import numpy as np
    import soundfile as sf

    from tests.fixtures.generate import FAMILIES, synth

    rng = np.random.default_rng(seed)
    total = 0.0
    for i in range(n):
        fam = FAMILIES[i % len(FAMILIES)]
        seconds = float(rng.uniform(150, 330))
        audio = synth(fam, seconds=seconds, variant=i // len(FAMILIES))
        path = root / fam / f"{fam}_{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, 22050, subtype="PCM_16")
        total += seconds
    return total / 60


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=500)
    ap.add_argument("--library", help="real music to use instead of generated tracks")
    ap.add_argument("--cold", action="store_true", help="train from an empty mel cache (decode everything again)")
    ap.add_argument("--keep", help="work in this folder and keep it (default: a temporary one)")
    ap.add_argument("--freeze", type=int, help="stages kept as they are (default: the fine-tune's, 3)")
    ap.add_argument(
        "--mutual-positives", type=float, metavar="P", help="the fine-tune's --mutual-positives (default: its own, 0.3)"
    )
    a = ap.parse_args(argv)

    work = Path(a.keep or tempfile.mkdtemp(prefix="musicsim-bench-ft-"))
    try:
        return run(a, work)
    finally:
        if not a.keep:  # the generated library and its cache take ~6 GB for 500 tracks
            shutil.rmtree(work, ignore_errors=True)


def run(a: argparse.Namespace, work: Path) -> int:
    os.environ["MUSICSIM_HOME"] = str(work / "home")
    import torch

    from musicsim.jobs import Progress
    from musicsim.library import Library
    from musicsim.library.finetune import finetune
    from musicsim.model.checkpoint import read_checkpoint
    from trainer.train import TrainOptions

    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)", flush=True)
    if a.library:
        music = Path(a.library)
    else:
        music = work / "music"
        t = time.perf_counter()
        minutes = generate(music, a.tracks)
        print(f"generated {a.tracks} tracks, {minutes:.0f} min of audio in {time.perf_counter() - t:.0f} s", flush=True)

    db = work / "library.db"
    t = time.perf_counter()
    with Library(db) as lib:
        rep = lib.scan([str(music)])
        n = len(lib.tracks())
    print(
        f"scan: {rep.analysed} analysed, {rep.failed} failed, {rep.audio_seconds / 60:.0f} min of audio in "
        f"{time.perf_counter() - t:.0f} s",
        flush=True,
    )

    stages: dict[str, list[float]] = {}

    def progress(p: Progress) -> None:
        now = time.perf_counter()
        span = stages.setdefault(p.stage, [now, now])
        span[1] = now

    cache = str(work / "cold-cache") if a.cold else None
    opts = TrainOptions(db=str(db), cache=cache, freeze=a.freeze, mutual_positives=a.mutual_positives)
    t0 = time.perf_counter()
    with Library(db) as lib:
        res = finetune(lib, opts, progress=progress)
    total = time.perf_counter() - t0
    ran = read_checkpoint(res.checkpoint)["extra"]["options"]  # as the run resolved them
    print(
        f"fine-tune of {n} tracks at default settings, freeze {ran['freeze']}, "
        f"mutual positives {ran['mutual_positives']} "
        f"({'cold' if a.cold else 'mel cache filled by the scan'}): "
        f"{total / 60:.1f} min in all",
        flush=True,
    )
    for stage, (s, e) in stages.items():
        print(f"    {stage:<10} {s - t0:7.1f} s -> {e - t0:7.1f} s  ({(e - s) / 60:.1f} min)")
    print(
        f"    {res.steps} steps, {res.epochs:.2f} epochs; re-embedded {res.reembedded}; "
        f"{'activated' if res.activated else 'not activated'}: {res.guard}"
    )
    print(f"target: under 15 min for 500 tracks -> {'met' if total < 900 else 'NOT met'} ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

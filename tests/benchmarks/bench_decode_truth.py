"""Issue 28's figures: what the decoder's checks cost where nothing needs them, and the corpus.

    python tests/benchmarks/bench_decode_truth.py LIBRARY [--before REV] [--repeat 3]
    python tests/benchmarks/bench_decode_truth.py --corpus [--keep DIR]

LIBRARY mode decodes every file of LIBRARY for analysis twice per round, interleaved: with
``musicsim/audio/decode.py`` as it was at REV (default: the commit before issue 28's work)
and as it is now (the MP3 frame walk, the chained-Ogg check, the length checks, ffmpeg for
files libsndfile cannot be trusted with). It prints the summed decode time of each (the best
of ``--repeat`` rounds per file), the difference, the files the new code sends to ffmpeg and
why, then the wall time of a whole scan of LIBRARY with the current code, so the difference
can be read against it.

--corpus builds the real-world corpus of tests/robustness/realworld.py, scans it as the test
does (max_seconds 60, 2 workers) and prints the cases, how many were analysed over their
whole length (within 10 %), how many failed with the expected reason, and the scan time.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from musicsim.audio.decode import decode_for_analysis  # noqa: E402
from musicsim.config import Config  # noqa: E402
from musicsim.errors import MusicsimError  # noqa: E402
from musicsim.library import Library  # noqa: E402
from musicsim.scan.walker import walk  # noqa: E402


def _before_rev() -> str:
    out = subprocess.run(
        ["git", "log", "--format=%H", "--grep", "Decoding that tells the truth (issue 28)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return (out[-1] + "~1") if out else "HEAD"


def _old_decoder(rev: str, tmp: Path):
    source = subprocess.run(
        ["git", "show", f"{rev}:musicsim/audio/decode.py"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    path = tmp / "decode_before.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("decode_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["decode_before"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.decode_for_analysis


def _time(fn, path: str) -> tuple[float, object]:
    t0 = time.perf_counter()
    try:
        dec = fn(path)
    except MusicsimError as err:
        dec = err
    return time.perf_counter() - t0, dec


def library_mode(args: argparse.Namespace) -> None:
    files = [e.path for e in walk([args.library])]
    with tempfile.TemporaryDirectory() as tmp:
        old = _old_decoder(args.before, Path(tmp))
        before = dict.fromkeys(files, float("inf"))
        after = dict.fromkeys(files, float("inf"))
        routes: dict[str, str] = {}
        for _ in range(args.repeat):
            for path in files:
                before[path] = min(before[path], _time(old, path)[0])
                took, dec = _time(decode_for_analysis, path)
                after[path] = min(after[path], took)
                if not isinstance(dec, MusicsimError) and dec.renderer == "ffmpeg":  # type: ignore[attr-defined]
                    routes[path] = next((w for w in dec.warnings if w.startswith("decoded with")), "ffmpeg")  # type: ignore[attr-defined]
    b, a = sum(before.values()), sum(after.values())
    print(f"library: {args.library}  files: {len(files)}  before: {args.before}")
    print(f"decode for analysis, summed (best of {args.repeat}): before {b:.2f} s, after {a:.2f} s, ")
    print(f"  difference {a - b:+.2f} s ({(a - b) / b * 100:+.1f} %)")
    print(f"files the new code sends to ffmpeg: {len(routes)}")
    for path, why in sorted(routes.items()):
        print(f"  {Path(path).name}: {why}")
    with tempfile.TemporaryDirectory() as tmp, Library(Path(tmp) / "bench.db", config=Config.load({})) as lib:
        rep = lib.scan([args.library])
    print(f"whole scan with the current code: {rep.seconds:.1f} s for {rep.analysed} tracks ({rep.failed} failed)")


def corpus_mode(args: argparse.Namespace) -> None:
    from tests.robustness.realworld import LONG, make_realworld

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        t0 = time.perf_counter()
        cases = make_realworld(base / "music")
        built = time.perf_counter() - t0
        cfg = Config.load({"workers": 2, "max_seconds": LONG})
        with Library(base / "lib.db", config=cfg) as lib:
            rep = lib.scan([str(base / "music")])
            stored = {t.path: t.duration or 0.0 for t in lib.tracks()}
            failures = {f.path: f.reason.lower() for f in lib.failures()}
    whole = sum(
        1 for c in cases if c.seconds is not None and abs(stored.get(str(c.path), -1e9) - c.seconds) <= 0.10 * c.seconds
    )
    reasoned = sum(1 for c in cases if c.seconds is None and all(w in failures.get(str(c.path), "") for w in c.reason))
    print(
        f"corpus: {len(cases)} cases ({sum(c.seconds is not None for c in cases)} to analyse), built in {built:.1f} s"
    )
    print(f"analysed whole (stored length within 10 %): {whole}; failed with the expected reason: {reasoned}")
    print(f"scan: {rep.seconds:.1f} s wall, 2 workers, max_seconds {LONG:.0f}")
    for c in cases:
        got = f"{stored[str(c.path)]:.1f} s" if str(c.path) in stored else failures.get(str(c.path), "?")
        print(f"  {c.name:32s} real {'fails' if c.seconds is None else f'{c.seconds:.1f} s':>9s}  got {got}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("library", nargs="?")
    ap.add_argument("--before", default=None, help="git revision of the decoder to compare with")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", action="store_true", help="build and scan the real-world corpus instead")
    ap.add_argument("--keep", help="with --corpus: build it in this folder and keep it")
    args = ap.parse_args()
    if args.corpus:
        corpus_mode(args)
    elif args.library:
        args.before = args.before or _before_rev()
        library_mode(args)
    else:
        ap.error("give a LIBRARY or --corpus")


if __name__ == "__main__":
    main()

"""Long fuzzing run of musicsim's input parsers (the bounded run is tests/robustness/test_fuzz.py).

    python tests/benchmarks/fuzz_inputs.py --minutes 5 [--seed 1] [--targets tags,midi,...]
                                         [--limit-s 20] [--out DIR] [--no-fluidsynth]

Targets (tests/robustness/fuzzing.py): ``tags`` read_tags on mutated MP3/FLAC/Ogg/Opus/WAV/M4A,
``decode`` decode_for_analysis on the same, ``midi`` midi_info and ``render`` render_midi on
mutated MIDI (structure-aware and raw), ``m3u`` / ``xspf`` playlist import on generated text.

Each input runs in a worker process with a per-call time limit (SIGALRM); a worker that
does not answer in time is killed (a hang), one that dies is a native crash; either way a
fresh worker takes over. A crash is any exception other than a MusicsimError, or a result
that breaks the function's contract. Crashing inputs are saved to --out. Inputs are made
from (--seed, input number), so a run is reproducible. Prints inputs tried and crashes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.robustness import fuzzing  # noqa: E402

CHECKS = {
    "tags": fuzzing.check_tags,
    "decode": fuzzing.check_decode,
    "midi": fuzzing.check_midi_info,
    "render": fuzzing.check_render,
    "m3u": fuzzing.check_m3u,
    "xspf": fuzzing.check_xspf,
}
WEIGHTS = {"tags": 4, "decode": 1, "midi": 3, "render": 1, "m3u": 2, "xspf": 2}
AUDIO = ["audio.mp3", "audio_v24.mp3", "audio.flac", "audio.ogg", "audio.opus", "audio.wav", "audio.m4a"]
MIDI = ["melody.mid", "drums.mid", "multi.mid"]


def make_input(target: str, rng: random.Random, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """(file extension, bytes) of one input for ``target``."""
    if target in ("tags", "decode"):
        name, other = rng.choice(AUDIO), rng.choice(AUDIO)
        return name[name.index(".") :], fuzzing.mutate(seeds[name], fuzzing.random_ops(rng), seeds[other])
    if target in ("midi", "render"):
        name = rng.choice(MIDI)
        ops = fuzzing.random_ops(rng, 3)
        if rng.random() < 0.25:
            return ".mid", fuzzing.mutate(seeds[name], ops, seeds["multi.mid"], skew=False)
        return ".mid", fuzzing.mutate_midi(seeds[name], ops, seeds["multi.mid"])
    if target == "m3u":
        return rng.choice((".m3u", ".m3u8")), fuzzing.random_m3u(rng)
    return ".xspf", fuzzing.random_xspf(rng)


def _worker(conn, scratch: str, limit_s: float, fluidsynth: bool) -> None:
    from tests.robustness.helpers import Hang, time_limit

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # decoders chatter on stdout/stderr (mpg123, FluidSynth)
    os.dup2(devnull, 2)
    if not fluidsynth:
        from musicsim.audio import midi

        midi.fluidsynth_available = lambda: False
    folder = Path(scratch)
    while True:
        msg = conn.recv()
        if msg is None:
            return
        target, ext, data = msg
        path = fuzzing.write_input(folder, "input" + ext, data)
        try:
            with time_limit(limit_s):
                outcome = fuzzing.run_target(CHECKS[target], path)
        except Hang:
            outcome = f"hang: more than {limit_s:.0f} s"
        except AssertionError as e:
            outcome = f"crash: contract broken: {str(e)[:300]}"
        except BaseException as e:  # noqa: BLE001 - everything else is what we hunt
            where = traceback.extract_tb(e.__traceback__)[-1]
            outcome = f"crash: {type(e).__name__}: {str(e)[:200]} at {Path(where.filename).name}:{where.lineno}"
        conn.send(outcome)


class Worker:
    def __init__(self, ctx, scratch: str, limit_s: float, fluidsynth: bool) -> None:
        self.parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, scratch, limit_s, fluidsynth), daemon=True)
        self.proc.start()
        child.close()

    def run(self, msg, timeout: float) -> str | None:
        """The outcome, or None when the worker hung or died (it is then gone)."""
        try:
            self.parent.send(msg)
            if self.parent.poll(timeout):
                return self.parent.recv()
        except (EOFError, OSError, BrokenPipeError):
            pass
        self.kill()
        return None

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)

    def close(self) -> None:
        try:
            self.parent.send(None)
        except OSError:
            pass
        self.proc.join(5)
        self.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--targets", default=",".join(CHECKS))
    ap.add_argument("--limit-s", type=float, default=20.0, help="time limit per call")
    ap.add_argument("--out", default=None, help="folder for crashing inputs (default: a temporary one)")
    ap.add_argument("--no-fluidsynth", action="store_true", help="render MIDI with the sine fallback only")
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(CHECKS)
    if unknown:
        ap.error(f"unknown targets {sorted(unknown)}; choose from {sorted(CHECKS)}")
    out = Path(args.out or tempfile.mkdtemp(prefix="musicsim-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="musicsim-fuzz-work-"))
    seeds = {name: p.read_bytes() for name, p in fuzzing.make_seeds(work / "seeds").items()}
    (work / "scratch").mkdir()
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    fluid = not args.no_fluidsynth
    print(
        f"fuzzing {', '.join(targets)} for {args.minutes:g} min, seed {args.seed}, "
        f"{args.limit_s:g} s per call; {fuzzing.environment_note()}; render with "
        f"{'FluidSynth when available' if fluid else 'sine tones'}",
        flush=True,
    )
    stats: dict[str, Counter] = defaultdict(Counter)
    crashes: list[str] = []
    worker = Worker(ctx, str(work / "scratch"), args.limit_s, fluid)
    weights = [WEIGHTS[t] for t in targets]
    t0 = time.monotonic()
    end = t0 + 60 * args.minutes
    last_report = t0
    i = 0
    try:
        while time.monotonic() < end:
            rng = random.Random(f"{args.seed}-{i}")
            target = rng.choices(targets, weights)[0]
            ext, data = make_input(target, rng, seeds)
            outcome = worker.run((target, ext, data), args.limit_s + 30)
            if outcome is None:
                code = worker.proc.exitcode
                outcome = (
                    "hang: worker did not answer" if code is None or code == -9 else f"crash: worker died (exit {code})"
                )
                worker = Worker(ctx, str(work / "scratch"), args.limit_s, fluid)
            kind = outcome.split(":")[0]
            stats[target][kind] += 1
            if kind in ("crash", "hang"):
                name = f"{target}-{i:07d}{ext}"
                (out / name).write_bytes(data)
                (out / (name + ".txt")).write_text(f"{outcome}\nreproduce: --seed {args.seed}, input {i}\n")
                crashes.append(f"{name}: {outcome}")
                print(f"  {kind.upper()} {name}: {outcome}", flush=True)
            i += 1
            now = time.monotonic()
            if now - last_report > 60:
                last_report = now
                print(f"  {now - t0:5.0f} s: {i} inputs, {len(crashes)} crashes/hangs", flush=True)
    finally:
        worker.close()
        shutil.rmtree(work, ignore_errors=True)
    took = time.monotonic() - t0
    print(f"\n{i} inputs in {took:.0f} s ({i / took:.1f}/s); crashes and hangs: {len(crashes)}")
    for t in targets:
        s = stats[t]
        print(
            f"  {t:7s} tried {sum(s.values()):6d}  ok {s['ok']:6d}  refused {s['refused']:6d}  "
            f"crashes {s['crash']:3d}  hangs {s['hang']:3d}"
        )
    if crashes:
        print(f"crashing inputs saved in {out}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())

"""Musical descriptors: what they cost the scan, and how accurate they are.

    python tests/benchmarks/bench_descriptors.py cost LIBRARY [--rounds 1]
    python tests/benchmarks/bench_descriptors.py accuracy [--midi MIDI_DIR] [--generated 48] [--seconds 60] [--first-pass] [--excerpt 20 12]
    python tests/benchmarks/bench_descriptors.py loudness [--library LIBRARY]

``cost``: scans LIBRARY into fresh databases with and without descriptors (alternating, the
same workers), and prints the wall time of each and the descriptors' own seconds summed over
the worker processes. ``accuracy``: renders MIDI files of known tempo and key with FluidSynth
(generated with pretty_midi, and real ones from MIDI_DIR, e.g. the dev library's midi/
folder, whose tempo and key signature events are the truth) and reports tempo accuracy
(within 4 %; and allowing double / half / triple / third) and the MIREX weighted key score
(1 same key, 0.5 a fifth, 0.3 relative, 0.2 parallel). ``loudness``: generated signals of
known level against pyloudnorm's reference meter.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musicsim.audio.descriptors import EXCERPT_SECONDS, PITCHES, compute  # noqa: E402

SR = 22050


# --- cost ------------------------------------------------------------------------------------------


def analyse_without_descriptors(path: str, params):  # runs in the scan's worker processes
    import musicsim.audio.descriptors as d
    from musicsim.scan import pipeline

    d.describe = lambda chunks, sr: None  # type: ignore[assignment]
    return pipeline.analyse_file(path, params)


def _scan(library: str, describe: bool) -> tuple[float, float, int]:
    import musicsim.library.scan as libscan
    from musicsim.config import Config
    from musicsim.library import Library
    from musicsim.scan import pipeline

    spent = [0.0]
    real_store = libscan._store

    def store(db, index, embedder, entry, result, rep, mel_writer=None):
        spent[0] += (result.get("descriptors") or {}).get("seconds", 0.0)
        return real_store(db, index, embedder, entry, result, rep, mel_writer)

    libscan._store = store  # type: ignore[assignment]
    real_fn = pipeline.analyse_file
    if not describe:
        pipeline.analyse_file = analyse_without_descriptors  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp, Library(Path(tmp) / "b.db", config=Config.load({})) as lib:
            t0 = time.perf_counter()
            rep = lib.scan([library])
            return time.perf_counter() - t0, spent[0], rep.analysed
    finally:
        libscan._store = real_store  # type: ignore[assignment]
        pipeline.analyse_file = real_fn  # type: ignore[assignment]


def cost(args: argparse.Namespace) -> None:
    walls: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for describe in (False, True):
            wall, spent, n = _scan(args.library, describe)
            walls[describe].append(wall)
            extra = f", descriptors {spent:.1f} s summed over workers ({spent / max(n, 1) * 1000:.0f} ms/track)"
            print(
                f"{'with' if describe else 'without'} descriptors: {n} tracks in {wall:.1f} s{extra if describe else ''}"
            )
    a, b = min(walls[False]), min(walls[True])
    print(f"scan time: {a:.1f} s without, {b:.1f} s with descriptors: {100 * (b - a) / a:+.1f} %")


# --- accuracy --------------------------------------------------------------------------------------


def mirex(est: tuple[str, str] | None, ref: tuple[str, str]) -> float:
    """MIREX key score: 1 same, 0.5 a perfect fifth (either way), 0.3 relative, 0.2 parallel."""
    if est is None:
        return 0.0
    (et, em), (rt, rm) = est, ref
    e, r = PITCHES.index(et), PITCHES.index(rt)
    if em == rm and e == r:
        return 1.0
    if em == rm and (e - r) % 12 in (5, 7):
        return 0.5
    if em != rm and ((rm == "major" and (e - r) % 12 == 9) or (rm == "minor" and (e - r) % 12 == 3)):
        return 0.3
    if em != rm and e == r:
        return 0.2
    return 0.0


def tempo_ok(est: float | None, ref: float, *, octave: bool) -> bool:
    if not est:
        return False
    factors = (1.0, 2.0, 0.5, 3.0, 1 / 3) if octave else (1.0,)
    return any(abs(est - ref * f) <= 0.04 * ref * f for f in factors)


def generated_midi(n: int, seed: int = 0):
    """pretty_midi pieces: random tempo 60-180, key, mode; chords and a bass line on piano or
    strings, with drums on channel 10 in half of them."""
    import pretty_midi

    rng = np.random.default_rng(seed)
    for i in range(n):
        tempo = float(rng.uniform(60, 180))
        tonic, mode = int(rng.integers(12)), ("major", "minor")[i % 2]
        pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
        inst = pretty_midi.Instrument(program=int(rng.choice([0, 4, 24, 48])))
        beat = 60.0 / tempo
        third = 3 if mode == "minor" else 4
        scale = [0, 2, third, 5, 7, 8 if mode == "minor" else 9, 10 if mode == "minor" else 11]
        for bar in range(8):
            degree = (0, 5, 7, 0, 0, 3 if mode == "major" else 8, 7, 0)[bar]
            root = 48 + tonic + degree
            ch_third = 4 if degree == 7 else (third if degree in (0, 5) else (3 if mode == "major" else 4))
            t0 = bar * 4 * beat
            for m in (root - 12, root, root + ch_third, root + 7):
                inst.notes.append(pretty_midi.Note(80, m, t0, t0 + 4 * beat * 0.95))
            for b in range(4):  # a melody in the scale, on the beat
                m = 72 + tonic + scale[int(rng.integers(len(scale)))]
                inst.notes.append(pretty_midi.Note(90, m, t0 + b * beat, t0 + (b + 0.9) * beat))
        pm.instruments.append(inst)
        if i % 2 == 0:
            drums = pretty_midi.Instrument(program=0, is_drum=True)
            for b in range(32):
                drums.notes.append(pretty_midi.Note(100, 36 if b % 2 == 0 else 38, b * beat, b * beat + 0.1))
                drums.notes.append(pretty_midi.Note(70, 42, (b + 0.5) * beat, (b + 0.5) * beat + 0.05))
            pm.instruments.append(drums)
        yield f"generated-{i}", pm, tempo, (PITCHES[tonic], mode)


def real_midi(folder: str):
    """MIDI files whose first tempo and key signature events are the truth (files without a key
    signature give a tempo only)."""
    import pretty_midi

    for path in sorted(Path(folder).rglob("*.mid")):
        try:
            pm = pretty_midi.PrettyMIDI(str(path))
        except Exception:  # noqa: BLE001 - a file pretty_midi cannot read is left out
            continue
        _, tempi = pm.get_tempo_changes()
        if len(tempi) == 0:
            continue
        key = None
        if pm.key_signature_changes:
            name = pretty_midi.key_number_to_key_name(pm.key_signature_changes[0].key_number)
            tonic, mode = name.split()
            key = (_spelling(tonic), "major" if mode == "Major" else "minor")
        yield path.name, pm, float(tempi[0]), key


def _spelling(tonic: str) -> str:
    flats = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb"}
    return flats.get(tonic, tonic)


def _render(pm, seconds: float = 60.0) -> np.ndarray:
    from musicsim.audio.midi import find_soundfont

    sf, _ = find_soundfont(None)
    y = pm.fluidsynth(fs=SR, synthesizer=str(sf)) if sf else pm.synthesize(fs=SR)  # as musicsim.audio.midi renders
    return np.asarray(y[: int(seconds * SR)], dtype=np.float32)


def _as_scanned(y: np.ndarray, first_pass: bool) -> list[np.ndarray]:
    """The chunks a scan hands the descriptors: the rendering whole, or (``first_pass``) the
    first pass's windows of it, placed as :func:`musicsim.audio.decode.decode_for_analysis`
    places them."""
    from musicsim.audio.decode import first_pass_windows, window_starts
    from musicsim.config import Config

    w = Config().window_seconds
    total = len(y) / SR
    n = first_pass_windows(total, w)
    if not first_pass or total <= n * w:
        return [y]
    return [y[int(s * SR) : int(s * SR) + int(w * SR)] for s in window_starts(total, n, w)]


def accuracy(args: argparse.Namespace) -> None:
    sources = [("generated (pretty_midi)", list(generated_midi(args.generated)))]
    if args.midi:
        sources.append((f"real MIDI ({args.midi})", list(real_midi(args.midi))))
    for title, items in sources:
        t_exact = dict.fromkeys(args.excerpt, 0)
        t_oct = dict.fromkeys(args.excerpt, 0)
        keys: dict[float, list[float]] = {e: [] for e in args.excerpt}
        for name, pm, tempo, key in items:
            chunks = _as_scanned(_render(pm, args.seconds), args.first_pass)  # rendered once for every excerpt
            for excerpt in args.excerpt:
                d = compute(chunks, SR, excerpt_seconds=excerpt)
                t_exact[excerpt] += tempo_ok(d.tempo, tempo, octave=False)
                t_oct[excerpt] += tempo_ok(d.tempo, tempo, octave=True)
                est = (d.key, d.mode) if d.key and d.mode else None
                if key is not None:
                    keys[excerpt].append(mirex(est, key))
                if args.verbose:
                    print(f"  {name} ({excerpt:g} s): tempo {tempo:.1f} -> {d.tempo}, key {key} -> {est}")
        n = len(items)
        for excerpt in args.excerpt:
            a, b = t_exact[excerpt], t_oct[excerpt]
            print(
                f"{title}, {excerpt:g}-s excerpt: {n} files; tempo within 4 %: {a}/{n} = {a / max(n, 1):.1%}, "
                f"allowing octave errors: {b}/{n} = {b / max(n, 1):.1%}"
            )
            if keys[excerpt]:
                k = keys[excerpt]
                exact = sum(v == 1.0 for v in k)
                print(
                    f"  key: MIREX weighted score {np.mean(k):.3f} over {len(k)} files with a key "
                    f"signature; exactly right {exact}/{len(k)}"
                )


def loudness_check(args: argparse.Namespace) -> None:
    import pyloudnorm

    from musicsim.audio.descriptors import loudness

    rng = np.random.default_rng(0)
    meter = pyloudnorm.Meter(SR)
    worst = 0.0
    worst_target = 0.0
    for i, target in enumerate((-40.0, -30.0, -23.0, -16.0, -9.0) * 2):
        t = np.arange(30 * SR) / SR
        if i < 5:  # tones with a quiet passage (so that the gates matter)
            y = np.sin(2 * np.pi * rng.uniform(100, 4000) * t) * np.where(t % 10 < 7, 1.0, 0.05)
        else:  # noise
            y = rng.standard_normal(t.size)
        y = pyloudnorm.normalize.loudness(y, meter.integrated_loudness(y), target)
        ours, _ = loudness(y.astype(np.float32), SR)
        ref = meter.integrated_loudness(y)
        worst = max(worst, abs(ours - ref))
        worst_target = max(worst_target, abs(ours - target))
    print(
        f"loudness: 10 generated signals from -40 to -9 LUFS: largest difference from pyloudnorm "
        f"{worst:.3f} LU, from the level set {worst_target:.3f} LU"
    )
    if args.library:
        _loudness_on_music(args.library)


def _loudness_on_music(library: str) -> None:
    """The scan's loudness (from the spectra of 100-ms steps, for 30 s or more) against BS.1770
    by filtering every sample (pyloudnorm's K-weighting and gating), on each decoded track of
    LIBRARY, whole."""
    from scipy.signal import sosfilt

    from musicsim.audio import descriptors as d
    from musicsim.audio.decode import decode_for_analysis
    from musicsim.scan.walker import walk

    diffs = []
    for entry in walk([library]):
        try:
            y = np.concatenate(decode_for_analysis(str(entry.path), sr=SR, windows=0, max_seconds=720.0).chunks)
        except Exception as e:  # noqa: BLE001 - a file the benchmark cannot decode is skipped, and said
            print(f"  skipped {entry.path}: {e}")
            continue
        if y.size < d._FILTER_BELOW * SR:
            continue
        ours, _ = d.loudness(y, SR)
        step = int(0.1 * SR)
        k = sosfilt(d._k_weighting(SR), y.astype(np.float64))
        k = np.pad(k, (0, -k.size % step)).reshape(-1, step)
        ref = d._gated((k * k).sum(axis=1), step, 4, int(np.round((y.size / SR - 0.4) / 0.1)) + 1, relative=-10.0)
        if ours is not None and ref is not None:
            diffs.append(abs(ours - ref))
    if diffs:
        v = np.array(diffs)
        print(
            f"loudness from spectra against filtering, {v.size} tracks of {library} (30 s or longer, whole): "
            f"median {np.median(v):.3f} LU, 90th percentile {np.percentile(v, 90):.3f}, largest {v.max():.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cost")
    c.add_argument("library")
    c.add_argument("--rounds", type=int, default=1)
    a = sub.add_parser("accuracy")
    a.add_argument("--midi", help="a folder of real MIDI files")
    a.add_argument("--generated", type=int, default=48)
    a.add_argument("--seconds", type=float, default=60.0, help="render at most this much of each piece")
    a.add_argument(
        "--first-pass",
        action="store_true",
        help="describe the first pass's windows of each rendering, as a default scan does, not the whole",
    )
    a.add_argument(
        "--excerpt",
        type=float,
        nargs="+",
        default=[EXCERPT_SECONDS],
        help="seconds of each track that rhythm and key are read from (several: compared on the same renderings)",
    )
    a.add_argument("-v", "--verbose", action="store_true")
    lo = sub.add_parser("loudness")
    lo.add_argument("--library", help="also compare the scan's loudness with filtering on this library's tracks")
    args = ap.parse_args()
    {"cost": cost, "accuracy": accuracy, "loudness": loudness_check}[args.what](args)


if __name__ == "__main__":
    main()

"""Leave-one-library-out evaluation: ``python -m trainer.suite SUITE``.

``SUITE`` holds evaluation libraries, one folder each, and each library one sub-folder per
label (a soundtrack, an artist). For every library, in one run:

1. the default model is fine-tuned on the library as a person's library would be: its files
   copied into one flat folder under names that say nothing (a hash of the path), their tags
   removed from the copies, for ``minutes`` (or ``steps``) on ``threads`` CPU threads, no labels;
2. the default, the fine-tuned model, MFCC mean/std, the untrained network and Musly (when
   ``pymusly`` is installed; 30-s excerpts, its ``timbre`` method) are evaluated on the
   library's labels (:func:`trainer.evaluate.evaluate_folder`, decoded as a library scans);

then one table prints every library's rows and their mean over the libraries. Finished
fine-tunes are kept in the work folder (``--work``), so a run that was stopped goes on where it
was. Musly has no vectors: its rows have precision@5 and 1-NN only.
``tests/benchmarks/suite_libraries.sh SUITE`` builds the three libraries of the protocol from
the allowed Debian packages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see trainer/__main__.py

import numpy as np

from musicsim.jobs import CancelToken, ProgressFn, report
from trainer.evaluate import (
    METRIC_NAMES,
    METRICS,
    evaluate_folder,
    knn_from_distances,
    labelled_files,
    library_decoding,
    metric_cell,
)

ROWS = ("default", "fine-tuned", "MFCC mean/std", "untrained network", "Musly")


def suite_libraries(suite: str | os.PathLike) -> list[Path]:
    """The evaluation libraries of ``suite``: its sub-folders whose own sub-folders hold music."""
    root = Path(suite).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    libs = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".") and labelled_files(p)]
    if not libs:
        raise ValueError(f"{root}: no library folders with labelled sub-folders of music")
    return libs


def flat_copy(library: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Copy every labelled music file of ``library`` into ``dest``, one folder, each named by a
    hash of its path (nothing of the label or the title), and remove the copy's tags: what a
    fine-tune sees of the library is its sound. The library's own files are only read."""
    import mutagen

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = Path(library).expanduser().absolute()
    out = []
    for path, _label in labelled_files(root):
        rel = str(Path(path).relative_to(root))
        target = dest / (hashlib.sha1(rel.encode()).hexdigest()[:16] + Path(path).suffix.lower())
        if not target.exists():
            part = target.with_name(target.name + ".part")
            shutil.copyfile(path, part)  # a copy, never a link: the tags are removed from it
            try:
                tagged = mutagen.File(part)
                if tagged is not None and tagged.tags is not None:
                    tagged.delete()
            except mutagen.MutagenError:
                pass  # a format mutagen cannot read (MIDI) has no tags it could remove
            part.rename(target)
        out.append(target)
    return out


def fine_tune(
    flat: Path,
    run_dir: Path,
    *,
    minutes: float | None,
    steps: int | None,
    threads: int,
    cache: str | None,
    recipe: dict | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Fine-tune the default model on ``flat`` on the CPU (no labels, as the app's fine-tune
    does), or reuse the finished run of the same budget and recipe recorded in ``run_dir``;
    ``recipe``: further :class:`~trainer.options.TrainOptions` fields. Returns ``{"model",
    "steps", "seconds", ...}``."""
    recipe = dict(recipe or {})
    done = run_dir / "suite-finetune.json"
    if done.exists():
        rec = json.loads(done.read_text())
        same = rec.get("minutes") == minutes and rec.get("steps_asked") == steps and rec.get("recipe", {}) == recipe
        if Path(rec["model"]).exists() and same:
            return rec
        if run_dir.exists():  # another budget or recipe: a new run, not a resumed one
            shutil.rmtree(run_dir)
    from trainer.options import TrainOptions
    from trainer.train import train

    opts = TrainOptions(
        folders=[str(flat)],
        out=str(run_dir),
        name=f"suite-{run_dir.name}",
        cache=cache,
        device="cpu",
        steps=steps,
        max_minutes=minutes,
        threads=threads,
        **recipe,
    )
    res = train(opts, decode=library_decoding(), progress=progress, cancel=cancel)
    if res.cancelled or not res.model_path:
        raise RuntimeError(f"the fine-tune on {flat} was cancelled")
    rec = {
        "model": res.model_path,
        "steps": res.steps,
        "seconds": res.seconds,
        "minutes": minutes,
        "steps_asked": steps,
        "recipe": recipe,
        "stopped": res.stopped,
    }
    done.write_text(json.dumps(rec))
    return rec


def musly_metrics(files: list[str], labels: list[str], excerpt: float = 30.0) -> dict | None:
    """Precision@5 and 1-NN of Musly's similarity (``timbre``, ``excerpt`` seconds from the
    middle of each track, as its command line), over the tracks Musly can analyse; None
    without ``pymusly``."""
    try:
        import pymusly
    except ImportError:
        return None
    pymusly.set_musly_loglevel(0)
    box = pymusly.MuslyJukebox("timbre")
    tracks, kept = [], []
    for path, label in zip(files, labels):
        try:
            tracks.append(box.track_from_audiofile(path, excerpt, -48.0))
            kept.append(label)
        except pymusly.MuslyError:  # shorter than Musly's analysis frame, or a format it cannot read
            continue
    if len(tracks) < 6:
        return {"tracks": len(tracks), "failed": len(files) - len(tracks)}
    rng = np.random.default_rng(0)
    style = [tracks[i] for i in rng.permutation(len(tracks))[:1000]]  # Musly's advice: at most 1,000, random
    box.set_style(style)
    pairs = list(enumerate(tracks))
    box.add_tracks(pairs)
    D = np.array([box.compute_similarity(p, pairs) for p in pairs], np.float64)  # Musly's is a distance
    lab = np.asarray(kept)
    p5, nn1 = knn_from_distances(D, lab, 5, np.ones(len(lab), bool))
    return {"p@5": p5, "1nn": nn1, "tracks": len(tracks), "failed": len(files) - len(tracks)}


def run_suite(
    suite: str | os.PathLike,
    *,
    work: str | os.PathLike,
    minutes: float | None = 15.0,
    steps: int | None = None,
    threads: int = 2,
    seeds: int = 5,
    cache: str | None = None,
    device: str = "cpu",
    workers: int = 0,
    musly: bool = True,
    recipe: dict | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Run the protocol on every library of ``suite``; returns ``{"libraries": {name: {"tracks",
    "labels", "finetune", "rows": {row: metrics}}}, "mean": {row: metrics}, "seconds"}``."""
    import torch

    t0 = time.perf_counter()
    work = Path(work)
    libs = suite_libraries(suite)
    out: dict = {
        "suite": str(suite),
        "libraries": {},
        "minutes": minutes,
        "steps": steps,
        "threads": threads,
        "recipe": dict(recipe or {}),
    }
    for i, lib in enumerate(libs):
        report(progress, "suite", i, len(libs), lib.name)
        flat = work / lib.name / "flat"
        flat_copy(lib, flat)
        ft = fine_tune(
            flat,
            work / lib.name / "run",
            minutes=minutes,
            steps=steps,
            threads=threads,
            cache=cache,
            recipe=recipe,
            progress=progress,
            cancel=cancel,
        )
        torch.set_num_threads(threads)
        res = evaluate_folder(
            lib, compare=[ft["model"]], cache=cache, device=device, workers=workers, seeds=seeds, cancel=cancel
        )
        default, tuned = res["order"][0], res["order"][1]
        rows = {
            "default": res["methods"][default],
            "fine-tuned": res["methods"][tuned],
            "MFCC mean/std": res["methods"]["MFCC mean/std"],
            "untrained network": res["methods"]["untrained network"],
        }
        if musly:
            labelled = labelled_files(lib)
            got = musly_metrics([p for p, _ in labelled], [lab for _, lab in labelled])
            if got is not None:
                rows["Musly"] = got
        out["libraries"][lib.name] = {"tracks": res["tracks"], "labels": res["labels"], "finetune": ft, "rows": rows}
    out["mean"] = {
        row: {
            m: _mean([lib["rows"][row].get(m) for lib in out["libraries"].values() if row in lib["rows"]])
            for m in METRICS
        }
        for row in ROWS
        if any(row in lib["rows"] for lib in out["libraries"].values())
    }
    out["seconds"] = time.perf_counter() - t0
    return out


def _mean(values: list) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and v == v]
    return float(np.mean(vals)) if vals and len(vals) == len(values) else None


def format_suite(result: dict) -> str:
    """One table: each library's rows, then the mean over the libraries and the fine-tune's gain."""
    budget = f"{result['minutes']:g} min" if result.get("minutes") else f"{result.get('steps')} steps"
    recipe = result.get("recipe") or {}
    if recipe.get("until_plateau"):
        budget = f"until it stops improving, at most {budget}"
    budget += "".join(f", {k.replace('_', ' ')} {v}" for k, v in recipe.items() if k != "until_plateau")
    lines = [
        f"Suite {result['suite']}: {len(result['libraries'])} libraries; fine-tune {budget} on "
        f"{result['threads']} CPU threads, no labels; folders flattened, tags removed for the fine-tune"
    ]
    head = f"{'library':<16} {'method':<18} " + " ".join(f"{METRIC_NAMES[m]:>13}" for m in METRICS)
    lines += [head, "-" * len(head)]

    def block(name: str, rows: dict) -> None:
        for row in ROWS:
            if row in rows:
                lines.append(f"{name:<16} {row:<18} " + " ".join(metric_cell(rows[row].get(m)) for m in METRICS))
                name = ""

    for name, lib in result["libraries"].items():
        labels = ", ".join(f"{k} {v}" for k, v in lib["labels"].items())
        lines.append(f"{name}: {lib['tracks']} tracks ({labels}); fine-tune {lib['finetune']['steps']} steps")
        if lib["finetune"].get("stopped"):
            lines.append(
                f"  (cooled down when {lib['finetune']['stopped']}, {lib['finetune']['seconds'] / 60:.1f} min)"
            )
        block(name[:16], lib["rows"])
    block("mean", result["mean"])
    base, tuned = result["mean"].get("default", {}), result["mean"].get("fine-tuned", {})
    gains = [
        f"{METRIC_NAMES[m]} {100 * (tuned[m] - base[m]):+.1f}"
        for m in METRICS
        if base.get(m) is not None and tuned.get(m) is not None
    ]
    lines.append("fine-tune gain over the default, mean over libraries (points): " + ", ".join(gains))
    lines.append(f"({result['seconds']:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m trainer.suite",
        description="Leave one library out: fine-tune the default on each library of SUITE (a flat, "
        "tag-free copy, no labels) and evaluate it beside the default, MFCC statistics, the untrained "
        "network and Musly; one table of every library and the mean over them.",
    )
    ap.add_argument("suite", help="folder of evaluation libraries, each with one sub-folder per label")
    ap.add_argument("--minutes", type=float, default=15.0, help="each fine-tune's time budget (default 15)")
    ap.add_argument("--steps", type=int, help="bound each fine-tune by optimizer steps instead of time")
    ap.add_argument(
        "--threads", type=int, default=2, help="CPU threads of the fine-tunes and the evaluation (default 2)"
    )
    ap.add_argument("--seeds", type=int, default=5, help="evaluation seeds of the probe and NMI (default 5)")
    ap.add_argument("--cache", help="mel cache folder (default: musicsim's cache folder)")
    ap.add_argument("--device", default="auto", help="device of the evaluation (the fine-tunes run on the CPU)")
    ap.add_argument("--workers", type=int, default=0, help="decoding processes (0: one per core, at most 8)")
    ap.add_argument("--work", help="where the flat copies and fine-tunes go (default: <cache>/suite/<SUITE's name>)")
    ap.add_argument(
        "--until-plateau",
        action="store_true",
        help="each fine-tune stops when it stops improving, within --minutes (python -m trainer --until-plateau)",
    )
    ap.add_argument(
        "--mutual-positives", type=float, default=0.0, metavar="P", help="the fine-tunes' --mutual-positives"
    )
    ap.add_argument("--no-musly", action="store_true", help="no Musly rows even when pymusly is installed")
    ap.add_argument("--json", help="also write the result as JSON to this file")
    a = ap.parse_args(argv)
    from musicsim import paths

    work = a.work or str(paths.cache_dir() / "suite" / Path(a.suite).expanduser().absolute().name)
    res = run_suite(
        a.suite,
        work=work,
        minutes=None if a.steps else a.minutes,
        steps=a.steps,
        threads=a.threads,
        seeds=a.seeds,
        cache=a.cache,
        device=a.device,
        workers=a.workers,
        musly=not a.no_musly,
        recipe={
            **({"until_plateau": True} if a.until_plateau else {}),
            **({"mutual_positives": a.mutual_positives} if a.mutual_positives else {}),
        },
    )
    print(format_suite(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


__all__ = ["flat_copy", "format_suite", "main", "musly_metrics", "run_suite", "suite_libraries"]


if __name__ == "__main__":
    sys.exit(main())

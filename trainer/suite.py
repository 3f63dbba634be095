"""Leave-one-library-out evaluation: ``python -m trainer.suite SUITE``.

``SUITE`` holds evaluation libraries, one folder each, and each library one sub-folder per
label (a soundtrack, an artist). For every library, in one run:

1. the default model is fine-tuned on the library as a person's library would be: its files
   copied into one flat folder under names that say nothing (a hash of the path), their tags
   removed from the copies, for ``minutes`` (or ``steps``) on ``threads`` CPU threads, no labels;
2. the default, the fine-tuned model, MFCC mean/std, the untrained network and Musly (when
   ``pymusly`` is installed; 30-s excerpts, its ``timbre`` method) are evaluated on the
   library's labels (:func:`trainer.evaluate.evaluate_folder`, decoded as a library scans);

then one table prints every library's rows and their mean over the libraries.

A candidate default (``--candidate LIB=CHECKPOINT``, one per library, each trained without that
library's music) adds a "candidate" row, and that library's fine-tune starts from it: the
protocol for judging a new default without evaluating a model on music it trained on (the
suite refuses a candidate whose recorded training folders hold the library). Finished
fine-tunes are kept in the work folder (``--work``), so a run that was stopped goes on where it
was; one is reused only if it trained with the same options (defaults resolved) from the same
model. Musly has no vectors: its rows have precision@5 and 1-NN only.
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
from trainer.arguments import add_recipe_arguments
from trainer.evaluate import (
    METRIC_NAMES,
    METRICS,
    evaluate_folder,
    knn_from_distances,
    labelled_files,
    library_decoding,
    metric_cell,
)
from trainer.options import TrainOptions, recipe_defaults
from trainer.setup import init_checksum

ROWS = ("default", "candidate", "fine-tuned", "MFCC mean/std", "untrained network", "Musly")
# where a fine-tune reads and writes, not what it learns: left out when a finished one is matched
_PLACE_FIELDS = ("folders", "db", "out", "name", "cache", "command", "log_every")


def trained_on(checkpoint: str | os.PathLike, library: str | os.PathLike) -> str | None:
    """The training folder recorded in ``checkpoint``'s card that holds ``library`` or lies
    inside it, or None: a model is never evaluated on music it trained on."""
    from musicsim.model.checkpoint import read_checkpoint

    card = read_checkpoint(str(checkpoint)).get("card") or {}
    lib = Path(library).expanduser().resolve()
    for folder in (card.get("data") or {}).get("folders") or []:
        f = Path(folder).expanduser().resolve()
        if f == lib or f in lib.parents or lib in f.parents:
            return str(folder)
    return None


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
    start: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Fine-tune the default model (or the checkpoint ``start``) on ``flat`` on the CPU (no
    labels, as the app's fine-tune does), or reuse the finished run in ``run_dir`` that trained
    with the same options from the same model; ``recipe``: further
    :class:`~trainer.options.TrainOptions` fields. Returns ``{"model", "steps", "seconds", ...}``."""
    recipe = {**(recipe or {}), **({"init": str(start)} if start else {})}
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
    # a finished run is matched on every option the trainer will use, with the defaults that
    # depend on the start filled in, and on the starting model's checksum: a fine-tune from
    # before a default changed (or the shipped model did) is another recipe, trained again
    resolved = recipe_defaults(opts, fine_tuning=True).to_dict()
    trained_with = {k: v for k, v in resolved.items() if k not in _PLACE_FIELDS}
    trained_with["start_checksum"] = init_checksum(opts)
    done = run_dir / "suite-finetune.json"
    if done.exists():
        rec = json.loads(done.read_text())
        if Path(rec["model"]).exists() and rec.get("trained_with") == trained_with:
            return rec
    if run_dir.exists():  # another budget, recipe or start: a new run, not a resumed one
        shutil.rmtree(run_dir)
    from trainer.train import train

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
        "trained_with": trained_with,
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
    candidates: dict[str, str] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Run the protocol on every library of ``suite``; returns ``{"libraries": {name: {"tracks",
    "labels", "finetune", "rows": {row: metrics}}}, "mean": {row: metrics}, "seconds"}``.
    ``candidates``: library name -> a candidate default trained without that library, the
    start of its fine-tune."""
    import torch

    t0 = time.perf_counter()
    work = Path(work)
    libs = suite_libraries(suite)
    candidates = dict(candidates or {})
    unknown = sorted(set(candidates) - {lib.name for lib in libs})
    if unknown:
        raise ValueError(f"{suite}: no library named {', '.join(unknown)} for a candidate")
    for lib in libs:
        if lib.name in candidates:
            if not Path(candidates[lib.name]).is_file():
                raise FileNotFoundError(f"{candidates[lib.name]}: no such checkpoint (candidate for {lib.name})")
            seen = trained_on(candidates[lib.name], lib)
            if seen:
                raise ValueError(
                    f"{candidates[lib.name]}: trained on {seen}, which holds {lib}: not a held-out library"
                )
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
        start = candidates.get(lib.name)
        ft = fine_tune(
            flat,
            work / lib.name / ("run" if start is None else f"run-{Path(start).stem}"),
            minutes=minutes,
            steps=steps,
            threads=threads,
            cache=cache,
            recipe=recipe,
            start=start,
            progress=progress,
            cancel=cancel,
        )
        torch.set_num_threads(threads)
        compare = ([start] if start else []) + [ft["model"]]
        res = evaluate_folder(
            lib, compare=compare, cache=cache, device=device, workers=workers, seeds=seeds, cancel=cancel
        )
        rows = {"default": res["methods"][res["order"][0]]}
        if start:
            rows["candidate"] = res["methods"][res["order"][1]]
        rows.update(
            {
                "fine-tuned": res["methods"][res["order"][len(compare)]],
                "MFCC mean/std": res["methods"]["MFCC mean/std"],
                "untrained network": res["methods"]["untrained network"],
            }
        )
        if musly:
            labelled = labelled_files(lib)
            got = musly_metrics([p for p, _ in labelled], [lab for _, lab in labelled])
            if got is not None:
                rows["Musly"] = got
        out["libraries"][lib.name] = {"tracks": res["tracks"], "labels": res["labels"], "finetune": ft, "rows": rows}
    started = {"candidate" in lib["rows"] for lib in out["libraries"].values()}
    out["mean"] = {
        row: _row_mean(out["libraries"].values(), row)
        for row in ROWS
        # a mean only of rows every library has, and of fine-tunes that all start from the same
        # kind of model: a candidate for some libraries is compared in format_suite's gains over
        # just those, never as a mean beside the others' means
        if all(row in lib["rows"] for lib in out["libraries"].values())
        and not (row == "fine-tuned" and len(started) > 1)
    }
    out["seconds"] = time.perf_counter() - t0
    return out


def _row_mean(libraries, row: str) -> dict:
    """Each metric of ``row`` averaged over ``libraries`` (results of :func:`run_suite`), None
    where a library lacks it."""
    return {m: _mean([lib["rows"][row].get(m) for lib in libraries]) for m in METRICS}


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

    def gains(a: dict, b: dict) -> str:
        return ", ".join(
            f"{METRIC_NAMES[m]} {100 * (b[m] - a[m]):+.1f}"
            for m in METRICS
            if a.get(m) is not None and b.get(m) is not None
        )

    libs = result["libraries"].values()
    with_candidate = [lib for lib in libs if "candidate" in lib["rows"]]
    if not with_candidate:
        lines.append(
            "fine-tune gain over the default, mean over libraries (points): "
            + gains(result["mean"].get("default", {}), result["mean"].get("fine-tuned", {}))
        )
    else:
        # each gain over the libraries that have both rows, so that a partial set of candidates
        # is still compared like with like
        where = "" if len(with_candidate) == len(libs) else f" ({len(with_candidate)} of {len(libs)} libraries)"
        lines.append(
            f"candidate's gain over the default{where} (points): "
            + gains(_row_mean(with_candidate, "default"), _row_mean(with_candidate, "candidate"))
        )
        lines.append(
            f"fine-tune's gain over the candidate it starts from{where} (points): "
            + gains(_row_mean(with_candidate, "candidate"), _row_mean(with_candidate, "fine-tuned"))
        )
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
    recipe_options = add_recipe_arguments(
        ap.add_argument_group(
            "fine-tune recipe", "passed on to each library's fine-tune (python -m trainer's options)"
        ),
        TrainOptions(),
    )
    ap.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="LIB=CHECKPOINT",
        help="a candidate default for library LIB, trained without it: a 'candidate' row, and LIB's fine-tune "
        "starts from it (repeat for each library)",
    )
    ap.add_argument("--no-musly", action="store_true", help="no Musly rows even when pymusly is installed")
    ap.add_argument("--json", help="also write the result as JSON to this file")
    a = ap.parse_args(argv)
    candidates = {}
    for item in a.candidate:
        lib, sep, path = item.partition("=")
        if not sep or not lib or not path:
            ap.error(f"--candidate {item}: expected LIB=CHECKPOINT")
        candidates[lib] = path
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
        # the TrainOptions fields the command sets, only where they differ from its defaults (the
        # recipe the table's heading names; a finished fine-tune is matched on every option resolved)
        recipe={k: getattr(a, k) for k in ("until_plateau", *recipe_options) if getattr(a, k) != ap.get_default(k)},
        candidates=candidates,
    )
    print(format_suite(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


__all__ = ["flat_copy", "format_suite", "main", "musly_metrics", "run_suite", "suite_libraries", "trained_on"]


if __name__ == "__main__":
    sys.exit(main())

"""Evaluate track embeddings on a labelled folder (sub-folders are labels).

Metrics, for the model and two baselines computed in the same run (MFCC mean/std and the
same network untrained):

* ``p@5``: kNN precision at 5 (share of a track's 5 nearest other tracks with its label);
* ``1nn``: leave-one-out 1-NN accuracy;
* ``probe``: 5-fold stratified logistic-regression accuracy on standardised vectors (C=1),
  averaged over 5 shuffles of the folds;
* ``nmi``: normalised mutual information of k-means (k = number of labels) with the labels;
* ``auroc``: outlier AUROC: each label in turn is held out as "unseen"; every track is scored
  by its distance to the nearest centroid of the known labels (a known track's own centroid
  leaves the track out); mean over held-out labels (or only ``holdout``).

Track vectors are pooled from segment vectors exactly as the library stores them for that
model (its ``pooling``: normalised mean, mean and spread, or multi-level; :func:`pool_segments`), unless
``--pooling`` asks for other or more rows. Network vectors (the model's and the untrained
network's) are then z-scored over the evaluated tracks and normalised, as a library compares
its tracks (:mod:`musicsim.index.norm`; ``--raw-vectors`` skips it); MFCC statistics are
z-scored over them. All are compared by Euclidean distance (of unit vectors: cosine).

``python -m trainer.evaluate FOLDER [--model PATH]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see trainer/__main__.py

import numpy as np
import torch

from musicsim.config import Config
from musicsim.index.norm import normalise_library
from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.melcache import CachedMel, DecodeSettings, MelCache
from musicsim.model.checkpoint import LoadedModel, default_model, load_model
from musicsim.model.embed import STD_WEIGHT, track_vector
from musicsim.model.resnet import POOLINGS, ModelConfig
from trainer.baselines import mfcc_stats, standardise, untrained_like

METRICS = ("p@5", "1nn", "probe", "nmi", "auroc")
METRIC_NAMES = {
    "p@5": "precision@5",
    "1nn": "1-NN (LOO)",
    "probe": "linear probe",
    "nmi": "k-means NMI",
    "auroc": "outlier AUROC",
}


def labelled_files(folder: str | os.PathLike) -> list[tuple[str, str]]:
    """(path, label) for every music file below a sub-folder of ``folder``; label = that sub-folder."""
    from musicsim.scan.walker import walk

    root = Path(folder).expanduser().absolute()
    out = []
    for e in walk([root]):
        rel = Path(e.path).relative_to(root)
        if len(rel.parts) >= 2:
            out.append((e.path, rel.parts[0]))
    return sorted(out)


def _unit(X: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(n > 0, n, 1.0)


POOLING_NAMES = {
    "mean": "mean",
    "meanstd": "mean+std",
    "multilevel": "multi-level",
    "multilevel3": "3-level",
    "multiband": "multi-band",
}


def pool_segments(
    vecs: np.ndarray, mode: str = "mean", std_weight: float = STD_WEIGHT, parts: tuple[int, ...] | None = None
) -> np.ndarray:
    """A track vector from its segment vectors ``[n, D]`` (or descriptors of these ``parts``:
    the embedding, then texture statistics), exactly as the library stores one for a model
    with that pooling (:func:`musicsim.model.embed.track_vector`)."""
    if mode not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}")
    return track_vector(vecs, mode, std_weight, parts=parts)


def pooled_config(loaded: LoadedModel, pooling: str | None = None) -> ModelConfig:
    """The model's configuration with another pooling (default: its own): what descriptor a
    track vector of that pooling is made from (:attr:`ModelConfig.descriptor_parts`, bands)."""
    return replace(loaded.config, pooling=pooling) if pooling else loaded.config


@torch.inference_mode()
def segment_vectors(
    loaded: LoadedModel,
    cached: list[CachedMel],
    *,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    cancel: CancelToken | None = None,
    pooling: str | None = None,
) -> list[np.ndarray]:
    """Segment descriptors ``[n_i, D]`` of every cached track (segments cut as the scanner cuts
    them): the embedding, then texture statistics (:meth:`ResNetEmbedding.descriptor`, as
    ``pooling`` takes them; default: the model's own pooling), so that every pooling that
    takes the same statistics can be evaluated from them (:func:`pool_segments`)."""
    from musicsim.model.embed import best_device

    dev = best_device(device) if isinstance(device, str) else device
    model = loaded.model.to(dev).eval()
    cfg = pooled_config(loaded, pooling)
    levels, bands = len(cfg.descriptor_parts), cfg.bands
    out: list[np.ndarray] = []
    pending, owners = [], []

    def flush():
        if not pending:
            return
        x = torch.cat(pending)
        vecs = (
            torch.cat(
                [model.descriptor(x[i : i + batch_size].to(dev), levels, bands) for i in range(0, len(x), batch_size)]
            )
            .float()
            .cpu()
            .numpy()
        )
        pos = 0
        for n in owners:
            out.append(vecs[pos : pos + n])
            pos += n
        pending.clear()
        owners.clear()

    total = 0
    for c in cached:
        if cancel is not None:
            cancel.check()
        segs, _ = c.segments(loaded.frontend)
        pending.append(segs)
        owners.append(len(segs))
        total += len(segs)
        if total >= 4 * batch_size:
            flush()
            total = 0
    flush()
    return out


def track_vectors(
    loaded: LoadedModel,
    cached: list[CachedMel],
    *,
    device: str | torch.device = "auto",
    batch_size: int = 256,
    cancel: CancelToken | None = None,
    pooling: str | None = None,
) -> np.ndarray:
    """Track vectors of cached tracks (``pooling``: see :func:`pool_segments`; default: the model's)."""
    cfg = pooled_config(loaded, pooling)
    segs = segment_vectors(loaded, cached, device=device, batch_size=batch_size, cancel=cancel, pooling=cfg.pooling)
    return np.stack([pool_segments(v, cfg.pooling, parts=cfg.descriptor_parts) for v in segs]).astype(np.float32)


def _knn(X: np.ndarray, labels: np.ndarray, k: int, queries: np.ndarray) -> tuple[float, float]:
    X = np.asarray(X, np.float64)
    sq = (X**2).sum(1)
    return knn_from_distances(sq[:, None] - 2 * X @ X.T + sq[None, :], labels, k, queries)


def knn_from_distances(D: np.ndarray, labels: np.ndarray, k: int, queries: np.ndarray) -> tuple[float, float]:
    """(precision@k, 1-NN accuracy) over the ``queries`` rows of a square distance matrix (a
    track is never its own neighbour)."""
    D = np.array(D, np.float64)
    np.fill_diagonal(D, np.inf)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    same = labels[order] == labels[:, None]
    return float(same[queries].mean()), float(same[queries, 0].mean())


def _probe(X: np.ndarray, labels: np.ndarray, seed: int, repeats: int = 5) -> float | None:
    """Mean accuracy of 5-fold stratified cross-validation, repeated over ``repeats`` shuffles
    (one 5-fold split of a small library moves the figure by several points)."""
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RepeatedStratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    uniq, counts = np.unique(labels, return_counts=True)
    ok = np.isin(labels, uniq[counts >= 2])
    if len(np.unique(labels[ok])) < 2:
        return None
    Xo, yo = X[ok], labels[ok]
    folds = int(min(5, np.unique(yo, return_counts=True)[1].max()))  # 5 unless every label is tiny
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    correct = total = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels with fewer than 5 tracks: sklearn warns, folds still valid
        for tr, te in splitter.split(Xo, yo):
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
            clf.fit(Xo[tr], yo[tr])
            correct += int((clf.predict(Xo[te]) == yo[te]).sum())
            total += len(te)
    return correct / total


def _nmi(X: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    k = len(np.unique(labels))
    if k < 2:
        return float("nan")
    pred = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    return float(normalized_mutual_info_score(labels, pred))


def _auroc(X: np.ndarray, labels: np.ndarray, holdout: str | None) -> float | None:
    from sklearn.metrics import roc_auc_score

    uniq = np.unique(labels)
    if len(uniq) < 3:
        return None
    held = [holdout] if holdout is not None else [u for u in uniq if (labels == u).sum() >= 2]
    sums = {u: X[labels == u].sum(0) for u in uniq}
    counts = {u: int((labels == u).sum()) for u in uniq}
    scores = []
    for h in held:
        known = [u for u in uniq if u != h]
        cents = np.stack([sums[u] / counts[u] for u in known])
        s = np.empty(len(X))
        for i in range(len(X)):
            c = cents.copy()
            if labels[i] != h and counts[labels[i]] > 1:
                j = known.index(labels[i])
                c[j] = (sums[labels[i]] - X[i]) / (counts[labels[i]] - 1)
            s[i] = np.sqrt(((c - X[i]) ** 2).sum(1)).min()
        scores.append(roc_auc_score(labels == h, s))
    return float(np.mean(scores))


def embedding_metrics(
    X: np.ndarray, labels, *, seed: int = 0, holdout: str | None = None, query_labels: list[str] | None = None
) -> dict:
    """All five metrics for vectors ``X`` (rows: tracks) and their labels."""
    labels = np.asarray(labels)
    q = np.isin(labels, query_labels) if query_labels else np.ones(len(labels), bool)
    p5, nn1 = _knn(X, labels, min(5, len(X) - 1), q)
    return {
        "p@5": p5,
        "1nn": nn1,
        "probe": _probe(X, labels, seed),
        "nmi": _nmi(X, labels, seed),
        "auroc": _auroc(X, labels, holdout),
    }


SEEDED = {"probe": _probe, "nmi": _nmi}  # the metrics that depend on the evaluation seed (folds, k-means starts)


def metrics_over_seeds(
    X: np.ndarray,
    labels,
    *,
    seed: int = 0,
    seeds: int = 1,
    holdout: str | None = None,
    query_labels: list[str] | None = None,
) -> dict:
    """:func:`embedding_metrics` averaged over evaluation seeds ``seed .. seed + seeds - 1``.

    On a library of a hundred tracks one seed moves the probe by up to ±1.5 points and NMI by
    up to ±7, so comparisons of models are made on the mean. The result also holds
    ``"per_seed"``: each seeded metric's value for every seed."""
    out = embedding_metrics(X, labels, seed=seed, holdout=holdout, query_labels=query_labels)
    labels = np.asarray(labels)
    per_seed = {k: [out[k]] for k in SEEDED}
    for s in range(seed + 1, seed + max(1, seeds)):  # k-NN and AUROC do not depend on the seed
        for k, metric in SEEDED.items():
            per_seed[k].append(metric(X, labels, s))
    per_seed = {k: [float(v) for v in vals] for k, vals in per_seed.items() if None not in vals}
    out.update({k: float(np.mean(vals)) for k, vals in per_seed.items()})
    out["per_seed"] = per_seed
    return out


def library_decoding(analysis: str | None = None, windows: int | None = None, window_seconds: float | None = None):
    """The decode settings a library scan uses by default (``analysis``: "fast" or "full",
    ``windows``, ``window_seconds`` override them), so that figures are those of the vectors
    a library stores."""
    cfg = Config.load({"analysis": analysis, "analysis_windows": windows, "window_seconds": window_seconds}, stored={})
    return DecodeSettings.from_config(cfg)


def evaluate_folder(
    folder: str | os.PathLike,
    *,
    model_path: str | None = None,
    cache: str | None = None,
    device: str = "auto",
    workers: int = 0,
    baselines: bool = True,
    holdout: str | None = None,
    query_labels: list[str] | None = None,
    compare: list[str] | None = None,
    combined: bool = False,
    pooling: str | tuple[str, ...] | None = None,
    seed: int = 0,
    seeds: int = 1,
    library_norm: bool = True,
    decode: DecodeSettings | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Evaluate a model (default: the shipped one) on ``folder``; sub-folders are labels.

    Returns ``{"folder", "tracks", "labels": {label: n}, "failed": [...], "methods": {name: {metric: value,
    "kind": ...}}, "order": [...], "seconds"}``. ``compare`` adds more checkpoints as rows;
    ``combined`` adds the model vector concatenated with z-scored MFCC statistics. ``pooling``:
    one or more of :data:`POOLINGS` (networks get one row per pooling); default: the model's
    own, which is what the library stores (the untrained baseline is pooled the same way).
    ``library_norm``: network vectors z-scored over the evaluated tracks, as a library of them
    would compare them (False: the stored vectors as they are). ``seeds``: the probe and NMI
    are the mean over evaluation seeds ``seed .. seed + seeds - 1`` (the vectors are made once).
    ``decode``: how tracks are decoded (default: as a library scans them, :func:`library_decoding`).
    """
    from musicsim.model.embed import best_device

    t0 = time.perf_counter()
    files = labelled_files(folder)
    if not files:
        raise ValueError(f"no music files in sub-folders of {folder}")
    loaded = load_model(model_path) if model_path else default_model()
    dev = best_device(device)
    decode = decode or library_decoding()
    mc = MelCache(cache, loaded.frontend, decode)
    n_workers = workers if workers > 0 else max(1, min(8, os.cpu_count() or 1))
    found, failed = mc.build([p for p, _ in files], device=dev, workers=n_workers, progress=progress, cancel=cancel)
    files = [(p, lab) for p, lab in files if p in found]
    cached = [found[p] for p, _ in files]
    labels = np.array([lab for _, lab in files])
    methods: dict[str, dict] = {}
    order = []

    def add(name: str, X: np.ndarray, kind: str, **info) -> None:
        if name in methods:  # a row is never overwritten: each keeps its own figures
            name = next(f"{name} #{i}" for i in range(2, len(order) + 3) if f"{name} #{i}" not in methods)
        report(progress, "evaluate", len(order), 0, name)
        methods[name] = {
            "kind": kind,
            **info,
            **metrics_over_seeds(X, labels, seed=seed, seeds=seeds, holdout=holdout, query_labels=query_labels),
        }
        order.append(name)

    if pooling is None:
        pooling = loaded.config.pooling
    poolings = [pooling] if isinstance(pooling, str) else list(pooling)

    def add_net(title: str, lm: LoadedModel, kind: str) -> dict[str, np.ndarray]:
        descriptors: dict[tuple, list[np.ndarray]] = {}  # poolings that take the same statistics share them
        out = {}
        for pm in poolings:
            cfg = pooled_config(lm, pm)
            key = (cfg.descriptor_parts, cfg.bands)
            if key not in descriptors:
                descriptors[key] = segment_vectors(lm, cached, device=dev, cancel=cancel, pooling=pm)
            out[pm] = np.stack([pool_segments(v, pm, parts=cfg.descriptor_parts) for v in descriptors[key]])
            if library_norm:
                out[pm] = normalise_library(out[pm])
            label = title if len(poolings) == 1 else f"{title} [{POOLING_NAMES[pm]}]"
            add(label, out[pm], kind, pooling=pm, checksum=lm.checksum, trained=lm.trained)
        return out

    Xm = add_net(f"model: {loaded.name}", loaded, "model")
    for path in compare or []:
        other = load_model(path)
        title = f"model: {other.name}"
        if any(name == title or name.startswith(f"{title} [") for name in methods):
            # two checkpoints of one name (runs of a recipe): tell the rows apart by file
            title = f"model: {other.name} ({Path(path).name})"
        add_net(title, other, "model")
    Xf = None
    if baselines or combined:
        Xf = standardise(np.stack([mfcc_stats(np.asarray(c.mel, np.float32)) for c in cached]))
    if baselines:
        add("MFCC mean/std", Xf, "baseline")
        add_net("untrained network", untrained_like(loaded.config, loaded.frontend), "baseline")
    if combined:
        add("model + MFCC", np.concatenate([Xm[poolings[0]], _unit(Xf) * 0.7], axis=1), "combined")
    uniq, counts = np.unique(labels, return_counts=True)
    return {
        "folder": str(folder),
        "tracks": len(files),
        "labels": dict(zip(uniq.tolist(), counts.tolist())),
        "failed": failed,
        "methods": methods,
        "order": order,
        "holdout": holdout,
        "query_labels": query_labels,
        "model": {"name": loaded.name, "checksum": loaded.checksum, "path": loaded.path},
        "library_norm": library_norm,
        "seeds": list(range(seed, seed + max(1, seeds))),
        "decode": asdict(decode),
        "seconds": time.perf_counter() - t0,
    }


def metric_cell(v) -> str:
    """A metric as a table cell 13 wide: three decimals, or "-" where there is none (None, NaN)."""
    return f"{v:>13.3f}" if isinstance(v, (int, float)) and v == v else f"{'-':>13}"


def format_report(result: dict) -> str:
    """A plain-text table of :func:`evaluate_folder`'s result."""
    labels = ", ".join(f"{k} {v}" for k, v in result["labels"].items())
    lines = [f"Evaluation on {result['folder']}: {result['tracks']} tracks, {len(result['labels'])} labels ({labels})"]
    if result.get("library_norm") is False:
        lines.append("network vectors compared as stored (--raw-vectors), not z-scored over these tracks")
    if result.get("query_labels"):
        lines.append(f"precision@5 / 1-NN over queries from: {', '.join(result['query_labels'])}")
    seeds = result.get("seeds") or []
    if len(seeds) > 1:
        lines.append(
            f"linear probe and k-means NMI: mean over evaluation seeds {seeds[0]}-{seeds[-1]} "
            "(probe folds and k-means starts)"
        )
    if result.get("failed"):
        lines.append(f"{len(result['failed'])} files could not be decoded and were left out")
    dec = result.get("decode")
    if dec:
        how = f"{dec['windows']} windows" if dec["windows"] else ("first pass" if dec.get("first_pass") else "full")
        lines.append(f"decoded: {how} ({dec['window_seconds']:g}-s windows)")
    width = max([len(n) for n in result["order"]] + [20])
    head = f"{'method':<{width}}  " + "  ".join(f"{METRIC_NAMES[m]:>13}" for m in METRICS)
    lines += [head, "-" * len(head)]
    for name in result["order"]:
        r = result["methods"][name]
        lines.append(f"{name:<{width}}  " + "  ".join(metric_cell(r.get(m)) for m in METRICS))
    lines.append(f"({result['seconds']:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m trainer.evaluate",
        description="Evaluate track embeddings on a folder whose sub-folders are labels, "
        "beside MFCC mean/std and untrained-network baselines.",
    )
    ap.add_argument("folder", help="folder with one sub-folder per label")
    ap.add_argument("--model", help="checkpoint to evaluate (default: the shipped model)")
    ap.add_argument("--compare", nargs="*", default=[], help="more checkpoints to evaluate in the same run")
    ap.add_argument("--cache", help="mel cache folder (default: musicsim's cache folder)")
    ap.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, mps")
    ap.add_argument("--workers", type=int, default=0, help="decoding processes (0: one per core, at most 8)")
    ap.add_argument("--holdout", help="only this label is held out as unseen for the outlier AUROC")
    ap.add_argument("--query-labels", nargs="*", help="precision@5 / 1-NN only over tracks of these labels")
    ap.add_argument("--combined", action="store_true", help="also evaluate model vector + MFCC statistics")
    ap.add_argument(
        "--pooling",
        nargs="+",
        choices=POOLINGS,
        help="track vectors from segment vectors: mean, meanstd (mean and spread), multilevel (also "
        "the third stage's texture statistics), multilevel3 (and the second stage's) and/or "
        "multiband (the third, second and first stages' statistics, each in the lower and the "
        "upper half of the frequency axis) (default: the model's own, what the library stores)",
    )
    ap.add_argument(
        "--raw-vectors",
        action="store_true",
        help="compare network vectors as stored, not z-scored over the evaluated tracks as a library compares them",
    )
    ap.add_argument("--no-baselines", action="store_true", help="skip the MFCC and untrained rows")
    ap.add_argument("--seed", type=int, default=0, help="seed of the probe folds and k-means")
    ap.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="average the probe and NMI over this many evaluation seeds from --seed (one seed moves "
        "them by a few points on a small set; the model card's figures use 5)",
    )
    ap.add_argument(
        "--analysis",
        choices=("fast", "full"),
        help="decode as a library's fast first pass (windows by track length) or every segment "
        "(default: the library's default, fast)",
    )
    ap.add_argument("--windows", type=int, help="exactly this many analysis windows per track (0: by --analysis)")
    ap.add_argument("--window-seconds", type=float, help="length of each analysis window (default: the library's)")
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--json", help="also write the result as JSON to this file")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    logging.basicConfig(level=logging.WARNING)
    res = evaluate_folder(
        a.folder,
        model_path=a.model,
        cache=a.cache,
        device=a.device,
        workers=a.workers,
        baselines=not a.no_baselines,
        holdout=a.holdout,
        query_labels=a.query_labels,
        compare=a.compare,
        combined=a.combined,
        pooling=tuple(a.pooling) if a.pooling else None,
        seed=a.seed,
        seeds=a.seeds,
        library_norm=not a.raw_vectors,
        decode=library_decoding(a.analysis, a.windows, a.window_seconds),
    )
    print(format_report(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

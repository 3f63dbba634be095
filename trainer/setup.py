"""What a training run starts from: the options of a resumed run, the initial model and front
end, the data (mel cache, segment store, samplers, related tracks) and the schedule.

:func:`trainer.train.train` calls these in order, then runs the loop.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from musicsim.audio.features import FrontEnd
from musicsim.errors import CheckpointError
from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.model.checkpoint import DEFAULT_RESOURCE, LoadedModel, model_from_checkpoint, read_checkpoint
from musicsim.model.resnet import ModelConfig, build_model
from trainer.data import DecodeSettings, MelCache, SegmentStore, TripletSampler, duplicate_groups, split_tracks
from trainer.loss import MINING_MODES
from trainer.options import (
    BOUND_FIELDS,
    DEFAULT_EPOCHS_FINETUNE,
    DEFAULT_EPOCHS_SCRATCH,
    FINETUNE_MAX_STEPS,
    LR_FINETUNE,
    LR_SCRATCH,
    RUNTIME_FIELDS,
    SIMILAR_K_FINETUNE,
    WINDOW_SECONDS_FINETUNE,
    WINDOW_SECONDS_SCRATCH,
    TrainOptions,
)
from trainer.related import RelatedPairs, nearest_pairs, related_limit

log = logging.getLogger("trainer")
DECODE_OVERFILL = 2  # tracks are decoded for training until their frames are this many times the store


def collect_paths(opts: TrainOptions, lib) -> list[str]:
    """The library's tracks, then the files below ``opts.folders``, each once."""
    from musicsim.scan.walker import walk

    paths = []
    if lib is not None:
        paths += [t.path for t in lib.tracks()]
    if opts.folders:
        paths += [e.path for e in walk(opts.folders)]
    seen, out = set(), []
    for p in paths:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def default_run_base(opts: TrainOptions) -> Path:
    from musicsim import paths

    if opts.db:
        return paths.models_dir(opts.db) / "runs"
    return paths.data_dir() / "runs"


def find_resume(opts: TrainOptions) -> Path:
    if opts.resume and opts.resume != "latest":
        p = Path(opts.resume)
        return p if p.is_file() else p / "last.pt"
    if opts.out:
        return Path(opts.out) / "last.pt"
    runs = sorted(default_run_base(opts).glob("*/last.pt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise CheckpointError("no interrupted run to resume", path=default_run_base(opts))
    return runs[-1]


def resumed_options(opts: TrainOptions) -> tuple[TrainOptions, dict | None]:
    """With ``opts.resume``: the checkpoint to continue and its stored options, which win
    except where/how the run executes (and new bounds, when given)."""
    ckpt = None
    if opts.resume:
        ck_path = find_resume(opts)
        ckpt = read_checkpoint(ck_path)
        stored = TrainOptions.from_dict(ckpt.get("extra", {}).get("options", {}))
        keep = {k: getattr(opts, k) for k in RUNTIME_FIELDS}
        for k in BOUND_FIELDS:
            if getattr(opts, k) is not None:
                keep[k] = getattr(opts, k)
        keep["out"] = str(ck_path.parent)
        opts = replace(stored, **keep)
    if opts.mining not in MINING_MODES:
        raise ValueError(f"mining must be one of {MINING_MODES}")
    return opts, ckpt


@dataclass
class Start:
    """The network a run starts from."""

    model: torch.nn.Module
    fe: FrontEnd
    name: str
    init_desc: str  # "resume", "scratch" or "fine-tune NAME (CHECKSUM)"
    init_ckpt: dict | None  # the checkpoint fine-tuned from
    loaded: LoadedModel | None  # ... loaded

    @property
    def fine_tuning(self) -> bool:
        return self.init_desc.startswith("fine")


def start_model(opts: TrainOptions, ckpt: dict | None) -> tuple[TrainOptions, Start]:
    """The model to train (resumed, fine-tuned from ``opts.init`` or new) and the options with
    its architecture, front end and name filled in."""
    init_desc, init_ckpt, loaded = "resume", None, None
    if ckpt is not None:
        init_desc = str(ckpt.get("card", {}).get("init", "resume"))
        loaded = model_from_checkpoint(ckpt)
        model, fe = loaded.model, loaded.frontend
        name = str(ckpt.get("name"))
    else:
        init = opts.init
        if init == "default":
            init = str(DEFAULT_RESOURCE) if DEFAULT_RESOURCE.exists() else None
            if init is None:
                log.warning("no shipped model found: training from scratch")
        if init and init != "scratch":
            init_ckpt = read_checkpoint(init)
            loaded = model_from_checkpoint(init_ckpt, path=init)
            model, fe = loaded.model, loaded.frontend
            if opts.pooling and opts.pooling != model.cfg.pooling:
                model.cfg = replace(model.cfg, pooling=opts.pooling)
            init_desc = f"fine-tune {loaded.name} ({loaded.checksum})"
        else:
            cfg = ModelConfig(width=opts.width, embed_dim=opts.embed_dim, normalize=opts.normalize,
                              pooling=opts.pooling or "multiband")
            model = build_model(cfg, seed=opts.seed)
            fe = FrontEnd(segment_frames=opts.segment_frames)
            init_desc = "scratch"
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = "finetune" if init_desc.startswith("fine") else "trained"
        name = opts.name or (f"{base}-{Path(opts.db).stem}-{stamp}" if opts.db else f"{base}-{stamp}")
    opts = replace(opts, segment_frames=fe.segment_frames, width=model.cfg.width, embed_dim=model.cfg.embed_dim,
                   normalize=model.cfg.normalize, pooling=model.cfg.pooling, name=name)
    start = Start(model, fe, name, init_desc, init_ckpt, loaded)
    if ckpt is not None and "related" not in ckpt.get("extra", {}):
        opts = replace(opts, similar_k=0)  # a run from before related tracks: resume it as it was
    elif opts.similar_k is None:
        opts = replace(opts, similar_k=SIMILAR_K_FINETUNE if start.fine_tuning else 0)
    if opts.window_seconds is None:
        opts = replace(opts, window_seconds=WINDOW_SECONDS_FINETUNE if start.fine_tuning else WINDOW_SECONDS_SCRATCH)
    return opts, start


@dataclass
class RunData:
    """The tracks of a run, their frames in memory and the triplet samplers over them."""

    train_paths: list[str]
    val_paths: list[str]
    failures: list  # (path, reason) of tracks that could not be decoded
    store: SegmentStore
    n_dup: int  # tracks that are copies of another track
    related: RelatedPairs | None
    sampler: TripletSampler  # training anchors
    val_sampler: TripletSampler | None  # validation anchors
    val_pool: TripletSampler | None  # where validation draws distant segments
    workers: int  # decoding processes


def prepare_data(opts: TrainOptions, ckpt: dict | None, start: Start, lib, device: torch.device, *, world: int,
                 main: bool, progress: ProgressFn | None, cancel: CancelToken | None) -> RunData:
    """Split the tracks (a resumed run keeps its split), decode what the mel cache lacks, load
    the frames and build the samplers (and the related tracks when fine-tuning)."""
    fe = start.fe
    decode = DecodeSettings.from_config(lib.config) if lib is not None else DecodeSettings()
    if ckpt is not None and "split" in ckpt.get("extra", {}):
        split = ckpt["extra"]["split"]
        train_paths = [p for p in split["train"] if os.path.exists(p)]
        val_paths = [p for p in split["val"] if os.path.exists(p)]
    else:
        train_paths, val_paths = split_tracks(collect_paths(opts, lib), opts.val_fraction, opts.seed)
    if len(train_paths) < 2:
        raise ValueError("training needs at least two tracks (triplets take distant segments from another track)")
    cache = MelCache(opts.cache, fe, decode)
    workers = opts.workers if opts.workers > 0 else max(1, min(8, (os.cpu_count() or 2)))
    max_frames = int(opts.memory_gb * 1e9 / (fe.n_mels * 2))
    # A library longer than the store holds is sampled: cached tracks all count, and tracks not
    # cached yet are decoded in a seeded random order only until the frames found are twice the
    # store (the store then trims each to a centred excerpt). Decoding and caching it whole
    # would take hours for a large library, and write past the cache budget the scan keeps.
    order = [p for _, p in sorted(zip(np.random.default_rng(opts.seed).random(len(train_paths) + len(val_paths)),
                                      train_paths + val_paths))]
    budget = DECODE_OVERFILL * max_frames if ckpt is None else None  # a resumed run needs its tracks
    if main:
        found, failures = cache.build(order, device=device, workers=workers, progress=progress, cancel=cancel,
                                      max_frames=budget)
        if cache.left_out:
            log.info("%d tracks left out: the library is longer than the training budget (--memory-gb %g)",
                     cache.left_out, opts.memory_gb)
    if world > 1:
        dist.barrier()
    if not main:  # the cache now holds what rank 0 chose: take the same tracks, decode nothing
        found, failures = cache.build(order, device=device, workers=1, max_frames=0)
    train_paths = [p for p in train_paths if p in found]
    val_paths = [p for p in val_paths if p in found]
    if len(train_paths) < 2:
        raise ValueError(f"only {len(train_paths)} training tracks could be decoded")
    paths = train_paths + val_paths
    store = SegmentStore.from_cached([(p, found[p]) for p in paths], max_frames=max_frames)
    n_tr = len(train_paths)
    tr_pieces = np.nonzero(store.piece_track < n_tr)[0]
    va_pieces = np.nonzero(store.piece_track >= n_tr)[0]
    # Copies of one recording count as one track: they are never each other's distant segment.
    groups = duplicate_groups([found[p] for p in paths])
    piece_group = groups[store.piece_track]
    related = None
    if ckpt is not None and "related" in ckpt.get("extra", {}):
        related = RelatedPairs.from_state(ckpt["extra"]["related"])
    elif opts.similar_k:
        related = related_pairs(opts, start, lib, paths, found, groups, device, progress, cancel)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if store.mel.numel() * 2 < 0.25 * free:  # the whole corpus lives on the GPU: crops never wait
            store = store.to(device)
        else:
            store.mel = store.mel.pin_memory()
    W = int(round(opts.window_seconds / (fe.hop_length / fe.sr)))
    sampler = TripletSampler(store.lengths, piece_group, fe.segment_frames, W, tr_pieces, related)
    val_sampler = (TripletSampler(store.lengths, piece_group, fe.segment_frames, W, va_pieces, related)
                   if len(va_pieces) else None)
    val_pool = val_sampler if (val_sampler is not None and len(np.unique(piece_group[va_pieces])) >= 2) else None
    if val_pool is None and val_sampler is not None:
        val_pool = TripletSampler(store.lengths, piece_group, fe.segment_frames, W, related=related)
    return RunData(train_paths, val_paths, failures, store, len(groups) - len(np.unique(groups)), related, sampler,
                   val_sampler, val_pool, workers)


def related_pairs(opts: TrainOptions, start: Start, lib, paths: list[str], found: dict, groups: np.ndarray,
                  device: torch.device, progress: ProgressFn | None, cancel: CancelToken | None) -> RelatedPairs:
    """Each track's ``opts.similar_k`` nearest tracks under the starting model (:mod:`trainer.related`)."""
    from trainer.evaluate import track_vectors

    report(progress, "related", 0, 0, f"{len(groups)} tracks")
    model = start.model
    loaded = LoadedModel(name=start.name, model=model.to(device), config=model.cfg, frontend=start.fe, trained=True,
                         checksum="")
    # The library usually holds every track's vector under the starting model already (a scan
    # made them); only tracks without one are embedded here.
    start_sum = start.loaded.checksum if start.init_ckpt is not None and model.cfg == start.loaded.config else None
    X = stored_track_vectors(lib, start_sum, paths) if lib is not None and start_sum else {}
    todo = [p for p in paths if p not in X]
    if todo:
        X.update(zip(todo, track_vectors(loaded, [found[p] for p in todo], device=device, cancel=cancel)))
    k = min(opts.similar_k, related_limit(len(np.unique(groups))))
    related = nearest_pairs(np.stack([X[p] for p in paths]), groups, k)
    report(progress, "related", 1, 1, f"{len(related)} pairs", None,
           {"tracks": len(paths), "stored": len(paths) - len(todo), "k": k})
    log.info("related tracks: %d pairs (%d nearest per track%s); %d of %d tracks' vectors from the library",
             len(related), k, "" if k == opts.similar_k else ", at most a quarter of the others",
             len(paths) - len(todo), len(paths))
    return related


def stored_track_vectors(lib, checksum: str, paths: list[str]) -> dict[str, np.ndarray]:
    """``{path: vector}`` the library holds under the model with ``checksum``, for those of
    ``paths`` whose file is unchanged since it was analysed (the mel cache holds the file as it
    is now, so a changed file's stored vector would not match it)."""
    from sqlalchemy import select

    from musicsim.store import repo
    from musicsim.store.schema import Model

    with lib.db.session() as s:
        row = s.scalars(select(Model).where(Model.checksum == checksum)).first()
        if row is None:
            return {}
        ids, X, _, _ = repo.vectors(s, row.id, status="ok")
        known = repo.known_files(s)
    vec_of = dict(zip(ids.tolist(), X))
    out = {}
    for path in paths:
        tid, size, mtime, _status = known.get(path, (None, None, None, None))
        if tid not in vec_of:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_size == size and st.st_mtime == mtime:  # the scan's own "unchanged" rule
            out[path] = vec_of[tid]
    return out


@dataclass
class Schedule:
    steps_per_epoch: int
    epochs: int | None
    total_steps: int | None  # None: bounded by time only
    max_seconds: float | None


def schedule(opts: TrainOptions, ckpt: dict | None, start: Start, sampler: TripletSampler,
             world: int) -> tuple[TrainOptions, Schedule]:
    """How long the run is (the defaults filled into the options, so a resumed run keeps them)
    and its peak learning rate."""
    spe = max(1, math.ceil(sampler.n_segments / (opts.batch_size * world)))
    if ckpt is not None and ckpt.get("extra", {}).get("steps_per_epoch"):
        spe = int(ckpt["extra"]["steps_per_epoch"])
    epochs, steps = opts.epochs, opts.steps
    max_s = opts.max_minutes * 60 if opts.max_minutes is not None else None
    if epochs is None and steps is None and max_s is None:
        epochs = DEFAULT_EPOCHS_FINETUNE if start.fine_tuning else DEFAULT_EPOCHS_SCRATCH
        if start.fine_tuning:  # a big library: a bounded fine-tune, not 3 full epochs
            steps = FINETUNE_MAX_STEPS
        opts = replace(opts, epochs=epochs, steps=steps)  # stored, so a resumed run keeps the same schedule
    if opts.lr is None:
        opts = replace(opts, lr=LR_FINETUNE if start.fine_tuning else LR_SCRATCH)
    total_steps = None
    if steps is not None:
        total_steps = int(steps)
    if epochs is not None:
        total_steps = min(total_steps or 10**12, int(epochs) * spe)
    return opts, Schedule(spe, epochs, total_steps, max_s)

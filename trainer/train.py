"""The training loop: Tile2Vec triplets from cached mels, AdamW + warm-up/cosine, exact resume.

``train(options, progress=, cancel=)`` is the one entry point; ``python -m trainer`` and the
GUI's background thread both call it. Under ``torchrun`` it trains with DistributedDataParallel.

Exact resume: every random draw of the training loop comes from a generator keyed by
(seed, epoch, step, rank) (see :func:`trainer.data.rng_for`), and the checkpoint holds the
weights, BatchNorm statistics, optimizer state, step, torch RNG states and the track split;
so continuing from a checkpoint written at any step reproduces the uninterrupted run (on CPU;
cuDNN kernels are not bitwise deterministic).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from musicsim.audio.features import FrontEnd
from musicsim.errors import CheckpointError
from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.model.checkpoint import (
    DEFAULT_RESOURCE,
    LoadedModel,
    make_checkpoint,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from musicsim.model.resnet import ModelConfig, build_model
from trainer.data import (
    Augment,
    DecodeSettings,
    MelCache,
    SegmentStore,
    TripletSampler,
    duplicate_groups,
    rng_for,
    split_tracks,
)
from trainer.evaluate import track_vectors
from trainer.loss import MINING_MODES, batch_triplet_loss, sq_dist
from trainer.related import RelatedPairs, nearest_pairs

log = logging.getLogger("trainer")

DEFAULT_EPOCHS_SCRATCH = 30
DEFAULT_EPOCHS_FINETUNE = 3
# ...but at most this many steps (~6 min on a 2-core CPU at width 16): longer fine-tunes
# measured no better (resources/models/MODEL_CARD.md), and a 500-track library must fit in 15 min.
FINETUNE_MAX_STEPS = 600
LR_SCRATCH = 2e-3
LR_FINETUNE = 5e-4
# Fine-tuning: each track's nearest tracks under the starting model are not distant (trainer.related).
SIMILAR_K_FINETUNE = 5
# Fields that describe where/how a run executes, not what it computes: a resumed run takes
# these from the new call, everything else from the checkpoint.
RUNTIME_FIELDS = ("device", "workers", "cache", "threads", "resume", "out", "log_every", "reembed", "guard", "amp",
                  "memory_gb")
BOUND_FIELDS = ("epochs", "steps", "max_minutes")


@dataclass
class TrainOptions:
    """Everything a training run needs. ``None`` bounds mean "use the default"."""

    folders: list[str] = field(default_factory=list)
    db: str | None = None
    init: str | None = "default"  # "default" (shipped model), a checkpoint path, or None/"scratch"
    out: str | None = None  # run directory (checkpoints, logs); default under the library or data dir
    name: str | None = None
    cache: str | None = None
    device: str = "auto"
    epochs: int | None = None
    steps: int | None = None
    max_minutes: float | None = None
    batch_size: int = 64
    lr: float | None = None  # peak learning rate; None: LR_SCRATCH, or LR_FINETUNE when fine-tuning
    weight_decay: float = 0.05
    warmup_steps: int = 100
    final_lr_ratio: float = 0.02
    margin: float = 0.5
    window_seconds: float = 10.0
    mining: str = "all"  # batch-all: every in-batch negative of another track (measured best; MODEL_CARD.md)
    # each track's K nearest tracks under the starting model are never its distant segment
    # (trainer.related); None: SIMILAR_K_FINETUNE when fine-tuning, 0 from scratch
    similar_k: int | None = None
    augment: bool = True
    pitch_shift: int = 0  # augmentation: shift crops by up to this many mel bands
    mix: float = 0.0  # augmentation: chance of mixing another crop in at -20..-8 dB
    head: int = 0  # hidden size of an MLP projection head used only while training (0: none)
    norm_reg: float = 0.0
    width: int = 32
    embed_dim: int = 128
    normalize: bool = True
    pooling: str | None = None  # track vectors: None = "multilevel" from scratch, the source's when fine-tuning
    segment_frames: int = 128
    val_fraction: float = 0.1
    val_triplets: int = 512
    seed: int = 0
    workers: int = 0
    threads: int | None = None
    amp: str = "auto"  # auto: bf16 (or fp16 + loss scaling) on CUDA, off elsewhere; "off"
    resume: str | None = None  # a run directory or checkpoint to continue; "latest": newest run
    reembed: bool = True
    guard: bool = True  # activate the new model only if it groups albums/folders at least as well
    memory_gb: float = 4.0  # mel store budget; longer libraries are trimmed to fit
    log_every: int = 50
    command: str = ""  # the command line, recorded in the model card

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainResult:
    model_path: str | None  # the exported model (weights, no optimizer state)
    checkpoint: str | None  # the full training checkpoint (last.pt), for --resume
    run_dir: str
    name: str
    steps: int
    epochs: float
    seconds: float
    metrics: dict
    history: list[dict]
    cancelled: bool = False
    model_id: int | None = None  # the library's row for the new model (after re-embedding)
    reembedded: int = 0
    activated: bool = False  # the new model became the library's active model
    guard: str = ""  # the album/folder check's verdict (trainer.guard)
    guard_scores: tuple = (None, None)  # its precision@5 before -> after
    failures: list = field(default_factory=list)
    summary: str = ""


# --- helpers ---------------------------------------------------------------------------------


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _select_device(pref: str, local_rank: int, world: int) -> torch.device:
    from musicsim.model.embed import best_device

    dev = best_device(pref)
    if dev.type == "cuda" and dev.index is None:
        index = local_rank % max(torch.cuda.device_count(), 1) if world > 1 else torch.cuda.current_device()
        dev = torch.device("cuda", index)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def _autocast(device: torch.device, amp: torch.dtype | None):
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp)


def _amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    if amp == "off" or device.type != "cuda":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def lr_at(step: int, progress: float, opts: TrainOptions, total_steps: int | None = None) -> float:
    """Linear warm-up over ``warmup_steps`` (at most a tenth of a run of known length), then
    cosine from ``lr`` to ``lr * final_lr_ratio`` as ``progress`` (fraction of the run's work or
    time budget) goes from 0 to 1."""
    warmup = opts.warmup_steps if not total_steps else min(opts.warmup_steps, max(1, total_steps // 10))
    warm = min(1.0, (step + 1) / max(1, warmup))
    p = min(max(progress, 0.0), 1.0)
    cos = opts.final_lr_ratio + (1 - opts.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))
    return opts.lr * warm * cos


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for _name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _collect_paths(opts: TrainOptions, lib) -> list[str]:
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


def _default_run_base(opts: TrainOptions) -> Path:
    from musicsim import paths

    if opts.db:
        return paths.models_dir(opts.db) / "runs"
    return paths.data_dir() / "runs"


def _find_resume(opts: TrainOptions) -> Path:
    if opts.resume and opts.resume != "latest":
        p = Path(opts.resume)
        return p if p.is_file() else p / "last.pt"
    if opts.out:
        return Path(opts.out) / "last.pt"
    runs = sorted(_default_run_base(opts).glob("*/last.pt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise CheckpointError("no interrupted run to resume", path=_default_run_base(opts))
    return runs[-1]


def _rng_state(device: torch.device) -> dict:
    state = {"torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["torch_cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    if "torch_cpu" in state:
        torch.set_rng_state(state["torch_cpu"])
    if device.type == "cuda" and "torch_cuda" in state:
        torch.cuda.set_rng_state(state["torch_cuda"], device)


def _hardware(device: torch.device) -> str:
    from musicsim.model.embed import device_name

    cpu = platform.processor() or platform.machine()
    return f"{device_name(device)}; {os.cpu_count()} logical CPUs ({cpu}); torch {torch.__version__}"


@torch.no_grad()
def embed_crops(model: torch.nn.Module, store: SegmentStore, piece: np.ndarray, start: np.ndarray, frames: int,
                device: torch.device, amp: torch.dtype | None, batch: int = 256) -> torch.Tensor:
    out = []
    for i in range(0, len(piece), batch):
        x = store.crops(piece[i : i + batch], start[i : i + batch], frames, device)
        with _autocast(device, amp):
            out.append(model.embed(x).float())
    return torch.cat(out) if out else torch.zeros(0)


class _Validator:
    """Fixed held-out triplets: the same ones every epoch, so the curves compare."""

    def __init__(self, store: SegmentStore, sampler: TripletSampler | None, pool: TripletSampler, opts: TrainOptions):
        self.store, self.opts = store, opts
        self.triplets = None
        if sampler is None:
            return
        rng = rng_for(opts.seed, 7_777_777)
        piece, start = sampler.epoch_anchors(rng)
        n = min(len(piece), opts.val_triplets)
        if n < len(piece):
            # Spread the triplets over tracks: take anchors round-robin by track.
            order = np.argsort(sampler.piece_track[piece], kind="stable")
            keep = order[np.linspace(0, len(order) - 1, n).astype(int)]
            piece, start = piece[keep], start[keep]
        self.triplets = sampler.batch(rng, piece, start, pool)

    def __call__(self, model: torch.nn.Module, device: torch.device, amp) -> dict:
        if self.triplets is None:
            return {}
        b, F = self.triplets, self.opts.segment_frames
        was = model.training
        model.eval()
        a = embed_crops(model, self.store, *b.anchor, F, device, amp)
        n = embed_crops(model, self.store, *b.neighbour, F, device, amp)
        d = embed_crops(model, self.store, *b.distant, F, device, amp)
        model.train(was)
        d_an, d_ad = sq_dist(a, n), sq_dist(a, d)
        loss = torch.relu(d_an - d_ad + self.opts.margin).mean()
        return {"val_loss": float(loss), "val_acc": float((d_an < d_ad).float().mean()), "val_triplets": len(a)}


class ProjectionHead(torch.nn.Module):
    """SimCLR-style MLP after the embedding, used only by the loss: the exported embedding
    (before the head) keeps information the head learns to discard for the pretext task."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.BatchNorm1d(hidden),
                                       torch.nn.ReLU(inplace=True), torch.nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.net(x), dim=1)


class _Trainable(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, head: torch.nn.Module | None) -> None:
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.model.embed(x)  # the loss trains the embedding, whatever the pooling stores
        return e if self.head is None else self.head(e)


class _Logger:
    COLUMNS = ("epoch", "step", "seconds", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "segments_per_s")

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.csv = run_dir / "log.csv"
        self.jsonl = run_dir / "log.jsonl"

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        new = not self.csv.exists()
        with open(self.csv, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.COLUMNS, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")


def summary_line(row: dict, total_epochs: float | None = None) -> str:
    ep = f"{row['epoch']:.2f}" if isinstance(row.get("epoch"), float) else str(row.get("epoch"))
    if total_epochs:
        ep += f"/{total_epochs:g}"
    parts = [f"epoch {ep}", f"step {row.get('step')}"]
    for k, fmt in (("train_loss", "{:.4f}"), ("train_acc", "{:.3f}"), ("val_loss", "{:.4f}"), ("val_acc", "{:.3f}"),
                   ("lr", "{:.2e}"), ("segments_per_s", "{:.0f} seg/s")):
        if row.get(k) is not None:
            parts.append(f"{k} " + fmt.format(row[k]) if k != "segments_per_s" else fmt.format(row[k]))
    if row.get("seconds") is not None:
        parts.append(f"{row['seconds'] / 60:.1f} min")
    return " | ".join(parts)


# --- the entry point -------------------------------------------------------------------------


def warm_up() -> None:
    """One tiny optimisation step: the first backward and optimizer step make torch import
    ~280 modules (dynamo, FSDP helpers, ...), holding the GIL for 0.2-0.3 s. The app calls this
    while it opens a library, so starting a training run later does not freeze the window."""
    net = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.zeros(1, 4)).sum().backward()
    opt.step()


def train(options: TrainOptions, *, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
          lib=None) -> TrainResult:
    """Train (or fine-tune, or resume) a model; see :class:`TrainOptions`.

    ``lib``: an open :class:`~musicsim.services.Library` to train on and re-embed (the
    app's own, which holds the library's writer lock); otherwise ``options.db`` is opened.
    """
    t_wall = time.monotonic()
    opts = options
    rank, world, local_rank = _dist_info()
    own_pg = False
    if world > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available() and (opts.device == "auto" or opts.device.startswith("cuda"))
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend, timeout=timedelta(hours=6))
        own_pg = True
    threads = torch.get_num_threads()
    try:
        return _train(opts, progress, cancel, rank, world, local_rank, t_wall, lib)
    finally:
        torch.set_num_threads(threads)  # opts.threads is for this run only (the app goes on scanning)
        if own_pg and dist.is_initialized():
            dist.destroy_process_group()


def _train(opts, progress, cancel, rank, world, local_rank, t_wall, given_lib=None) -> TrainResult:
    main = rank == 0
    if opts.threads:
        torch.set_num_threads(int(opts.threads))
    # --- resume: the stored options win, except where/how the run executes ---
    ckpt = None
    if opts.resume:
        ck_path = _find_resume(opts)
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
    device = _select_device(opts.device, local_rank, world)
    amp = _amp_dtype(device, opts.amp)

    # --- model and front end ---
    init_desc = "resume"
    init_ckpt = None
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
                              pooling=opts.pooling or "multilevel")
            model = build_model(cfg, seed=opts.seed)
            fe = FrontEnd(segment_frames=opts.segment_frames)
            init_desc = "scratch"
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = "finetune" if init_desc.startswith("fine") else "trained"
        name = opts.name or (f"{base}-{Path(opts.db).stem}-{stamp}" if opts.db else f"{base}-{stamp}")
    opts = replace(opts, segment_frames=fe.segment_frames, width=model.cfg.width, embed_dim=model.cfg.embed_dim,
                   normalize=model.cfg.normalize, pooling=model.cfg.pooling, name=name)
    if ckpt is not None and "related" not in ckpt.get("extra", {}):
        opts = replace(opts, similar_k=0)  # a run from before related tracks: resume it as it was
    elif opts.similar_k is None:
        opts = replace(opts, similar_k=SIMILAR_K_FINETUNE if init_desc.startswith("fine") else 0)
    run_dir = Path(opts.out) if opts.out else _default_run_base(opts) / name
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)

    # --- data ---
    lib = given_lib
    if lib is None and opts.db:
        from musicsim.services import Library

        lib = Library(opts.db, writable=main and opts.reembed)
    if lib is not None:
        decode = DecodeSettings.from_config(lib.config)
    else:
        decode = DecodeSettings()
    if ckpt is not None and "split" in ckpt.get("extra", {}):
        split = ckpt["extra"]["split"]
        train_paths = [p for p in split["train"] if os.path.exists(p)]
        val_paths = [p for p in split["val"] if os.path.exists(p)]
    else:
        train_paths, val_paths = split_tracks(_collect_paths(opts, lib), opts.val_fraction, opts.seed)
    if len(train_paths) < 2:
        raise ValueError("training needs at least two tracks (triplets take distant segments from another track)")
    cache = MelCache(opts.cache, fe, decode)
    workers = opts.workers if opts.workers > 0 else max(1, min(8, (os.cpu_count() or 2)))
    all_paths = train_paths + val_paths
    if main:
        found, failures = cache.build(all_paths, device=device, workers=workers, progress=progress, cancel=cancel)
    if world > 1:
        dist.barrier()
    if not main:
        found, failures = cache.build(all_paths, device=device, workers=1)
    train_paths = [p for p in train_paths if p in found]
    val_paths = [p for p in val_paths if p in found]
    if len(train_paths) < 2:
        raise ValueError(f"only {len(train_paths)} training tracks could be decoded")
    max_frames = int(opts.memory_gb * 1e9 / (fe.n_mels * 2))
    store = SegmentStore.from_cached([(p, found[p]) for p in train_paths + val_paths], max_frames=max_frames)
    n_tr = len(train_paths)
    tr_pieces = np.nonzero(store.piece_track < n_tr)[0]
    va_pieces = np.nonzero(store.piece_track >= n_tr)[0]
    # Copies of one recording count as one track: they are never each other's distant segment.
    groups = duplicate_groups([found[p] for p in train_paths + val_paths])
    piece_group = groups[store.piece_track]
    n_dup = len(groups) - len(np.unique(groups))
    related = None
    if ckpt is not None and "related" in ckpt.get("extra", {}):
        related = RelatedPairs.from_state(ckpt["extra"]["related"])
    elif opts.similar_k:
        report(progress, "related", 0, 0, f"{len(groups)} tracks")
        start = LoadedModel(name=name, model=model.to(device), config=model.cfg, frontend=fe, trained=True, checksum="")
        paths = train_paths + val_paths
        # The library usually holds every track's vector under the starting model already (a scan
        # made them); only tracks without one are embedded here.
        start_sum = loaded.checksum if init_ckpt is not None and model.cfg == loaded.config else None
        X = stored_track_vectors(lib, start_sum, paths) if lib is not None and start_sum else {}
        todo = [p for p in paths if p not in X]
        if todo:
            X.update(zip(todo, track_vectors(start, [found[p] for p in todo], device=device, cancel=cancel)))
        related = nearest_pairs(np.stack([X[p] for p in paths]), groups, opts.similar_k)
        report(progress, "related", 1, 1, f"{len(related)} pairs", None,
               {"tracks": len(paths), "stored": len(paths) - len(todo)})
        log.info("related tracks: %d pairs; %d of %d tracks' vectors from the library", len(related),
                 len(paths) - len(todo), len(paths))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if store.mel.numel() * 2 < 0.25 * free:  # the whole corpus lives on the GPU: crops never wait
            store = store.to(device)
        else:
            store.mel = store.mel.pin_memory()
    frame_s = fe.hop_length / fe.sr
    W = int(round(opts.window_seconds / frame_s))
    sampler = TripletSampler(store.lengths, piece_group, fe.segment_frames, W, tr_pieces, related)
    val_sampler = (TripletSampler(store.lengths, piece_group, fe.segment_frames, W, va_pieces, related)
                   if len(va_pieces) else None)
    val_pool = val_sampler if (val_sampler is not None and len(np.unique(piece_group[va_pieces])) >= 2) else None
    if val_pool is None and val_sampler is not None:
        val_pool = TripletSampler(store.lengths, piece_group, fe.segment_frames, W, related=related)
    validate = _Validator(store, val_sampler, val_pool, opts)
    augment = Augment(pitch_bins=opts.pitch_shift, p_mix=opts.mix) if opts.augment else None

    # --- schedule ---
    B = opts.batch_size
    spe = max(1, math.ceil(sampler.n_segments / (B * world)))
    if ckpt is not None and ckpt.get("extra", {}).get("steps_per_epoch"):
        spe = int(ckpt["extra"]["steps_per_epoch"])
    epochs, steps = opts.epochs, opts.steps
    max_s = opts.max_minutes * 60 if opts.max_minutes is not None else None
    if epochs is None and steps is None and max_s is None:
        epochs = DEFAULT_EPOCHS_FINETUNE if init_desc.startswith("fine") else DEFAULT_EPOCHS_SCRATCH
        if init_desc.startswith("fine"):  # a big library: a bounded fine-tune, not 3 full epochs
            steps = FINETUNE_MAX_STEPS
        opts = replace(opts, epochs=epochs, steps=steps)  # stored, so a resumed run keeps the same schedule
    if opts.lr is None:
        opts = replace(opts, lr=LR_FINETUNE if init_desc.startswith("fine") else LR_SCRATCH)
    total_steps = None
    if steps is not None:
        total_steps = int(steps)
    if epochs is not None:
        total_steps = min(total_steps or 10**12, int(epochs) * spe)

    # --- optimisation state ---
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    head = None
    if opts.head:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(opts.seed + 1)  # seeded like the network: runs are reproducible
            head = ProjectionHead(model.cfg.embed_dim, opts.head)
        head_state = (ckpt or init_ckpt or {}).get("extra", {}).get("head")
        if head_state is not None:
            try:
                head.load_state_dict(head_state)
            except RuntimeError:
                log.warning("the stored projection head does not fit: a new one is trained")
        head = head.to(device)
    trainable = _Trainable(model, head)
    trainable.train()
    optim = torch.optim.AdamW(_param_groups(trainable, opts.weight_decay), lr=opts.lr, betas=(0.9, 0.999))
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    step, history, prev_seconds = 0, [], 0.0
    if ckpt is not None:
        if ckpt.get("optimizer"):
            optim.load_state_dict(ckpt["optimizer"])
        extra = ckpt.get("extra", {})
        step = int(ckpt.get("step", 0))
        history = list(extra.get("history", []))
        prev_seconds = float(extra.get("seconds", 0.0))
        if scaler is not None and extra.get("scaler"):
            scaler.load_state_dict(extra["scaler"])
        _set_rng_state(extra.get("rng", {}), device)
    net = trainable
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(trainable, device_ids=[device.index] if device.type == "cuda" else None)

    logger = _Logger(run_dir, main)
    card_base = {
        "recipe": opts.command or "trainer.train(TrainOptions(...))",
        "init": init_desc,
        "data": {"tracks_train": len(train_paths), "tracks_val": len(val_paths),
                 "hours": round(store.total_frames * frame_s / 3600, 2), "db": opts.db, "folders": opts.folders,
                 "cache_failures": len(failures)},
        "hardware": _hardware(device) + (f"; {world} processes (DDP)" if world > 1 else ""),
        "options": opts.to_dict(),
    }
    last_path = run_dir / "last.pt"

    def checkpoint(metrics: dict, epoch_f: float) -> None:
        if not main:
            return
        extra = {"options": opts.to_dict(), "steps_per_epoch": spe, "history": history,
                 "seconds": prev_seconds + (time.monotonic() - t_wall), "rng": _rng_state(device),
                 "split": {"train": train_paths, "val": val_paths}, "world_size": world}
        if scaler is not None:
            extra["scaler"] = scaler.state_dict()
        if head is not None:
            extra["head"] = {k: v.detach().cpu() for k, v in head.state_dict().items()}
        if related is not None:
            extra["related"] = related.state()
        card = dict(card_base, steps=step, epochs=round(epoch_f, 3), seconds=round(extra["seconds"], 1))
        save_checkpoint(make_checkpoint(model, fe, name=name, optimizer=optim.state_dict(), step=step,
                                        epoch=int(epoch_f), metrics=metrics, card=card, extra=extra), last_path)

    if main:
        log.info("training %s on %s: %d train / %d val tracks, %.2f h of audio, %d segments/epoch, %s, %s",
                 name, device, len(train_paths), len(val_paths), store.total_frames * frame_s / 3600,
                 sampler.n_segments, init_desc, f"{total_steps} steps" if total_steps else f"{opts.max_minutes} min")
        if failures:
            log.warning("%d tracks could not be decoded (skipped), e.g. %s", len(failures), failures[0][0])
        if n_dup:
            log.info("%d tracks are copies of another track (same recording): never used as its distant segment", n_dup)
    if not history and main:
        m0 = validate(model, device, amp)
        row = {"epoch": 0, "step": 0, "seconds": 0.0, **m0}
        history.append(row)
        logger.write(row)
        if m0:
            log.info(summary_line(row))

    # --- the loop ---
    t_loop = time.monotonic()
    start_step = step
    deadline = None if max_s is None else t_wall + max(0.0, max_s - prev_seconds)
    cancelled = False
    win_loss, win_acc, win_n, win_t, win_seg = 0.0, 0.0, 0, time.monotonic(), 0
    pending: list[torch.Tensor] = []
    sync_every = 1 if device.type == "cpu" else max(1, min(opts.log_every or 50, 50))
    last_loss = last_acc = None
    metrics: dict = dict(history[-1]) if history else {}
    anchors_epoch, anchors = -1, None

    def progress_frac(now: float) -> float:
        p = step / total_steps if total_steps else 0.0
        if deadline is not None:
            span = deadline - t_loop
            p = max(p, (now - t_loop) / span if span > 0 else 1.0)
        return p

    from musicsim.model.embed import device_name

    dev_name = device_name(device)

    def end_epoch(epoch_f: float) -> None:
        nonlocal metrics
        row = {"epoch": round(epoch_f, 3), "step": step, "seconds": round(prev_seconds + time.monotonic() - t_wall, 1),
               "lr": optim.param_groups[0]["lr"]}
        if win_n:
            row.update(train_loss=win_loss / win_n, train_acc=win_acc / win_n,
                       segments_per_s=win_seg / max(time.monotonic() - win_t, 1e-9))
        if main:
            report(progress, "validate", step, total_steps or 0, f"epoch {epoch_f:.2f}", None, {"device": dev_name})
            row.update(validate(model, device, amp))
            report(progress, "validate", step, total_steps or 0, f"epoch {epoch_f:.2f}", None,
                   {"device": dev_name, "epoch": epoch_f, "val_loss": row.get("val_loss"), "val_acc": row.get("val_acc")})
            history.append(row)
            logger.write(row)
            metrics = dict(row)
            checkpoint(metrics, epoch_f)
            log.info(summary_line(row, epochs))

    while True:
        now = time.monotonic()
        late = deadline is not None and now >= deadline
        want_cancel = cancel is not None and cancel.cancelled
        if world > 1:
            # Time and cancel are local: the processes agree on them every `sync_every` steps
            # (the same steps everywhere, so the collective calls match).
            if step % sync_every == 0:
                flags = torch.tensor([float(late), float(want_cancel)], device=device if device.type == "cuda" else "cpu")
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                late, want_cancel = bool(flags[0]), bool(flags[1])
            else:
                late = want_cancel = False
        stop = (total_steps is not None and step >= total_steps) or late
        if want_cancel:
            cancelled = True
            break
        if stop:
            break
        epoch, k = divmod(step, spe)
        if anchors_epoch != epoch:
            anchors = sampler.epoch_anchors(rng_for(opts.seed, epoch, 0, 1))
            anchors_epoch = epoch
        n_anc = len(anchors[0])
        idx = (np.arange(B) + (k * world + rank) * B) % n_anc
        rng = rng_for(opts.seed, epoch, k, 2 + rank)
        b = sampler.batch(rng, anchors[0][idx], anchors[1][idx])
        F = fe.segment_frames
        x = torch.cat([store.crops(*b.anchor, F, device), store.crops(*b.neighbour, F, device),
                       store.crops(*b.distant, F, device)])
        if augment is not None:
            x = augment(x, rng)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        lr = lr_at(step, progress_frac(now), opts, total_steps)
        for g in optim.param_groups:
            g["lr"] = lr
        with _autocast(device, amp):
            emb = net(x)
        ea, en, ed = emb.float().split(B)
        ta = torch.as_tensor(b.track_a, device=emb.device)
        td = torch.as_tensor(b.track_d, device=emb.device)
        loss, st = batch_triplet_loss(ea, en, ed, ta, td, margin=opts.margin, mining=opts.mining, norm_reg=opts.norm_reg,
                                      related=related)
        optim.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optim)
            scaler.update()
        else:
            loss.backward()
            optim.step()
        step += 1
        pending.append(torch.stack([loss.detach(), st["acc"]]))
        if len(pending) >= sync_every or (k + 1) == spe:
            # One host synchronisation per `sync_every` steps (every step on CPU, where it is free).
            vals = torch.stack(pending).cpu()
            pending.clear()
            if not torch.isfinite(vals).all():
                raise FloatingPointError(f"training diverged at step {step}; try a lower --lr")
            win_loss += float(vals[:, 0].sum())
            win_acc += float(vals[:, 1].sum())
            win_n += len(vals)
            last_loss, last_acc = float(vals[-1, 0]), float(vals[-1, 1])
        win_seg += 3 * B * world
        done_s = time.monotonic() - t_loop
        est_total = total_steps
        if est_total is None and deadline is not None:
            frac = progress_frac(time.monotonic())
            est_total = int(step / frac) if frac > 0 else 0
        eta = None
        if est_total:
            eta = done_s / max(1, step - start_step) * max(est_total - step, 0)
        if main:
            report(progress, "train", step, est_total or 0, f"epoch {epoch + 1}", eta,
                   {"loss": last_loss, "acc": last_acc, "epoch": epoch + (k + 1) / spe, "lr": lr, "device": dev_name})
            if opts.log_every and step % opts.log_every == 0:
                log.debug("step %d loss %.4f acc %.3f lr %.2e", step, last_loss, last_acc, lr)
        if (k + 1) == spe:
            end_epoch(float(epoch + 1))
            win_loss, win_acc, win_n, win_t, win_seg = 0.0, 0.0, 0, time.monotonic(), 0

    # --- finish: a checkpoint at the exact stopping point, then the exported model ---
    epoch_f = step / spe
    if cancelled:
        checkpoint(metrics, epoch_f)
    elif not history or history[-1].get("step") != step:
        end_epoch(epoch_f)
    seconds = prev_seconds + time.monotonic() - t_wall
    result = TrainResult(model_path=None, checkpoint=str(last_path), run_dir=str(run_dir), name=name, steps=step,
                         epochs=epoch_f, seconds=seconds, metrics=metrics, history=history, cancelled=cancelled,
                         failures=failures)
    if world > 1:
        dist.barrier()
    if not main:
        return result
    trainable.eval()
    final_metrics = {k: metrics[k] for k in ("val_loss", "val_acc", "train_loss", "train_acc") if k in metrics}
    final_metrics.update(steps=step, epochs=round(epoch_f, 3), seconds=round(seconds, 1))
    card = dict(card_base, steps=step, epochs=round(epoch_f, 3), seconds=round(seconds, 1),
                history=[{k: h.get(k) for k in ("epoch", "step", "val_loss", "val_acc", "train_loss")} for h in history])
    if not cancelled:
        export_extra = {"head": {k: v.detach().cpu() for k, v in head.state_dict().items()}} if head is not None else None
        export = make_checkpoint(model, fe, name=name, step=step, epoch=int(epoch_f), metrics=final_metrics, card=card,
                                 extra=export_extra)
        model_path = run_dir / f"{name}.pt"
        if lib is not None:
            from musicsim.paths import models_dir

            model_path = models_dir(opts.db) / f"{name}.pt"
        save_checkpoint(export, model_path)
        result.model_path = str(model_path)
        if lib is not None and opts.reembed:
            _reembed_and_activate(lib, model_path, opts, result, progress, cancel, workers)
    if lib is not None and given_lib is None:
        lib.close()
    with open(run_dir / "summary.json", "w") as f:
        json.dump({"name": name, "steps": step, "epochs": epoch_f, "seconds": seconds, "metrics": final_metrics,
                   "model": result.model_path, "cancelled": result.cancelled}, f, indent=1)
    first = next((h for h in history if h.get("val_acc") is not None), {})
    result.summary = (f"{'cancelled' if result.cancelled else 'trained'} {name}: {step} steps ({epoch_f:.2f} epochs) "
                      f"in {seconds / 60:.1f} min on {device.type}; val triplet accuracy "
                      f"{first.get('val_acc', float('nan')):.3f} -> {metrics.get('val_acc', float('nan')):.3f}, val loss "
                      f"{first.get('val_loss', float('nan')):.4f} -> {metrics.get('val_loss', float('nan')):.4f}"
                      + (f"; model {result.model_path}" if result.model_path else f"; resume from {last_path}")
                      + (f"; {'activated' if result.activated else 'not activated'}: {result.guard}" if result.guard else ""))
    log.debug(result.summary)
    return result


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


def _reembed_and_activate(lib, model_path: Path, opts: TrainOptions, result: TrainResult, progress, cancel,
                          workers: int) -> None:
    """Re-embed the library with the new model; make it active unless it groups the library's
    albums/folders worse than the model in use (:mod:`trainer.guard`; ``opts.guard``)."""
    from trainer import guard
    from trainer.reembed import activate_model, model_vectors, reembed_library

    old_id = lib.model_row.id
    new = model_from_checkpoint(read_checkpoint(model_path), path=str(model_path))
    rr = reembed_library(lib, new, progress, cancel, cache=opts.cache, device=opts.device, workers=workers,
                         activate=False)
    result.model_id, result.reembedded = rr["model_id"], rr["embedded"]
    result.cancelled = bool(rr.get("cancelled"))
    if result.cancelled or rr["model_id"] == old_id:
        return
    if opts.guard:
        verdict = guard.judge(guard.track_groups(lib.tracks()), model_vectors(lib, old_id),
                              model_vectors(lib, rr["model_id"]))
        result.guard = verdict.reason
        result.guard_scores = (verdict.old, verdict.new)
        if not verdict.keep_new:
            log.warning("%s; use it anyway with: musicsim model use %s", verdict.reason, rr["name"])
            return
        log.info("%s", verdict.reason)
    activate_model(lib, rr["model_id"])
    result.activated = True


def command_line(argv: list[str] | None = None) -> str:
    """The command that reproduces this run (recorded in the model card)."""
    args = sys.argv[1:] if argv is None else argv
    prefix = ["torchrun", "--nproc_per_node", os.environ["WORLD_SIZE"]] if int(os.environ.get("WORLD_SIZE", "1")) > 1 \
        else ["python"]
    return " ".join(shlex.quote(a) for a in [*prefix, "-m", "trainer", *args])

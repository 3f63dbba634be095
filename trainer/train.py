"""The training loop: Tile2Vec triplets from cached mels, AdamW + warm-up/cosine, exact resume.

``train(options, progress=, cancel=)`` is the one entry point; ``python -m trainer`` and the
GUI's background thread both call it. Under ``torchrun`` it trains with DistributedDataParallel.
What it is asked is a :class:`~trainer.options.TrainOptions`; what a run starts from (a resumed
run's options, the initial model, the data and samplers, the schedule) is built by
:mod:`trainer.setup`; this module holds the loop, validation, checkpoints and the export.

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
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.model.checkpoint import make_checkpoint, model_from_checkpoint, read_checkpoint, save_checkpoint
from trainer.data import Augment, SegmentStore, TripletSampler, rng_for
from trainer.loss import batch_triplet_loss, sq_dist
from trainer.options import TrainOptions, TrainResult  # TrainOptions: part of train()'s API
from trainer.setup import (
    default_run_base,
    prepare_data,
    resumed_options,
    schedule,
    start_model,
)

log = logging.getLogger("trainer")

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


def cpu_bf16_native() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX). There autocasting
    the network to bf16 trains faster (1.6x per step, 1.3x end to end on the 2-core EPYC of the
    model card); elsewhere bf16 is emulated and slower, so ``--amp auto`` keeps float32."""
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):  # private, so looked up with care
        fn = getattr(torch.cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # noqa: BLE001 - an unknown build is a CPU without native bf16
            pass
    return False


def _amp_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast dtype of the network's forward pass (None: float32 throughout). The loss,
    the optimizer state and the weights stay float32; stored track vectors are always
    embedded in float32, so they do not depend on this choice."""
    if amp == "off":
        return None
    if device.type == "cpu":
        return torch.bfloat16 if amp == "bf16" or (amp == "auto" and cpu_bf16_native()) else None
    if device.type != "cuda":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _precision(amp: torch.dtype | None) -> str:
    return "float32" if amp is None else f"{str(amp).removeprefix('torch.')} autocast"


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
        modes = [(m, m.training) for m in model.modules()]  # frozen stages stay in eval mode
        model.eval()
        a = embed_crops(model, self.store, *b.anchor, F, device, amp)
        n = embed_crops(model, self.store, *b.neighbour, F, device, amp)
        d = embed_crops(model, self.store, *b.distant, F, device, amp)
        for m, was in modes:
            m.train(was)
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
    """The network (and projection head) as the loss sees it. ``freeze`` stages at the bottom
    keep their weights and stay in eval mode, so their BatchNorm statistics (and the texture
    statistics the track vector pools from them) stay those of the starting model."""

    def __init__(self, model: torch.nn.Module, head: torch.nn.Module | None, freeze: int = 0) -> None:
        super().__init__()
        self.model, self.head = model, head
        self._frozen = model.lower_modules(freeze)
        for m in self._frozen:
            m.requires_grad_(False)

    def train(self, mode: bool = True) -> _Trainable:
        super().train(mode)
        for m in self._frozen:
            m.eval()
        return self

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

    ``lib``: an open :class:`~musicsim.library.Library` to train on and re-embed (the
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
    opts, ckpt = resumed_options(opts)
    device = _select_device(opts.device, local_rank, world)
    amp = _amp_dtype(device, opts.amp)
    opts, start = start_model(opts, ckpt)
    run_dir = Path(opts.out) if opts.out else default_run_base(opts) / start.name
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    lib = given_lib
    if lib is None and opts.db:
        from musicsim.library import Library

        lib = Library(opts.db, writable=main and opts.reembed)
    try:
        return _run(opts, ckpt, start, lib, device, amp, run_dir, progress, cancel, rank, world, t_wall)
    finally:
        if lib is not None and given_lib is None:
            lib.close()


def _run(opts, ckpt, start, lib, device, amp, run_dir, progress, cancel, rank, world, t_wall) -> TrainResult:
    main = rank == 0
    model, fe, name, init_desc = start.model, start.fe, start.name, start.init_desc
    data = prepare_data(opts, ckpt, start, lib, device, world=world, main=main, progress=progress, cancel=cancel)
    train_paths, val_paths, failures, store = data.train_paths, data.val_paths, data.failures, data.store
    sampler, related = data.sampler, data.related
    frame_s = fe.hop_length / fe.sr
    validate = _Validator(store, data.val_sampler, data.val_pool, opts)
    augment = Augment(pitch_bins=opts.pitch_shift, p_mix=opts.mix) if opts.augment else None
    opts, sch = schedule(opts, ckpt, start, sampler, world)
    B, spe, epochs, total_steps, max_s = opts.batch_size, sch.steps_per_epoch, sch.epochs, sch.total_steps, sch.max_seconds

    # --- optimisation state ---
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    head = None
    if opts.head:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(opts.seed + 1)  # seeded like the network: runs are reproducible
            head = ProjectionHead(model.cfg.embed_dim, opts.head)
        head_state = (ckpt or start.init_ckpt or {}).get("extra", {}).get("head")
        if head_state is not None:
            try:
                head.load_state_dict(head_state)
            except RuntimeError:
                log.warning("the stored projection head does not fit: a new one is trained")
        head = head.to(device)
    trainable = _Trainable(model, head, opts.freeze)
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
        "precision": _precision(amp),
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
        log.info("training %s on %s (%s): %d train / %d val tracks, %.2f h of audio, %d segments/epoch, %s, %s",
                 name, device, _precision(amp), len(train_paths), len(val_paths), store.total_frames * frame_s / 3600,
                 sampler.n_segments, init_desc, f"{total_steps} steps" if total_steps else f"{opts.max_minutes} min")
        if failures:
            log.warning("%d tracks could not be decoded (skipped), e.g. %s", len(failures), failures[0][0])
        if data.n_dup:
            log.info("%d tracks are copies of another track (same recording): never used as its distant segment",
                     data.n_dup)
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

    dev_name = device_name(device) + ("" if amp is None else f", {_precision(amp)}")

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
                   {"device": dev_name, "epoch": epoch_f, "val_loss": row.get("val_loss"), "val_acc": row.get("val_acc"),
                    "val_step": step})  # tells two validations with equal scores apart
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
                                      related=related, temperature=opts.temperature)
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
            _reembed_and_activate(lib, model_path, opts, result, progress, cancel, data.workers)
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

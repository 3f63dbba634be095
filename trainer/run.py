"""A run's fixed parts (:class:`Run`: the network, optimizer, data, schedule, where it runs) and
its moving parts (:class:`State`: step, history, clock, running averages), how they are built
from the options and a checkpoint, and how they are written back to one.

What a checkpoint holds makes resume exact: weights, BatchNorm statistics, optimizer state,
step, torch RNG states, the track split and the related tracks; every random draw of the loop
comes from a generator keyed by (seed, epoch, step, rank) (:func:`trainer.sampling.rng_for`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from musicsim.jobs import CancelToken, ProgressFn
from musicsim.model.checkpoint import make_checkpoint, save_checkpoint
from trainer.augment import Augment
from trainer.dataset import Context, RunData
from trainer.logs import Logger
from trainer.network import ProjectionHead, Trainable, Validator
from trainer.options import TrainOptions
from trainer.runtime import hardware, param_groups, precision, rng_state, set_rng_state
from trainer.setup import Schedule, Start

log = logging.getLogger("trainer")


@dataclass
class Run:
    """What a run trains, on what data, where, and how it reports: fixed once the loop starts."""

    opts: TrainOptions
    start: Start
    data: RunData
    sch: Schedule
    ctx: Context  # device, processes, progress and cancel
    amp: torch.dtype | None
    trainable: Trainable  # the network and projection head, as the loss sees them
    net: torch.nn.Module  # ... wrapped in DistributedDataParallel with more than one process
    optim: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None  # fp16 loss scaling
    augment: Augment | None
    validate: Validator
    logger: Logger
    run_dir: Path
    card_base: dict  # the model card's fields that do not change during the run
    dev_name: str = ""  # the device as the progress reports name it
    sync_every: int = 1  # steps between host synchronisations (and, under DDP, stop checks)

    @property
    def device(self) -> torch.device:
        return self.ctx.device

    @property
    def rank(self) -> int:
        return self.ctx.rank

    @property
    def world(self) -> int:
        return self.ctx.world

    @property
    def main(self) -> bool:
        return self.ctx.main

    @property
    def progress(self) -> ProgressFn | None:
        return self.ctx.progress

    @property
    def cancel(self) -> CancelToken | None:
        return self.ctx.cancel

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"


@dataclass
class State:
    """Where the loop is. ``prev_seconds``: trained before this process (a resumed run);
    ``t_wall``: when this process's run began; the window sums are since the last epoch end."""

    t_wall: float
    step: int = 0
    history: list[dict] = field(default_factory=list)
    prev_seconds: float = 0.0
    metrics: dict = field(default_factory=dict)  # the last logged row
    t_loop: float = 0.0
    start_step: int = 0
    deadline: float | None = None
    cancelled: bool = False
    win_loss: float = 0.0
    win_acc: float = 0.0
    win_n: int = 0
    win_t: float = 0.0
    win_seg: int = 0
    pending: list[torch.Tensor] = field(default_factory=list)  # (loss, acc) not yet read back from the device
    last_loss: float | None = None
    last_acc: float | None = None
    anchors_epoch: int = -1
    anchors: tuple[np.ndarray, np.ndarray] | None = None
    decay: tuple[int, str] | None = None  # "until it stops improving": where the cool-down starts, and why

    def seconds(self) -> float:
        """Trained so far, over every process that ran this run."""
        return self.prev_seconds + time.monotonic() - self.t_wall

    def new_window(self) -> None:
        self.win_loss, self.win_acc, self.win_n, self.win_t, self.win_seg = 0.0, 0.0, 0, time.monotonic(), 0


def _head(opts: TrainOptions, ckpt: dict | None, start: Start, device: torch.device) -> ProjectionHead | None:
    if not opts.head:
        return None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed + 1)  # seeded like the network: runs are reproducible
        head = ProjectionHead(start.model.cfg.embed_dim, opts.head)
    state = (ckpt or start.init_ckpt or {}).get("extra", {}).get("head")
    if state is not None:
        try:
            head.load_state_dict(state)
        except RuntimeError:
            log.warning("the stored projection head does not fit: a new one is trained")
    return head.to(device)


def _restore(ckpt: dict | None, st: State, optim: torch.optim.Optimizer, scaler, device: torch.device) -> None:
    """Continue from a checkpoint: optimizer, step, history, time spent, loss scaling and RNG."""
    if ckpt is None:
        return
    if ckpt.get("optimizer"):
        optim.load_state_dict(ckpt["optimizer"])
    extra = ckpt.get("extra", {})
    st.step = int(ckpt.get("step", 0))
    st.history = list(extra.get("history", []))
    st.prev_seconds = float(extra.get("seconds", 0.0))
    if scaler is not None and extra.get("scaler"):
        scaler.load_state_dict(extra["scaler"])
    set_rng_state(extra.get("rng", {}), device)


def build(
    opts: TrainOptions,
    ckpt: dict | None,
    start: Start,
    data: RunData,
    sch: Schedule,
    ctx: Context,
    *,
    amp: torch.dtype | None,
    run_dir: Path,
    t_wall: float,
) -> tuple[Run, State]:
    """The network on its device, the optimizer, and the state a checkpoint continues from."""
    device, world = ctx.device, ctx.world
    model = start.model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    trainable = Trainable(model, _head(opts, ckpt, start, device), opts.freeze or 0)
    trainable.train()
    optim = torch.optim.AdamW(param_groups(trainable, opts.weight_decay), lr=opts.lr, betas=(0.9, 0.999))
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    st = State(t_wall=t_wall)
    _restore(ckpt, st, optim, scaler, device)
    net: torch.nn.Module = trainable
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(trainable, device_ids=[device.index] if device.type == "cuda" else None)
    run = Run(
        opts=opts,
        start=start,
        data=data,
        sch=sch,
        ctx=ctx,
        amp=amp,
        trainable=trainable,
        net=net,
        optim=optim,
        scaler=scaler,
        augment=Augment(pitch_bins=opts.pitch_shift, p_mix=opts.mix) if opts.augment else None,
        validate=Validator(data.store, data.val_sampler, data.val_pool, opts, data.related),
        logger=Logger(run_dir, ctx.main),
        run_dir=run_dir,
        card_base=card_base(opts, start, data, device, amp, world),
    )
    return run, st


def card_base(opts: TrainOptions, start: Start, data: RunData, device: torch.device, amp, world: int) -> dict:
    frame_s = start.fe.hop_length / start.fe.sr
    return {
        "recipe": opts.command or "trainer.train(TrainOptions(...))",
        "init": start.init_desc,
        "data": {
            "tracks_train": len(data.train_paths),
            "tracks_val": len(data.val_paths),
            "hours": round(data.store.total_frames * frame_s / 3600, 2),
            "db": opts.db,
            # absolute, so that a later check (trainer.suite: never judged on music it trained
            # on) does not depend on where the run was started
            "folders": [str(Path(f).expanduser().absolute()) for f in opts.folders],
            "cache_failures": len(data.failures),
        },
        "hardware": hardware(device) + (f"; {world} processes (DDP)" if world > 1 else ""),
        "precision": precision(amp),
        "options": opts.to_dict(),
    }


def _state_dict(m: torch.nn.Module) -> dict:
    return {k: v.detach().cpu() for k, v in m.state_dict().items()}


def save_state(run: Run, st: State, epoch_f: float) -> None:
    """The training checkpoint (``last.pt``): everything ``--resume`` needs (rank 0 writes it)."""
    if not run.main:
        return
    extra = {
        "options": run.opts.to_dict(),
        "steps_per_epoch": run.sch.steps_per_epoch,
        "history": st.history,
        "seconds": st.seconds(),
        "rng": rng_state(run.device),
        "split": {"train": run.data.train_paths, "val": run.data.val_paths},
        "world_size": run.world,
    }
    if run.scaler is not None:
        extra["scaler"] = run.scaler.state_dict()
    if run.trainable.head is not None:
        extra["head"] = _state_dict(run.trainable.head)
    if run.data.related is not None:
        extra["related"] = run.data.related.state()
    card = dict(run.card_base, steps=st.step, epochs=round(epoch_f, 3), seconds=round(extra["seconds"], 1))
    save_checkpoint(
        make_checkpoint(
            run.start.model,
            run.start.fe,
            name=run.start.name,
            optimizer=run.optim.state_dict(),
            step=st.step,
            epoch=int(epoch_f),
            metrics=st.metrics,
            card=card,
            extra=extra,
        ),
        run.last_path,
    )


def export(run: Run, st: State, metrics: dict, seconds: float) -> Path:
    """The trained model without optimizer state: into the library's model folder when the run
    trained on a library (``opts.db``), else into the run folder."""
    epoch_f = st.step / run.sch.steps_per_epoch
    card = dict(
        run.card_base,
        steps=st.step,
        epochs=round(epoch_f, 3),
        seconds=round(seconds, 1),
        history=[{k: h.get(k) for k in ("epoch", "step", "val_loss", "val_acc", "train_loss")} for h in st.history],
    )
    head = run.trainable.head
    ckpt = make_checkpoint(
        run.start.model,
        run.start.fe,
        name=run.start.name,
        step=st.step,
        epoch=int(epoch_f),
        metrics=metrics,
        card=card,
        extra={"head": _state_dict(head)} if head is not None else None,
    )
    path = run.run_dir / f"{run.start.name}.pt"
    if run.opts.db:
        from musicsim.paths import models_dir

        path = models_dir(run.opts.db) / f"{run.start.name}.pt"
    save_checkpoint(ckpt, path)
    return path

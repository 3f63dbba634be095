"""What a training run starts from: the options of a resumed run, the initial model and front
end, and the schedule. The data it trains on is gathered by :mod:`trainer.dataset`.

:func:`trainer.train.train` calls these in order, then runs the loop.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import torch

from musicsim.audio.features import FrontEnd
from musicsim.errors import CheckpointError
from musicsim.model.checkpoint import (
    DEFAULT_RESOURCE,
    LoadedModel,
    model_checksum,
    model_from_checkpoint,
    read_checkpoint,
)
from musicsim.model.resnet import ModelConfig, build_model
from trainer.loss import MINING_MODES
from trainer.options import (
    BOUND_FIELDS,
    DEFAULT_EPOCHS_FINETUNE,
    DEFAULT_EPOCHS_SCRATCH,
    FINETUNE_MAX_STEPS,
    RUNTIME_FIELDS,
    TrainOptions,
    recipe_defaults,
)
from trainer.plateau import CHECK_STEPS as PLATEAU_CHECK_STEPS
from trainer.plateau import MAX_MINUTES as PLATEAU_MAX_MINUTES
from trainer.plateau import Plateau
from trainer.sampling import TripletSampler

log = logging.getLogger("trainer")


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
    its architecture, front end, name and the recipe defaults of its kind of run filled in."""
    start = _resumed(ckpt) if ckpt is not None else _fresh(opts)
    cfg = start.model.cfg
    opts = replace(
        opts,
        segment_frames=start.fe.segment_frames,
        width=cfg.width,
        embed_dim=cfg.embed_dim,
        normalize=cfg.normalize,
        pooling=cfg.pooling,
        name=start.name,
    )
    if ckpt is not None and "related" not in ckpt.get("extra", {}):
        opts = replace(opts, similar_k=0)  # a run from before related tracks: resume it as it was
    return recipe_defaults(opts, fine_tuning=start.fine_tuning), start


def _resumed(ckpt: dict) -> Start:
    loaded = model_from_checkpoint(ckpt)
    init_desc = str(ckpt.get("card", {}).get("init", "resume"))
    return Start(loaded.model, loaded.frontend, str(ckpt.get("name")), init_desc, None, loaded)


def _fresh(opts: TrainOptions) -> Start:
    """Fine-tuned from ``opts.init`` (re-pooled if ``opts.pooling`` says so), or a new network."""
    init = _init_path(opts.init)
    init_ckpt = loaded = None
    if init:
        init_ckpt = read_checkpoint(init)
        loaded = model_from_checkpoint(init_ckpt, path=init)
        model, fe = loaded.model, loaded.frontend
        if opts.pooling and opts.pooling != model.cfg.pooling:
            model.cfg = replace(model.cfg, pooling=opts.pooling)
        init_desc = f"fine-tune {loaded.name} ({loaded.checksum})"
    else:
        cfg = ModelConfig(
            width=opts.width, embed_dim=opts.embed_dim, normalize=opts.normalize, pooling=opts.pooling or "multiband"
        )
        model, fe, init_desc = build_model(cfg, seed=opts.seed), FrontEnd(segment_frames=opts.segment_frames), "scratch"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = "finetune" if init_desc.startswith("fine") else "trained"
    name = opts.name or (f"{base}-{Path(opts.db).stem}-{stamp}" if opts.db else f"{base}-{stamp}")
    return Start(model, fe, name, init_desc, init_ckpt, loaded)


def _init_path(init: str | None) -> str | None:
    """The checkpoint ``--from`` names (``default``: the shipped model; None: from scratch)."""
    if init == "default":
        init = str(DEFAULT_RESOURCE) if DEFAULT_RESOURCE.exists() else None
        if init is None:
            log.warning("no shipped model found: training from scratch")
    return init if init and init != "scratch" else None


def start_checksum(opts: TrainOptions) -> str | None:
    """The checksum of the model a run with ``opts`` fine-tunes from, when the run will use a
    caller's stored track vectors of it (:attr:`trainer.tracks.TrainTrack.vector`) to find
    related tracks; None when it will not (from scratch, a resumed run, no related tracks)."""
    if opts.resume or opts.similar_k == 0:
        return None
    return init_checksum(opts)


def init_checksum(opts: TrainOptions) -> str | None:
    """The checksum of the model a new run with ``opts`` starts from; None from scratch, or
    when ``opts.pooling`` re-pools it into another model."""
    init = opts.init
    if init == "default":
        init = str(DEFAULT_RESOURCE) if DEFAULT_RESOURCE.exists() else None
    if not init or init == "scratch":
        return None
    ckpt = read_checkpoint(init)
    cfg = ModelConfig.from_dict(ckpt["model_args"])
    if opts.pooling and opts.pooling != cfg.pooling:
        return None  # re-pooled: another model, whose vectors no library holds yet
    return model_checksum(ckpt["model"], cfg)


@dataclass
class Schedule:
    steps_per_epoch: int
    epochs: int | None
    total_steps: int | None  # None: bounded by time only
    max_seconds: float | None
    plateau: Plateau | None = None  # "until it stops improving" (trainer.plateau)


def schedule(
    opts: TrainOptions, ckpt: dict | None, start: Start, sampler: TripletSampler, world: int
) -> tuple[TrainOptions, Schedule]:
    """How long the run is (the defaults filled into the options, so a resumed run keeps them)
    and its peak learning rate."""
    spe = max(1, math.ceil(sampler.n_segments / (opts.batch_size * world)))
    if ckpt is not None and ckpt.get("extra", {}).get("steps_per_epoch"):
        spe = int(ckpt["extra"]["steps_per_epoch"])
    epochs, steps = opts.epochs, opts.steps
    if opts.until_plateau and opts.max_minutes is None:
        opts = replace(opts, max_minutes=PLATEAU_MAX_MINUTES)  # stored: a resumed run keeps its cap
    max_s = opts.max_minutes * 60 if opts.max_minutes is not None else None
    if epochs is None and steps is None and max_s is None:
        epochs = DEFAULT_EPOCHS_FINETUNE if start.fine_tuning else DEFAULT_EPOCHS_SCRATCH
        if start.fine_tuning:  # a big library: a bounded fine-tune, not 3 full epochs
            steps = FINETUNE_MAX_STEPS
        opts = replace(opts, epochs=epochs, steps=steps)  # stored, so a resumed run keeps the same schedule
    total_steps = None
    if steps is not None:
        total_steps = int(steps)
    if epochs is not None:
        total_steps = min(total_steps or 10**12, int(epochs) * spe)
    # a check every epoch, or every CHECK_STEPS steps of a longer one: evenly spaced either way
    plateau = (
        Plateau(max_seconds=max_s, check_steps=min(spe, PLATEAU_CHECK_STEPS), warmup_steps=opts.warmup_steps)
        if opts.until_plateau
        else None
    )
    return opts, Schedule(spe, epochs, total_steps, max_s, plateau)

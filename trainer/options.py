"""What a training run is asked to do (:class:`TrainOptions`), what it gives back
(:class:`TrainResult`), and the trainer's defaults."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import asdict, dataclass, field, fields, replace

DEFAULT_EPOCHS_SCRATCH = 30
DEFAULT_EPOCHS_FINETUNE = 3
# ...but at most this many steps (1-2 min on 2 CPU threads at width 16 with the lower stages
# kept, at the suite's pace): longer fine-tunes measured no better (docs/experiments.md), and
# a 500-track library must fit in 15 min.
FINETUNE_MAX_STEPS = 600
LR_SCRATCH = 2e-3
LR_FINETUNE = 5e-4
# Fine-tuning: each track's nearest tracks under the starting model are not distant (trainer.related).
SIMILAR_K_FINETUNE = 15
# A segment's neighbour starts within +-W seconds of it: 10 s from scratch; fine-tuning takes it
# from anywhere in the track (up to 10 min away), which with 15 related tracks measured best in
# 12-minute fine-tunes and no worse in the 3-epoch default (docs/experiments.md).
WINDOW_SECONDS_SCRATCH = 10.0
WINDOW_SECONDS_FINETUNE = 600.0
# Fine-tuning keeps the input norm, the stem and the first three of the four ResNet stages as
# they are and trains the fourth stage and the embedding: on the leave-one-library-out suite the
# most consistent fine-tune, at twice the steps per minute (docs/experiments.md).
FREEZE_FINETUNE = 3
# Fine-tuning: with this chance a segment's neighbour is a crop of a track it is mutually nearest
# to under the starting model (trainer.related), so that what two such tracks share counts as
# "alike". On the suite at 15 minutes, four seeds: the probe and outlier AUROC above the plain
# fine-tune at each seed, precision@5 and NMI within a seed's spread, 1-NN below it
# (docs/experiments.md).
MUTUAL_POSITIVES_FINETUNE = 0.3
# Fields that describe where/how a run executes, not what it computes: a resumed run takes
# these from the new call, everything else from the checkpoint.
RUNTIME_FIELDS = (
    "device",
    "workers",
    "cache",
    "threads",
    "resume",
    "out",
    "log_every",
    "reembed",
    "guard",
    "amp",
    "memory_gb",
)
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
    # train until the held-out loss stops improving (trainer.plateau), within max_minutes (default 60)
    until_plateau: bool = False
    batch_size: int = 64
    lr: float | None = None  # peak learning rate; None: LR_SCRATCH, or LR_FINETUNE when fine-tuning
    weight_decay: float = 0.05
    warmup_steps: int = 100
    final_lr_ratio: float = 0.02
    margin: float = 0.5
    temperature: float = 0.1  # of the InfoNCE loss (mining "nce")
    window_seconds: float | None = None  # None: WINDOW_SECONDS_SCRATCH, or WINDOW_SECONDS_FINETUNE when fine-tuning
    mining: str = "all"  # batch-all: every in-batch negative of another track (measured best; docs/experiments.md)
    # each track's K nearest tracks under the starting model are never its distant segment
    # (trainer.related); None: SIMILAR_K_FINETUNE when fine-tuning, 0 from scratch
    similar_k: int | None = None
    # chance that a positive is a crop of a track mutually nearest to the anchor's (trainer.related);
    # None: MUTUAL_POSITIVES_FINETUNE when fine-tuning, 0 from scratch
    mutual_positives: float | None = None
    augment: bool = True
    pitch_shift: int = 0  # augmentation: shift crops by up to this many mel bands
    mix: float = 0.0  # augmentation: chance of mixing another crop in at -20..-8 dB
    # the input norm, stem and this many ResNet stages keep their weights (and BatchNorm
    # statistics); None: FREEZE_FINETUNE when fine-tuning, 0 (every layer) from scratch
    freeze: int | None = None
    head: int = 0  # hidden size of an MLP projection head used only while training (0: none)
    norm_reg: float = 0.0
    width: int = 32
    embed_dim: int = 128
    normalize: bool = True
    pooling: str | None = None  # track vectors: None = "multiband" from scratch, the source's when fine-tuning
    segment_frames: int = 128
    val_fraction: float = 0.1
    val_triplets: int = 512
    seed: int = 0
    workers: int = 0
    threads: int | None = None
    amp: str = "auto"  # auto: bf16 (or fp16 + loss scaling) on CUDA, bf16 on a CPU that has it in hardware; "off"
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


def recipe_defaults(opts: TrainOptions, *, fine_tuning: bool) -> TrainOptions:
    """``opts`` with each recipe option left at None ("depends on the start") filled in with
    the fine-tune's default or that of a run from scratch: the values a run trains with."""
    values = {
        "lr": LR_FINETUNE if fine_tuning else LR_SCRATCH,
        "similar_k": SIMILAR_K_FINETUNE if fine_tuning else 0,
        "window_seconds": WINDOW_SECONDS_FINETUNE if fine_tuning else WINDOW_SECONDS_SCRATCH,
        "freeze": FREEZE_FINETUNE if fine_tuning else 0,
        "mutual_positives": MUTUAL_POSITIVES_FINETUNE if fine_tuning else 0.0,
    }
    return replace(opts, **{k: v for k, v in values.items() if getattr(opts, k) is None})


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
    device: str = ""  # the device type it trained on ("cpu", "cuda", "mps")
    stopped: str = ""  # "until it stops improving": why and where the cool-down began (trainer.plateau)
    # filled by the library side (musicsim.library.finetune) when it re-embeds a library:
    model_id: int | None = None  # the library's row for the new model (after re-embedding)
    reembedded: int = 0
    activated: bool = False  # the new model became the library's active model
    guard: str = ""  # the album/folder check's verdict (trainer.guard.judge)
    guard_scores: tuple = (None, None)  # its precision@5 before -> after
    failures: list = field(default_factory=list)
    summary: str = ""


def command_line(argv: list[str] | None = None) -> str:
    """The command that reproduces this run (recorded in the model card)."""
    args = sys.argv[1:] if argv is None else argv
    prefix = (
        ["torchrun", "--nproc_per_node", os.environ["WORLD_SIZE"]]
        if int(os.environ.get("WORLD_SIZE", "1")) > 1
        else ["python"]
    )
    return " ".join(shlex.quote(a) for a in [*prefix, "-m", "trainer", *args])

"""The command line of ``python -m trainer``: its options, grouped as ``--help`` shows them, and
the :class:`~trainer.options.TrainOptions` they make."""

from __future__ import annotations

import argparse

from musicsim.model.resnet import POOLINGS
from trainer.loss import MINING_MODES
from trainer.options import (
    DEFAULT_EPOCHS_FINETUNE,
    DEFAULT_EPOCHS_SCRATCH,
    FINETUNE_MAX_STEPS,
    FREEZE_FINETUNE,
    LR_FINETUNE,
    LR_SCRATCH,
    MUTUAL_POSITIVES_FINETUNE,
    SIMILAR_K_FINETUNE,
    WINDOW_SECONDS_FINETUNE,
    WINDOW_SECONDS_SCRATCH,
    TrainOptions,
    command_line,
)

EPILOG = """\
With no folders and no --db, python -m trainer fine-tunes your default library (the one the app
opens; MUSICSIM_HOME moves it), re-embeds it with the new model and makes that model active,
unless it groups the library's albums/folders worse than the model in use (see --no-guard).

examples:
  python -m trainer                                                fine-tune the shipped model on your library,
                                                                   re-embed it and make the new model active
  python -m trainer --db ~/music-b/library.db --max-minutes 12     the same for another library, for 12 minutes
  python -m trainer --scratch --width 32 --max-minutes 60 /music    train from scratch on folders for an hour
  python -m trainer --until-plateau                                fine-tune until it stops improving (at most an hour)
  python -m trainer --resume                                       continue the newest interrupted run exactly
  torchrun --nproc_per_node 2 -m trainer --scratch /music          DistributedDataParallel on 2 processes/GPUs
"""


def build_parser() -> argparse.ArgumentParser:
    d = TrainOptions()
    ap = argparse.ArgumentParser(
        prog="python -m trainer",
        description=(
            "Self-supervised training of musicsim's embedding network (Tile2Vec triplets: a segment, a segment of the "
            "same track within +-W seconds, a segment of another track; margin triplet loss on unit vectors)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _data_arguments(ap, d)
    _model_arguments(ap, d)
    _training_arguments(ap, d)
    _running_arguments(ap, d)
    return ap


def _data_arguments(ap: argparse.ArgumentParser, d: TrainOptions) -> None:
    """What to train on."""
    g = ap.add_argument_group("data")
    g.add_argument(
        "folders",
        nargs="*",
        help="folders (or files) of music to train on, besides --db (none and no --db: your default library)",
    )
    g.add_argument(
        "--db",
        help="train on the tracks of this musicsim library database; afterwards every track is "
        "re-embedded with the new model, which becomes active (the old one stays listed); "
        "default without folders: the library the app opens",
    )
    g.add_argument("--cache", help="mel cache folder (default: musicsim's cache folder, <cache>/mels)")
    g.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        help=f"share of tracks held out for validation (default {d.val_fraction})",
    )
    g.add_argument(
        "--val-triplets",
        type=int,
        default=d.val_triplets,
        help=f"fixed validation triplets per epoch (default {d.val_triplets})",
    )
    g.add_argument("--workers", type=int, default=d.workers, help="decoding processes for the cache (0: one per core)")
    g.add_argument(
        "--memory-gb",
        type=float,
        default=d.memory_gb,
        help="RAM for the in-memory mel store: a longer library is sampled (tracks not in the mel cache are "
        "decoded only until twice this is found) and its tracks trimmed to fit "
        f"(default {d.memory_gb})",
    )


def _model_arguments(ap: argparse.ArgumentParser, d: TrainOptions) -> None:
    """The network: fine-tuned from a checkpoint, or new."""
    m = ap.add_argument_group("model")
    x = m.add_mutually_exclusive_group()
    x.add_argument(
        "--from",
        dest="init",
        default="default",
        metavar="CHECKPOINT",
        help="fine-tune this checkpoint (default: the shipped model)",
    )
    x.add_argument("--scratch", action="store_true", help="train a new network from random weights")
    m.add_argument("--width", type=int, default=d.width, help=f"ResNet base width, from scratch (default {d.width})")
    m.add_argument(
        "--embed-dim", type=int, default=d.embed_dim, help=f"embedding size, from scratch (default {d.embed_dim})"
    )
    m.add_argument(
        "--pooling",
        choices=POOLINGS,
        help="track vector from segment vectors: multiband (mean and spread of the embedding and of "
        "the third, second and first stages' texture statistics, each in the lower and the upper "
        "half of the frequency axis; default from scratch), multilevel3 (the embedding and the "
        "third and second stages' statistics over all frequencies), multilevel (the embedding "
        "and the third stage's), meanstd (of the embedding) or mean; fine-tuning keeps the "
        "source model's unless given",
    )
    m.add_argument(
        "--segment-frames",
        type=int,
        default=d.segment_frames,
        help=f"frames per segment (hop 23 ms), from scratch (default {d.segment_frames} = 2.97 s)",
    )
    m.add_argument(
        "--unnormalized",
        action="store_true",
        help="from scratch: unnormalised embeddings (use with --norm-reg, Tile2Vec's regulariser)",
    )
    m.add_argument("--name", help="model name (default: trained-/finetune-<library>-<date>)")


def add_recipe_arguments(g: argparse.ArgumentParser | argparse._ArgumentGroup, d: TrainOptions) -> tuple[str, ...]:
    """Declare the options that make a fine-tune's recipe on ``g`` (a parser or an argument
    group), defaults from ``d``: once for ``python -m trainer`` and ``python -m trainer.suite``,
    which passes them on to each library's fine-tune. Returns their TrainOptions field names in
    the order declared (the order the suite's heading names them in)."""
    actions: list[argparse.Action] = []

    def add(*flags: str, **kw) -> None:
        actions.append(g.add_argument(*flags, **kw))

    add(
        "--similar-k",
        type=int,
        default=None,
        metavar="K",
        help="treat each track's K nearest tracks under the starting model as alike: never its distant "
        f"segment nor an in-batch negative; at most a quarter of the library's other tracks; 0: off "
        f"(default {SIMILAR_K_FINETUNE} when fine-tuning, 0 from scratch)",
    )
    add(
        "--mutual-positives",
        type=float,
        default=d.mutual_positives,
        metavar="P",
        help="with chance P a segment's neighbour is a crop of a track it is mutually nearest to "
        "(each among the other's two nearest under the starting model; needs --similar-k); 0: off "
        f"(default {MUTUAL_POSITIVES_FINETUNE} when fine-tuning, 0 from scratch)",
    )
    add(
        "--freeze",
        type=int,
        default=d.freeze,
        metavar="N",
        choices=range(5),
        help="keep the input norm, the stem and the first N of the 4 ResNet stages as they are (weights "
        "and BatchNorm statistics) and train the rest; 0: every layer "
        f"(default {FREEZE_FINETUNE} when fine-tuning, about twice the steps a minute; 0 from scratch)",
    )
    add("--mining", choices=MINING_MODES, default=d.mining, help=f"in-batch negative mining (default {d.mining})")
    add(
        "--pitch-shift",
        type=int,
        default=d.pitch_shift,
        metavar="BANDS",
        help=f"augmentation: shift crops by up to this many mel bands (default {d.pitch_shift})",
    )
    add(
        "--mix",
        type=float,
        default=d.mix,
        metavar="P",
        help=f"augmentation: chance of mixing another crop in at -20..-8 dB (default {d.mix})",
    )
    add("--seed", type=int, default=d.seed, help=f"seed of initialisation, split and sampling (default {d.seed})")
    return tuple(a.dest for a in actions)


def _training_arguments(ap: argparse.ArgumentParser, d: TrainOptions) -> None:
    """The recipe: length, optimizer, loss, sampling, augmentation."""
    t = ap.add_argument_group("training")
    t.add_argument(
        "--epochs",
        type=int,
        help=f"epochs (each visits every training segment once as an anchor; "
        f"default {DEFAULT_EPOCHS_FINETUNE} fine-tuning (at most "
        f"{FINETUNE_MAX_STEPS} steps), {DEFAULT_EPOCHS_SCRATCH} from scratch, "
        f"unless --steps or --max-minutes is given)",
    )
    t.add_argument("--steps", type=int, help="optimizer steps (bounds the run by work)")
    t.add_argument("--max-minutes", type=float, help="bound the run by wall time (the LR schedule fits the budget)")
    t.add_argument(
        "--until-plateau",
        action="store_true",
        help="train until the loss on held-out tracks stops improving, then cool down and stop; "
        "within --max-minutes (default 60)",
    )
    t.add_argument("--batch-size", type=int, default=d.batch_size, help=f"triplets per step (default {d.batch_size})")
    t.add_argument(
        "--lr",
        type=float,
        default=d.lr,
        help=f"peak AdamW learning rate (default {LR_SCRATCH} from scratch, {LR_FINETUNE} fine-tuning)",
    )
    t.add_argument(
        "--weight-decay", type=float, default=d.weight_decay, help=f"AdamW weight decay (default {d.weight_decay})"
    )
    t.add_argument(
        "--warmup-steps", type=int, default=d.warmup_steps, help=f"linear LR warm-up (default {d.warmup_steps})"
    )
    t.add_argument(
        "--final-lr-ratio",
        type=float,
        default=d.final_lr_ratio,
        help=f"cosine schedule ends at lr x this (default {d.final_lr_ratio})",
    )
    t.add_argument(
        "--margin", type=float, default=d.margin, help=f"triplet margin on squared distance (default {d.margin})"
    )
    t.add_argument(
        "--temperature",
        type=float,
        default=d.temperature,
        help=f"temperature of the InfoNCE loss, with --mining nce (default {d.temperature})",
    )
    t.add_argument(
        "--window-seconds",
        type=float,
        default=None,
        metavar="W",
        help="neighbour starts within +-W seconds of the anchor (default "
        f"{WINDOW_SECONDS_FINETUNE:g} when fine-tuning: anywhere in all but the longest tracks; "
        f"{WINDOW_SECONDS_SCRATCH:g} from scratch)",
    )
    add_recipe_arguments(t, d)
    t.add_argument("--no-augment", dest="augment", action="store_false", help="no gain/EQ/masking augmentation")
    t.add_argument(
        "--head",
        type=int,
        default=d.head,
        help=f"hidden size of an MLP projection head used only for the loss; 0: none (default {d.head})",
    )
    t.add_argument("--norm-reg", type=float, default=d.norm_reg, help="Tile2Vec norm regulariser weight (default 0)")


def _running_arguments(ap: argparse.ArgumentParser, d: TrainOptions) -> None:
    """Where and how the run executes; what happens to the library afterwards."""
    r = ap.add_argument_group("running")
    r.add_argument("--device", default=d.device, help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    r.add_argument(
        "--amp",
        choices=("auto", "bf16", "fp16", "off"),
        default=d.amp,
        help="mixed precision of the network's forward pass (auto: on CUDA bf16 where supported, else "
        "fp16; on a CPU with bf16 in hardware (AVX512-BF16, AMX) bf16, else off; fp16 is CUDA only)",
    )
    r.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    r.add_argument(
        "--out", help="run folder for checkpoints and logs (default: next to the library, or the data folder)"
    )
    r.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="RUN",
        help="continue an interrupted run exactly (bit for bit on a CPU; on CUDA to rounding, as cuDNN's "
        "kernels are not bit-reproducible): its folder or last.pt (no value: the newest run)",
    )
    r.add_argument(
        "--no-reembed",
        dest="reembed",
        action="store_false",
        help="with --db: do not re-embed the library with the new model",
    )
    r.add_argument(
        "--no-guard",
        dest="guard",
        action="store_false",
        help="with --db: make the new model active even if it groups the library's albums/folders "
        "worse than the model in use (by default it then stays selectable but inactive)",
    )
    r.add_argument("--quiet", action="store_true", help="only the final summary line")


def options_from_args(a: argparse.Namespace, argv: list[str] | None = None) -> TrainOptions:
    return TrainOptions(
        folders=list(a.folders),
        db=a.db,
        init=None if a.scratch else a.init,
        out=a.out,
        name=a.name,
        cache=a.cache,
        device=a.device,
        epochs=a.epochs,
        steps=a.steps,
        max_minutes=a.max_minutes,
        until_plateau=a.until_plateau,
        batch_size=a.batch_size,
        lr=a.lr,
        weight_decay=a.weight_decay,
        warmup_steps=a.warmup_steps,
        final_lr_ratio=a.final_lr_ratio,
        margin=a.margin,
        temperature=a.temperature,
        window_seconds=a.window_seconds,
        mining=a.mining,
        similar_k=a.similar_k,
        mutual_positives=a.mutual_positives,
        freeze=a.freeze,
        augment=a.augment,
        pitch_shift=a.pitch_shift,
        mix=a.mix,
        head=a.head,
        norm_reg=a.norm_reg,
        width=a.width,
        embed_dim=a.embed_dim,
        normalize=not a.unnormalized,
        pooling=a.pooling,
        segment_frames=a.segment_frames,
        val_fraction=a.val_fraction,
        val_triplets=a.val_triplets,
        seed=a.seed,
        workers=a.workers,
        threads=a.threads,
        amp=a.amp,
        resume=a.resume,
        reembed=a.reembed,
        guard=a.guard,
        memory_gb=a.memory_gb,
        command=command_line(argv),
    )

"""The training loop: Tile2Vec triplets from cached mels, AdamW + warm-up/cosine, exact resume.

``train(options, tracks=, decode=, progress=, cancel=)`` is the one entry point; ``python -m
trainer`` and the library side (:mod:`musicsim.library.finetune`, which re-embeds a library
with the result) both call it. Under ``torchrun`` it trains with DistributedDataParallel.
What it is asked is a :class:`~trainer.options.TrainOptions` plus the tracks to train on
(:class:`~trainer.tracks.TrainTrack`, besides ``options.folders``); what it gives back is a
:class:`~trainer.options.TrainResult`: the checkpoint, the exported model and the metrics.

Reading order: :func:`train` sets up the processes, :func:`_train` builds the run
(:mod:`trainer.setup`, :mod:`trainer.dataset`, :mod:`trainer.run`), :func:`_loop` runs it one
:func:`step` at a time until :func:`should_stop`, and :func:`finish` writes the results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from musicsim.jobs import CancelToken, ProgressFn, report
from musicsim.melcache import DecodeSettings
from trainer.dataset import Context, prepare_data
from trainer.logs import final_metrics, summarise, summary_line
from trainer.loss import batch_triplet_loss
from trainer.options import TrainOptions, TrainResult
from trainer.plateau import watched
from trainer.reporting import announce, progress_fraction, report_step
from trainer.run import Run, State, build, export, save_state
from trainer.runtime import amp_dtype, autocast, cpu_bf16_native, dist_info, lr_at, precision, select_device, warm_up
from trainer.sampling import rng_for
from trainer.setup import default_run_base, resumed_options, schedule, start_model
from trainer.tracks import TrainTrack

__all__ = ["TrainOptions", "TrainResult", "TrainTrack", "cpu_bf16_native", "train", "warm_up"]
_amp_dtype = amp_dtype  # the name tests and benchmarks know

log = logging.getLogger("trainer")


def train(
    options: TrainOptions,
    *,
    tracks: Sequence[TrainTrack] = (),
    decode: DecodeSettings | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train (or fine-tune, or resume) a model on ``tracks`` and the files below ``options.folders``.

    ``decode``: how tracks are decoded (a library's scan settings; default :class:`DecodeSettings`).
    ``options.db`` names the library the tracks came from (where the run folder and the
    exported model go); the trainer never opens it.
    """
    t_wall = time.monotonic()
    rank, world, local_rank = dist_info()
    own_pg = False
    if world > 1 and not dist.is_initialized():
        cuda = torch.cuda.is_available() and (options.device == "auto" or options.device.startswith("cuda"))
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(hours=6))
        own_pg = True
    threads = torch.get_num_threads()
    try:
        result = _train(
            options,
            list(tracks),
            decode,
            Context(torch.device("cpu"), rank, world, progress, cancel),
            local_rank,
            t_wall,
        )
        if own_pg:  # the others wait out rank 0's export: no process tears down its group while a peer works
            dist.barrier()
        return result
    finally:
        torch.set_num_threads(threads)  # opts.threads is for this run only (the app goes on scanning)
        if own_pg and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    opts: TrainOptions,
    tracks: list[TrainTrack],
    decode: DecodeSettings | None,
    ctx: Context,
    local_rank: int,
    t_wall: float,
) -> TrainResult:
    if opts.threads:
        torch.set_num_threads(int(opts.threads))
    opts, ckpt = resumed_options(opts)
    ctx.device = select_device(opts.device, local_rank, ctx.world)
    amp = amp_dtype(ctx.device, opts.amp)
    opts, start = start_model(opts, ckpt)
    run_dir = Path(opts.out) if opts.out else default_run_base(opts) / start.name
    if ctx.main:
        run_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(opts, ckpt, start, tracks, decode, ctx)
    opts, sch = schedule(opts, ckpt, start, data.sampler, ctx.world)
    run, st = build(opts, ckpt, start, data, sch, ctx, amp=amp, run_dir=run_dir, t_wall=t_wall)
    _begin(run, st)
    _loop(run, st)
    return finish(run, st)


def _begin(run: Run, st: State) -> None:
    """Name the device, start the clock and (rank 0) announce the run; the starting metrics."""
    from musicsim.model.embed import device_name

    run.dev_name = device_name(run.device) + ("" if run.amp is None else f", {precision(run.amp)}")
    run.sync_every = 1 if run.device.type == "cpu" else max(1, min(run.opts.log_every or 50, 50))
    if run.main:
        announce(run, st)
    st.metrics = dict(st.history[-1]) if st.history else {}
    st.t_loop = st.win_t = time.monotonic()
    st.start_step = st.step
    if run.sch.plateau is not None:
        st.decay = run.sch.plateau.decay_start(st.history)  # a resumed run: as the history decided
    if run.sch.max_seconds is not None:
        st.deadline = st.t_wall + max(0.0, run.sch.max_seconds - st.prev_seconds)


def _loop(run: Run, st: State) -> None:
    """One step at a time until the schedule, the clock or the user stops the run."""
    spe = run.sch.steps_per_epoch
    while True:
        now = time.monotonic()
        if should_stop(run, st, now):
            break
        epoch, k = divmod(st.step, spe)
        loss_acc, lr = step(run, st, epoch, k, now)
        st.step += 1
        st.pending.append(loss_acc)
        if len(st.pending) >= run.sync_every or k + 1 == spe:
            _read_back(st)
        st.win_seg += 3 * run.opts.batch_size * run.world
        report_step(run, st, epoch, k, lr)
        plateau = run.sch.plateau
        if k + 1 == spe or (
            plateau is not None
            and st.decay is None
            and st.step % plateau.check_steps == 0
            and plateau.check_steps < spe
        ):
            end_epoch(run, st, float(epoch + 1) if k + 1 == spe else st.step / spe)
            st.new_window()
            if plateau is not None and st.decay is None:
                st.decay = _agreed(run, plateau.decay_start(st.history) if run.main else None)
                if st.decay is not None and run.main:
                    log.info("cooling down for %d steps: %s", plateau.decay_steps(st.decay[0]), _stopped(st.decay))


def _stopped(decay: tuple[int, str] | None) -> str:
    if decay is None:
        return ""
    why = "the held-out loss stopped improving" if decay[1] == "plateau" else "80 % of the time limit"
    return f"{why} at step {decay[0]}"


def _agreed(run: Run, decay: tuple[int, str] | None) -> tuple[int, str] | None:
    """Rank 0's decision (it alone validates), the same on every process under DDP."""
    if run.world <= 1:
        return decay
    code = {None: 0, "plateau": 1, "time": 2}
    t = torch.tensor(
        [decay[0] if decay else -1, code[decay[1] if decay else None]],
        device=run.device if run.device.type == "cuda" else "cpu",
    )
    dist.broadcast(t, 0)
    step, why = int(t[0]), int(t[1])
    return None if why == 0 else (step, "plateau" if why == 1 else "time")


def should_stop(run: Run, st: State, now: float) -> bool:
    """Whether the run ends before this step: its steps are done, its time is up, or it was
    cancelled (then ``st.cancelled``). Under DDP the processes agree on time and cancel every
    ``sync_every`` steps (the same steps everywhere, so the collective calls match)."""
    late = st.deadline is not None and now >= st.deadline
    want_cancel = run.cancel is not None and run.cancel.cancelled
    if run.world > 1:
        if st.step % run.sync_every == 0:
            flags = torch.tensor(
                [float(late), float(want_cancel)], device=run.device if run.device.type == "cuda" else "cpu"
            )
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            late, want_cancel = bool(flags[0]), bool(flags[1])
        else:
            late = want_cancel = False
    st.cancelled = want_cancel
    cooled = run.sch.plateau is not None and run.sch.plateau.done(st.step, st.decay[0] if st.decay else None)
    return want_cancel or late or cooled or (run.sch.total_steps is not None and st.step >= run.sch.total_steps)


def step(run: Run, st: State, epoch: int, k: int, now: float) -> tuple[torch.Tensor, float]:
    """Step ``k`` of ``epoch``: a batch of triplets, the loss, one optimizer update.
    Returns (loss and accuracy, still on the device) and the learning rate."""
    opts, B, sampler = run.opts, run.opts.batch_size, run.data.sampler
    if st.anchors_epoch != epoch:
        st.anchors, st.anchors_epoch = sampler.epoch_anchors(rng_for(opts.seed, epoch, 0, 1)), epoch
    idx = (np.arange(B) + (k * run.world + run.rank) * B) % len(st.anchors[0])
    rng = rng_for(opts.seed, epoch, k, 2 + run.rank)
    b = sampler.batch(rng, st.anchors[0][idx], st.anchors[1][idx])
    F, store, dev = run.start.fe.segment_frames, run.data.store, run.device
    x = torch.cat([store.crops(*b.anchor, F, dev), store.crops(*b.neighbour, F, dev), store.crops(*b.distant, F, dev)])
    if run.augment is not None:
        x = run.augment(x, rng)
    if dev.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    if run.sch.plateau is None:
        lr = lr_at(st.step, progress_fraction(run, st, now), opts, run.sch.total_steps)
    else:  # warm-up, then the peak rate until the cool-down (trainer.plateau)
        factor = run.sch.plateau.lr_factor(st.step, st.decay[0] if st.decay else None)
        lr = lr_at(st.step, 0.0, opts) * (opts.final_lr_ratio + (1 - opts.final_lr_ratio) * factor)
    for g in run.optim.param_groups:
        g["lr"] = lr
    with autocast(dev, run.amp):
        emb = run.net(x)
    ea, en, ed = emb.float().split(B)
    ta, td = torch.as_tensor(b.track_a, device=emb.device), torch.as_tensor(b.track_d, device=emb.device)
    loss, stats = batch_triplet_loss(
        ea,
        en,
        ed,
        ta,
        td,
        margin=opts.margin,
        mining=opts.mining,
        norm_reg=opts.norm_reg,
        related=run.data.related,
        temperature=opts.temperature,
    )
    run.optim.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optim)
        run.scaler.update()
    else:
        loss.backward()
        run.optim.step()
    return torch.stack([loss.detach(), stats["acc"]]), lr


def _read_back(st: State) -> None:
    """One host synchronisation per ``sync_every`` steps (every step on CPU, where it is free)."""
    vals = torch.stack(st.pending).cpu()
    st.pending.clear()
    if not torch.isfinite(vals).all():
        raise FloatingPointError(f"training diverged at step {st.step}; try a lower --lr")
    st.win_loss += float(vals[:, 0].sum())
    st.win_acc += float(vals[:, 1].sum())
    st.win_n += len(vals)
    st.last_loss, st.last_acc = float(vals[-1, 0]), float(vals[-1, 1])


def end_epoch(run: Run, st: State, epoch_f: float) -> None:
    """Validate, log a row of the history and write the checkpoint (rank 0)."""
    row = {
        "epoch": round(epoch_f, 3),
        "step": st.step,
        "seconds": round(st.seconds(), 1),
        "lr": run.optim.param_groups[0]["lr"],
    }
    if st.win_n:
        row.update(
            train_loss=st.win_loss / st.win_n,
            train_acc=st.win_acc / st.win_n,
            segments_per_s=st.win_seg / max(time.monotonic() - st.win_t, 1e-9),
        )
    if not run.main:
        return
    at = (run.progress, "validate", st.step, run.sch.total_steps or 0, f"epoch {epoch_f:.2f}", None)
    report(*at, {"device": run.dev_name})
    row.update(run.validate(run.start.model, run.device, run.amp))
    report(
        *at,
        {
            "device": run.dev_name,
            "epoch": epoch_f,
            "val_loss": row.get("val_loss"),
            "val_all": row.get("val_all"),
            "val_nce": row.get("val_nce"),
            "val_acc": row.get("val_acc"),
            # the one "until it stops improving" judges by: what a progress display shows
            "held_out_loss": watched(row),
            "val_step": st.step,
        },
    )  # tells two validations with equal scores apart
    st.history.append(row)
    run.logger.write(row)
    st.metrics = dict(row)
    save_state(run, st, epoch_f)
    log.info(summary_line(row, run.sch.epochs))


def finish(run: Run, st: State) -> TrainResult:
    """A checkpoint at the exact stopping point, then (unless cancelled) the exported model."""
    epoch_f = st.step / run.sch.steps_per_epoch
    if st.cancelled:
        save_state(run, st, epoch_f)
    elif not st.history or st.history[-1].get("step") != st.step:
        end_epoch(run, st, epoch_f)
    result = TrainResult(
        model_path=None,
        checkpoint=str(run.last_path),
        run_dir=str(run.run_dir),
        name=run.start.name,
        steps=st.step,
        epochs=epoch_f,
        seconds=st.seconds(),
        metrics=st.metrics,
        history=st.history,
        cancelled=st.cancelled,
        device=run.device.type,
        failures=run.data.failures,
        stopped=_stopped(st.decay),
    )
    if run.world > 1:
        dist.barrier()
    if not run.main:
        return result
    run.trainable.eval()
    if not st.cancelled:
        result.model_path = str(export(run, st, final_metrics(result), result.seconds))
    summarise(result)
    log.debug(result.summary)
    return result

"""What a run tells the user while it trains: what it trains on (and the starting model's
validation), and each step's progress report with its ETA."""

from __future__ import annotations

import logging
import time

from musicsim.jobs import report
from trainer.logs import summary_line
from trainer.run import Run, State
from trainer.runtime import precision

log = logging.getLogger("trainer")


def announce(run: Run, st: State) -> None:
    """Log what is trained on what; validate the starting model (the history's first row)."""
    d, fe = run.data, run.start.fe
    log.info(
        "training %s on %s (%s): %d train / %d val tracks, %.2f h of audio, %d segments/epoch, %s, %s",
        run.start.name,
        run.device,
        precision(run.amp),
        len(d.train_paths),
        len(d.val_paths),
        d.store.total_frames * fe.hop_length / fe.sr / 3600,
        d.sampler.n_segments,
        run.start.init_desc,
        f"{run.sch.total_steps} steps" if run.sch.total_steps else f"{run.opts.max_minutes} min",
    )
    if d.failures:
        log.warning("%d tracks could not be decoded (skipped), e.g. %s", len(d.failures), d.failures[0][0])
    if d.n_dup:
        log.info("%d tracks are copies of another track (same recording): never used as its distant segment", d.n_dup)
    if not st.history:
        m0 = run.validate(run.start.model, run.device, run.amp)
        row = {"epoch": 0, "step": 0, "seconds": 0.0, **m0}
        st.history.append(row)
        run.logger.write(row)
        if m0:
            log.info(summary_line(row))


def progress_fraction(run: Run, st: State, now: float) -> float:
    """How far the run is (0..1): by steps, or by time when the time budget is further along."""
    p = st.step / run.sch.total_steps if run.sch.total_steps else 0.0
    if st.deadline is not None:
        span = st.deadline - st.t_loop
        p = max(p, (now - st.t_loop) / span if span > 0 else 1.0)
    return p


def report_step(run: Run, st: State, epoch: int, k: int, lr: float) -> None:
    if not run.main:
        return
    est_total = run.sch.total_steps
    if est_total is None and st.deadline is not None:
        frac = progress_fraction(run, st, time.monotonic())
        est_total = int(st.step / frac) if frac > 0 else 0
    eta = None
    info = {}
    now = time.monotonic()
    if run.sch.plateau is not None:  # "until it stops improving": a likely time left and the cap's
        rate = (st.step - st.start_step) / max(now - st.t_loop, 1e-9)
        eta, info["eta_max"] = run.sch.plateau.estimate(st.history, st.step, rate, st.seconds())
        info["cooling"] = st.decay is not None
        if st.decay is not None:
            est_total = st.decay[0] + run.sch.plateau.decay_steps(st.decay[0])
        elif eta is not None:
            est_total = st.step + int(eta * rate)
    elif est_total:
        eta = (now - st.t_loop) / max(1, st.step - st.start_step) * max(est_total - st.step, 0)
    report(
        run.progress,
        "train",
        st.step,
        est_total or 0,
        f"epoch {epoch + 1}",
        eta,
        {
            "loss": st.last_loss,
            "acc": st.last_acc,
            "epoch": epoch + (k + 1) / run.sch.steps_per_epoch,
            "lr": lr,
            "device": run.dev_name,
            **info,
        },
    )
    if run.opts.log_every and st.step % run.opts.log_every == 0:
        log.debug("step %d loss %.4f acc %.3f lr %.2e", st.step, st.last_loss, st.last_acc, lr)

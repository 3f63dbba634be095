"""Training until it stops improving: the schedule's decisions, its estimate, and real runs
(the cool-down, exact resume inside it, the time cap)."""

import math

import pytest
import torch

from musicsim.jobs import CancelToken
from musicsim.model.checkpoint import read_checkpoint
from tests.trainer.test_training import _opts
from trainer.plateau import Plateau, watched
from trainer.train import TrainOptions, train


def _history(losses, every=100, seconds_per_step=0.1):
    return [{"step": i * every, "seconds": i * every * seconds_per_step, "val_loss": v} for i, v in enumerate(losses)]


def test_the_cool_down_starts_after_patience_checks_without_a_real_improvement():
    pl = Plateau(patience=3, min_delta=0.01, max_seconds=None)
    assert pl.decay_start(_history([1.0, 0.8, 0.7, 0.65])) is None  # still falling
    # 0.699 and 0.695 are below the best but by less than 1 % of it: not real improvements
    assert pl.decay_start(_history([1.0, 0.8, 0.7, 0.699, 0.695, 0.71])) == (500, "plateau")
    # one real improvement resets the count
    assert pl.decay_start(_history([1.0, 0.8, 0.7, 0.699, 0.60, 0.6, 0.6])) is None
    assert pl.decay_start(_history([1.0, 0.8, 0.7, 0.699, 0.60, 0.6, 0.6, 0.6])) == (700, "plateau")
    # rows without a held-out loss (no validation tracks) neither count nor reset
    rows = _history([1.0, 1.0, 1.0, 1.0])
    rows.insert(2, {"step": 150, "seconds": 15.0})
    assert pl.decay_start(rows) is None
    # the starting model (step 0) is no check: a loss that first rises, then falls, goes on
    assert pl.decay_start(_history([0.5, 0.9, 0.95, 0.8, 0.7])) is None
    assert pl.decay_start(_history([0.5, 0.9, 0.95, 0.9, 0.95])) == (400, "plateau")


def test_the_time_cap_forces_the_cool_down_at_80_percent():
    pl = Plateau(patience=3, max_seconds=100.0)
    hist = _history([1.0, 0.5, 0.25, 0.12, 0.06], every=100, seconds_per_step=0.25)  # 25 s a check
    assert pl.decay_start(hist) == (400, "time")  # at 100 s >= 80 s, still improving
    # a run with no held-out tracks at all cools down on time too
    assert pl.decay_start([{"step": 0, "seconds": 0.0}, {"step": 50, "seconds": 85.0}]) == (50, "time")


def test_the_learning_rate_holds_then_falls_along_a_half_cosine():
    pl = Plateau(cooldown=0.25)
    assert pl.lr_factor(123, None) == 1.0 and pl.lr_factor(399, 400) == 1.0
    assert pl.decay_steps(400) == 100
    assert pl.lr_factor(450, 400) == pytest.approx(0.5)
    assert pl.lr_factor(500, 400) == pytest.approx(0.0, abs=1e-12)
    assert not pl.done(499, 400) and pl.done(500, 400) and not pl.done(10**6, None)


def test_the_estimate_extrapolates_the_improvements_and_never_passes_the_cap():
    pl = Plateau(patience=3, min_delta=0.01, check_steps=100, cooldown=0.25, max_seconds=3600.0)
    # not enough checks to extrapolate: only the cap's time left
    likely, at_most = pl.estimate(_history([1.0, 0.9]), 100, steps_per_s=10.0, seconds=60.0)
    assert likely is None and at_most == 3540.0
    # gains halve each check: 0.2, 0.1, 0.05, 0.025; the best is 0.625, so a real gain is
    # 0.00625: two more checks (0.0125, 0.00625) are real, then 3 stale checks, cool-down a
    # quarter of the steps then (each check after this one takes 100 steps, 10 s)
    hist = _history([1.0, 0.8, 0.7, 0.65, 0.625])
    likely, at_most = pl.estimate(hist, 400, steps_per_s=10.0, seconds=40.0)
    start = 400 + (2 + 3) * 100
    assert likely == pytest.approx((start + math.ceil(0.25 * start) - 400) / 10.0)
    assert at_most == 3560.0
    # a slow machine: the estimate stops at the cap
    likely, at_most = pl.estimate(hist, 400, steps_per_s=0.01, seconds=40.0)
    assert likely == at_most == 3560.0
    # gains that do not shrink cannot be extrapolated
    assert pl.estimate(_history([1.0, 0.9, 0.8, 0.7]), 300, 10.0, 30.0)[0] is None
    # during the cool-down the time left is exact
    flat = _history([1.0, 1.0, 1.0, 1.0, 1.0])  # cools down at step 400 for 100 steps
    assert pl.estimate(flat, 430, steps_per_s=5.0, seconds=30.0) == (pytest.approx(14.0), 3570.0)


def _weights(path):
    return read_checkpoint(path)["model"]


def test_a_run_until_it_stops_improving_cools_down_ends_and_resumes_exactly(train_library, mel_cache_dir, tmp_path):
    root, _ = train_library
    # a learning rate too small to change anything: the held-out loss is flat from the start
    variant = dict(until_plateau=True, lr=1e-9, epochs=None)
    seen = []
    full = train(_opts(root, mel_cache_dir, tmp_path / "full", **variant), progress=seen.append)
    spe = read_checkpoint(full.checkpoint)["extra"]["steps_per_epoch"]
    assert spe < 200  # so each epoch's end is a check
    # (the BatchNorm statistics of the new network still settle in the first epoch)
    checks = [(h["step"], watched(h)) for h in full.history]
    start = next(s for s, _ in checks if f"stopped improving at step {s}" in full.stopped)
    assert start % spe == 0 and start >= 4 * spe, checks
    before = [v for s, v in checks if s < start - 2 * spe]
    last = [v for s, v in checks if start - 2 * spe <= s <= start]
    assert len(last) == 3 and min(last) > min(before) * 0.99, checks  # three checks without a real gain
    assert full.steps == start + math.ceil(0.25 * start) and full.model_path
    assert "cooled down when" in full.summary
    train_rows = [p for p in seen if p.stage == "train"]
    assert all("eta_max" in p.info for p in train_rows)  # the cap's time left rides along
    cooling = [p for p in train_rows if p.info["cooling"]]
    assert cooling and all(p.total == full.steps for p in cooling) and cooling[-1].eta_s < 5.0
    # the learning rate holds after the warm-up, then falls to the floor
    lrs = {p.done: p.info["lr"] for p in train_rows}
    assert lrs[start - 1] == pytest.approx(1e-9) and lrs[full.steps] < 0.05 * 1e-9

    token = CancelToken()
    stop_at = start + 2  # inside the cool-down

    def progress(p):
        if p.stage == "train" and p.done == stop_at:
            token.cancel()

    part = train(_opts(root, mel_cache_dir, tmp_path / "part", **variant), progress=progress, cancel=token)
    assert part.cancelled and part.steps == stop_at
    resumed = train(TrainOptions(resume=str(tmp_path / "part"), device="cpu", cache=str(mel_cache_dir), workers=1))
    assert resumed.steps == full.steps and resumed.stopped == full.stopped
    a, b = _weights(full.checkpoint), _weights(resumed.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_that_keeps_improving_stops_at_its_time_limit(train_library, mel_cache_dir, tmp_path):
    root, _ = train_library
    res = train(_opts(root, mel_cache_dir, tmp_path / "t", until_plateau=True, max_minutes=0.0))
    assert res.steps == 0 and res.model_path and not res.cancelled and res.stopped == ""
    # without a limit of its own the run gets an hour, stored so that a resumed run keeps it
    res = train(_opts(root, mel_cache_dir, tmp_path / "s", until_plateau=True, steps=2))
    assert res.steps == 2
    assert read_checkpoint(res.checkpoint)["extra"]["options"]["max_minutes"] == 60.0


def test_the_loss_over_every_held_out_negative_is_watched_and_the_warm_up_is_no_verdict():
    from trainer.plateau import watched

    # a library whose held-out tracks the starting model already tells apart: the sampled
    # triplets' loss is 0 throughout, the loss over every held-out negative still falls
    rows = [
        {"step": s, "seconds": s / 10, "val_loss": 0.0, "val_all": v}
        for s, v in zip(range(0, 700, 100), [0.2, 0.15, 0.11, 0.08, 0.06, 0.045, 0.034])
    ]
    assert watched(rows[1]) == 0.15 and watched({"val_loss": 0.3}) == 0.3 and watched({"step": 1}) is None
    # InfoNCE over them (which never saturates) comes first where a row has it
    assert watched({"val_nce": 1.2, "val_all": 1e-5, "val_loss": 0.0}) == 1.2
    assert watched({"val_nce": float("nan"), "val_all": 0.2}) == 0.2
    assert Plateau(max_seconds=None).decay_start(rows) is None
    assert Plateau(max_seconds=None).decay_start([{**r, "val_all": None} for r in rows]) == (400, "plateau")
    # checks inside a 350-step warm-up neither improve nor count: the flat run cools down 3 checks after it
    flat = _history([1.0] * 8)
    assert Plateau(max_seconds=None, warmup_steps=350).decay_start(flat) == (700, "plateau")
    assert Plateau(max_seconds=None).decay_start(flat) == (400, "plateau")


def test_validation_reports_the_loss_over_every_held_out_negative(train_library, mel_cache_dir, tmp_path):
    root, _ = train_library
    seen = []
    res = train(_opts(root, mel_cache_dir, tmp_path / "v", steps=2), progress=seen.append)
    first = res.history[0]
    # each validation's report names the loss "until it stops improving" watches, for a display
    reports = [p.info for p in seen if p.info.get("val_step") is not None]
    by_step = {row["step"]: row for row in res.history}
    assert reports and all(r["held_out_loss"] == watched(by_step[r["val_step"]]) for r in reports)
    assert reports[-1]["held_out_loss"] == res.history[-1]["val_nce"]
    assert first["val_all"] > 0 and math.isfinite(first["val_all"])
    assert first["val_nce"] > 0 and math.isfinite(first["val_nce"])
    header = (tmp_path / "v" / "log.csv").read_text().splitlines()[0].split(",")
    assert "val_all" in header and "val_nce" in header


def test_the_all_negatives_loss_by_hand():
    import numpy as np

    from trainer.network import Validator
    from trainer.related import RelatedPairs
    from trainer.sampling import Batch

    v = Validator.__new__(Validator)
    v.opts, v.related = TrainOptions(margin=0.5), None
    z = np.zeros(2, np.int64)
    v.triplets = Batch((z, z), (z, z), (z, z), np.array([0, 1]), np.array([2, 2]))
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    n = torch.tensor([[0.0, 0.1], [1.0, 0.0]])
    d = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    d_an = ((a - n) ** 2).sum(1)  # 0.01, 0
    cand = torch.cat([a, n, d])
    track = [0, 1, 0, 1, 2, 2]
    want = []
    for i in range(2):
        for j in range(6):
            if track[j] != i:
                want.append(max(0.0, float(d_an[i] - ((a[i] - cand[j]) ** 2).sum() + 0.5)))
    assert v._all_negatives(a, n, d, d_an)["val_all"] == pytest.approx(sum(want) / len(want))
    # a related track's segments are not negatives
    v.related = RelatedPairs.from_pairs(np.array([[0, 1]]), 3)
    want = [
        w for w, (i, j) in zip(want, [(i, j) for i in range(2) for j in range(6) if track[j] != i]) if track[j] == 2
    ]
    assert v._all_negatives(a, n, d, d_an)["val_all"] == pytest.approx(sum(want) / len(want))


def test_the_held_out_infonce_by_hand_and_it_does_not_saturate():
    import numpy as np

    from trainer.network import Validator
    from trainer.sampling import Batch

    v = Validator.__new__(Validator)
    v.opts, v.related = TrainOptions(margin=0.5, temperature=0.1), None
    z = np.zeros(2, np.int64)
    v.triplets = Batch((z, z), (z, z), (z, z), np.array([0, 1]), np.array([2, 2]))

    def losses(a, n, d):
        d_an = ((a - n) ** 2).sum(1)
        return v._all_negatives(a, n, d, d_an)

    def by_hand(a, n, d):
        cand, track = torch.cat([a, n, d]), [0, 1, 0, 1, 2, 2]
        out = []
        for i in range(2):
            pos = -5.0 * float(((a[i] - n[i]) ** 2).sum())  # -0.5 / temperature x squared distance
            negs = [-5.0 * float(((a[i] - cand[j]) ** 2).sum()) for j in range(6) if track[j] != i]
            out.append(-pos + math.log(sum(math.exp(x) for x in [pos, *negs])))
        return sum(out) / 2

    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    n = torch.tensor([[0.0, 0.1], [1.0, 0.0]])
    d = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    assert losses(a, n, d)["val_nce"] == pytest.approx(by_hand(a, n, d), rel=1e-5)
    # every track already beyond the margin: the hinge is 0, InfoNCE still falls as the
    # neighbours come nearer, so a check can tell an improving run from a flat one
    far = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    d_far = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    before = losses(far, far + torch.tensor([[0.0, 0.5], [0.0, 0.5]]), d_far)
    after = losses(far, far + torch.tensor([[0.0, 0.3], [0.0, 0.3]]), d_far)
    assert before["val_all"] == 0.0 and after["val_all"] == 0.0
    assert 0.0 < after["val_nce"] < before["val_nce"]

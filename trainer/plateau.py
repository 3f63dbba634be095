"""Training "until it stops improving": a schedule for a run whose length is not known ahead.

A fixed budget fits a cosine learning-rate curve to it. A run that ends when the model stops
improving cannot, so it keeps the peak rate after the warm-up (warm-up, stable, decay: the
schedule of MiniCPM and of Hägele et al. 2024, "Scaling laws and compute-optimal training
beyond fixed training durations"), checks the loss on the held-out tracks every
``check_steps`` steps after the warm-up (over every held-out triplet with a segment of another track, which
unlike the sampled triplets' loss is rarely 0 from the start: :func:`watched`), and once ``patience`` checks in a row have not lowered the best by
``min_delta`` of it, cools down: the rate falls along a half cosine to ``final_lr_ratio`` over
a quarter of the steps taken so far, and the run ends. The time cap (``max_minutes``) still
holds: at 80 % of it the cool-down starts whatever the checks say, and then ends at the cap.

Everything is decided from the run's history (one row per check, kept in the checkpoint), so a
resumed run takes the very same decisions. :func:`estimate` gives the time left: exact during
the cool-down; before it, from the geometric fall of the improvements seen so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PATIENCE = 3  # checks in a row without a real improvement
MIN_DELTA = 0.01  # a real improvement lowers the best held-out loss by 1 % of it
CHECK_STEPS = 200  # steps between checks (at most; an epoch's end is a check too)
COOLDOWN = 0.25  # the cool-down's length, as a share of the steps before it
FORCED_AT = 0.8  # share of the time cap after which the cool-down starts regardless
MAX_MINUTES = 60.0  # the cap when none is given


WATCHED = ("val_nce", "val_all", "val_loss")  # in order of preference (see watched)


def watched(row: dict) -> float | None:
    """The held-out loss a check is judged by: InfoNCE over every held-out segment of another
    track (``val_nce``, trainer.network.Validator), which never saturates; in a log written
    before it existed, the hinge over them (``val_all``), else the sampled triplets'."""
    for key in WATCHED:
        v = row.get(key)
        if v is not None and math.isfinite(float(v)):
            return float(v)
    return None


@dataclass(frozen=True)
class Plateau:
    patience: int = PATIENCE
    min_delta: float = MIN_DELTA
    check_steps: int = CHECK_STEPS
    cooldown: float = COOLDOWN
    max_seconds: float | None = MAX_MINUTES * 60
    warmup_steps: int = 0  # checks before the end of the warm-up neither improve nor count as stale

    def losses(self, history: list[dict]) -> list[float]:
        """The held-out loss of every check that measured one, in order."""
        return [v for v in map(watched, history) if v is not None]

    def decay_start(self, history: list[dict]) -> tuple[int, str] | None:
        """The step at which the cool-down starts and why ("plateau" or "time"), or None while
        the held-out loss still falls. Only checks after the warm-up count, the first of them
        the first best: the question is whether training still improves the model, not whether
        it already beats the one it started from (a fine-tune's held-out loss often rises at
        first, then falls below; the album/folder check judges the result against the start).
        A run without held-out tracks cools down at 80 % of the time limit."""
        best, stale = math.inf, 0
        for h in history:
            step, loss = int(h["step"]), watched(h)
            if loss is not None and step > 0 and step >= self.warmup_steps:
                if not math.isfinite(best) or loss < best - self.min_delta * abs(best):
                    best, stale = loss, 0
                else:
                    stale += 1
                if stale >= self.patience:
                    return step, "plateau"
            if (
                step > 0
                and self.max_seconds is not None
                and float(h.get("seconds") or 0.0) >= FORCED_AT * self.max_seconds
            ):
                return step, "time"
        return None

    def decay_steps(self, start: int) -> int:
        return max(1, math.ceil(self.cooldown * start))

    def lr_factor(self, step: int, start: int | None) -> float:
        """The share of the peak rate at ``step`` (after the warm-up, which the caller applies):
        1 until the cool-down, then a half cosine down to 0 at its end."""
        if start is None or step < start:
            return 1.0
        p = min(1.0, (step - start) / self.decay_steps(start))
        return 0.5 * (1.0 + math.cos(math.pi * p))

    def done(self, step: int, start: int | None) -> bool:
        return start is not None and step >= start + self.decay_steps(start)

    def estimate(
        self, history: list[dict], step: int, steps_per_s: float, seconds: float
    ) -> tuple[float | None, float | None]:
        """(likely, at most) seconds left at ``step``, ``seconds`` into the run, running at
        ``steps_per_s``. The likely figure is None until the improvements can be extrapolated
        (three checks that improved, each by less than the one before)."""
        cap_left = None if self.max_seconds is None else max(0.0, self.max_seconds - seconds)
        if steps_per_s <= 0:
            return None, cap_left
        start = self.decay_start(history)
        if start is not None:
            left = max(0, start[0] + self.decay_steps(start[0]) - step) / steps_per_s
            return (left if cap_left is None else min(left, cap_left)), cap_left
        likely = self._extrapolate(history, step, steps_per_s)
        if likely is not None and cap_left is not None:
            likely = min(likely, cap_left)
        return likely, cap_left

    def _extrapolate(self, history: list[dict], step: int, steps_per_s: float) -> float | None:
        """When the improvement per check falls below ``min_delta`` of the best, assuming each
        check improves by a constant share of the one before (fitted to the last gains), then
        ``patience`` checks and the cool-down."""
        losses = self.losses(history)
        best = [min(losses[: i + 1]) for i in range(len(losses))]
        gains = [a - b for a, b in zip(best, best[1:])][-4:]
        if len(gains) < 3 or min(gains) <= 0:
            return None
        ratios = [b / a for a, b in zip(gains, gains[1:])]
        r = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        if r >= 1.0:
            return None
        threshold = self.min_delta * best[-1]
        more = 0 if gains[-1] < threshold else math.ceil(math.log(threshold / gains[-1]) / math.log(r) - 1e-9)
        start = step + (more + self.patience) * self.check_steps
        return (start + self.decay_steps(start) - step) / steps_per_s

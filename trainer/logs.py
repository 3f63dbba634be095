"""What a run writes besides checkpoints: the per-epoch log (CSV and JSON lines), the one-line
summaries, and ``summary.json``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from trainer.options import TrainResult


class Logger:
    COLUMNS = (
        "epoch",
        "step",
        "seconds",
        "lr",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "segments_per_s",
        "val_all",
        "val_nce",
    )

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
    for k, fmt in (
        ("train_loss", "{:.4f}"),
        ("train_acc", "{:.3f}"),
        ("val_loss", "{:.4f}"),
        ("val_acc", "{:.3f}"),
        ("lr", "{:.2e}"),
        ("segments_per_s", "{:.0f} seg/s"),
    ):
        if row.get(k) is not None:
            parts.append(f"{k} " + fmt.format(row[k]) if k != "segments_per_s" else fmt.format(row[k]))
    if row.get("seconds") is not None:
        parts.append(f"{row['seconds'] / 60:.1f} min")
    return " | ".join(parts)


def final_metrics(result: TrainResult) -> dict:
    """The exported model's metrics: the last validation and training scores, and the run's length."""
    out = {k: result.metrics[k] for k in ("val_loss", "val_acc", "train_loss", "train_acc") if k in result.metrics}
    out.update(steps=result.steps, epochs=round(result.epochs, 3), seconds=round(result.seconds, 1))
    return out


def summarise(result: TrainResult) -> None:
    """Write ``summary.json`` into the run folder and set :attr:`TrainResult.summary`; the
    library side calls it again once it has re-embedded (and maybe activated) the model."""
    with open(Path(result.run_dir) / "summary.json", "w") as f:
        json.dump(
            {
                "name": result.name,
                "steps": result.steps,
                "epochs": result.epochs,
                "seconds": result.seconds,
                "metrics": final_metrics(result),
                "model": result.model_path,
                "cancelled": result.cancelled,
                "stopped": result.stopped,
            },
            f,
            indent=1,
        )
    first = next((h for h in result.history if h.get("val_acc") is not None), {})
    m, nan = result.metrics, float("nan")
    where = f"; model {result.model_path}" if result.model_path else f"; resume from {result.checkpoint}"
    verdict = f"; {'activated' if result.activated else 'not activated'}: {result.guard}" if result.guard else ""
    result.summary = (
        f"{'cancelled' if result.cancelled else 'trained'} {result.name}: {result.steps} steps "
        f"({result.epochs:.2f} epochs) in {result.seconds / 60:.1f} min on {result.device}; "
        f"val triplet accuracy {first.get('val_acc', nan):.3f} -> {m.get('val_acc', nan):.3f}, "
        f"val loss {first.get('val_loss', nan):.4f} -> {m.get('val_loss', nan):.4f}"
        + (f"; cooled down when {result.stopped}" if result.stopped else "")
        + where
        + verdict
    )

"""Writing a library's track vectors for use elsewhere (NumPy ``.npz`` or CSV)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np


def write_vectors(
    out: str | os.PathLike, *, ids: np.ndarray, X: np.ndarray, paths: list[str], model: str, fmt: str = "npz"
) -> int:
    """Write one row per track: its path, the model's name and its vector; return the row count."""
    track_paths = np.array(paths, dtype=str)
    out = Path(out)
    if fmt == "npz":
        with open(out, "wb") as f:
            np.savez(f, paths=track_paths, embeddings=X.astype(np.float32), track_ids=ids, model=np.array(model))
        return len(ids)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "model"] + [f"e{i}" for i in range(X.shape[1] if len(X) else 0)])
        for p, v in zip(track_paths, X):
            w.writerow([p, model] + [f"{x:.6f}" for x in v])
    return len(ids)

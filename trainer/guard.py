"""Keep a fine-tuned model only if it does not group the library worse than the one it replaces.

Labels are what a personal library already holds: tracks of one album (its album tag, with the
album artist) or, without tags, of one folder belong together (the library side,
:mod:`musicsim.library.finetune`, labels the tracks and reads both models' stored vectors;
this module judges plain arrays). The score is kNN precision@5
over tracks whose album/folder has at least two analysed tracks, with every analysed track as
a candidate neighbour; the old and the new model are scored on the same tracks. No labels are
asked of the user, and nothing is measured on data the model will not be used on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicsim.index.norm import normalise_library
from trainer.related import nearest_rows

MIN_QUERIES = 8  # fewer tracks with an album/folder mate: too little to judge, so no verdict


@dataclass
class GuardVerdict:
    old: float | None  # precision@5 by album/folder of the model in use before training
    new: float | None  # the same for the fine-tuned model
    queries: int  # tracks that were scored
    keep_new: bool
    reason: str


def grouping_precision(X: np.ndarray, labels: np.ndarray, k: int = 5) -> tuple[float | None, int]:
    """Mean share of same-label tracks among each query's k nearest (cosine on unit vectors);
    queries: tracks with at least one other track of their label. Returns (score, queries)."""
    labels = np.asarray(labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    queries = np.nonzero(counts[inverse] >= 2)[0]
    if len(queries) < MIN_QUERIES or len(X) < 3:
        return None, int(len(queries))
    k = min(k, len(X) - 1)
    Xn = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    nn = nearest_rows(Xn, k, queries)  # never a track's own neighbour
    hits = float((labels[nn] == labels[queries, None]).sum())
    return hits / (len(queries) * k), int(len(queries))


def judge(
    groups: dict[int, str],
    old: tuple[np.ndarray, np.ndarray],
    new: tuple[np.ndarray, np.ndarray],
    *,
    tolerance: float = 0.0,
) -> GuardVerdict:
    """Compare (track ids, stored vectors) of the old and the new model on the tracks both
    embedded, each model's vectors in its library space (as the library would compare them)."""
    old_ids, old_X = old[0], normalise_library(old[1])
    new_ids, new_X = new[0], normalise_library(new[1])
    common = np.intersect1d(np.intersect1d(old_ids, new_ids), np.fromiter(groups, np.int64, len(groups)))
    if len(common) == 0:
        return GuardVerdict(None, None, 0, True, "no tracks embedded by both models to compare")
    labels = np.array([groups[int(i)] for i in common])
    s_old, n = grouping_precision(old_X[np.searchsorted(old_ids, common)], labels)
    s_new, _ = grouping_precision(new_X[np.searchsorted(new_ids, common)], labels)
    if s_old is None or s_new is None:
        return GuardVerdict(
            None,
            None,
            n,
            True,
            f"only {n} tracks share an album or folder with another track: nothing to check against",
        )
    if s_new + 1e-9 >= s_old - tolerance:
        return GuardVerdict(
            s_old,
            s_new,
            n,
            True,
            f"albums/folders group at least as well (precision@5 {s_old:.3f} -> {s_new:.3f}, {n} tracks)",
        )
    return GuardVerdict(
        s_old,
        s_new,
        n,
        False,
        f"the fine-tuned model groups albums/folders worse (precision@5 {s_old:.3f} -> {s_new:.3f}, "
        f"{n} tracks), so the previous model stays active",
    )

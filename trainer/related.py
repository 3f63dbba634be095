"""Pairs of tracks that must not serve as each other's "distant" segment.

Tile2Vec's premise is that a segment of *another* track is unlike the anchor. On a large,
varied corpus that holds for almost every pair. On one person's library it often does not: an
album's tracks, or the few tracks of a small genre, sound alike, and the triplet loss would
push exactly those apart. Fine-tuning therefore treats each track's nearest tracks under the
model it starts from as related ("false-negative elimination", as in debiased contrastive
learning): they are never drawn as its distant segment nor counted as in-batch negatives.
No labels are used; only the starting model's own opinion of what sounds alike.
"""

from __future__ import annotations

import numpy as np
import torch


class RelatedPairs:
    """A symmetric set of related track ids ``0..n-1`` (pairs of different ids)."""

    def __init__(self, pairs: np.ndarray, n: int) -> None:
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        self.n = int(n)
        lo, hi = pairs.min(axis=1), pairs.max(axis=1)
        self.keys = np.unique(lo * self.n + hi)
        self._torch: dict[torch.device, torch.Tensor] = {}

    @classmethod
    def from_state(cls, state: dict) -> RelatedPairs:
        out = cls(np.zeros((0, 2), np.int64), int(state["n"]))
        out.keys = np.asarray(state["keys"], np.int64)
        return out

    def state(self) -> dict:
        """For a checkpoint (so a resumed run uses the very same pairs)."""
        return {"n": self.n, "keys": torch.as_tensor(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    def _key(self, a, b):
        return np.minimum(a, b) * self.n + np.maximum(a, b)

    def contains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Element-wise: are tracks ``a[i]`` and ``b[i]`` related (broadcasts)."""
        if not len(self.keys):
            return np.zeros(np.broadcast(a, b).shape, bool)
        return np.isin(self._key(np.asarray(a, np.int64), np.asarray(b, np.int64)), self.keys)

    def mask(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Torch version of :meth:`contains` on ``a``'s device (broadcasts)."""
        table = self._torch.get(a.device)
        if table is None:
            table = self._torch[a.device] = torch.as_tensor(self.keys, device=a.device)
        a, b = torch.broadcast_tensors(a.long(), b.long())
        return torch.isin(torch.minimum(a, b) * self.n + torch.maximum(a, b), table)


def nearest_pairs(X: np.ndarray, ids: np.ndarray, k: int, chunk: int = 1024) -> RelatedPairs:
    """Relate each row of ``X`` (unit track vectors) to its ``k`` nearest rows by cosine.

    ``ids``: the track id of each row (copies of one recording share one); pairs are made
    between ids, over ``max(ids) + 1`` ids. Memory stays ``chunk x len(X)``.
    """
    X = np.asarray(X, np.float32)
    ids = np.asarray(ids, np.int64)
    n = int(ids.max()) + 1 if len(ids) else 0
    k = min(int(k), len(X) - 1)
    if k <= 0:
        return RelatedPairs(np.zeros((0, 2), np.int64), n)
    out = []
    for s in range(0, len(X), chunk):
        sim = X[s : s + chunk] @ X.T
        rows = np.arange(s, min(s + chunk, len(X)))
        sim[rows - s, rows] = -np.inf  # not oneself
        sim[ids[rows][:, None] == ids[None, :]] = -np.inf  # nor one's own copies
        nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out.append(np.stack([np.repeat(ids[rows], k), ids[nn].ravel()], axis=1))
    return RelatedPairs(np.concatenate(out), n)

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

# At most this share of a library's other tracks is related to a track, so most of a batch's
# segments stay negatives: on a small library a large K would relate every pair, and the
# batch-all loss would have nothing left to push apart.
MAX_RELATED_SHARE = 0.25
# Two tracks each among the other's MUTUAL_K nearest are "mutual": the pairs most likely to be of
# one album, which a fine-tune may take as positives (TrainOptions.mutual_positives).
MUTUAL_K = 2


def related_limit(n_tracks: int) -> int:
    """The most related tracks per track in a library of ``n_tracks`` distinct tracks."""
    return int(MAX_RELATED_SHARE * max(0, n_tracks - 1))


class RelatedPairs:
    """A symmetric set of related track ids ``0..n-1`` (pairs of different ids)."""

    def __init__(self, keys: np.ndarray, n: int, mutual: np.ndarray | None = None) -> None:
        """``keys``: sorted unique ``min(a, b) * n + max(a, b)`` of each pair (see :meth:`from_pairs`);
        ``mutual``: the keys of the pairs that are each other's nearest (a subset), which a
        fine-tune may use as positives (:attr:`partners`)."""
        self.n = int(n)
        self.keys = np.asarray(keys, np.int64)
        self.mutual = np.zeros(0, np.int64) if mutual is None else np.asarray(mutual, np.int64)
        self._torch: dict[torch.device, torch.Tensor] = {}
        a, b = self.mutual // max(self.n, 1), self.mutual % max(self.n, 1)
        self.partners: dict[int, np.ndarray] = {}
        for x, y in ((a, b), (b, a)):
            for t in np.unique(x):
                self.partners[int(t)] = np.union1d(self.partners.get(int(t), np.zeros(0, np.int64)), y[x == t])

    @classmethod
    def from_pairs(cls, pairs: np.ndarray, n: int) -> RelatedPairs:
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        return cls(np.unique(pairs.min(axis=1) * int(n) + pairs.max(axis=1)), n)

    @classmethod
    def from_state(cls, state: dict) -> RelatedPairs:
        mutual = state.get("mutual")
        return cls(np.asarray(state["keys"]), state["n"], None if mutual is None else np.asarray(mutual))

    def state(self) -> dict:
        """For a checkpoint (so a resumed run uses the very same pairs)."""
        return {"n": self.n, "keys": torch.as_tensor(self.keys), "mutual": torch.as_tensor(self.mutual)}

    def __len__(self) -> int:
        return len(self.keys)

    def _key(self, a, b):
        return np.minimum(a, b) * self.n + np.maximum(a, b)

    def contains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Element-wise: are tracks ``a[i]`` and ``b[i]`` related (broadcasts)."""
        return np.isin(self._key(np.asarray(a, np.int64), np.asarray(b, np.int64)), self.keys)

    def mask(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Torch version of :meth:`contains` on ``a``'s device (broadcasts)."""
        table = self._torch.get(a.device)
        if table is None:
            table = self._torch[a.device] = torch.as_tensor(self.keys, device=a.device)
        a, b = torch.broadcast_tensors(a.long(), b.long())
        return torch.isin(torch.minimum(a, b) * self.n + torch.maximum(a, b), table)


def nearest_rows(
    X: np.ndarray, k: int, queries: np.ndarray, ids: np.ndarray | None = None, chunk: int = 1024
) -> np.ndarray:
    """``[len(queries), k]``: indices of each query row's ``k`` nearest rows of ``X`` by dot
    product (cosine on unit rows), never the row itself nor, with ``ids``, a row of the same id.
    Exact; memory stays ``chunk x len(X)``. The caller keeps ``k`` below the rows available."""
    out = [np.zeros((0, k), np.int64)]
    for s in range(0, len(queries), chunk):
        q = queries[s : s + chunk]
        sim = X[q] @ X.T
        sim[np.arange(len(q)), q] = -np.inf
        if ids is not None:
            sim[ids[q][:, None] == ids[None, :]] = -np.inf
        out.append(np.argpartition(-sim, k - 1, axis=1)[:, :k])
    return np.concatenate(out)


def nearest_pairs(X: np.ndarray, ids: np.ndarray, k: int) -> RelatedPairs:
    """Relate each row of ``X`` (unit track vectors) to its ``k`` nearest rows by cosine.

    ``ids``: the track id of each row (copies of one recording share one); pairs are made
    between ids, over ``max(ids) + 1`` ids.
    """
    X = np.asarray(X, np.float32)
    ids = np.asarray(ids, np.int64)
    n = int(ids.max()) + 1 if len(ids) else 0
    k = min(int(k), len(X) - 1)
    if k <= 0:
        return RelatedPairs(np.zeros(0, np.int64), n)
    nn = nearest_rows(X, k, np.arange(len(X)), ids)
    pairs = RelatedPairs.from_pairs(np.stack([np.repeat(ids, k), ids[nn].ravel()], axis=1), n)
    m = min(MUTUAL_K, k)
    sim = np.take_along_axis(X @ X.T, nn, axis=1)
    top = np.take_along_axis(nn, np.argsort(-sim, axis=1)[:, :m], axis=1)  # each row's m nearest
    near = {(int(ids[i]), int(ids[j])) for i in range(len(X)) for j in top[i]}
    mutual = np.array(sorted({min(a, b) * n + max(a, b) for a, b in near if a != b and (b, a) in near}), np.int64)
    return RelatedPairs(pairs.keys, n, mutual)

"""Margin triplet loss (Tile2Vec) with optional in-batch negative mining (FaceNet).

Distances are squared Euclidean. On L2-normalised embeddings they lie in [0, 4] and equal
``2 - 2 cos``, so a margin of 0.1-1.0 is meaningful. For unnormalised embeddings Tile2Vec adds
``lambda * (|a| + |n| + |d|)`` so the network cannot satisfy the margin by blowing up norms.

Mining modes for :func:`batch_triplet_loss`:

``none``
    each anchor is compared with its own sampled distant segment only (plain Tile2Vec).
``semihard``
    FaceNet: among every segment of the batch that belongs to a *different track* than the
    anchor, take the closest one that is still farther than the neighbour; when no such
    segment exists, take the farthest one (as TensorFlow's semi-hard loss does), which keeps
    early training from collapsing onto hardest negatives. The sampled distant triplet is kept
    too, so every anchor contributes two triplets.
``hard``
    the closest different-track segment (batch-hard); fragile early in training.
``all``
    every valid (anchor, neighbour, other-track segment) triplet; the mean is taken over the
    triplets that still violate the margin (Hermans et al.'s batch-all).
``nce``
    not a margin loss: InfoNCE (as in COLA, Saeed et al. 2021) with the neighbour as the one
    positive and every other-track segment of the batch as a negative, logits ``-d / (2 T)``
    (``= (cos - 1) / T`` on unit vectors) at temperature ``T``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from trainer.related import RelatedPairs

MINING_MODES = ("none", "semihard", "hard", "all", "nce")


def sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise squared Euclidean distance ``[B, D] x [B, D] -> [B]``."""
    return (a - b).square().sum(dim=1)


def pairwise_sq_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """All squared distances ``[N, D] x [M, D] -> [N, M]`` (clamped at 0 against rounding)."""
    d = x.square().sum(1, keepdim=True) - 2.0 * x @ y.t() + y.square().sum(1).unsqueeze(0)
    return d.clamp_min(0.0)


def triplet_loss(
    a: torch.Tensor, n: torch.Tensor, d: torch.Tensor, *, margin: float = 0.5, reduction: str = "mean"
) -> torch.Tensor:
    """``max(0, |a-n|^2 - |a-d|^2 + margin)`` per triplet (n: neighbour, d: distant)."""
    loss = F.relu(sq_dist(a, n) - sq_dist(a, d) + margin)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction {reduction!r}")


def norm_penalty(a: torch.Tensor, n: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Tile2Vec's regulariser: mean over the batch of ``|a| + |n| + |d|`` (L2 norms)."""
    return (a.norm(dim=1) + n.norm(dim=1) + d.norm(dim=1)).mean()


def triplet_accuracy(a: torch.Tensor, n: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Fraction of triplets with the neighbour closer than the distant segment."""
    return (sq_dist(a, n) < sq_dist(a, d)).float().mean()


def select_negatives(d_ap: torch.Tensor, d_cand: torch.Tensor, valid: torch.Tensor, mode: str) -> torch.Tensor:
    """Index into the candidates of one negative per anchor.

    ``d_ap [B]``: anchor-neighbour distances; ``d_cand [B, M]``: anchor-candidate distances;
    ``valid [B, M]``: candidate belongs to another track. Every row must have a valid candidate.
    """
    big = torch.finfo(d_cand.dtype).max
    if mode == "hard":
        return d_cand.masked_fill(~valid, big).argmin(dim=1)
    if mode != "semihard":
        raise ValueError(f"no single-negative selection for mining mode {mode!r}")
    outside = valid & (d_cand > d_ap.unsqueeze(1))
    semi = d_cand.masked_fill(~outside, big).argmin(dim=1)
    easiest = d_cand.masked_fill(~valid, -1.0).argmax(dim=1)
    return torch.where(outside.any(dim=1), semi, easiest)


def batch_negatives(
    a: torch.Tensor,
    n: torch.Tensor,
    d: torch.Tensor,
    track_a: torch.Tensor,
    track_d: torch.Tensor,
    related: RelatedPairs | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every segment of a batch of triplets as a candidate negative of every anchor: squared
    distances ``[B, 3B]`` from each anchor to ``[a, n, d]``, and which are valid (of another
    track, not one ``related`` to the anchor's)."""
    cand_track = torch.cat([track_a, track_a, track_d])
    valid = track_a.unsqueeze(1) != cand_track.unsqueeze(0)
    if related is not None:
        valid &= ~related.mask(track_a.unsqueeze(1), cand_track.unsqueeze(0))
    return pairwise_sq_dist(a, torch.cat([a, n, d])), valid


def info_nce(d_ap: torch.Tensor, d_cand: torch.Tensor, valid: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per anchor, InfoNCE of its neighbour (squared distance ``d_ap``) against the valid
    candidates, logits ``-d / (2 T)``; 0 for an anchor without a valid candidate."""
    scale = -0.5 / temperature
    neg = scale * d_cand.masked_fill(~valid, float("inf"))
    return -torch.log_softmax(torch.cat([scale * d_ap.unsqueeze(1), neg], dim=1), dim=1)[:, 0]


def batch_triplet_loss(
    a: torch.Tensor,
    n: torch.Tensor,
    d: torch.Tensor,
    track_a: torch.Tensor,
    track_d: torch.Tensor,
    *,
    margin: float = 0.5,
    mining: str = "semihard",
    norm_reg: float = 0.0,
    related: RelatedPairs | None = None,
    temperature: float = 0.1,
) -> tuple[torch.Tensor, dict]:
    """Loss of one batch of triplets and a few statistics (detached 0-d tensors, so a GPU
    step needs no host synchronisation).

    ``track_a``: track index of each anchor (and its neighbour); ``track_d``: of each distant
    segment. Candidates for mined negatives are all ``3B`` segments of the batch, except
    those of the anchor's track and of tracks ``related`` to it (:mod:`trainer.related`).
    """
    if mining not in MINING_MODES:
        raise ValueError(f"mining must be one of {MINING_MODES}, not {mining!r}")
    a, n, d = a.float(), n.float(), d.float()
    d_ap = sq_dist(a, n)
    d_ad = sq_dist(a, d)
    base = F.relu(d_ap - d_ad + margin)
    stats = {"acc": (d_ap < d_ad).float().mean().detach()}
    if mining == "none":
        loss = base.mean()
    else:
        d_cand, valid = batch_negatives(a, n, d, track_a, track_d, related)
        has = valid.any(dim=1)
        if mining == "nce":
            loss = info_nce(d_ap, d_cand, valid, temperature).mean()
        elif mining == "all":
            per = F.relu(d_ap.unsqueeze(1) - d_cand + margin) * valid
            active = (per > 1e-12).sum()
            loss = per.sum() / active.clamp_min(1)
            stats["active"] = active.detach() / valid.sum().clamp_min(1)
        else:
            idx = select_negatives(d_ap, d_cand, valid | ~has.unsqueeze(1), mining)
            d_neg = d_cand.gather(1, idx.unsqueeze(1)).squeeze(1)
            mined = F.relu(d_ap - d_neg + margin)
            mined = torch.where(has, mined, base)
            loss = 0.5 * (mined.mean() + base.mean())
            stats["mined_loss"] = mined.detach().mean()
    if norm_reg > 0:
        loss = loss + norm_reg * norm_penalty(a, n, d)
    stats["base_loss"] = base.detach().mean()
    return loss, stats

"""The network as training sees it (with its projection head and frozen stages), and the
fixed validation triplets it is measured on every epoch."""

from __future__ import annotations

import numpy as np
import torch

from trainer.loss import batch_negatives, info_nce, sq_dist
from trainer.options import TrainOptions
from trainer.related import RelatedPairs
from trainer.runtime import autocast
from trainer.sampling import TripletSampler, rng_for
from trainer.segments import SegmentStore


@torch.no_grad()
def embed_crops(
    model: torch.nn.Module,
    store: SegmentStore,
    piece: np.ndarray,
    start: np.ndarray,
    frames: int,
    device: torch.device,
    amp: torch.dtype | None,
    batch: int = 256,
) -> torch.Tensor:
    out = []
    for i in range(0, len(piece), batch):
        x = store.crops(piece[i : i + batch], start[i : i + batch], frames, device)
        with autocast(device, amp):
            out.append(model.embed(x).float())
    return torch.cat(out) if out else torch.zeros(0)


class Validator:
    """Fixed held-out triplets: the same ones every epoch, so the curves compare."""

    def __init__(
        self,
        store: SegmentStore,
        sampler: TripletSampler | None,
        pool: TripletSampler,
        opts: TrainOptions,
        related: RelatedPairs | None = None,
    ):
        self.store, self.opts, self.related = store, opts, related
        self.triplets = None
        if sampler is None:
            return
        rng = rng_for(opts.seed, 7_777_777)
        piece, start = sampler.epoch_anchors(rng)
        n = min(len(piece), opts.val_triplets)
        if n < len(piece):
            # Spread the triplets over tracks: take anchors round-robin by track.
            order = np.argsort(sampler.piece_track[piece], kind="stable")
            keep = order[np.linspace(0, len(order) - 1, n).astype(int)]
            piece, start = piece[keep], start[keep]
        self.triplets = sampler.batch(rng, piece, start, pool)

    def __call__(self, model: torch.nn.Module, device: torch.device, amp) -> dict:
        if self.triplets is None:
            return {}
        b, F = self.triplets, self.opts.segment_frames
        modes = [(m, m.training) for m in model.modules()]  # frozen stages stay in eval mode
        model.eval()
        a = embed_crops(model, self.store, *b.anchor, F, device, amp)
        n = embed_crops(model, self.store, *b.neighbour, F, device, amp)
        d = embed_crops(model, self.store, *b.distant, F, device, amp)
        a, n, d = a.float().cpu(), n.float().cpu(), d.float().cpu()
        for m, was in modes:
            m.train(was)
        d_an, d_ad = sq_dist(a, n), sq_dist(a, d)
        loss = torch.relu(d_an - d_ad + self.opts.margin).mean()
        return {
            "val_loss": float(loss),
            "val_acc": float((d_an < d_ad).float().mean()),
            "val_triplets": len(a),
            **self._all_negatives(a, n, d, d_an),
        }

    def _all_negatives(self, a: torch.Tensor, n: torch.Tensor, d: torch.Tensor, d_an: torch.Tensor) -> dict:
        """Two losses over every held-out (anchor, neighbour, segment of another, unrelated
        track) triplet. ``val_all``: the hinge loss averaged over all of them, what batch-all
        training lowers, measured on tracks it never sees; unlike ``val_loss`` it is rarely
        exactly 0 from the start, but on a library whose held-out tracks the starting model
        already tells apart it is below 1e-4.
        ``val_nce``: InfoNCE (temperature ``opts.temperature``) of each anchor's neighbour
        against all those segments: it never saturates (a neighbour already nearer than every
        other track still gains by coming nearer), so "until it stops improving"
        (trainer.plateau) watches it."""
        b = self.triplets
        track_a, track_d = torch.as_tensor(b.track_a), torch.as_tensor(b.track_d)
        d_cand, valid = batch_negatives(a, n, d, track_a, track_d, self.related)
        if not valid.any():
            return {"val_all": None, "val_nce": None}
        per = torch.relu(d_an.unsqueeze(1) - d_cand + self.opts.margin)
        nce = info_nce(d_an, d_cand, valid, self.opts.temperature)
        return {"val_all": float(per[valid].mean()), "val_nce": float(nce[valid.any(dim=1)].mean())}


class ProjectionHead(torch.nn.Module):
    """SimCLR-style MLP after the embedding, used only by the loss: the exported embedding
    (before the head) keeps information the head learns to discard for the pretext task."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden),
            torch.nn.BatchNorm1d(hidden),
            torch.nn.ReLU(inplace=True),
            torch.nn.Linear(hidden, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.net(x), dim=1)


class Trainable(torch.nn.Module):
    """The network (and projection head) as the loss sees it. ``freeze`` stages at the bottom
    keep their weights and stay in eval mode, so their BatchNorm statistics (and the texture
    statistics the track vector pools from them) stay those of the starting model."""

    def __init__(self, model: torch.nn.Module, head: torch.nn.Module | None, freeze: int = 0) -> None:
        super().__init__()
        self.model, self.head = model, head
        self._frozen = model.lower_modules(freeze)
        for m in self._frozen:
            m.requires_grad_(False)

    def train(self, mode: bool = True) -> Trainable:
        super().train(mode)
        for m in self._frozen:
            m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.model.embed(x)  # the loss trains the embedding, whatever the pooling stores
        return e if self.head is None else self.head(e)

"""Which crops make a triplet (Tile2Vec: temporal proximity), the track split, and the
counter-based random generators that make a resumed run draw exactly what it would have."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.related import RelatedPairs


def rng_for(*keys: int) -> np.random.Generator:
    """A counter-based generator: the same keys give the same stream (exact resume needs no
    saved generator state, only the keys: seed, epoch, step, rank)."""
    return np.random.default_rng([int(k) & 0xFFFFFFFF for k in keys])


@dataclass
class Batch:
    anchor: tuple[np.ndarray, np.ndarray]  # (piece, start)
    neighbour: tuple[np.ndarray, np.ndarray]
    distant: tuple[np.ndarray, np.ndarray]
    track_a: np.ndarray
    track_d: np.ndarray


class TripletSampler:
    """Tile2Vec triplets from temporal proximity.

    anchor: a random crop; neighbour: a crop of the same piece (same track) whose start lies
    within ``window`` frames of the anchor's start, and differs from it; distant: a crop of a
    piece of a different track, chosen in proportion to length, and not of a track ``related``
    to the anchor's (:mod:`trainer.related`) while an unrelated one exists.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        piece_track: np.ndarray,
        seg_frames: int,
        window_frames: int,
        pieces: np.ndarray | None = None,
        related: RelatedPairs | None = None,
        mutual_p: float = 0.0,
    ) -> None:
        self.related = related
        self.mutual_p = float(mutual_p) if related is not None and len(related.mutual) else 0.0
        self.lengths = np.asarray(lengths, np.int64)
        self.piece_track = np.asarray(piece_track, np.int64)
        self.F = int(seg_frames)
        self.W = max(1, int(window_frames))
        self.pieces = np.arange(len(self.lengths)) if pieces is None else np.asarray(pieces, np.int64)
        if len(np.unique(self.piece_track[self.pieces])) < 1:
            raise ValueError("no tracks to sample from")
        lens = self.lengths[self.pieces]
        self._cum = np.cumsum(lens)
        # Segments per piece on the non-overlapping grid: an epoch visits each once.
        self.grid = np.maximum(1, lens // self.F)
        # for mutual positives: each track -> its indices into self.pieces, in that order
        self._positions: dict[int, np.ndarray] = {}
        if self.mutual_p > 0:
            tracks = self.piece_track[self.pieces]
            order = np.argsort(tracks, kind="stable")
            cut = np.flatnonzero(np.diff(tracks[order])) + 1
            self._positions = {int(tracks[g[0]]): g for g in np.split(order, cut) if len(g)}

    @property
    def n_segments(self) -> int:
        return int(self.grid.sum())

    def max_start(self, piece: np.ndarray) -> np.ndarray:
        return np.maximum(self.lengths[piece] - self.F, 0)

    def epoch_anchors(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Every grid segment once, shuffled, each jittered by up to half a segment."""
        piece = np.repeat(self.pieces, self.grid)
        first = np.repeat(np.cumsum(self.grid) - self.grid, self.grid)
        k = np.arange(len(piece)) - first
        start = k * self.F + rng.integers(-self.F // 2, self.F // 2 + 1, size=len(piece))
        start = np.clip(start, 0, self.max_start(piece))
        order = rng.permutation(len(piece))
        return piece[order], start[order]

    def neighbours(self, rng: np.random.Generator, piece: np.ndarray, start: np.ndarray) -> np.ndarray:
        hi_all = self.max_start(piece)
        lo = np.maximum(start - self.W, 0)
        hi = np.minimum(start + self.W, hi_all)
        span = hi - lo  # candidates lo..hi except start itself: span values
        off = rng.integers(0, np.maximum(span, 1))
        n = lo + off
        n = np.where(n >= start, n + 1, n)  # skip the anchor's own start
        return np.where(span > 0, np.minimum(n, hi), start)

    def distant(
        self, rng: np.random.Generator, track: np.ndarray, pool: TripletSampler | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Crops from pieces (of ``pool``, default this sampler) of a track other than ``track``."""
        src = pool or self
        piece = np.empty(len(track), np.int64)
        todo = np.arange(len(track))
        for _ in range(64):
            pos = rng.integers(0, src._cum[-1], size=len(todo))
            cand = src.pieces[np.searchsorted(src._cum, pos, side="right")]
            ok = src.piece_track[cand] != track[todo]
            if self.related is not None:
                ok &= ~self.related.contains(track[todo], src.piece_track[cand])
            piece[todo[ok]] = cand[ok]
            todo = todo[~ok]
            if not len(todo):
                break
        for i in todo:  # a track that dominates the pool: pick among the others explicitly
            others = src.pieces[src.piece_track[src.pieces] != track[i]]
            if self.related is not None and len(others):
                unrelated = others[~self.related.contains(track[i], src.piece_track[others])]
                others = unrelated if len(unrelated) else others  # everything related: any other track
            if not len(others):
                raise ValueError("distant segments need at least two tracks")
            piece[i] = others[rng.integers(0, len(others))]
        start = (rng.random(len(piece)) * (src.max_start(piece) + 1)).astype(np.int64)
        return piece, start

    def batch(
        self, rng: np.random.Generator, piece: np.ndarray, start: np.ndarray, pool: TripletSampler | None = None
    ) -> Batch:
        nb = self.neighbours(rng, piece, start)
        track = self.piece_track[piece]
        dp, ds = self.distant(rng, track, pool)
        nb_piece = piece
        if self.mutual_p > 0:
            nb_piece, nb = self._mutual(rng, piece, nb, track)
        return Batch((piece, start), (nb_piece, nb), (dp, ds), track, self.piece_track[dp])

    def _mutual(
        self, rng: np.random.Generator, piece: np.ndarray, start: np.ndarray, track: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """With chance ``mutual_p``, a positive from a track mutually nearest to the anchor's
        (a crop anywhere in one of its pieces of this sampler) instead of the anchor's own."""
        piece, start = piece.copy(), start.copy()
        draw = rng.random(len(piece)) < self.mutual_p
        pick, pos = rng.random(len(piece)), rng.random(len(piece))
        for i in np.nonzero(draw)[0]:
            partners = self.related.partners.get(int(track[i]))
            if partners is None:
                continue
            # the partners' pieces in this sampler's order, without a pass over every piece
            # (each step would otherwise scan the whole library once per drawn positive)
            found = [self._positions[int(t)] for t in partners if int(t) in self._positions]
            mine = self.pieces[np.sort(np.concatenate(found))] if found else self.pieces[:0]
            if not len(mine):
                continue
            p = mine[int(pick[i] * len(mine))]
            piece[i] = p
            start[i] = int(pos[i] * (self.max_start(np.array([p]))[0] + 1))
        return piece, start


def split_tracks(paths: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic split by track: the same files give the same validation set on every run
    (keyed by folder and file name, so moving a library keeps its split)."""

    order = sorted(
        paths,
        key=lambda p: (
            hashlib.sha256(f"{seed}:{'/'.join(Path(os.path.abspath(p)).parts[-2:])}".encode()).hexdigest() + p
        ),
    )
    if len(order) < 4 or val_fraction <= 0:
        return sorted(paths), []
    n_val = min(max(2, int(round(len(order) * val_fraction))), len(order) - 2)
    return sorted(order[n_val:]), sorted(order[:n_val])

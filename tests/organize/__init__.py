"""Tests for musicsim.organize; shared synthetic-library helpers live here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicsim.organize import TrackMeta

FAMILY_SIZES = (60, 70, 80, 90, 100)  # distinct sizes make size-ordered ids unambiguous
DIM = 32


@dataclass
class SyntheticFamilies:
    """Unit-norm embeddings in Gaussian families, with ids, tags and the family of each row."""

    X: np.ndarray
    ids: np.ndarray
    family: np.ndarray
    meta: dict[int, TrackMeta]
    centres: np.ndarray


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def make_families(*, seed: int = 0, noise: float = 0.35, dim: int = DIM) -> SyntheticFamilies:
    """Gaussian families on the unit sphere with tags that follow the families.

    Each family has its own genre, four artists and two albums per artist; ids are
    shuffled and non-contiguous so tests cannot confuse rows with ids.
    """
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(len(FAMILY_SIZES), dim)))
    family = np.repeat(np.arange(len(FAMILY_SIZES)), FAMILY_SIZES)
    X = unit(centres[family] + noise * rng.normal(size=(family.size, dim)) / np.sqrt(dim))
    perm = rng.permutation(family.size)
    X, family = X[perm], family[perm]
    ids = (np.arange(family.size, dtype=np.int64) * 7 + 1000)[rng.permutation(family.size)]
    meta = {}
    for tid, fam in zip(ids.tolist(), family.tolist(), strict=True):
        artist = int(rng.integers(4))
        meta[tid] = TrackMeta(
            id=tid,
            path=f"/music/f{fam}/a{artist}/track {tid}.flac",
            title=f"Song {tid}",
            artist=f"Artist {fam}-{artist}",
            album=f"Album {fam}-{artist}-{int(rng.integers(2))}",
            genre=f"Genre {fam}",
            duration=float(rng.uniform(120, 400)),
        )
    return SyntheticFamilies(X=X, ids=ids, family=family, meta=meta, centres=centres)

"""The network's architecture arguments (:class:`ModelConfig`), without torch.

Opening a library needs a model's vector length (:attr:`ModelConfig.track_dim`) to open its
index; keeping this apart from :mod:`musicsim.model.resnet` lets it do so without importing
torch. ``musicsim.model.resnet`` re-exports everything here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from musicsim.errors import ModelMismatch

# Each pooling, and how many parts of a segment descriptor it uses: the embedding, then the
# third stage's texture statistics, then the second stage's, then the first stage's.
POOLING_LEVELS = {"mean": 1, "meanstd": 1, "multilevel": 2, "multilevel3": 3, "multiband": 4}
POOLINGS = tuple(POOLING_LEVELS)
# Poolings whose texture statistics are taken separately in each of this many bands of the
# frequency axis (the lower and the upper half), not over all of it: where in the spectrum a
# pattern sounds is part of the timbre. Every other pooling: one band.
POOLING_BANDS = {"multiband": 2}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture arguments; stored in every checkpoint to rebuild the exact network."""

    width: int = 32
    embed_dim: int = 128
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    normalize: bool = True
    # How a track vector is made from its segment vectors (see musicsim.model.embed.track_vector):
    # "mean" (normalised mean, embed_dim values), "meanstd" (mean and per-dimension spread,
    # 2 x embed_dim values), "multilevel" (meanstd of the embedding and of the third
    # stage's texture statistics), "multilevel3" (and of the second stage's as well) or
    # "multiband" (the embedding and the third, second and first stages' statistics, each
    # taken in the lower and the upper half of the frequency axis).
    # Older checkpoints lack the field and mean "mean".
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ModelMismatch(f"unknown pooling {self.pooling!r} (expected one of {', '.join(POOLINGS)})")
        if POOLING_LEVELS[self.pooling] > 1 and len(self.blocks) < 3:
            raise ModelMismatch(f"{self.pooling} pooling needs a network of at least three stages")

    @property
    def bands(self) -> int:
        """Frequency bands in which the pooling takes texture statistics (1: over all of it)."""
        return POOLING_BANDS.get(self.pooling, 1)

    def _texture_len(self, stage: int) -> int:
        """Length of a segment's texture statistics after ``stage`` (channel means and spreads,
        in each of :attr:`bands` frequency bands)."""
        return 2 * self.width * 2 ** (stage - 1) * self.bands

    @property
    def descriptor_parts(self) -> tuple[int, ...]:
        """Lengths of the parts of :meth:`ResNetEmbedding.descriptor`: the embedding, then (in a
        network of three or more stages) the third and the second stage's texture statistics,
        and for "multiband" the first stage's too."""
        if len(self.blocks) < 3:
            return (self.embed_dim,)
        stages = (3, 2, 1) if POOLING_LEVELS[self.pooling] > 3 else (3, 2)
        return (self.embed_dim, *(self._texture_len(s) for s in stages))

    @property
    def parts(self) -> tuple[int, ...]:
        """Lengths of the parts of a segment vector as the network's forward returns it."""
        return self.descriptor_parts[: POOLING_LEVELS[self.pooling]]

    @property
    def segment_dim(self) -> int:
        """Length of a segment vector as the network's forward returns it (what is stored)."""
        return sum(self.parts)

    @property
    def track_dim(self) -> int:
        """Length of a track vector (what the index stores)."""
        if POOLING_LEVELS[self.pooling] > 1:
            return 2 * self.segment_dim
        return self.embed_dim * (2 if self.pooling == "meanstd" else 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelMismatch(f"unknown model arguments {sorted(unknown)}")
        d = dict(d)
        if "blocks" in d:
            d["blocks"] = tuple(int(b) for b in d["blocks"])
        return cls(**d)

"""ResNet18 (basic blocks) on 1-channel log-Mel segments -> L2-normalised embedding."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from musicsim.errors import ModelMismatch

POOLINGS = ("mean", "meanstd")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture arguments; stored in every checkpoint to rebuild the exact network."""

    width: int = 32
    embed_dim: int = 128
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    normalize: bool = True
    # How a track vector is made from its segment vectors (see musicsim.model.embed.track_vector):
    # "mean" (normalised mean, embed_dim values) or "meanstd" (mean and per-dimension spread,
    # 2 x embed_dim values). Older checkpoints lack the field and mean "mean".
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ModelMismatch(f"unknown pooling {self.pooling!r} (expected one of {', '.join(POOLINGS)})")

    @property
    def track_dim(self) -> int:
        """Length of a track vector (what the index stores)."""
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


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class ResNetEmbedding(nn.Module):
    """``[B, 1, n_mels, frames]`` log-Mel dB -> ``[B, embed_dim]`` (unit length if normalize)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        # Input BatchNorm learns the dB level and spread of the training data, so the
        # network needs no hand-tuned scaling of the front end's output.
        self.in_norm = nn.BatchNorm2d(1)
        self.stem = nn.Sequential(
            nn.Conv2d(1, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        layers, cin = [], w
        for i, n in enumerate(cfg.blocks):
            cout = w * 2**i
            for j in range(n):
                layers.append(BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.proj = nn.Linear(cin, cfg.embed_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(self.in_norm(x)))
        x = self.proj(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return F.normalize(x, dim=1) if self.cfg.normalize else x


def build_model(cfg: ModelConfig, *, seed: int | None = None) -> ResNetEmbedding:
    """Build a network; ``seed`` makes untrained weights reproducible."""
    if seed is None:
        return ResNetEmbedding(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ResNetEmbedding(cfg)

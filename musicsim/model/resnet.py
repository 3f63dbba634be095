"""ResNet18 (basic blocks) on 1-channel log-Mel segments -> L2-normalised embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from musicsim.model.arch import POOLING_BANDS, POOLING_LEVELS, POOLINGS, ModelConfig

__all__ = ["POOLINGS", "POOLING_BANDS", "POOLING_LEVELS", "BasicBlock", "ModelConfig", "ResNetEmbedding", "build_model"]


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
    """``[B, 1, n_mels, frames]`` log-Mel dB -> ``[B, embed_dim]`` (unit length if normalize).

    :meth:`embed` is the embedding the triplet loss trains. :meth:`descriptor` adds the third
    and the second stage's texture statistics (each channel's mean and spread over time and
    frequency; for "multiband", over time in each half of the frequency axis, and the first
    stage's as well):
    features from an earlier stage carry more of how the music sounds and less of the
    pretext task (telling tracks apart), and they measured better on music the network never
    saw (multi-level aggregation, as in Lee et al. 2017; docs/experiments.md).
    ``forward`` returns what the model's pooling stores: the parts of the descriptor it pools
    (:attr:`ModelConfig.parts`), the embedding alone for "mean" and "meanstd".
    """

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

        # Indices of the last blocks of the third, second and first stages (their outputs give
        # the texture statistics), in the order the descriptor holds them.
        self._texture_at = [sum(cfg.blocks[:k]) - 1 for k in (3, 2, 1)] if len(cfg.blocks) >= 3 else []

    def lower_modules(self, stages: int) -> list[nn.Module]:
        """The input norm, the stem and the blocks of the first ``stages`` stages (what
        fine-tuning with ``--freeze`` keeps as it is)."""
        if stages <= 0:
            return []
        n = sum(self.cfg.blocks[:stages])
        return [self.in_norm, self.stem, *list(self.layers)[:n]]

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return F.normalize(x, dim=1) if self.cfg.normalize else x

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self._head(self.layers(self.stem(self.in_norm(x))))

    def descriptor(self, x: torch.Tensor, levels: int | None = None, bands: int | None = None) -> torch.Tensor:
        """``[B, sum(descriptor_parts[:levels])]`` (default: every part): the embedding, then the
        third stage's channel means and standard deviations, then the second stage's (then the
        first's). Over time and frequency, or over time within each of ``bands`` (default:
        :attr:`ModelConfig.bands`) equal bands of the frequency axis (each band's means, then
        its spreads)."""
        if levels is None:
            levels = len(self.cfg.descriptor_parts)
        bands = self.cfg.bands if bands is None else bands
        x = self.stem(self.in_norm(x))
        wanted = self._texture_at[: max(0, levels - 1)]
        texture = {}
        for i, block in enumerate(self.layers):
            x = block(x)
            if i in wanted:
                texture[i] = _texture_stats(x.float(), bands)
        e = self._head(x)
        return torch.cat([e, *(texture[i].to(e.dtype) for i in wanted)], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = POOLING_LEVELS[self.cfg.pooling]
        return self.descriptor(x, levels) if levels > 1 else self.embed(x)


def _texture_stats(t: torch.Tensor, bands: int) -> torch.Tensor:
    """``[B, C, F, T]`` -> ``[B, 2 * C * bands]``: per band of the frequency axis, each channel's
    mean and standard deviation over the band's rows and time."""
    if t.shape[2] < bands:  # fewer rows than bands (a tiny input): each row serves whole bands
        t = t.repeat_interleave(-(-bands // t.shape[2]), dim=2)
    out = []
    for band in torch.tensor_split(t, bands, dim=2):
        f = band.flatten(2)
        out += [f.mean(2), f.std(2, correction=1 if f.shape[2] > 1 else 0)]  # one value: spread 0
    return torch.cat(out, 1)


def build_model(cfg: ModelConfig, *, seed: int | None = None) -> ResNetEmbedding:
    """Build a network; ``seed`` makes untrained weights reproducible."""
    if seed is None:
        return ResNetEmbedding(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ResNetEmbedding(cfg)

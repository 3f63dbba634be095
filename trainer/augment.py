"""Label-preserving augmentation of log-Mel crops: gain, EQ, masking, pitch shift, mixing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Augment:
    """Label-preserving changes of log-Mel dB crops ``[B, 1, M, T]``: gain, EQ, masking.

    gain: a level change (a dB offset); eq: a smooth random curve over the mel bands (tilt
    plus one broad bump or dip) of up to ``eq_db``; masks: SpecAugment-style bands of mel
    bins / frames replaced by the crop's mean level. Time shift comes from random cropping.
    """

    gain_db: float = 6.0
    eq_db: float = 6.0
    freq_mask: int = 8
    time_mask: int = 16
    p_mask: float = 0.5
    p_mix: float = 0.0  # chance of mixing in another crop of the batch (as background)
    mix_db: tuple[float, float] = (-20.0, -8.0)  # its level relative to the crop
    pitch_bins: int = 0  # shift along the mel axis by up to this many bands (~ a pitch shift)

    def __call__(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        B, _, M, T = x.shape
        dev = x.device
        if self.p_mix > 0:
            # Power-domain mix with a random other crop, at a low level: the music stays the same.
            other = torch.from_numpy(rng.permutation(B)).to(dev)
            level = rng.uniform(*self.mix_db, size=B) * (rng.random(B) < self.p_mix) + -200.0 * (
                rng.random(B) >= self.p_mix
            )
            lv = torch.from_numpy(level.astype(np.float32)).to(dev).view(B, 1, 1, 1)
            x = 10.0 * torch.log10(torch.pow(10.0, x / 10.0) + torch.pow(10.0, (x[other] + lv) / 10.0))
        if self.pitch_bins > 0:
            shift = rng.integers(-self.pitch_bins, self.pitch_bins + 1, size=B)
            src = (torch.arange(M).view(1, M) - torch.from_numpy(shift).view(B, 1)).clamp(0, M - 1)
            x = torch.gather(x, 2, src.to(dev).view(B, 1, M, 1).expand(B, 1, M, T))
        bins = np.linspace(-1.0, 1.0, M)
        gain = rng.uniform(-self.gain_db, self.gain_db, size=(B, 1))
        tilt = rng.uniform(-self.eq_db, self.eq_db, size=(B, 1)) * 0.5 * bins[None, :]
        centre = rng.uniform(-1, 1, size=(B, 1))
        bump = (
            rng.uniform(-self.eq_db, self.eq_db, size=(B, 1))
            * 0.5
            * np.exp(-0.5 * ((bins[None, :] - centre) / 0.25) ** 2)
        )
        curve = torch.from_numpy((gain + tilt + bump).astype(np.float32)).to(dev)
        x = x + curve.view(B, 1, M, 1)
        if self.p_mask > 0 and (self.freq_mask > 0 or self.time_mask > 0):
            mean = x.mean(dim=(2, 3), keepdim=True)
            mask = torch.zeros(B, 1, M, T, dtype=torch.bool, device=dev)
            use = rng.random(B) < self.p_mask
            fw = rng.integers(0, self.freq_mask + 1, size=B) * use
            f0 = rng.integers(0, M, size=B)
            tw = rng.integers(0, self.time_mask + 1, size=B) * use
            t0 = rng.integers(0, T, size=B)
            mi = torch.arange(M, device=dev).view(1, 1, M, 1)
            ti = torch.arange(T, device=dev).view(1, 1, 1, T)

            def col(v):
                return torch.from_numpy(np.asarray(v, np.int64)).to(dev).view(B, 1, 1, 1)

            mask |= (mi >= col(f0)) & (mi < col(f0 + fw))
            mask |= (ti >= col(t0)) & (ti < col(t0 + tw))
            x = torch.where(mask, mean, x)
        return x

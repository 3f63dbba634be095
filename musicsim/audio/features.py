"""Log-Mel front end: ``torch.stft`` + librosa's mel filterbank, as one torch module.

Every parameter lives in :class:`FrontEnd`, which is stored in each model checkpoint, so
indexing always uses exactly the front end the model was trained with. The same module
runs on CPU and GPU and gives the numbers of ``librosa.feature.melspectrogram`` followed by
``librosa.power_to_db`` (checked in tests/audio/test_features.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from musicsim.errors import ModelMismatch


@dataclass(frozen=True)
class FrontEnd:
    """Parameters of the log-Mel front end and of segmenting.

    Defaults: 22.05 kHz keeps everything up to 11 kHz (timbre lives there) at half the
    cost of 44.1 kHz; 64 mel bands x 128 frames (2.97 s) per segment keeps the ResNet
    cheap enough to train on a laptop CPU (see docs/design.md).
    """

    sr: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    fmin: float = 30.0
    fmax: float = 11025.0
    amin: float = 1e-10
    segment_frames: int = 128

    @property
    def segment_seconds(self) -> float:
        return self.segment_frames * self.hop_length / self.sr

    @property
    def segment_samples(self) -> int:
        """Audio samples that produce exactly ``segment_frames`` frames with centring."""
        return (self.segment_frames - 1) * self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FrontEnd:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelMismatch(f"unknown front-end parameters {sorted(unknown)}")
        return cls(**d)


class LogMel(nn.Module):
    """Waveform ``[..., samples]`` -> log-Mel power in dB ``[..., n_mels, frames]``."""

    mel_basis: torch.Tensor  # buffers, registered in __init__
    window: torch.Tensor

    def __init__(self, fe: FrontEnd) -> None:
        super().__init__()
        import librosa  # imported here: loading librosa costs ~1 s and only this needs it

        self.fe = fe
        mel = librosa.filters.mel(sr=fe.sr, n_fft=fe.n_fft, n_mels=fe.n_mels, fmin=fe.fmin, fmax=fe.fmax)
        # Not persistent: rebuilt from FrontEnd, so checkpoints stay small and exact.
        self.register_buffer("mel_basis", torch.from_numpy(mel.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(fe.n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        shape = wave.shape
        wave = wave.reshape(-1, shape[-1]).float()
        spec = torch.stft(
            wave,
            n_fft=self.fe.n_fft,
            hop_length=self.fe.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel_basis, power)
        db = 10.0 * torch.log10(torch.clamp(mel, min=self.fe.amin))
        return db.reshape(*shape[:-1], self.fe.n_mels, db.shape[-1])


def segment_starts(n_frames: int, seg: int) -> list[int]:
    """Frame offsets of the segments cut from ``n_frames`` frames.

    Non-overlapping segments; a remainder of at least half a segment gets one more
    segment aligned to the end, so the end of a track is not thrown away.
    """
    if n_frames <= seg:
        return [0]
    starts = list(range(0, n_frames - seg + 1, seg))
    rest = n_frames - (starts[-1] + seg)
    if rest >= seg // 2:
        starts.append(n_frames - seg)
    return starts


def segment_mel(mel: torch.Tensor, seg: int) -> tuple[torch.Tensor, list[int]]:
    """Cut ``[n_mels, frames]`` into ``[N, 1, n_mels, seg]`` segments and their frame starts.

    Audio shorter than one segment is tiled (wrapped) to full length: padding with
    silence would make every short clip look alike.
    """
    n = mel.shape[-1]
    if n < seg:
        reps = -(-seg // max(n, 1))
        mel = mel.repeat(1, reps)[:, :seg]
    starts = segment_starts(mel.shape[-1], seg)
    segs = torch.stack([mel[:, s : s + seg] for s in starts]).unsqueeze(1)
    return segs, starts


def segment_chunks(
    mels: Iterable[torch.Tensor], starts_s: Iterable[float], fe: FrontEnd
) -> tuple[torch.Tensor, np.ndarray]:
    """Segments ``[N, 1, n_mels, segment_frames]`` of a track's decoded chunks (their log-Mel
    frames ``mels``, starting at ``starts_s`` seconds) and each segment's start in seconds.
    The one place segments are cut: the scan and the mel cache must cut them alike."""
    segs: list[torch.Tensor] = []
    times: list[float] = []
    frame_s = fe.hop_length / fe.sr
    for mel, t0 in zip(mels, starts_s):
        s, st = segment_mel(mel, fe.segment_frames)
        segs.append(s)
        times.extend(t0 + f * frame_s for f in st)
    return torch.cat(segs), np.asarray(times, dtype=np.float32)

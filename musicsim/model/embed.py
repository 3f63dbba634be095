"""Batched embedding of decoded audio on the best available device."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from musicsim.audio.features import LogMel, segment_chunks
from musicsim.model.checkpoint import LoadedModel
from musicsim.model.resnet import POOLING_LEVELS


def best_device(preference: str = "auto") -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU; otherwise the named device."""
    if preference and preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "GPU: Apple MPS"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'})"


class Embedder:
    """Turns decoded chunks of one track into segment vectors and a track vector."""

    @contextlib.contextmanager
    def sharing_cores(self, busy: int) -> Iterator[None]:
        """While ``busy`` cores are taken by other processes (the scan's decode workers), the
        model's CPU threads use only the rest, at least one. Torch's threads spinning beside the
        workers slowed a first-pass scan by a quarter on two cores (docs/benchmarks.md)."""
        if self.device.type != "cpu":
            yield
            return
        prev = torch.get_num_threads()
        torch.set_num_threads(max(1, min(prev, (os.cpu_count() or 1) - busy)))
        try:
            yield
        finally:
            torch.set_num_threads(prev)

    def __init__(self, loaded: LoadedModel, *, device: str = "auto", batch_size: int = 64) -> None:
        self.loaded = loaded
        self.fe = loaded.frontend
        self.device = best_device(device)
        self.batch_size = batch_size
        self.logmel = LogMel(self.fe).to(self.device).eval()
        self.model = loaded.model.to(self.device).eval()
        self.pooling = loaded.config.pooling
        self.parts = loaded.config.parts

    @torch.inference_mode()
    def features(
        self, chunks: list[np.ndarray], starts_s: list[float], mels_out: list[np.ndarray] | None = None
    ) -> tuple[torch.Tensor, np.ndarray]:
        """Log-Mel segments ``[N,1,mels,frames]`` and their start times in seconds; ``mels_out``
        collects each chunk's whole log-Mel frames (float16, for the mel cache)."""

        def mels():
            for chunk in chunks:
                wave = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32)).to(self.device)
                mel = self.logmel(wave)
                if mels_out is not None:
                    mels_out.append(mel.to(torch.float16).cpu().numpy())
                yield mel

        return segment_chunks(mels(), starts_s, self.fe)

    @torch.inference_mode()
    def embed_segments(self, segs: torch.Tensor) -> np.ndarray:
        out = [self.model(segs[i : i + self.batch_size].to(self.device)) for i in range(0, len(segs), self.batch_size)]
        return torch.cat(out).float().cpu().numpy()

    def embed(self, chunks: list[np.ndarray], starts_s: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (track vector, segment vectors, segment start times)."""
        segs, times = self.features(chunks, starts_s)
        vecs = self.embed_segments(segs)
        return self.track_vector(vecs), vecs, times

    def track_vector(self, segment_vectors: np.ndarray) -> np.ndarray:
        return track_vector(segment_vectors, self.pooling, parts=self.parts)


STD_WEIGHT = 2.0  # weight of the spread half of a "meanstd" track vector (chosen by measurement)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v).astype(np.float32)


def track_vector(
    segment_vectors: np.ndarray,
    pooling: str = "mean",
    std_weight: float = STD_WEIGHT,
    parts: Sequence[int] | None = None,
) -> np.ndarray:
    """One unit vector per track from its segment vectors ``[n, D]``.

    ``parts``: the lengths of consecutive parts of a segment vector (a descriptor: the
    embedding, then texture statistics; :attr:`ModelConfig.descriptor_parts`); default: one
    part, the embedding. ``mean``: the normalised mean of the embedding. ``meanstd``:
    ``[normalised mean, std_weight x per-dimension standard deviation]``, normalised: how much
    a track's segments vary over time (its dynamics, its variety) is part of how it sounds,
    and this pooling measured clearly better on music the model never saw
    (docs/experiments.md). ``multilevel`` / ``multilevel3`` / ``multiband``: the
    first two / three / four parts are each pooled "meanstd", joined with equal weight and
    normalised.
    """
    if pooling not in POOLING_LEVELS:
        raise ValueError(f"unknown pooling {pooling!r}")
    v = segment_vectors.astype(np.float32)
    parts = tuple(parts) if parts else (v.shape[1],)
    levels = POOLING_LEVELS[pooling]
    if levels > len(parts) or sum(parts[:levels]) > v.shape[1]:
        raise ValueError(f"{pooling} pooling needs segment vectors of {levels} known parts")
    if levels > 1:
        offsets = np.cumsum((0,) + parts[:levels])
        return _unit(np.concatenate([_meanstd(v[:, a:b], std_weight) for a, b in zip(offsets[:-1], offsets[1:])]))
    v = v[:, : parts[0]]
    if pooling == "mean":
        return _unit(v.mean(axis=0))
    return _meanstd(v, std_weight)


def _meanstd(v: np.ndarray, std_weight: float) -> np.ndarray:
    return _unit(np.concatenate([_unit(v.mean(axis=0)), std_weight * v.std(axis=0)]))

"""The in-memory segment store: every training track's log-Mel frames as one tensor.

Random crops at any frame offset (not a fixed grid) give many distinct triplets per decoded
second, and time-shift augmentation for free.
"""

from __future__ import annotations

import numpy as np
import torch

from musicsim.melcache import CachedMel


class SegmentStore:
    """Mels of many tracks as one ``[n_mels, total_frames]`` float16 tensor.

    The unit of sampling is a *piece*: one contiguous decoded chunk (a whole track unless
    the track was decoded in windows). Each piece knows its track; a crop never crosses pieces.
    """

    def __init__(
        self,
        mel: torch.Tensor,
        offsets: np.ndarray,
        lengths: np.ndarray,
        piece_track: np.ndarray,
        track_names: list[str],
    ) -> None:
        self.mel = mel
        self.offsets = np.asarray(offsets, np.int64)
        self.lengths = np.asarray(lengths, np.int64)
        self.piece_track = np.asarray(piece_track, np.int64)
        self.track_names = list(track_names)
        self._offsets_t = torch.from_numpy(self.offsets)
        self._lengths_t = torch.from_numpy(self.lengths)

    @classmethod
    def from_cached(cls, tracks: list[tuple[str, CachedMel]], *, max_frames: int | None = None) -> SegmentStore:
        """Concatenate cached tracks; with ``max_frames``, long tracks are trimmed (centred
        excerpts) so the whole store fits the memory budget."""
        keep = [c.chunk_frames for _, c in tracks]
        total = sum(sum(k) for k in keep)
        if max_frames is not None and total > max_frames:
            # Largest per-piece cap that fits the budget (water-filling).
            lens = np.sort(np.array([n for k in keep for n in k], np.int64))
            cap, budget, left = int(lens[-1]), max_frames, len(lens)
            for n in lens:
                if n * left > budget:
                    cap = budget // left
                    break
                budget -= n
                left -= 1
            cap = max(cap, 1)
        else:
            cap = None
        parts, offsets, lengths, ptrack = [], [], [], []
        pos = 0
        for ti, (_, c) in enumerate(tracks):
            start = 0
            for n in c.chunk_frames:
                a, b = start, start + n
                if cap is not None and n > cap:
                    a = start + (n - cap) // 2
                    b = a + cap
                parts.append(np.asarray(c.mel[:, a:b], dtype=np.float16))
                offsets.append(pos)
                lengths.append(b - a)
                ptrack.append(ti)
                pos += b - a
                start += n
        mel = torch.from_numpy(np.concatenate(parts, axis=1)) if parts else torch.zeros(0, 0, dtype=torch.float16)
        return cls(mel, np.array(offsets), np.array(lengths), np.array(ptrack), [p for p, _ in tracks])

    @property
    def n_tracks(self) -> int:
        return len(self.track_names)

    @property
    def total_frames(self) -> int:
        return int(self.lengths.sum())

    def to(self, device: torch.device) -> SegmentStore:
        if device.type == "cuda":
            mel = self.mel.to(device, non_blocking=True)
        else:
            mel = self.mel
        out = SegmentStore(mel, self.offsets, self.lengths, self.piece_track, self.track_names)
        return out

    def crops(
        self, piece: np.ndarray, start: np.ndarray, frames: int, device: torch.device | None = None
    ) -> torch.Tensor:
        """``[B, 1, n_mels, frames]`` float32 crops; pieces shorter than ``frames`` wrap around."""
        dev = self.mel.device
        piece_t = torch.as_tensor(piece, dtype=torch.long)
        start_t = torch.as_tensor(start, dtype=torch.long)
        rel = (start_t.unsqueeze(1) + torch.arange(frames).unsqueeze(0)) % self._lengths_t[piece_t].unsqueeze(1)
        idx = (self._offsets_t[piece_t].unsqueeze(1) + rel).to(dev)
        out = self.mel[:, idx.reshape(-1)].reshape(self.mel.shape[0], len(piece), frames)
        out = out.permute(1, 0, 2).unsqueeze(1).float()
        return out if device is None else out.to(device, non_blocking=True)

"""What the trainer is given to train on, besides folders: plain per-track data.

The trainer never reads a library's database. A caller that holds tracks (the library side,
:mod:`musicsim.library.finetune`) hands them over as :class:`TrainTrack` rows, together with
the decode settings its scan used (so the frames the trainer decodes are those a scan makes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrainTrack:
    """One track to train on.

    ``vector``: the track vector the caller holds for this file under the model with checksum
    ``vector_model`` (as it is now: the caller leaves it out for a file changed since it was
    embedded). Fine-tuning from that model uses it to find related tracks instead of embedding
    the track again.
    """

    path: str
    vector: np.ndarray | None = None
    vector_model: str | None = None


def stored_vectors(tracks: list[TrainTrack], checksum: str | None) -> dict[str, np.ndarray]:
    """``{path: vector}`` of the tracks that carry a vector of the model with ``checksum``."""
    if not checksum:
        return {}
    return {t.path: t.vector for t in tracks if t.vector is not None and t.vector_model == checksum}

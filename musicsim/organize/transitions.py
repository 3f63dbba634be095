"""Transitions a DJ would accept: tempo close enough to beat-match, keys that mix (Camelot).

:func:`dj_cost` is the extra cost of each step that :func:`musicsim.organize.order.smooth_order`
adds to the sound distance when a smooth order should also be a mixable one;
:func:`transition_stats` measures an order (the share of steps that are tempo- and
key-compatible, and its sound distance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from musicsim.organize.words import key_relation, tempo_ratio

TEMPO_MIX = 0.06  # a turntable's pitch fader spans +-6 % (+-8 % on many): closer than this beat-matches
DJ_WEIGHT = 1.0  # one mismatch costs this many typical (median) sound distances between the tracks


def compatible(a: Mapping[str, object], b: Mapping[str, object]) -> tuple[bool | None, bool | None]:
    """(tempo-compatible, key-compatible) for a step a -> b; None where a value is unknown."""
    r = tempo_ratio(_f(a.get("tempo")), _f(b.get("tempo")))
    tempo_ok = None if r is None else r <= TEMPO_MIX
    known = all(d.get("key") and d.get("mode") for d in (a, b))
    key_ok = (key_relation(a, b) is not None) if known else None
    return tempo_ok, key_ok


def dj_cost(descriptors: Sequence[Mapping[str, object]], D: np.ndarray, *, weight: float = DJ_WEIGHT) -> np.ndarray:
    """(m, m) extra cost: ``weight`` x the median sound distance for a step whose tempi do not
    beat-match, and again for keys that do not mix; unknown values cost nothing."""
    m = len(descriptors)
    off = D[~np.eye(m, dtype=bool)] if m > 1 else np.zeros(1)
    unit = weight * float(np.median(off)) if off.size else 0.0
    cost = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            t, k = compatible(descriptors[i], descriptors[j])
            cost[i, j] = cost[j, i] = unit * ((t is False) + (k is False))
    return cost


def transition_stats(order: Sequence[int], descriptors: Sequence[Mapping[str, object]], D: np.ndarray) -> dict:
    """Share of adjacent steps that are tempo-compatible, key-compatible and both (over the
    steps where both values are known), and the order's total sound distance."""
    steps = list(zip(order[:-1], order[1:]))
    flags = [compatible(descriptors[a], descriptors[b]) for a, b in steps]
    tempo = [t for t, _ in flags if t is not None]
    key = [k for _, k in flags if k is not None]
    both = [t and k for t, k in flags if t is not None and k is not None]
    return {
        "tempo_ok": float(np.mean(tempo)) if tempo else float("nan"),
        "key_ok": float(np.mean(key)) if key else float("nan"),
        "both_ok": float(np.mean(both)) if both else float("nan"),
        "sound_length": float(sum(D[a, b] for a, b in steps)),
    }


def _f(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) else None


__all__ = ["DJ_WEIGHT", "TEMPO_MIX", "compatible", "dj_cost", "transition_stats"]

"""Musical descriptors in words a person uses: a track's values, what sets a group apart, and
how two keys or two tempi relate (the Camelot wheel DJs mix by).

Pure functions over the dicts :func:`musicsim.store.repo.descriptors` returns (tempo, beat_clarity,
key, mode, key_confidence, loudness, loudness_range, brightness, percussive; any may be None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

PITCHES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# The descriptors a group is described by, with the word for its low and its high end.
SCALES: dict[str, tuple[str, str]] = {
    "tempo": ("slow", "fast"),
    "loudness": ("quiet", "loud"),
    "brightness": ("dark", "bright"),
    "percussive": ("tonal", "percussive"),
    "beat_clarity": ("free-flowing", "steady beat"),
    "loudness_range": ("even", "dynamic"),
}


def describe_values(d: Mapping[str, object]) -> dict[str, str]:
    """A track's descriptors as labelled text (only those known)."""
    out: dict[str, str] = {}
    tempo, clarity = _num(d.get("tempo")), _num(d.get("beat_clarity"))
    if tempo is not None:
        beat = "" if clarity is None else f" ({_clarity_word(clarity)}, clarity {clarity:.2f})"
        out["tempo"] = f"{tempo:.0f} BPM{beat}"
    if d.get("key") and d.get("mode"):
        conf = _num(d.get("key_confidence"))
        camelot = camelot_code(str(d["key"]), str(d["mode"]))
        out["key"] = f"{d['key']} {d['mode']} ({camelot}" + (f", confidence {conf:.2f})" if conf is not None else ")")
    loud, lra = _num(d.get("loudness")), _num(d.get("loudness_range"))
    if loud is not None:
        out["loudness"] = f"{loud:.1f} LUFS" + (f", range {lra:.1f} LU" if lra is not None else "")
    bright = _num(d.get("brightness"))
    if bright is not None:
        out["brightness"] = f"{bright:.0f} Hz spectral centroid"
    perc = _num(d.get("percussive"))
    if perc is not None:
        out["texture"] = f"{perc:.2f} percussive ({'percussive' if perc >= 0.5 else 'tonal'})"
    return out


def _clarity_word(c: float) -> str:
    return "clear beat" if c >= 0.5 else "some pulse" if c >= 0.25 else "no steady beat"


def _num(v: object) -> float | None:
    if isinstance(v, (int, float)) and math.isfinite(float(v)):
        return float(v)
    return None


# --- keys and tempi ------------------------------------------------------------------------------


def camelot(key: str, mode: str) -> tuple[int, str] | None:
    """Camelot wheel position: (1..12, "B" major / "A" minor); C major is 8B, A minor 8A."""
    if key not in PITCHES or mode not in ("major", "minor"):
        return None
    pc = PITCHES.index(key)
    if mode == "minor":
        pc = (pc + 3) % 12  # a minor key sits beside its relative major
    return ((pc * 7) % 12 + 7) % 12 + 1, "B" if mode == "major" else "A"  # fifths round the wheel


def camelot_code(key: str, mode: str) -> str:
    c = camelot(key, mode)
    return f"{c[0]}{c[1]}" if c else "?"


def key_relation(a: Mapping[str, object], b: Mapping[str, object]) -> str | None:
    """How two tracks' keys relate on the Camelot wheel: "same key", "relative key" (A minor /
    C major), "a fifth apart" (one step round the wheel), or None (not compatible, or unknown)."""
    ca = camelot(str(a.get("key")), str(a.get("mode")))
    cb = camelot(str(b.get("key")), str(b.get("mode")))
    if ca is None or cb is None:
        return None
    if ca == cb:
        return "same key"
    if ca[0] == cb[0]:
        return "relative key"
    if ca[1] == cb[1] and (ca[0] - cb[0]) % 12 in (1, 11):
        return "a fifth apart"
    return None


def tempo_ratio(a: float | None, b: float | None) -> float | None:
    """Relative tempo difference, treating double and half time as the same pulse (0.03 = 3 %)."""
    if not a or not b:
        return None
    return min(abs(a * f - b) / b for f in (1.0, 2.0, 0.5))


# --- what sets a group apart -------------------------------------------------------------------


def library_scales(values: Sequence[Mapping[str, object]]) -> dict[str, tuple[float, float]]:
    """(median, spread) of each descriptor over the library, to say what is high or low in it."""
    out: dict[str, tuple[float, float]] = {}
    for name in SCALES:
        xs = np.array([v for v in (_num(d.get(name)) for d in values) if v is not None])
        if xs.size >= 3:
            q1, med, q3 = np.percentile(xs, [25, 50, 75])
            out[name] = (float(med), float(max(q3 - q1, 1e-9)))
    return out


def standout(
    group: Sequence[Mapping[str, object]],
    scales: Mapping[str, tuple[float, float]],
    *,
    rest: Sequence[Mapping[str, object]] | None = None,
    words: int = 3,
    min_effect: float = 0.5,
) -> list[str]:
    """Up to ``words`` words for what sets ``group`` apart: the descriptors whose median in the
    group lies farthest from the median of the ``rest`` of the library (else the library's), in
    the library's interquartile ranges (at least ``min_effect``). Against the rest, a group that
    holds most of the library is still told from the others (music beside sound effects)."""
    effects = []
    for name, (med, spread) in scales.items():
        xs = [v for v in (_num(d.get(name)) for d in group) if v is not None]
        if len(xs) < max(1, len(group) // 2):
            continue
        others = [v for v in (_num(d.get(name)) for d in rest or ()) if v is not None]
        if len(others) >= 3:
            med = float(np.median(others))
        effect = (float(np.median(xs)) - med) / spread
        if abs(effect) >= min_effect:
            effects.append((abs(effect), SCALES[name][effect > 0]))
    return [w for _, w in sorted(effects, reverse=True)[:words]]


__all__ = [
    "camelot",
    "camelot_code",
    "describe_values",
    "key_relation",
    "library_scales",
    "standout",
    "tempo_ratio",
]

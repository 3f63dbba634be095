"""Why two tracks sound alike, or why one does not fit its group, in words.

Two sources. The track vector's parts (see :func:`musicsim.model.embed.track_vector`): the
network's embedding, then texture statistics after its third, second and first stage
(coarse to fine texture), each in the lower and the upper half of the frequency axis, each
as the track's usual value and as how much it varies over time. The parts that agree (or
differ) most, measured against how much two tracks of the same library usually agree in that
part, say where the likeness lies. And the descriptors: tempo within a few percent, keys the
Camelot wheel calls compatible, similar loudness, brightness, texture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from musicsim.organize.words import key_relation, library_scales, tempo_ratio

_STAGE_WORDS = {3: "coarse texture", 2: "mid-scale texture", 1: "fine texture"}
TEMPO_CLOSE = 0.04  # relative; the tolerance MIREX and DJs use for "the same tempo"
LOUDNESS_CLOSE = 2.0  # LU
BRIGHT_CLOSE = 0.15  # relative spectral centroid
PERCUSSIVE_CLOSE = 0.1  # percussive share
# "Similar timbre": the usual (time-averaged) texture statistics of every stage and band agree by
# this many of the library's spreads on average (generated pieces: the same instrument 1.2,
# others 0.1-0.3; tests/cli/test_descriptor_commands.py).
TIMBRE_CLOSE = 0.75
_BAND_WORDS = ("below about 2 kHz", "above about 2 kHz")  # the halves of the 64-band mel axis


@dataclass(frozen=True)
class Part:
    """A named slice of the track vector."""

    name: str
    start: int
    stop: int
    timbre: bool = False  # a texture's usual (time-averaged) statistics: what the sound is made of


def vector_parts(parts: Sequence[int], *, bands: int = 1, pooling_levels: int = 1, stages=(3, 2, 1)) -> list[Part]:
    """The named parts of a track vector pooled from segment parts of lengths ``parts`` (the
    model's :attr:`ModelConfig.parts`), each pooled as [mean, spread over time]."""
    out: list[Part] = []
    pos = 0
    levels = max(1, pooling_levels)
    for i, length in enumerate(list(parts)[:levels]):
        for half, how in ((0, "its usual"), (1, "how its")):
            base = pos + half * length
            if i == 0:
                what = (
                    "overall sound (the network's embedding)"
                    if half == 0
                    else "variation of its overall sound over time"
                )
                out.append(Part(what, base, base + length))
                continue
            stage = stages[i - 1]
            step = length // bands
            for b in range(bands):
                band = f" {_BAND_WORDS[b]}" if bands > 1 else ""
                what = f"{how} {_STAGE_WORDS[stage]}{band}" + (" varies over time" if half else "")
                out.append(Part(what, base + b * step, base + (b + 1) * step, timbre=half == 0))
        pos += 2 * length
    return out


def part_baseline(X: np.ndarray, parts: list[Part], *, pairs: int = 400, seed: int = 0) -> np.ndarray:
    """(mean, spread) of each part's cosine between random pairs of library tracks: (P, 2)."""
    n = X.shape[0]
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, pairs)
    b = (a + 1 + rng.integers(0, max(n - 1, 1), pairs)) % n
    cos = np.stack([_part_cos(X[a], X[b], p) for p in parts], axis=1)
    return np.stack([cos.mean(axis=0), np.maximum(cos.std(axis=0), 1e-3)], axis=1)


def _part_cos(A: np.ndarray, B: np.ndarray, p: Part) -> np.ndarray:
    a, b = np.atleast_2d(A)[:, p.start : p.stop], np.atleast_2d(B)[:, p.start : p.stop]
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(den, 1e-12)


@dataclass
class Explanation:
    shared: list[str] = field(default_factory=list)
    different: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        parts = []
        if self.shared:
            parts.append("shared: " + "; ".join(self.shared))
        if self.different:
            parts.append("different: " + "; ".join(self.different))
        return " | ".join(parts) if parts else "nothing stands out"

    @property
    def multiline(self) -> str:
        """:attr:`text` with one fact a line, for a tooltip."""
        lines = []
        for title, facts in (("Shared:", self.shared), ("Different:", self.different)):
            if facts:
                lines += [title, *(f"  • {f}" for f in facts)]
        return "\n".join(lines) if lines else "nothing stands out"


def explain_pair(
    xa: np.ndarray,
    xb: np.ndarray,
    parts: list[Part],
    baseline: np.ndarray,
    da: Mapping[str, object] | None = None,
    db: Mapping[str, object] | None = None,
    *,
    top: int = 2,
) -> Explanation:
    """What two tracks share and where they differ, from their library-space vectors and
    descriptors."""
    ex = Explanation()
    da, db = da or {}, db or {}
    ex.shared += _descriptor_facts(da, db)
    if parts:
        z = np.array([(float(_part_cos(xa, xb, p)[0]) - m) / s for p, (m, s) in zip(parts, baseline)])
        order = np.argsort(-z)
        best = [parts[i] for i in order[:top] if z[i] > 0.5]
        usual = [z[i] for i, p in enumerate(parts) if p.timbre]
        if usual and float(np.mean(usual)) >= TIMBRE_CLOSE:
            ex.shared.append("similar timbre (the textures they are made of, at every scale and band)")
        if best:
            ex.shared.append("sound most alike: " + "; ".join(p.name for p in best))
        worst = [parts[i] for i in order[::-1][:1] if z[i] < -0.5]
        ex.different += [f"sound least alike: {p.name}" for p in worst]
    ex.different += _descriptor_gaps(da, db)
    return ex


def _descriptor_facts(da: Mapping[str, object], db: Mapping[str, object]) -> list[str]:
    out = []
    ta, tb = _f(da.get("tempo")), _f(db.get("tempo"))
    r = tempo_ratio(ta, tb)
    if r is not None and r <= TEMPO_CLOSE and ta and tb:
        out.append(f"same tempo ({ta:.0f} / {tb:.0f} BPM)")
    rel = key_relation(da, db)
    if rel == "same key":
        out.append(f"same key ({da.get('key')} {da.get('mode')})")
    elif rel is not None:
        phrase = {"relative key": "relative keys", "a fifth apart": "keys a fifth apart"}[rel]
        out.append(f"{phrase} ({da.get('key')} {da.get('mode')} / {db.get('key')} {db.get('mode')})")
    ba, bb = _f(da.get("brightness")), _f(db.get("brightness"))
    pa, pb = _f(da.get("percussive")), _f(db.get("percussive"))
    if ba and bb and pa is not None and pb is not None and abs(ba - bb) <= BRIGHT_CLOSE * max(ba, bb):
        if abs(pa - pb) <= PERCUSSIVE_CLOSE:  # brightness is timbre's first dimension; the attack its second
            texture = "percussive" if (pa + pb) / 2 >= 0.5 else "tonal"
            out.append(f"similar brightness ({ba:.0f} / {bb:.0f} Hz), both {texture}")
    la, lb = _f(da.get("loudness")), _f(db.get("loudness"))
    if la is not None and lb is not None and abs(la - lb) <= LOUDNESS_CLOSE:
        out.append(f"similar loudness ({la:.0f} / {lb:.0f} LUFS)")
    return out


def _descriptor_gaps(da: Mapping[str, object], db: Mapping[str, object]) -> list[str]:
    out = []
    ta, tb = _f(da.get("tempo")), _f(db.get("tempo"))
    r = tempo_ratio(ta, tb)
    if r is not None and r > 0.15 and ta and tb:
        out.append(f"tempo ({ta:.0f} / {tb:.0f} BPM)")
    la, lb = _f(da.get("loudness")), _f(db.get("loudness"))
    if la is not None and lb is not None and abs(la - lb) > 6:
        out.append(f"loudness ({la:.0f} / {lb:.0f} LUFS)")
    return out


# How a track compares with its group on each descriptor: (lower, higher), and the unit shown.
_COMPARE = {
    "tempo": (("slower", "faster"), "BPM", "{:.0f}"),
    "loudness": (("quieter", "louder"), "LUFS", "{:.0f}"),
    "brightness": (("darker", "brighter"), "Hz", "{:.0f}"),
    "percussive": (("more tonal", "more percussive"), "percussive", "{:.0%}"),
    "beat_clarity": (("a looser beat", "a steadier beat"), "", ""),
    "loudness_range": (("more even", "more dynamic"), "LU range", "{:.0f}"),
}
OUTLIER_EFFECT = 1.0  # a descriptor is named when it lies this many library spreads from the group's


def explain_outlier(
    x: np.ndarray,
    centre: np.ndarray,
    parts: list[Part],
    baseline: np.ndarray,
    d: Mapping[str, object],
    group: Sequence[Mapping[str, object]],
    library: Sequence[Mapping[str, object]],
    group_name: str,
) -> str:
    """Why a track does not fit its nearest group, in words: which group, how the track differs
    from the group's typical member on the descriptors where it differs by at least
    :data:`OUTLIER_EFFECT` of the library's spread (at most two: "quieter (-31 vs -18 LUFS)"),
    and the part of its sound farthest from the group's centre.

    What sets it apart comes first (a table cuts the end off): "faster (150 vs 82 BPM), louder
    (-9 vs -21 LUFS) than the rest of 'Ambient', its nearest group; most different in its usual
    fine texture above about 2 kHz", or without a standout descriptor "most different from the
    rest of 'Ambient', its nearest group, in ..."."""
    scales = library_scales(library)
    words = []
    for name, (_, spread) in scales.items():
        v = _f(d.get(name))
        xs = [u for u in (_f(g.get(name)) for g in group) if u is not None]
        if v is None or len(xs) < 2 or name not in _COMPARE:
            continue
        med = float(np.median(xs))
        effect = (v - med) / spread
        if abs(effect) >= OUTLIER_EFFECT:
            (low, high), unit, fmt = _COMPARE[name]
            shown = f" ({fmt.format(v)} vs {fmt.format(med)} {unit})" if fmt else ""
            words.append((abs(effect), (high if effect > 0 else low) + shown))
    said = ", ".join(w for _, w in sorted(words, reverse=True)[:2])
    group_words = f"the rest of '{group_name}', its nearest group"
    part = ""
    if parts:
        z = np.array([(float(_part_cos(x, centre, p)[0]) - m) / s for p, (m, s) in zip(parts, baseline)])
        part = parts[int(np.argmin(z))].name
    if said:
        return f"{said} than {group_words}" + (f"; most different in {part}" if part else "")
    return f"most different from {group_words}, in {part}" if part else ""


def _f(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


__all__ = ["Explanation", "Part", "explain_outlier", "explain_pair", "part_baseline", "vector_parts"]

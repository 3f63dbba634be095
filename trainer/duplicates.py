"""Copies of one recording (another format or bit rate, a second file of a song), found from
their frames: training must never use a copy as a track's "distant" segment."""

from __future__ import annotations

import numpy as np

from musicsim.melcache import CachedMel


def _fingerprint(c: CachedMel) -> tuple[int, np.ndarray, np.ndarray]:
    """Length in frames, log of the mean power per mel band, and a coarse loudness envelope."""
    m = np.asarray(c.mel, np.float32)
    pw = np.power(10.0, m / 10.0)
    spec = 10.0 * np.log10(pw.mean(axis=1) + 1e-10)
    env = 10.0 * np.log10(pw.sum(axis=0) + 1e-10)
    k = len(env) // 8 * 8
    return m.shape[1], spec, (env[:k].reshape(-1, 8).mean(axis=1) if k else env)


def _spec_dist(a: np.ndarray, b: np.ndarray, floor_db: float = 50.0) -> float:
    filled = (a > a.max() - floor_db) & (b > b.max() - floor_db)
    return float(np.sqrt(np.mean((a[filled] - b[filled]) ** 2))) if filled.any() else float("inf")


def _env_match(a: np.ndarray, b: np.ndarray, max_lag: int = 3) -> float:
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = a[max(lag, 0) :], b[max(-lag, 0) :]
        n = min(len(x), len(y))
        if n >= 8 and x[:n].std() > 1e-6 and y[:n].std() > 1e-6:
            best = max(best, float(np.corrcoef(x[:n], y[:n])[0, 1]))
    return best


def duplicate_groups(cached: list[CachedMel], *, spec_db: float = 2.0, min_r: float = 0.9) -> np.ndarray:
    """Group id per track; copies of the same recording (another format or bit rate, a second
    file of one song) share a group, so they are never used as each other's "distant" segment:
    training the network to tell a song from its own MP3 teaches it codec artefacts.

    Copies: lengths within 1 % (or 8 frames), mean spectra within ``spec_db`` dB (RMS over the
    mel bands both tracks fill, i.e. within 50 dB of their loudest band, so a low-bit-rate
    copy's low-pass does not hide it; copies of the dev library's real tracks differ by
    <= 1.2 dB, different songs by >= 5 dB), and, for tracks longer than ~6 s, loudness
    envelopes correlated above ``min_r``.
    """
    fps = [_fingerprint(c) for c in cached]
    parent = list(range(len(fps)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(len(fps)), key=lambda i: fps[i][0])
    for a_pos, i in enumerate(order):
        ni, si, ei = fps[i]
        for j in order[a_pos + 1 :]:
            nj, sj, ej = fps[j]
            if nj - ni > max(8, 0.01 * nj):
                break
            if _spec_dist(si, sj) > spec_db:
                continue
            if min(len(ei), len(ej)) >= 32 and _env_match(ei, ej) < min_r:
                continue
            parent[root(j)] = root(i)
    roots = [root(i) for i in range(len(fps))]
    _, ids = np.unique(roots, return_inverse=True)
    return ids.astype(np.int64)

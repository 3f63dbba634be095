"""The DJ order (``--dj``) on a real library: how many steps mix, and what it costs in sound.

    python tests/benchmarks/bench_dj_order.py LIBRARY [--db FILE] [-n 30] [--seeds 0]

Scans LIBRARY into a temporary library, or into ``--db`` (kept; scanned only the first time).
Then, for playlists of ``-n`` tracks made from each track as the seed (``--seeds K``: K seeds
drawn at random; 0: every track), and for the whole library as one list, it orders each list
four ways, every one keeping its first track first:

- as the playlist was made (most similar to the seed first);
- at random (seeded);
- smoothly (``musicsim sort PLAYLIST``: nearest-neighbour chain + 2-opt on sound distance);
- smoothly with tempo and key weighed in (``musicsim sort PLAYLIST --dj``).

and prints, pooled over every adjacent pair where both tracks' values are known, the share that
are tempo-compatible (within 6 %, double and half time allowed), key-compatible (Camelot: same
key, relative, a fifth up or down) and both, and the mean sound distance (cosine, library space)
of a step. Tracks without a tempo or key are left out of that share only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musicsim.organize import row_of  # noqa: E402
from musicsim.organize.order import cosine_distance_matrix, smooth_order  # noqa: E402
from musicsim.organize.transitions import DJ_WEIGHT, TEMPO_MIX, compatible, dj_cost  # noqa: E402
from tests.benchmarks.scanned_set import open_scanned  # noqa: E402

WAYS = ("as made", "random", "smooth", "smooth + DJ")


class Tally:
    """Pooled counts over many lists' adjacent steps."""

    def __init__(self) -> None:
        self.tempo = [0, 0]  # compatible, known
        self.key = [0, 0]
        self.both = [0, 0]
        self.dist: list[float] = []

    def add(self, order: list[int], desc: dict[int, dict], D: np.ndarray, pos: dict[int, int]) -> None:
        for a, b in zip(order[:-1], order[1:]):
            t, k = compatible(desc.get(a, {}), desc.get(b, {}))
            for box, ok in ((self.tempo, t), (self.key, k), (self.both, None if t is None or k is None else t and k)):
                if ok is not None:
                    box[0] += bool(ok)
                    box[1] += 1
            self.dist.append(float(D[pos[a], pos[b]]))

    def row(self, name: str) -> str:
        share = [f"{c / n:.3f} ({c}/{n})" if n else "–" for c, n in (self.tempo, self.key, self.both)]
        return f"| {name} | {' | '.join(share)} | {np.mean(self.dist):.4f} |"


def order_ways(org, ids: list[int], rng, X: np.ndarray, desc: dict, weights: list[float]) -> dict[str, list[int]]:
    """Each way's order of ``ids``; "smooth + DJ" is the app's (``Organizer.smooth``), the
    weighted rows the same order with another weight on a mismatch."""
    shuffled = [ids[0], *rng.permutation(ids[1:]).tolist()]
    out = {
        WAYS[0]: list(ids),
        WAYS[1]: [int(i) for i in shuffled],
        WAYS[2]: org.smooth(list(ids), dj=False)[0],
        WAYS[3]: org.smooth(list(ids), dj=True)[0],
    }
    D = cosine_distance_matrix(X)
    for w in weights:
        extra = dj_cost([desc.get(t, {}) for t in ids], D, weight=w)
        order, _ = smooth_order(X, start=0, extra_cost=extra)
        out[f"smooth + DJ, weight {w:g}"] = [ids[i] for i in order]
    return out


def table(title: str, tallies: dict[str, Tally], first: str) -> None:
    print(f"\n{title}")
    print("| order | tempo-compatible steps | key-compatible steps | both | mean sound distance of a step |")
    print("|---|---|---|---|---|")
    for name, tally in tallies.items():
        print(
            tally.row(
                first if name == WAYS[0] else f"{name} (the app's, weight {DJ_WEIGHT:g})" if name == WAYS[3] else name
            )
        )
    before = np.mean(tallies[WAYS[2]].dist)
    for name in [n for n in tallies if n.startswith(WAYS[3])]:
        cost = 100 * (np.mean(tallies[name].dist) / before - 1)
        print(f"sound-distance cost of '{name}' over the smooth order: {cost:+.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("library")
    ap.add_argument("--db", help="library database to scan into (kept) or reuse")
    ap.add_argument("-n", type=int, default=30, help="playlist length (default 30)")
    ap.add_argument("--seeds", type=int, default=0, help="seed tracks drawn at random; 0: every track (default)")
    ap.add_argument("--weights", default="0.25,0.5,2", help="other DJ weights to compare (default 0.25,0.5,2)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with open_scanned(args.library, args.db) as lib:
        org = lib.organizer
        ids, X, _ = org.data()
        desc = {int(t): d for t, d in org.descriptors().items()}
        all_ids = [int(t) for t in ids.tolist()]
        tempo = sum(1 for t in all_ids if (desc.get(t) or {}).get("tempo"))
        key = sum(1 for t in all_ids if (desc.get(t) or {}).get("key"))
        print(f"{len(all_ids)} tracks; with a tempo {tempo}, with a key {key}; tempo window {TEMPO_MIX:.0%}")
        seeds = all_ids if args.seeds <= 0 else rng.choice(all_ids, args.seeds, replace=False).tolist()
        weights = [float(w) for w in args.weights.split(",") if w.strip()]
        tallies: dict[str, Tally] = {}
        t0 = time.perf_counter()
        for seed in seeds:
            chosen = org.playlist([int(seed)], n=args.n, save=False).track_ids
            if len(chosen) < 3:
                continue
            pos = dict(zip(chosen, range(len(chosen))))
            D = cosine_distance_matrix(X[row_of(ids, chosen)])
            for name, order in order_ways(org, chosen, rng, X[row_of(ids, chosen)], desc, weights).items():
                tallies.setdefault(name, Tally()).add(order, desc, D, pos)
        spent = time.perf_counter() - t0
        table(
            f"Playlists of {args.n} from each of {len(seeds)} seeds ({spent:.1f} s)", tallies, "as made (by similarity)"
        )
        whole: dict[str, Tally] = {}
        pos = dict(zip(all_ids, range(len(all_ids))))
        D = cosine_distance_matrix(X)
        t0 = time.perf_counter()
        for name, order in order_ways(org, all_ids, rng, X, desc, weights).items():
            whole.setdefault(name, Tally()).add(order, desc, D, pos)
        table(f"The whole library as one list ({time.perf_counter() - t0:.1f} s)", whole, "library order (by id)")


if __name__ == "__main__":
    main()

"""The cluster levels against labelled sub-folders, and how well the 2-D map keeps neighbours.

    python tests/benchmarks/bench_cluster_levels.py SET [--db FILE] [--seeds 5] [--no-labels]

Scans SET (one sub-folder per label, e.g. DEVEVAL) into a temporary library, or into ``--db``
(kept; scanned only the first time), and over its library-space vectors (what the app
clusters and maps) prints:

1. every level of the hierarchy (:func:`musicsim.organize.hierarchy.build`): its silhouette,
   Calinski-Harabasz and Davies-Bouldin scores and its adjusted mutual information (AMI)
   against the sub-folders;
2. the level each rule picks, and its AMI: the default (best silhouette among 3 or more
   groups), the best silhouette over all levels, the other two measures, and the clustering
   before issue 31 (k-means, k by the best silhouette: ``musicsim.organize.clusters.cluster``,
   over ``--seeds`` seeds); the sub-folders' own count as a reference;
3. the share of each track's 10 nearest neighbours (cosine, in the library's vector space) that
   are among its 10 nearest on the map, for PCA and for t-SNE (the app's map up to 5,000 tracks;
   seed 0 is the app's, the mean over ``--seeds`` seeds beside it), UMAP when umap-learn is
   installed, and a random placement's expectation.

``--no-labels``: the library's sub-folders are not labels (e.g. LIBRARY's mp3/ ogg/ midi/): AMI
is left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sklearn.metrics import adjusted_mutual_info_score, calinski_harabasz_score, davies_bouldin_score  # noqa: E402

from musicsim.organize.clusters import cluster, map_2d, neighbours_kept  # noqa: E402
from musicsim.organize.hierarchy import build  # noqa: E402
from tests.benchmarks.scanned_set import open_scanned, subfolder_labels  # noqa: E402

NEIGHBOURS = 10


def level_table(X: np.ndarray, y: np.ndarray | None, keep: np.ndarray) -> tuple[object, dict]:
    """Print one row per level; return the tree and level -> (ch, db, ami)."""
    tree = build(X)
    rows = {}
    print(f"\n{len(X)} tracks; levels {tree.levels[0]}-{tree.levels[-1]}; default {tree.default}")
    print("| groups | silhouette | Calinski-Harabasz | Davies-Bouldin | AMI vs sub-folders |")
    print("|---|---|---|---|---|")
    for k, lab in zip(tree.levels, tree.labels):
        ch, db = calinski_harabasz_score(X, lab), davies_bouldin_score(X, lab)
        ami = adjusted_mutual_info_score(y[keep], lab[keep]) if y is not None else float("nan")
        rows[k] = (ch, db, ami)
        mark = " (default)" if k == tree.default else ""
        print(f"| {k}{mark} | {tree.scores[k]:.3f} | {ch:.1f} | {db:.3f} | {_num(ami)} |")
    return tree, rows


def choices(X: np.ndarray, y: np.ndarray | None, keep: np.ndarray, tree, rows: dict, seeds: int) -> None:
    """The level each rule picks and its AMI."""
    three = [k for k in tree.levels if k >= 3] or list(tree.levels)
    picks = {
        "default: best silhouette among 3 or more groups": tree.default,
        "best silhouette over all levels": max(tree.levels, key=lambda k: (tree.scores[k], -k)),
        "best Calinski-Harabasz among 3 or more": max(three, key=lambda k: rows[k][0]),
        "best (lowest) Davies-Bouldin among 3 or more": min(three, key=lambda k: rows[k][1]),
    }
    print("\n| rule | groups | AMI vs sub-folders |")
    print("|---|---|---|")
    for name, k in picks.items():
        print(f"| Ward level, {name} | {k} | {_num(rows[k][2])} |")
    ks, amis = [], []
    for s in range(seeds):
        lab, _ = cluster(X, seed=s)
        ks.append(int(lab.max()) + 1)
        amis.append(adjusted_mutual_info_score(y[keep], lab[keep]) if y is not None else float("nan"))
    print(
        f"| before issue 31: k-means, k by best silhouette (2..min(20, sqrt n)), seeds 0-{seeds - 1} "
        f"| {_spread(ks, 'd')} | {_mean(amis)} |"
    )
    if y is None:
        return
    n_labels = len(np.unique(y[keep]))
    if n_labels in rows:
        print(f"| reference: Ward level at the sub-folders' count | {n_labels} | {rows[n_labels][2]:.3f} |")
    ref = [adjusted_mutual_info_score(y[keep], cluster(X, k=n_labels, seed=s)[0][keep]) for s in range(seeds)]
    print(f"| reference: k-means at the sub-folders' count, seeds 0-{seeds - 1} | {n_labels} | {_mean(ref)} |")


def map_table(X: np.ndarray, seeds: int) -> None:
    n = len(X)
    print(f"\nShare of each track's {NEIGHBOURS} nearest neighbours kept on the 2-D map ({n} tracks)")
    print("| layout | share kept |")
    print("|---|---|")
    print(f"| PCA | {neighbours_kept(X, map_2d(X, method='pca'), k=NEIGHBOURS):.3f} |")
    tsne = [neighbours_kept(X, map_2d(X, method="tsne", seed=s), k=NEIGHBOURS) for s in range(seeds)]
    print(f"| t-SNE, seed 0 (the app's map) | {tsne[0]:.3f} |")
    print(f"| t-SNE, mean of seeds 0-{seeds - 1} | {_mean(tsne)} |")
    try:
        import umap  # noqa: F401 - optional

        print(f"| UMAP | {neighbours_kept(X, map_2d(X, method='umap'), k=NEIGHBOURS):.3f} |")
    except ImportError:
        print("| UMAP | (umap-learn not installed) |")
    print(f"| random placement (expected) | {NEIGHBOURS / (n - 1):.3f} |")


def contingency(names: list[str | None], labels: np.ndarray, k: int) -> None:
    """Which sub-folders the groups of level ``k`` hold."""
    folders = sorted({v for v in names if v})
    print(f"\nLevel {k}: tracks of each sub-folder in each group")
    print("| group | " + " | ".join(folders) + " |")
    print("|---" * (len(folders) + 1) + "|")
    for c in np.unique(labels).tolist():
        row = [sum(1 for v, g in zip(names, labels.tolist()) if v == f and g == c) for f in folders]
        print(f"| {c} | " + " | ".join(str(n) for n in row) + " |")


def _num(v: float) -> str:
    return "–" if np.isnan(v) else f"{v:.3f}"


def _mean(values) -> str:
    if any(np.isnan(values)):
        return "–"
    lo, hi = min(values), max(values)
    return f"{np.mean(values):.3f}" + ("" if lo == hi else f" ({lo:.3f} to {hi:.3f})")


def _spread(values, fmt: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if lo == hi else f"{lo:{fmt}}-{hi:{fmt}}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set", help="a folder with one sub-folder per label (DEVEVAL)")
    ap.add_argument("--db", help="library database to scan into (kept) or reuse")
    ap.add_argument("--seeds", type=int, default=5, help="k-means and t-SNE seeds (default 5)")
    ap.add_argument("--no-labels", action="store_true", help="the sub-folders are not labels: no AMI")
    args = ap.parse_args()
    with open_scanned(args.set, args.db) as lib:
        ids, X, meta = lib.organizer.data()
    paths = [meta[int(i)].path for i in ids]
    names = subfolder_labels(args.set, paths) if not args.no_labels else [None] * len(paths)
    keep = np.array([v is not None for v in names])
    y = None
    if keep.sum() >= 2 and len({v for v in names if v}) >= 2:
        _, y = np.unique([v or "" for v in names], return_inverse=True)
        counts = {v: names.count(v) for v in sorted({v for v in names if v})}
        print(f"labels: {len(counts)} sub-folders, {int(keep.sum())} of {len(names)} tracks: {counts}")
    tree, rows = level_table(X, y, keep)
    choices(X, y, keep, tree, rows, args.seeds)
    if y is not None:
        for k in sorted({2, tree.default}):
            contingency(names, tree.at(k), k)
    map_table(X, args.seeds)


if __name__ == "__main__":
    main()

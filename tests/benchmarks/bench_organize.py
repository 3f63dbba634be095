"""Benchmark of the organise features on SYNTHETIC vectors (not real audio embeddings).

Run: ``python tests/benchmarks/bench_organize.py [--n 100000] [--dim 128] [--refit-n 20000]``.
Not collected by pytest (the file name does not match ``test_*.py``).

The library is 100k unit vectors drawn as 1,000 Gaussian families of varying spread on
the sphere (to mimic clustered embeddings); queries are 1,000 further vectors from the
same families that are not in the index.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import voyager

from musicsim.organize import TrackMeta
from musicsim.organize.clusters import cluster, map_2d
from musicsim.organize.order import smooth_order
from musicsim.organize.outliers import near_duplicates, outlier_scores
from musicsim.organize.playlists import make_playlist
from musicsim.organize.similar import rank_by_seeds

TOP_K = 50
RECALL_AT = 10
TARGET_RECALL = 0.95


def synthetic(n: int, dim: int, *, families: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around random family centres, with per-family spread."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(families, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    fam = rng.integers(families, size=n)
    spread = rng.uniform(0.5, 1.5, size=families).astype(np.float32)
    X = centres[fam] + spread[fam, None] * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), fam


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_index(X: np.ndarray, Q: np.ndarray, rows: list) -> voyager.Index:
    """Build the HNSW index (voyager, as musicsim.index.ann), choose ef by measured recall, report top-50 latency."""
    index = voyager.Index(voyager.Space.Cosine, num_dimensions=X.shape[1], M=16, ef_construction=200, random_seed=0)
    _, build_s = timed(index.add_items, X, ids=np.arange(X.shape[0]))
    rows.append(("voyager HNSW build (M=16, efC=200)", f"{build_s:.1f} s", f"{X.shape[0]:,} items"))
    truth = np.argsort(-(Q @ X.T), axis=1)[:, :RECALL_AT]
    chosen = None
    for ef in (50, 64, 80, 100, 150, 200, 300):
        labels, _ = index.query(Q, k=TOP_K, query_ef=ef)
        recall = np.mean([len(set(labels[i, :RECALL_AT]) & set(truth[i])) / RECALL_AT for i in range(len(Q))])
        lat = []
        for q in Q:
            t0 = time.perf_counter()
            index.query(q[None, :], k=TOP_K, num_threads=1, query_ef=ef)
            lat.append(time.perf_counter() - t0)
        print(
            f"  ef={ef:<4d} recall@{RECALL_AT}={recall:.4f}  median top-{TOP_K} latency={np.median(lat) * 1e3:.3f} ms"
        )
        if chosen is None and recall >= TARGET_RECALL:
            chosen = (ef, recall, float(np.median(lat)))
    ef, recall, lat = chosen or (ef, recall, float(np.median(lat)))
    rows.append(
        (f"top-{TOP_K} query, ef={ef} (median of {len(Q)})", f"{lat * 1e3:.3f} ms", f"recall@{RECALL_AT}={recall:.4f}")
    )
    index.ef = ef
    return index


def bench_rank(X: np.ndarray, rows: list) -> None:
    """The exact ranking `musicsim similar` and the app's Sort by similarity share (one seed)."""
    ids = np.arange(X.shape[0], dtype=np.int64)
    seeds = np.random.default_rng(3).choice(ids, 50, replace=False).tolist()
    top = [timed(rank_by_seeds, X, ids, [s], limit=TOP_K)[1] for s in seeds]
    full = [timed(rank_by_seeds, X, ids, [s])[1] for s in seeds[:10]]
    rows.append((f"exact top-{TOP_K} (similar), one seed", f"{np.median(top) * 1e3:.1f} ms", "median of 50"))
    rows.append(("exact full ranking (Sort by similarity)", f"{np.median(full) * 1e3:.1f} ms", "median of 10"))


def bench_playlist(X: np.ndarray, fam: np.ndarray, rows: list) -> None:
    rng = np.random.default_rng(1)
    ids = np.arange(X.shape[0], dtype=np.int64) + 1
    meta = {
        int(t): TrackMeta(
            id=int(t),
            path=f"/m/{t}.flac",
            artist=f"A{f}-{t % 7}",
            album=f"B{f}-{t % 11}",
            genre=f"G{f % 40}",
            duration=200.0,
        )
        for t, f in zip(ids.tolist(), fam.tolist(), strict=True)
    }
    times = []
    for seed in rng.choice(ids, 50, replace=False).tolist():
        result, dt = timed(make_playlist, X, ids, meta, [seed], n=30, no_same_artist=3, no_same_album=True)
        times.append(dt)
    rows.append(
        ("30-track playlist, artist+album rules", f"{np.median(times) * 1e3:.1f} ms", f"median of 50, n={len(ids):,}")
    )
    _, dt = timed(make_playlist, X, ids, meta, [ids[0]], n=30, smooth=True)
    rows.append(("30-track playlist, smooth=True", f"{dt * 1e3:.1f} ms", "single run"))


def bench_refit(n: int, rows: list, dim: int = 1152) -> None:
    """What a library does when it refits its statistics: fit, transform, rebuild the index
    (at the default model's 1,152 values per track; :mod:`musicsim.index.norm`)."""
    from musicsim.index.ann import AnnIndex
    from musicsim.index.norm import LibraryNorm

    X, _ = synthetic(n, dim, families=max(10, n // 100), seed=3)
    X = X * np.linspace(0.2, 3.0, dim, dtype=np.float32) + 0.5  # uneven spreads and a shared offset
    t0 = time.perf_counter()
    norm = LibraryNorm.fit(X)
    Z = norm.apply(X)
    fit_s = time.perf_counter() - t0
    idx = AnnIndex.empty(dim, "bench", capacity=n, norm=norm)
    _, build_s = timed(idx.add, np.arange(n), Z, 0)
    rows.append(
        (
            f"library refit + index rebuild, {n:,} x {dim}",
            f"{fit_s + build_s:.1f} s",
            f"statistics {fit_s:.2f} s + build {build_s:.1f} s",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--refit-n", type=int, default=20_000, help="tracks for the library-refit row (0: skip)")
    args = parser.parse_args()
    print(f"SYNTHETIC data: {args.n:,} x {args.dim} unit vectors in Gaussian families (not real embeddings)")
    allX, allfam = synthetic(args.n + 1000, args.dim)
    X, fam, Q = allX[: args.n], allfam[: args.n], allX[args.n :]  # queries are not in the index
    rows: list[tuple[str, str, str]] = []
    index = bench_index(X, Q, rows)
    bench_rank(X, rows)
    bench_playlist(X, fam, rows)
    (labels, centroids), dt_c = timed(cluster, X)
    _, dt_m = timed(map_2d, X)
    rows.append(("cluster (choose_k + k-means)", f"{dt_c:.1f} s", f"k={centroids.shape[0]}"))
    rows.append(("map_2d PCA", f"{dt_m:.2f} s", f"clusters+map {dt_c + dt_m:.1f} s"))
    (nbr, dist), dt_knn = timed(index.query, X, k=6, query_ef=64)
    _, dt_o = timed(outlier_scores, X, labels, centroids, knn_distances=dist[:, 5])
    rows.append(
        ("outlier scores (kNN from the index)", f"{dt_knn + dt_o:.1f} s", f"kNN {dt_knn:.1f} s + score {dt_o:.1f} s")
    )
    ids = np.arange(args.n, dtype=np.int64)  # the index was built with row numbers as labels
    pairs, dt_d = timed(near_duplicates, X, ids, {}, candidate_ids=nbr.astype(np.int64))
    rows.append(
        ("near-duplicates (index candidates)", f"{dt_d:.1f} s", f"{len(pairs)} pairs, plus the kNN query above")
    )
    if args.refit_n:
        bench_refit(args.refit_n, rows)
    sub = X[np.random.default_rng(2).choice(args.n, 1000, replace=False)]
    (_, stats), dt_s = timed(smooth_order, sub)
    rows.append(
        (
            "smooth_order, 1,000 tracks",
            f"{dt_s:.2f} s",
            f"length {stats['length']:.1f} / greedy {stats['greedy_length']:.1f} / random {stats['random_length']:.1f}",
        )
    )
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'time':>10}  notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")


if __name__ == "__main__":
    main()

"""Which HNSW library to depend on: recall and speed of the candidates with wheels, on the
synthetic library of ``tests/benchmarks/bench_organize.py`` (100,000 unit vectors in 1,000
Gaussian families; 1,000 held-out queries from the same families).

Run one backend per process, with the candidate importable:
``python packaging/bench_ann.py --backend hnswlib|voyager|usearch [--n 100000] [--dim 128]``.
For a drop-in fork of hnswlib (it installs a module named ``hnswlib``), put it first on the path:
``pip install --target DIR chroma-hnswlib`` then ``PYTHONPATH=DIR python packaging/bench_ann.py``.

Figures: build time (all cores), the smallest ef reaching recall@10 >= 0.95 and its median
top-50 latency on one thread, and the every-track kNN (k=10, all cores) that clusters'
outlier scores and duplicates use.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

TOP_K = 50
RECALL_AT = 10
TARGET = 0.95
EFS = (50, 64, 80, 100, 150, 200, 300)


def synthetic(n: int, dim: int, *, families: int = 1000, seed: int = 0) -> np.ndarray:
    """As ``bench_organize.synthetic``: unit vectors around random family centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(families, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    fam = rng.integers(families, size=n)
    spread = rng.uniform(0.5, 1.5, size=families).astype(np.float32)
    X = centres[fam] + spread[fam, None] * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32)


class Hnswlib:
    def __init__(self, X: np.ndarray) -> None:
        import hnswlib

        self.name = f"hnswlib module from {getattr(hnswlib, '__file__', '?')}"
        self.ix = hnswlib.Index(space="cosine", dim=X.shape[1])
        self.ix.init_index(max_elements=X.shape[0], M=16, ef_construction=200, random_seed=0)
        self.ix.add_items(X, np.arange(X.shape[0]))

    def search(self, Q: np.ndarray, k: int, ef: int, threads: int) -> np.ndarray:
        self.ix.set_ef(max(ef, k))
        self.ix.set_num_threads(threads)
        return self.ix.knn_query(Q, k=k)[0]


class Voyager:
    def __init__(self, X: np.ndarray) -> None:
        import voyager

        self.name = f"voyager {voyager.__version__}" if hasattr(voyager, "__version__") else "voyager"
        self.ix = voyager.Index(
            voyager.Space.Cosine, num_dimensions=X.shape[1], M=16, ef_construction=200, random_seed=0
        )
        self.ix.add_items(X, ids=np.arange(X.shape[0]), num_threads=-1)

    def search(self, Q: np.ndarray, k: int, ef: int, threads: int) -> np.ndarray:
        return self.ix.query(Q, k=k, num_threads=threads, query_ef=max(ef, k))[0]


class Usearch:
    def __init__(self, X: np.ndarray) -> None:
        import usearch
        from usearch.index import Index

        self.name = f"usearch {usearch.__version__}"
        self.ix = Index(ndim=X.shape[1], metric="cos", dtype="f32", connectivity=16, expansion_add=200)
        self.ix.add(np.arange(X.shape[0]), X, threads=0)

    def search(self, Q: np.ndarray, k: int, ef: int, threads: int) -> np.ndarray:
        self.ix.expansion_search = max(ef, k)
        out = self.ix.search(Q, k, threads=threads)
        return np.asarray(out.keys).reshape(len(Q), -1)


BACKENDS = {"hnswlib": Hnswlib, "voyager": Voyager, "usearch": Usearch}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=sorted(BACKENDS), default="hnswlib")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    a = p.parse_args()
    allX = synthetic(a.n + 1000, a.dim)
    X, Q = allX[: a.n], allX[a.n :]
    t0 = time.perf_counter()
    ix = BACKENDS[a.backend](X)
    build = time.perf_counter() - t0
    print(f"{ix.name}: build {build:.1f} s ({a.n:,} x {a.dim}, M=16, efC=200)")
    truth = np.argsort(-(Q @ X.T), axis=1)[:, :RECALL_AT]
    chosen = None
    for ef in EFS:
        labels = ix.search(Q, TOP_K, ef, -1 if a.backend != "usearch" else 0)
        recall = np.mean([len(set(labels[i, :RECALL_AT]) & set(truth[i])) / RECALL_AT for i in range(len(Q))])
        lat = []
        for q in Q:
            t = time.perf_counter()
            ix.search(q[None, :], TOP_K, ef, 1)
            lat.append(time.perf_counter() - t)
        print(
            f"  ef={ef:<4d} recall@{RECALL_AT}={recall:.4f}  median top-{TOP_K} latency={np.median(lat) * 1e3:.3f} ms"
        )
        if chosen is None and recall >= TARGET:
            chosen = ef
    ef = chosen or EFS[-1]
    t = time.perf_counter()
    ix.search(X, RECALL_AT, max(ef, 64), -1 if a.backend != "usearch" else 0)
    print(f"  every-track kNN (k={RECALL_AT}, ef={max(ef, 64)}, all cores): {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()

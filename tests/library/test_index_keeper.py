"""The library's index keeper: in step with the database after outside changes, rebuilt when it is lost or stale."""

import json

import numpy as np

from musicsim.index import ann
from musicsim.library import Library


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_library_index_catches_up_and_rebuilds(family_library, tmp_path):
    root, _ = family_library
    db = tmp_path / "lib.db"
    with Library(db) as lib:
        lib.scan([str(root)])
        live = {t.id for t in lib.tracks()}
        path = lib.index.path
    # 1. an index that lags the database (crash between commit and index save)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["seq"] = 0
    path.with_suffix(".json").write_text(json.dumps(meta))
    idx = ann.load(path, dim=meta["dim"], checksum=meta["checksum"])
    victim = sorted(live)[0]
    idx.remove([victim])
    idx.seq = 0
    idx.save(path)
    with Library(db, writable=False) as lib:
        assert lib.index.ann().live_ids() == live
    # 2. a label the database no longer has
    idx = ann.load(path, dim=meta["dim"], checksum=meta["checksum"])
    idx.add(np.array([99999]), _unit(1, meta["dim"]), seq=idx.seq)
    idx.save(path)
    with Library(db) as lib:
        assert lib.index.ann().live_ids() == live
    # 3. no index at all
    path.unlink()
    with Library(db) as lib:
        assert lib.index.ann().live_ids() == live
        t = next(iter(lib.tracks()))
        assert lib.similar(t.id, n=3)
    assert path.exists()

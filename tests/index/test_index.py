import numpy as np

from musicsim.index import ann


def _unit(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_add_remove_query_save_load(tmp_path):
    X = _unit(50, 16)
    idx = ann.AnnIndex.empty(16, "abc", capacity=10)  # grows past its capacity
    idx.add(np.arange(100, 150), X, seq=7)
    ids, d = idx.query(X[3], 5)
    assert ids[0] == 103 and d[0] < 1e-5
    idx.remove([103])
    assert 103 not in idx.query(X[3], 5)[0] and len(idx) == 49
    idx.add(np.array([103]), X[3:4], seq=8)  # a re-added label comes back
    assert idx.query(X[3], 1)[0][0] == 103
    idx.remove([104])
    p = tmp_path / "i.hnsw"
    idx.save(p)
    back = ann.load(p, dim=16, checksum="abc")
    assert back.seq == 8 and back.deleted == {104} and back.live_ids() == set(range(100, 150)) - {104}
    assert ann.load(p, dim=16, checksum="other") is None  # another model's weights
    p.write_bytes(p.read_bytes()[:100])  # damaged
    assert ann.load(p, dim=16, checksum="abc") is None

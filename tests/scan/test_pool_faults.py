"""Worker processes that crash or hang cost only their own file (real processes, real kills)."""

import time

from musicsim.scan.pipeline import DecodeParams, DecodePool
from musicsim.scan.walker import FileEntry
from tests.scan.faulty import faulty_decode

PARAMS = DecodeParams(sr=22050, windows=0, window_seconds=6.0, max_seconds=720.0, soundfont=None)


def _entries(names):
    return [FileEntry(f"/virtual/{n}", 1, 1.0) for n in names]


def _run(names, timeout=600.0):
    results = {}
    pool = DecodePool(2, PARAMS, timeout=timeout, fn=faulty_decode)
    try:
        pool.run(_entries(names), lambda e, r: results.__setitem__(e.path.rsplit("/", 1)[1], r), None)
    finally:
        pool.close()
    return results


def test_crashing_decoder_costs_only_its_file():
    names = [f"ok{i}.mp3" for i in range(6)] + ["crash.mp3"] + [f"later{i}.mp3" for i in range(4)]
    res = _run(names)
    assert set(res) == set(names)
    assert res["crash.mp3"] == {"ok": False, "stage": "decode", "reason": "the decoder crashed on this file", "t": 0.0}
    assert all(r["ok"] for n, r in res.items() if n != "crash.mp3")


def test_hanging_decoder_is_given_up_after_the_timeout():
    names = ["ok0.mp3", "hang.mp3", "ok1.mp3", "ok2.mp3"]
    t0 = time.monotonic()
    res = _run(names, timeout=2.0)
    assert time.monotonic() - t0 < 60
    assert set(res) == set(names)
    assert not res["hang.mp3"]["ok"] and "hung" in res["hang.mp3"]["reason"]
    assert all(res[n]["ok"] for n in names if n != "hang.mp3")

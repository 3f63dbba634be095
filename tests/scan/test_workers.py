"""Decode workers start with the decoding stack already loaded (forked from a preloaded server)."""

import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from musicsim.workers import process_context


def _what_is_loaded() -> tuple[bool, bool]:
    return "librosa.onset" in sys.modules, "musicsim.audio.descriptors" in sys.modules


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver is Linux's")
def test_a_new_worker_has_the_decoding_stack_loaded():
    with ProcessPoolExecutor(1, mp_context=process_context()) as pool:
        assert pool.submit(_what_is_loaded).result(timeout=120) == (True, True)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]


def test_a_decode_worker_keeps_blas_to_one_thread():
    from musicsim.workers import decode_pool

    # The pool every decoding path uses: its initializer limits BLAS (the forkserver's preload
    # does not, since a forkserver another part of the program started first has none).
    with decode_pool(1) as pool:
        threads = pool.submit(_blas_threads).result(timeout=120)
    assert threads and all(n == 1 for n in threads)

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

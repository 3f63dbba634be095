"""Shared fixtures of the trainer tests: one generated library and one mel cache per session."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # Tiny networks gain nothing from a second thread, and OpenMP threads that spin while
    # waiting slow a busy 2-core machine down several-fold (see trainer/__main__.py).
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="session")
def train_library(tmp_path_factory):
    """Four timbre families x 4 variants, 20 s each, WAV (fast to decode): {path: family}."""
    from tests.fixtures.generate import make_library

    root = tmp_path_factory.mktemp("trainlib") / "music"
    fams = make_library(root, per_family=4, seconds=20.0, formats=(".wav",))
    return root, {str(p): f for p, f in fams.items()}


@pytest.fixture(scope="session")
def mel_cache_dir(tmp_path_factory, train_library):
    """A mel cache filled once for the library (every training test reads it)."""
    from musicsim.audio.features import FrontEnd
    from musicsim.melcache import MelCache

    d = tmp_path_factory.mktemp("melcache")
    MelCache(d, FrontEnd()).build(list(train_library[1]), workers=1)
    return d

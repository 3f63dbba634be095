"""Worker processes for decoding: one way to start them, with what they need already imported.

Workers never fork from a process that runs torch's threads or a GUI: on Linux they fork from
a *forkserver*, a clean process started once per session; elsewhere they are spawned. The
forkserver imports the decoding stack once (:data:`PRELOAD`: libsndfile, soxr, mutagen,
librosa's onset/chroma/decomposition modules, pyloudnorm, scipy's filters; about 1-2 s), so
every worker forked from it starts with them loaded: a pool made for one watched file is ready
at once instead of importing them again (docs/design.md, "Worker processes").
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor

PRELOAD = ["musicsim.workers_preload"]


def init_worker() -> None:
    """Every decode worker's first step: one BLAS/OpenMP thread (the workers are already one
    per core; two threads each on two cores made a first-pass scan 40 % slower). Done here,
    not only in the forkserver's preload, because the forkserver is one per process: one that
    another part of the program started first has no preload."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # noqa: BLE001 - without threadpoolctl the libraries' defaults stand
        pass


def process_context():
    """The multiprocessing context every decoding pool uses."""
    if not sys.platform.startswith("linux"):
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # takes effect when the server starts (the first pool)
    return ctx


def decode_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` decoding processes: from :func:`process_context`, each started by
    :func:`init_worker`. Every decoding pool is made here, so none forgets either."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=process_context(), initializer=init_worker)

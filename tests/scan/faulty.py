"""A decode function for worker-process tests: crashes or hangs on request, by file name."""

import os
import time


def faulty_decode(path: str, params) -> dict:
    name = os.path.basename(path)
    if name.startswith("crash"):
        os._exit(139)  # what a segfaulting decoder looks like to the pool
    if name.startswith("hang"):
        time.sleep(3600)
    return {"ok": True, "name": name, "t": 0.0}

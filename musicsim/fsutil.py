"""Writing files so that a crash or a full disk never leaves half a file in place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *, sync: bool = True) -> Path:
    """Call ``write`` on a temporary file beside ``path``, sync it, then rename it over ``path``.

    Readers see the old file or the new one, never a mix; on any error the temporary file
    is removed and the old file stays. OSError propagates to the caller. ``sync=False`` skips
    the fsync, for caches that may be lost in a power cut but must never be seen half-written.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))

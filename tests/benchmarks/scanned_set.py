"""Shared by the issue-31 benchmarks: a folder scanned into a library, and its sub-folder labels.

``open_scanned(FOLDER, db)`` scans FOLDER into the database ``db`` unless that database already
holds it (then it is only opened), or into a temporary one when ``db`` is None; the scan's
settings are the defaults (``MUSICSIM_*`` variables apply). Nothing is written to FOLDER.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from musicsim.library import Library  # noqa: E402


@contextmanager
def open_scanned(folder: str | os.PathLike, db: str | os.PathLike | None = None):
    """Yield a Library holding ``folder``'s analysed tracks (scanned now if needed)."""
    with tempfile.TemporaryDirectory(prefix="musicsim-bench-") as tmp:
        os.environ.setdefault("MUSICSIM_HOME", str(Path(tmp) / "home"))  # model cache, settings
        path = Path(db) if db else Path(tmp) / "library.db"
        fresh = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        with Library(path) as lib:
            if fresh:
                t0 = time.perf_counter()
                rep = lib.scan([str(folder)])
                print(f"scanned {folder}: {rep.analysed} tracks in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            yield lib


def subfolder_labels(folder: str | os.PathLike, paths: list[str]) -> list[str | None]:
    """The sub-folder of ``folder`` each path lies in (a label per sub-folder, as DEVEVAL is
    built), following a sub-folder that is a link; None for a path in none of them."""
    roots: list[tuple[str, str]] = []
    for sub in sorted(Path(folder).iterdir()):
        if sub.is_dir():
            for r in {str(sub.absolute()), str(sub.resolve())}:
                roots.append((r.rstrip(os.sep) + os.sep, sub.name))
    out: list[str | None] = []
    for p in paths:
        hits = [name for r, name in roots if p.startswith(r)]
        out.append(hits[0] if hits else None)
    return out

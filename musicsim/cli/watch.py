"""``musicsim watch``: keep the library up to date with its folders, in the foreground (Ctrl+C stops)."""

from __future__ import annotations

import argparse
import threading
import time
from typing import TYPE_CHECKING

from musicsim.cli.common import Bar, Command, eprint, printable
from musicsim.jobs import CancelToken

if TYPE_CHECKING:
    from musicsim.library import Library
    from musicsim.library.watch import Batch, WatchReport


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="folders to watch (default: the library's folders)")


def watch(lib: Library, args: argparse.Namespace) -> int:
    from musicsim.library.watch import run

    roots = list(args.paths) or lib.status()["roots"]
    if not roots:
        eprint("musicsim: the library has no folders yet; `musicsim scan FOLDER` or `musicsim watch FOLDER`")
        return 2
    if args.paths:
        lib.scan(list(args.paths))  # new folders are added and brought up to date first
    stop = threading.Event()  # Ctrl+C ends the wait; run() stops the watch on the way out
    bar, cancel = Bar(), CancelToken()

    def reported(batch: Batch, rep: WatchReport) -> None:
        bar.close()
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {len(batch)} change(s): {rep.summary() or 'nothing to do'}", flush=True)
        for path, reason in rep.failures:
            print(f"  failed: {printable(path)}: {reason}", flush=True)

    try:
        run(
            lib,
            roots,
            stop=stop,
            on_report=reported,
            on_notice=lambda m: eprint(f"note: {printable(m)}"),
            on_started=lambda fw: print(f"watching {len(roots)} folder(s) ({fw.describe()}); Ctrl+C stops", flush=True),
            progress=bar,
            cancel=cancel,
        )
    except KeyboardInterrupt:
        cancel.cancel()
        bar.close()
        print("stopped watching; finished tracks are saved")
    return 0


WATCH = Command(
    "watch",
    "watch the library folders and analyse files as they are added, changed, moved or deleted",
    watch,
    _arguments,
    writes=True,
)

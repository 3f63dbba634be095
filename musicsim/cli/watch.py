"""``musicsim watch``: keep the library up to date with its folders, in the foreground (Ctrl+C stops)."""

from __future__ import annotations

import argparse
import signal
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


def _stop_on_ctrl_c(stop: threading.Event, cancel: CancelToken):
    """Ctrl+C sets ``stop`` and cancels the batch in progress (it ends between files, nothing
    half-saved), instead of raising KeyboardInterrupt wherever the program happens to be (inside
    watchdog's locks, a database transaction, a pool's shutdown). A second Ctrl+C interrupts at
    once. Returns the handler to put back, or None off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        stop.set()
        cancel.cancel()

    signal.signal(signal.SIGINT, handler)
    return previous


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

    previous = _stop_on_ctrl_c(stop, cancel)
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
    except KeyboardInterrupt:  # a second Ctrl+C, or the first one off the main thread
        cancel.cancel()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
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

"""What every ``musicsim`` command shares: the command record, printing, the progress bar,
opening the library, and the mapping of musicsim's errors to exit codes (the one place).

Exit codes: 0 ok, 1 some files failed (or another error), 2 usage error / nothing matched, 130 interrupted.

This module imports none of the command modules: they import it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from musicsim.config import SETTINGS, Config
from musicsim.errors import MusicsimError, NotFound
from musicsim.jobs import Progress

if TYPE_CHECKING:  # the facade loads numpy and SQLAlchemy: `musicsim --help` stays fast without them
    from musicsim.library import Library
    from musicsim.store.schema import Track


def no_arguments(parser: argparse.ArgumentParser) -> None:
    """The parser set-up of a command that takes no arguments of its own."""


@dataclass(frozen=True)
class Command:
    """One subcommand over an open library.

    ``run(lib, args)`` returns the exit code: every command has this one signature. The library is
    opened (and closed) around it by :func:`execute`, writable when ``writes`` says so.

    Parameters
    ----------
    name, help
        The subcommand and its one-line help.
    run
        ``(lib: Library, args: argparse.Namespace) -> int``.
    arguments
        Adds the command's arguments to its parser.
    writes
        Whether the command changes the library, or a function of the arguments where that depends on them.
    check
        What argparse cannot express, checked before the library opens: returns a usage error's message, or None.
    warn_untrained
        Print the untrained-model warning (to stderr) before the command runs.
    """

    name: str
    help: str
    run: Callable[[Library, argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] = no_arguments
    writes: bool | Callable[[argparse.Namespace], bool] = False
    check: Callable[[argparse.Namespace], str | None] | None = None
    warn_untrained: bool = False

    def writable(self, args: argparse.Namespace) -> bool:
        return self.writes(args) if callable(self.writes) else self.writes


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


# --- printing ----------------------------------------------------------------------------------


def printable(text: Any) -> str:
    """One line whatever a file name holds: control characters (newlines too) are escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def label(track: Track) -> str:
    """``artist - title`` of a track (its file name without a title), printable on one line."""
    who = f"{track.artist} - " if track.artist else ""
    return printable(f"{who}{track.title or os.path.basename(track.path)}")


def eprint(message: str) -> None:
    """Print to stderr: notes, warnings and errors, apart from the results on stdout."""
    print(message, file=sys.stderr)


class Bar:
    """A one-line progress bar on a terminal; silent when output is piped."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and p.done < p.total):
            return
        self.last = now
        width = 24
        fill = int(width * p.fraction)
        eta = f" ETA {int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}" if p.eta_s is not None else ""
        line = f"\r{p.stage} [{'#' * fill}{'-' * (width - fill)}] {p.done}/{p.total}{eta} {p.current[:40]}"
        self.stream.write(line.ljust(100)[:100])
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


# --- opening the library and running a command -------------------------------------------------


def open_library(args: argparse.Namespace, *, writable: bool) -> Library:
    """The library of ``--db`` (or the default one) with the settings given on the command line."""
    from musicsim.library import Library

    overrides = {s.name: getattr(args, s.name, None) for s in SETTINGS}
    return Library(args.db, config=Config.load(overrides), writable=writable)


def execute(command: Command, args: argparse.Namespace) -> int:
    """Run ``command``; musicsim's errors become one line on stderr and an exit code (the one place they are mapped)."""
    try:
        return _run(command, args)
    except NotFound as e:
        eprint(f"musicsim: {e}")
        return 2
    except MusicsimError as e:
        eprint(f"musicsim: error: {e}")
        return 1
    except KeyboardInterrupt:
        eprint("\nmusicsim: interrupted; finished tracks are saved")
        return 130
    except OSError as e:  # disk full, read-only folder, permissions
        where = f"{printable(e.filename)}: " if getattr(e, "filename", None) else ""
        eprint(f"musicsim: error: {where}{e.strerror or e}")
        return 1
    except Exception as e:
        import sqlite3

        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(e, (SQLAlchemyError, sqlite3.Error)):
            raise
        cause = getattr(e, "orig", None) or e
        eprint(f"musicsim: error: library database: {' '.join(str(cause).split())}")
        return 1


def _run(command: Command, args: argparse.Namespace) -> int:
    problem = command.check(args) if command.check else None
    if problem:
        eprint(f"musicsim: {problem}")
        return 2
    with open_library(args, writable=command.writable(args)) as lib:
        if command.warn_untrained and not lib.trained:
            eprint(f"warning: {lib.status()['warning']}")
        return command.run(lib, args)

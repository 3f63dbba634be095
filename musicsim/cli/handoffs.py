"""The two subcommands that hand the process over instead of running over a library opened here.

``gui`` starts the desktop app, which opens its library itself (on a worker thread, for as long as
it runs); ``evaluate`` is the trainer's evaluation of a labelled folder, with its own options, and
needs no library. :func:`musicsim.cli.main` dispatches to them before any library opens.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from musicsim.cli.common import no_arguments


@dataclass(frozen=True)
class Handoff:
    """The parser entry of a hand-off: ``add_help=False`` where the program parses its own options."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None] = no_arguments
    add_help: bool = True


def _gui_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folders", nargs="*", metavar="FOLDER", help="folders to add and scan")


def gui(args: argparse.Namespace) -> int:
    """Run the desktop app (what ``musicsim`` alone does) until its window closes."""
    from musicsim.gui.app import run

    return run(list(getattr(args, "folders", []) or []), db_path=args.db)


def evaluate(argv: list[str]) -> int:
    """``musicsim evaluate ARGS`` is ``python -m trainer.evaluate ARGS``."""
    from trainer.evaluate import main

    return main(argv)


GUI = Handoff("gui", "open the desktop app (also what `musicsim` alone does)", _gui_arguments)
EVALUATE = Handoff(
    "evaluate",
    "how well embeddings group a labelled folder (sub-folders = labels), beside MFCC and "
    "untrained baselines; `musicsim evaluate --help` for options",
    add_help=False,
)

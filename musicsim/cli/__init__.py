"""``musicsim`` command line: parse, open the library as the command needs, run the command, print.

Every command over the library is a :class:`~musicsim.cli.common.Command`: a function
``(lib: Library, args: argparse.Namespace) -> int`` (the exit code) with its parser set-up and
whether it writes. The modules beside this one hold them by group: ``library`` (scan, status,
failures, purge), ``search`` (similar, export), ``models`` (model list/use) and ``organizing``
(playlist, sort, path, clusters, outliers, duplicates). ``gui`` and ``evaluate`` hand the process
to the app and to the trainer's evaluation (``handoffs``). ``common`` holds what they share,
including the one mapping of musicsim's errors to exit codes:

0 ok, 1 some files failed (or another error), 2 usage error / nothing matched, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from musicsim import __version__
from musicsim.cli import desktop, handoffs, library, models, organizing, play, search, watch
from musicsim.cli.common import Command, execute
from musicsim.cli.handoffs import Handoff
from musicsim.config import SETTINGS

# In the order of `musicsim --help`.
SUBCOMMANDS: tuple[Command | Handoff, ...] = (
    library.SCAN,
    handoffs.GUI,
    library.STATUS,
    search.SIMILAR,
    search.SHOW,
    search.EXPORT,
    library.FAILURES,
    library.PURGE,
    handoffs.EVALUATE,
    models.MODEL,
    *organizing.COMMANDS,
    watch.WATCH,
    play.PLAY,
    desktop.INSTALL_DESKTOP,
)
COMMANDS: dict[str, Command] = {c.name: c for c in SUBCOMMANDS if isinstance(c, Command)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="musicsim", description="Organise a music library by how it sounds.")
    p.add_argument("--version", action="version", version=f"musicsim {__version__}")
    p.add_argument("--db", help="library database file (default: in the user data dir; MUSICSIM_HOME overrides)")
    for s in SETTINGS:
        if s.type is bool:
            p.add_argument(s.flag, dest=s.name, action=argparse.BooleanOptionalAction, default=None, help=s.help)
        else:
            kw: dict[str, Any] = {"choices": s.choices} if s.choices else {}
            p.add_argument(
                s.flag, dest=s.name, type=s.type, default=None, help=f"{s.help} (default: {s.default!r})", **kw
            )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for c in SUBCOMMANDS:
        add_help = c.add_help if isinstance(c, Handoff) else True
        c.arguments(sub.add_parser(c.name, help=c.help, add_help=add_help))
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: idle threads leave the cores
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [handoffs.EVALUATE.name]:  # the trainer's evaluation parses its own options
        return handoffs.evaluate(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command in (None, handoffs.GUI.name):
        return handoffs.gui(args)
    if args.command == desktop.INSTALL_DESKTOP.name:
        return desktop.run(args)
    return execute(COMMANDS[args.command], args)

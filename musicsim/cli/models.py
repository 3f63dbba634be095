"""``musicsim model list`` and ``musicsim model use NAME``: the library's models."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from musicsim.cli.common import Command

if TYPE_CHECKING:
    from musicsim.library import Library


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "use"))
    p.add_argument("name", nargs="?")


def _check(args: argparse.Namespace) -> str | None:
    if args.action == "use" and not args.name:
        return "model use needs a NAME (see `musicsim model list`)"
    return None


def model(lib: Library, args: argparse.Namespace) -> int:
    if args.action == "list":
        for name, trained, active in lib.models():
            print(f"{'*' if active else ' '} {name}{'' if trained else '  (untrained)'}")
        return 0
    todo = lib.use_model(args.name)
    print(f"active model: {args.name}")
    if todo:
        print(f"{todo} tracks have no embedding from this model yet: run `musicsim scan` on your folders")
    return 0


MODEL = Command(
    "model",
    "list the library's models or choose the active one",
    model,
    _arguments,
    writes=lambda args: args.action == "use",
    check=_check,
)

"""``python -m trainer``: train or fine-tune the embedding model (``torchrun ... -m trainer`` for DDP).

With folders it trains on them alone; with ``--db``, or with nothing at all (the default library),
it runs in library mode, the only place the trainer reaches a library: the library side
(:mod:`musicsim.library.finetune`) collects the tracks, then re-embeds the library and activates
the new model."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

# OpenMP threads that spin while waiting burn the CPU other processes need; on a shared or
# busy machine that made training ~5x slower here. Set before torch loads; override freely.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from trainer.arguments import build_parser, options_from_args
from trainer.options import TrainOptions, TrainResult
from trainer.setup import find_resume, resumed_options
from trainer.train import train

__all__ = ["build_parser", "main", "options_from_args"]


class _Bar:
    """A one-line progress display for a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, p) -> None:
        if not self.tty:
            return
        pct = f"{100 * p.fraction:5.1f}%" if p.total else ""
        eta = f" eta {p.eta_s / 60:.1f} min" if p.eta_s else ""
        loss = f" loss {p.info['loss']:.4f}" if p.info.get("loss") is not None else ""
        line = f"\r{p.stage:<9} {p.done}/{p.total or '?'} {pct}{loss}{eta} {p.current[:40]}"
        sys.stderr.write(line.ljust(len(self.last)))
        sys.stderr.flush()
        self.last = line


def library_db(opts: TrainOptions) -> str | None:
    """The library a run trains on and re-embeds: ``--db``; with ``--resume``, the resumed run's
    (``opts.resume`` is then the checkpoint's path); with no folders, the default library."""
    from musicsim import paths
    from musicsim.errors import NotFound

    if opts.db:
        return opts.db
    if opts.resume:
        return resumed_options(opts)[0].db
    if opts.folders:
        return None
    db = paths.default_db()
    if not db.exists():
        raise NotFound(f"no library at {db}: scan your music first (musicsim scan FOLDER), or give folders or --db")
    return str(db)


def newest_run(opts: TrainOptions) -> Path:
    """The checkpoint ``--resume`` continues. ``--resume`` alone (no folders, --db or --out)
    takes the newest interrupted run of folders or of the default library."""
    from musicsim import paths
    from musicsim.errors import CheckpointError

    if opts.resume != "latest" or opts.db or opts.folders or opts.out:
        return find_resume(opts)
    found = []
    for where in (opts, replace(opts, db=str(paths.default_db()))):
        with contextlib.suppress(CheckpointError):
            found.append(find_resume(where))
    if not found:
        return find_resume(opts)  # says where it looked
    return max(found, key=lambda p: p.stat().st_mtime)


def run(opts: TrainOptions, progress) -> TrainResult:
    """Train on folders (the trainer alone), or on a library (its library mode: the library side
    collects the tracks, then re-embeds the library and activates the new model)."""
    if opts.resume:
        opts = replace(opts, resume=str(newest_run(opts)))
    db = library_db(opts)
    if db is None:
        return train(opts, progress=progress)
    from musicsim.library import Library
    from musicsim.library.finetune import finetune

    main = int(os.environ.get("RANK", "0")) == 0  # the first process re-embeds; the others only read
    with Library(db, writable=main and opts.reembed) as lib:
        return finetune(lib, replace(opts, db=db), progress=progress)


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    level = logging.WARNING if (a.quiet or rank != 0) else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stdout)
    from musicsim.errors import MusicsimError

    try:
        res = run(options_from_args(a, argv), _Bar() if rank == 0 and not a.quiet else None)
    except KeyboardInterrupt:
        print("\ninterrupted: continue with --resume", file=sys.stderr)
        return 130
    except (MusicsimError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if rank == 0:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        print(res.summary)
        if res.model_id is not None:
            state = "is now active" if res.activated else "stays selectable but inactive"
            print(f"re-embedded {res.reembedded} tracks; model '{res.name}' {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

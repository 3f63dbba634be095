"""``musicsim`` command line: parse -> services -> print.

Exit codes: 0 ok, 1 some files failed (or another error), 2 usage error / nothing matched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from musicsim import __version__
from musicsim.config import SETTINGS, Config
from musicsim.errors import MusicsimError, NotFound
from musicsim.jobs import CancelToken, Progress


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="musicsim", description="Organise a music library by how it sounds.")
    p.add_argument("--version", action="version", version=f"musicsim {__version__}")
    p.add_argument("--db", help="library database file (default: in the user data dir; MUSICSIM_HOME overrides)")
    for s in SETTINGS:
        kw = {"choices": s.choices} if s.choices else {}
        if s.type is bool:
            p.add_argument(s.flag, dest=s.name, action=argparse.BooleanOptionalAction, default=None, help=s.help)
        else:
            p.add_argument(s.flag, dest=s.name, type=s.type, default=None, help=f"{s.help} (default: {s.default!r})", **kw)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sc = sub.add_parser("scan", help="add folders or files to the library and analyse new or changed music")
    sc.add_argument("paths", nargs="+", metavar="PATH")
    sc.add_argument("--retry-failed", action="store_true", help="try again files that failed before")
    gui = sub.add_parser("gui", help="open the desktop app (also what `musicsim` alone does)")
    gui.add_argument("folders", nargs="*", metavar="FOLDER", help="folders to add and scan")
    sub.add_parser("status", help="library size, active model, failures")
    si = sub.add_parser("similar", help="tracks that sound like QUERY (a path, a track id, or title/artist words)")
    si.add_argument("query")
    si.add_argument("-n", type=int, default=10, help="how many (default 10)")
    si.add_argument("--json", action="store_true", help="machine-readable output")
    ex = sub.add_parser("export", help="write every track's embedding to a file")
    ex.add_argument("--out", required=True)
    ex.add_argument("--format", choices=("npz", "csv"), default=None, help="default: from the file extension")
    sub.add_parser("failures", help="files that could not be analysed, with the reason")
    sub.add_parser("purge", help="forget tracks whose files are gone, and cached log-Mel frames of files gone or changed")
    sub.add_parser("evaluate", add_help=False,
                   help="how well embeddings group a labelled folder (sub-folders = labels), beside MFCC and "
                        "untrained baselines; `musicsim evaluate --help` for options")
    mo = sub.add_parser("model", help="list the library's models or choose the active one")
    mo.add_argument("action", choices=("list", "use"))
    mo.add_argument("name", nargs="?")
    from musicsim.cli_organize import add_commands

    add_commands(sub)
    return p


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


def open_library(args, *, writable: bool):
    from musicsim.library import Library

    overrides = {s.name: getattr(args, s.name, None) for s in SETTINGS}
    return Library(args.db, config=Config.load(overrides), writable=writable)


def cmd_scan(args) -> int:
    bar, cancel = Bar(), CancelToken()
    with open_library(args, writable=True) as lib:
        if not lib.trained:
            print(f"note: {lib.status()['warning']}", file=sys.stderr)
        try:
            rep = lib.scan(args.paths, progress=bar, cancel=cancel, retry_failed=args.retry_failed)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        finally:
            bar.close()
    speed = f", {rep.audio_seconds / rep.seconds:.0f}x real time" if rep.analysed and rep.seconds else ""
    print(f"found {rep.found}, analysed {rep.analysed}, unchanged {rep.skipped}, failed {rep.failed}, "
          f"missing {rep.missing} in {rep.seconds:.1f} s{speed}")
    for path, reason in rep.failures:
        print(f"  failed: {printable(path)}: {reason}")
    if rep.cancelled:
        print("scan cancelled; run it again to resume")
    return 1 if rep.failed or rep.failures else 0


def cmd_status(args) -> int:
    with open_library(args, writable=False) as lib:
        st = lib.status()
    print(f"database: {st['database']}")
    print(f"model:    {st['model']} ({'trained' if st['trained'] else 'UNTRAINED'}, {st['checksum']})")
    print(f"tracks:   {st['tracks']} analysed, {st['indexed']} indexed, {st['failed']} failed, {st['missing']} missing")
    if st["degraded"]:
        print(f"degraded: {st['degraded']} MIDI tracks rendered without FluidSynth (install libfluidsynth3 and re-scan)")
    for r in st["roots"]:
        print(f"folder:   {printable(r)}")
    if st["warning"]:
        print(f"warning:  {st['warning']}")
    return 0


def _label(t) -> str:
    who = f"{t.artist} - " if t.artist else ""
    return f"{who}{t.title or os.path.basename(t.path)}"


def cmd_similar(args) -> int:
    with open_library(args, writable=False) as lib:
        matches = lib.resolve(args.query)
        seed = matches[0]
        hits = lib.similar(seed.id, args.n)
        warning = None if lib.trained else lib.status()["warning"]
    if args.json:
        print(json.dumps({"seed": {"id": seed.id, "path": seed.path}, "untrained": warning is not None,
                          "results": [{"id": h.track.id, "path": h.track.path, "distance": round(h.distance, 6)} for h in hits]}))
        return 0
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if len(matches) > 1:
        print(f"({len(matches)} tracks match '{args.query}'; using the first)", file=sys.stderr)
    print(f"similar to [{seed.id}] {_label(seed)}")
    for rank, h in enumerate(hits, 1):
        print(f"{rank:3d}. {h.distance:.4f}  [{h.track.id}] {printable(_label(h.track))}  ({printable(h.track.path)})")
    return 0


def cmd_export(args) -> int:
    fmt = args.format or ("csv" if args.out.lower().endswith(".csv") else "npz")
    with open_library(args, writable=False) as lib:
        n = lib.export(args.out, fmt=fmt)
    print(f"wrote {n} tracks to {args.out}")
    return 0


def cmd_failures(args) -> int:
    with open_library(args, writable=False) as lib:
        rows = lib.failures()
    for f in rows:
        print(f"{printable(f.path)}: {f.reason}")
    if not rows:
        print("no failures")
    return 0


def cmd_purge(args) -> int:
    with open_library(args, writable=True) as lib:
        n = lib.purge()
        removed, freed = lib.prune_mel_cache()
    print(f"purged {n} missing tracks; removed {removed} stale log-Mel cache entries ({freed / 2**20:.1f} MB)")
    return 0


def cmd_model(args) -> int:
    if args.action == "list":
        with open_library(args, writable=False) as lib:
            for name, trained, active in lib.models():
                print(f"{'*' if active else ' '} {name}{'' if trained else '  (untrained)'}")
        return 0
    if not args.name:
        print("musicsim: model use needs a NAME (see `musicsim model list`)", file=sys.stderr)
        return 2
    with open_library(args, writable=True) as lib:
        todo = lib.use_model(args.name)
    print(f"active model: {args.name}")
    if todo:
        print(f"{todo} tracks have no embedding from this model yet: run `musicsim scan` on your folders")
    return 0


COMMANDS = {"model": cmd_model, "scan": cmd_scan, "status": cmd_status, "similar": cmd_similar, "export": cmd_export,
            "failures": cmd_failures, "purge": cmd_purge}


from musicsim.cli_organize import COMMANDS as ORGANIZE  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: idle threads leave the cores
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["evaluate"]:  # the trainer's evaluation, with its own options
        from trainer.evaluate import main as evaluate

        return evaluate(argv[1:])
    args = parser.parse_args(argv)
    if args.command in (None, "gui"):
        from musicsim.gui.app import run

        return run(list(getattr(args, "folders", []) or []), db_path=args.db)
    try:
        if args.command in ORGANIZE:
            func, writes = ORGANIZE[args.command]
            with open_library(args, writable=writes) as lib:
                if not lib.trained:
                    print(f"warning: {lib.status()['warning']}", file=sys.stderr)
                return func(lib, args)
        return COMMANDS[args.command](args)
    except NotFound as e:
        print(f"musicsim: {e}", file=sys.stderr)
        return 2
    except MusicsimError as e:
        print(f"musicsim: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nmusicsim: interrupted; finished tracks are saved", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, read-only folder, permissions
        where = f"{printable(e.filename)}: " if getattr(e, "filename", None) else ""
        print(f"musicsim: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:
        import sqlite3

        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(e, (SQLAlchemyError, sqlite3.Error)):
            raise
        cause = getattr(e, "orig", None) or e
        print(f"musicsim: error: library database: {' '.join(str(cause).split())}", file=sys.stderr)
        return 1


def printable(text) -> str:
    """One line whatever a file name holds: control characters (newlines too) are escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))

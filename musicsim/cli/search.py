"""Commands that look tracks up: similar, show, export."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from musicsim.cli.common import Command, add_json, eprint, label, printable

if TYPE_CHECKING:
    from musicsim.library import Library


def _similar_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query")
    p.add_argument("-n", type=int, default=10, help="how many (default 10)")
    p.add_argument(
        "--explain",
        action="store_true",
        help="say why each track is similar: the parts of the sound that agree most, tempo, key, loudness",
    )
    add_json(p)


def similar(lib: Library, args: argparse.Namespace) -> int:
    matches = lib.resolve(args.query)
    seed = matches[0]
    hits = lib.similar(seed.id, args.n)
    warning = None if lib.trained else lib.status()["warning"]
    why = lib.organizer.explain_many(seed.id, [h.track.id for h in hits]) if args.explain and hits else {}
    if args.json:
        results = [{"id": h.track.id, "path": h.track.path, "distance": round(h.distance, 6)} for h in hits]
        for r in results:
            if r["id"] in why:
                r["why"] = {"shared": why[r["id"]].shared, "different": why[r["id"]].different}
        out = {"seed": {"id": seed.id, "path": seed.path}, "untrained": warning is not None, "results": results}
        print(json.dumps(out))
        return 0
    if warning:
        eprint(f"warning: {warning}")
    if len(matches) > 1:
        eprint(f"({len(matches)} tracks match '{args.query}'; using the first)")
    print(f"similar to [{seed.id}] {label(seed)}")
    for rank, h in enumerate(hits, 1):
        print(f"{rank:3d}. {h.distance:.4f}  [{h.track.id}] {label(h.track)}  ({printable(h.track.path)})")
        if h.track.id in why:
            print(f"       {why[h.track.id].text}")
    return 0


def _show_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="a path, a track id, or title/artist words")
    add_json(p)


def show(lib: Library, args: argparse.Namespace) -> int:
    """A track's tags and its musical descriptors (tempo, key, loudness, brightness, texture)."""
    from musicsim.organize.words import describe_values

    track = lib.resolve(args.query)[0]
    desc = lib.organizer.descriptors([track.id]).get(track.id)
    tags = {k: getattr(track, k) for k in ("title", "artist", "album", "genre", "year", "duration")}
    if args.json:
        print(json.dumps({"id": track.id, "path": track.path, **tags, "descriptors": desc}))
        return 0
    print(f"[{track.id}] {label(track)}")
    print(f"  path: {printable(track.path)}")
    for k, v in tags.items():
        if v is not None:
            print(f"  {k}: {round(v, 1) if isinstance(v, float) else v}")
    if desc is None:
        print("  descriptors: not yet computed (the next scan analyses the track again)")
    for name, text in describe_values(desc or {}).items():
        print(f"  {name}: {text}")
    return 0


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=("npz", "csv"), default=None, help="default: from the file extension")


def export(lib: Library, args: argparse.Namespace) -> int:
    fmt = args.format or ("csv" if args.out.lower().endswith(".csv") else "npz")
    n = lib.export(args.out, fmt=fmt)
    print(f"wrote {n} tracks to {args.out}")
    return 0


SIMILAR = Command(
    "similar", "tracks that sound like QUERY (a path, a track id, or title/artist words)", similar, _similar_arguments
)
SHOW = Command("show", "a track's tags and musical descriptors (tempo, key, loudness, ...)", show, _show_arguments)
EXPORT = Command("export", "write every track's embedding to a file", export, _export_arguments)

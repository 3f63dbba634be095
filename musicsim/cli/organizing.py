"""Commands that organise by sound: playlist, sort, path, clusters, outliers, duplicates.

Each warns (on stderr) before it runs when the active model is untrained.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from musicsim.cli.common import Command, add_json, eprint, label, printable
from musicsim.errors import NotFound

if TYPE_CHECKING:
    from musicsim.library import Library
    from musicsim.store.schema import Track


def _one(lib: Library, query: str) -> int:
    return lib.resolve(query)[0].id


def _tracks(lib: Library, ids: list[int]) -> dict[int, Track]:
    wanted = set(ids)
    return {t.id: t for t in lib.tracks() if t.id in wanted}


def _print_list(
    lib: Library, ids: list[int], args: argparse.Namespace, extra: dict | None = None, dists: dict | None = None
) -> None:
    tracks = _tracks(lib, ids)
    if args.json:
        rows = [{"id": i, "path": tracks[i].path, **({"distance": dists[i]} if dists else {})} for i in ids]
        print(json.dumps({**(extra or {}), "tracks": rows}))
        return
    for rank, i in enumerate(ids, 1):
        d = f"{dists[i]:.4f}  " if dists else ""
        print(f"{rank:3d}. {d}[{i}] {label(tracks[i])}")
    for k, v in (extra or {}).items():
        print(f"{k}: {v}")


def _write(lib: Library, ids: list[int], out: str | None, relative: bool = False) -> None:
    if out:
        from musicsim.library.organizing import write_playlist

        tracks = _tracks(lib, ids)
        n = write_playlist([tracks[i] for i in ids], out, relative=relative)
        eprint(f"wrote {n} tracks to {out}")


# --- playlist ------------------------------------------------------------------------------------


def _playlist_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", action="append", required=True, metavar="Q", help="path, id or words; repeat for several")
    p.add_argument("-n", type=int, default=30, help="playlist length (default 30)")
    p.add_argument("--mode", choices=("mean", "best"), default="mean", help="several seeds: mean or best similarity")
    p.add_argument("--no-same-artist", type=int, default=0, metavar="K", help="no artist twice within K places")
    p.add_argument("--no-same-album", action="store_true", help="no two tracks of one album (seeds' albums too)")
    p.add_argument("--exclude", action="append", default=[], metavar="Q", help="tracks never to include")
    p.add_argument("--smooth", action="store_true", help="order for smooth transitions")
    p.add_argument(
        "--dj",
        action="store_true",
        help="with --smooth: also keep tempi within 6 %% and keys that mix (Camelot: same, relative, a fifth)",
    )
    p.add_argument("--name", help="name stored in the library")
    p.add_argument("--out", help="write .m3u8 or .xspf")
    p.add_argument("--relative", action="store_true", help="M3U8 paths relative to the playlist file")
    add_json(p)


def playlist(lib: Library, args: argparse.Namespace) -> int:
    seeds = [_one(lib, q) for q in args.seed]
    exclude = [_one(lib, q) for q in args.exclude]
    info = lib.organizer.playlist(
        seeds,
        n=args.n,
        mode=args.mode,
        no_same_artist=args.no_same_artist,
        no_same_album=args.no_same_album,
        exclude=exclude,
        smooth=args.smooth or args.dj,
        dj=args.dj,
        name=args.name,
    )
    _print_list(lib, info.track_ids, args, {"playlist": info.name, "id": info.id})
    _write(lib, info.track_ids, args.out, args.relative)
    return 0


# --- sort and path -------------------------------------------------------------------------------


def _sort_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("playlist", help=".m3u/.m3u8/.xspf of library tracks")
    p.add_argument("--seed", help="sort by similarity to this track instead")
    p.add_argument(
        "--dj",
        action="store_true",
        help="smooth order that also keeps tempi within 6 %% and keys that mix (Camelot wheel)",
    )
    p.add_argument("--out", required=True)
    add_json(p)


def sort(lib: Library, args: argparse.Namespace) -> int:
    from musicsim.organize.playlists import read_m3u, read_xspf

    entries = read_xspf(args.playlist) if args.playlist.lower().endswith(".xspf") else read_m3u(args.playlist)
    by_path = {t.path: t.id for t in lib.tracks()}
    ids: list[int] = []
    unknown: list[str] = []
    for entry in entries:
        tid = by_path.get(os.path.abspath(str(entry)))
        if tid is None:
            unknown.append(str(entry))
        else:
            ids.append(tid)
    for missing in unknown:
        eprint(f"not in the library, left out: {missing}")
    if not ids:
        raise NotFound(f"no track of {args.playlist} is in the library")
    dists: dict[int, float] | None = None
    stats: dict[str, float] = {}
    if args.seed:
        ranked = lib.organizer.sort(ids, _one(lib, args.seed))
        ids, dists = [i for i, _ in ranked], dict(ranked)
    else:
        ids, stats = lib.organizer.smooth(ids, dj=args.dj)
    _print_list(lib, ids, args, {k: round(v, 4) for k, v in stats.items()}, dists)
    _write(lib, ids, args.out)
    return 1 if unknown else 0


def _path_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("-n", type=int, default=10, help="number of tracks, A and B included")
    p.add_argument("--out")
    add_json(p)


def path(lib: Library, args: argparse.Namespace) -> int:
    ids = lib.organizer.path(_one(lib, args.a), _one(lib, args.b), steps=args.n)
    _print_list(lib, ids, args)
    _write(lib, ids, args.out)
    return 0


# --- the whole library: clusters, outliers, duplicates -------------------------------------------


def _clusters_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-k", type=int, default=None, help="compute the groups again and show this many")
    p.add_argument(
        "--level",
        type=int,
        default=None,
        metavar="K",
        help="show the hierarchy's level of K groups (2 to about the square root of the track count); "
        "instant once the groups are computed",
    )
    add_json(p)


def clusters(lib: Library, args: argparse.Namespace) -> int:
    if args.level is not None and args.k is None:
        summary = lib.organizer.show_level(args.level)
    else:
        summary = lib.organizer.clusters(args.k)
    if args.json:
        rows = [{"id": c, "name": summary.names[c], "size": summary.sizes[c]} for c in sorted(summary.sizes)]
        out = {"k": summary.k, "level": summary.level, "levels": list(summary.levels), "default": summary.default}
        print(json.dumps({**out, "clusters": rows}))
        return 0
    lo, hi = (summary.levels[0], summary.levels[-1]) if summary.levels else (summary.k, summary.k)
    print(
        f"{summary.k} clusters (level {summary.level} of {lo}-{hi}; default {summary.default}; --level K for another)"
    )
    for c in sorted(summary.sizes, key=lambda c: -summary.sizes[c]):
        print(f"  {c:3d}  {summary.sizes[c]:6d} tracks  {summary.names[c]}")
    return 0


def _outliers_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", type=int, default=20)
    add_json(p)


def outliers(lib: Library, args: argparse.Namespace) -> int:
    rows = lib.organizer.outliers(args.n)
    if args.json:
        print(json.dumps([{"id": t.id, "path": t.path, "score": s, "reason": r} for t, s, r in rows]))
        return 0
    for rank, (t, s, r) in enumerate(rows, 1):
        why = r.get("why") or (
            f"{r.get('centroid_distance', 0):.3f} from the centre of '{r.get('cluster_name')}' "
            f"(spread {r.get('cluster_spread', 0):.3f}); nearest neighbours {r.get('knn_distance', 0):.3f} away"
        )
        print(f"{rank:3d}. {s:6.2f}  [{t.id}] {label(t)}: {why}")
    return 0


def _duplicates_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine distance below which tracks match (default: a tenth of the median "
        "distance between two tracks of the library)",
    )
    add_json(p)


def duplicates(lib: Library, args: argparse.Namespace) -> int:
    pairs = lib.organizer.duplicates(threshold=args.threshold)
    if args.json:
        print(json.dumps([{"a": a.path, "b": b.path, "distance": d} for a, b, d in pairs]))
        return 0
    for a, b, d in pairs:
        print(f"{d:.4f}  {printable(a.path)}\n        {printable(b.path)}")
    if not pairs:
        print("no duplicates found")
    return 0


COMMANDS = (
    Command(
        "playlist",
        "a playlist of tracks that sound like the seed(s)",
        playlist,
        _playlist_arguments,
        writes=True,
        warn_untrained=True,
    ),
    Command(
        "sort",
        "order a playlist file for smooth transitions (or by similarity to --seed)",
        sort,
        _sort_arguments,
        warn_untrained=True,
    ),
    Command("path", "take me from A to B in N steps", path, _path_arguments, warn_untrained=True),
    Command(
        "clusters",
        "group the library by sound (k chosen automatically unless -k)",
        clusters,
        _clusters_arguments,
        writes=True,
        warn_untrained=True,
    ),
    Command(
        "outliers",
        "tracks that do not fit the library, with the reason",
        outliers,
        _outliers_arguments,
        writes=True,
        warn_untrained=True,
    ),
    Command(
        "duplicates",
        "the same recording twice (near-identical sound, same duration)",
        duplicates,
        _duplicates_arguments,
        warn_untrained=True,
    ),
)

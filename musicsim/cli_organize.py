"""``musicsim`` commands for organising by sound: playlist, sort, path, clusters, outliers, duplicates."""

from __future__ import annotations

import json
import os
import sys

from musicsim.errors import NotFound


def add_commands(sub) -> None:
    pl = sub.add_parser("playlist", help="a playlist of tracks that sound like the seed(s)")
    pl.add_argument("--seed", action="append", required=True, metavar="Q", help="path, id or words; repeat for several")
    pl.add_argument("-n", type=int, default=30, help="playlist length (default 30)")
    pl.add_argument("--mode", choices=("mean", "best"), default="mean", help="several seeds: mean or best similarity")
    pl.add_argument("--no-same-artist", type=int, default=0, metavar="K", help="no artist twice within K places")
    pl.add_argument("--no-same-album", action="store_true", help="no two tracks of one album (seeds' albums too)")
    pl.add_argument("--exclude", action="append", default=[], metavar="Q", help="tracks never to include")
    pl.add_argument("--smooth", action="store_true", help="order for smooth transitions")
    pl.add_argument("--name", help="name stored in the library")
    pl.add_argument("--out", help="write .m3u8 or .xspf")
    pl.add_argument("--relative", action="store_true", help="M3U8 paths relative to the playlist file")
    _json(pl)
    so = sub.add_parser("sort", help="order a playlist file for smooth transitions (or by similarity to --seed)")
    so.add_argument("playlist", help=".m3u/.m3u8/.xspf of library tracks")
    so.add_argument("--seed", help="sort by similarity to this track instead")
    so.add_argument("--out", required=True)
    _json(so)
    pa = sub.add_parser("path", help="take me from A to B in N steps")
    pa.add_argument("a")
    pa.add_argument("b")
    pa.add_argument("-n", type=int, default=10, help="number of tracks, A and B included")
    pa.add_argument("--out")
    _json(pa)
    cl = sub.add_parser("clusters", help="group the library by sound (k chosen automatically unless -k)")
    cl.add_argument("-k", type=int, default=None)
    _json(cl)
    ou = sub.add_parser("outliers", help="tracks that do not fit the library, with the reason")
    ou.add_argument("-n", type=int, default=20)
    _json(ou)
    du = sub.add_parser("duplicates", help="the same recording twice (near-identical sound, same duration)")
    du.add_argument("--threshold", type=float, default=None,
                    help="cosine distance below which tracks match (default: a tenth of the median "
                         "distance between two tracks of the library)")
    _json(du)


def _json(p) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _one(lib, query: str) -> int:
    return lib.resolve(query)[0].id


def _label(t) -> str:
    from musicsim.cli import printable

    who = f"{t.artist} - " if t.artist else ""
    return printable(f"{who}{t.title or os.path.basename(t.path)}")


def _tracks(lib, ids: list[int]) -> dict:
    return {t.id: t for t in lib.tracks() if t.id in set(ids)}


def _print_list(lib, ids: list[int], args, extra: dict | None = None, dists: dict | None = None) -> None:
    tracks = _tracks(lib, ids)
    if args.json:
        out = {**(extra or {}), "tracks": [{"id": i, "path": tracks[i].path, **({"distance": dists[i]} if dists else {})}
                                           for i in ids]}
        print(json.dumps(out))
        return
    for rank, i in enumerate(ids, 1):
        d = f"{dists[i]:.4f}  " if dists else ""
        print(f"{rank:3d}. {d}[{i}] {_label(tracks[i])}")
    for k, v in (extra or {}).items():
        print(f"{k}: {v}")


def _write(lib, ids: list[int], out: str | None, relative: bool = False) -> None:
    if out:
        from musicsim.library.organizing import write_playlist

        tracks = _tracks(lib, ids)
        n = write_playlist([tracks[i] for i in ids], out, relative=relative)
        print(f"wrote {n} tracks to {out}", file=sys.stderr)


def cmd_playlist(lib, args) -> int:
    seeds = [_one(lib, q) for q in args.seed]
    exclude = [_one(lib, q) for q in args.exclude]
    info = lib.organizer.playlist(seeds, n=args.n, mode=args.mode, no_same_artist=args.no_same_artist,
                                 no_same_album=args.no_same_album, exclude=exclude, smooth=args.smooth, name=args.name)
    _print_list(lib, info.track_ids, args, {"playlist": info.name, "id": info.id})
    _write(lib, info.track_ids, args.out, args.relative)
    return 0


def cmd_sort(lib, args) -> int:
    from musicsim.organize.playlists import read_m3u, read_xspf

    entries = read_xspf(args.playlist) if args.playlist.lower().endswith(".xspf") else read_m3u(args.playlist)
    by_path = {t.path: t.id for t in lib.tracks()}
    ids, unknown = [], []
    for p in entries:
        tid = by_path.get(os.path.abspath(str(p)))
        (ids.append(tid) if tid is not None else unknown.append(str(p)))
    for p in unknown:
        print(f"not in the library, left out: {p}", file=sys.stderr)
    if not ids:
        raise NotFound(f"no track of {args.playlist} is in the library")
    if args.seed:
        ranked = lib.organizer.sort(ids, _one(lib, args.seed))
        ids, dists, stats = [i for i, _ in ranked], dict(ranked), {}
    else:
        ids, stats = lib.organizer.smooth(ids)
        dists = None
    extra = {k: round(v, 4) for k, v in stats.items()}
    _print_list(lib, ids, args, extra, dists)
    _write(lib, ids, args.out)
    return 1 if unknown else 0


def cmd_path(lib, args) -> int:
    ids = lib.organizer.path(_one(lib, args.a), _one(lib, args.b), steps=args.n)
    _print_list(lib, ids, args)
    _write(lib, ids, args.out)
    return 0


def cmd_clusters(lib, args) -> int:
    summary = lib.organizer.clusters(args.k)
    if args.json:
        print(json.dumps({"k": summary.k, "clusters": [{"id": c, "name": summary.names[c], "size": summary.sizes[c]}
                                                       for c in sorted(summary.sizes)]}))
        return 0
    print(f"{summary.k} clusters")
    for c in sorted(summary.sizes, key=lambda c: -summary.sizes[c]):
        print(f"  {c:3d}  {summary.sizes[c]:6d} tracks  {summary.names[c]}")
    return 0


def cmd_outliers(lib, args) -> int:
    rows = lib.organizer.outliers(args.n)
    if args.json:
        print(json.dumps([{"id": t.id, "path": t.path, "score": s, "reason": r} for t, s, r in rows]))
        return 0
    for rank, (t, s, r) in enumerate(rows, 1):
        why = (f"{r.get('centroid_distance', 0):.3f} from the centre of '{r.get('cluster_name')}' "
               f"(spread {r.get('cluster_spread', 0):.3f}); nearest neighbours {r.get('knn_distance', 0):.3f} away")
        print(f"{rank:3d}. {s:6.2f}  [{t.id}] {_label(t)}: {why}")
    return 0


def cmd_duplicates(lib, args) -> int:
    pairs = lib.organizer.duplicates(threshold=args.threshold)
    if args.json:
        print(json.dumps([{"a": a.path, "b": b.path, "distance": d} for a, b, d in pairs]))
        return 0
    for a, b, d in pairs:
        from musicsim.cli import printable

        print(f"{d:.4f}  {printable(a.path)}\n        {printable(b.path)}")
    if not pairs:
        print("no duplicates found")
    return 0


COMMANDS = {"playlist": (cmd_playlist, True), "sort": (cmd_sort, False), "path": (cmd_path, False),
            "clusters": (cmd_clusters, True), "outliers": (cmd_outliers, True), "duplicates": (cmd_duplicates, False)}

"""``musicsim play``: a playlist or tracks in MPD (with an optional sound-alike radio) or the desktop's player."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from musicsim.cli.common import Command, eprint, label, printable
from musicsim.errors import NotFound

if TYPE_CHECKING:
    from musicsim.library import Library
    from musicsim.store.schema import Track


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tracks", nargs="*", metavar="TRACK", help="tracks by id, path or title/artist words")
    p.add_argument("--playlist", type=int, metavar="ID", help="a stored playlist (see `musicsim playlist`)")
    p.add_argument(
        "--mpd",
        nargs="?",
        const="",
        metavar="HOST:PORT",
        help="queue in MPD (default address: the player_mpd_address setting; a unix socket path works too)",
    )
    p.add_argument("--replace", action="store_true", help="clear MPD's queue first")
    p.add_argument("--radio", action="store_true", help="keep MPD's queue topped up with sound-alikes (Ctrl+C stops)")
    p.add_argument("--ahead", type=int, default=3, help="radio: tracks kept queued after the current one")
    p.add_argument("--no-same-artist", type=int, default=3, metavar="K", help="radio: no artist again within K")


def _check(args: argparse.Namespace) -> str | None:
    if args.radio and args.mpd is None:
        return "--radio plays in MPD: add --mpd"
    if not (args.tracks or args.playlist is not None or args.radio):
        return "name tracks or --playlist ID"
    return None


def _tracks(lib: Library, args: argparse.Namespace) -> tuple[list[Track], str]:
    if args.playlist is not None:
        names = {pid: name for pid, name, _ in lib.organizer.playlists()}
        if args.playlist not in names:
            raise NotFound(f"no playlist with id {args.playlist}")
        return lib.organizer.playlist_tracks(args.playlist), names[args.playlist]
    tracks = [lib.resolve(q)[0] for q in args.tracks]
    return tracks, label(tracks[0]) if tracks else "musicsim"


def play(lib: Library, args: argparse.Namespace) -> int:
    from musicsim.library import players

    tracks, name = _tracks(lib, args)
    if args.mpd is None:
        out = players.open_in_player(tracks, name=name, command=lib.config.player_command)
        print(f"opened {len(tracks)} track(s) in the default player: {printable(out)}")
        return 0
    address = args.mpd or lib.config.player_mpd_address
    client = players.connect(address)
    try:
        with players.mpd_errors(address):
            root = players.music_dir(client, lib.config.player_mpd_music_dir)
            rep = players.queue(client, [t.path for t in tracks], root, replace=args.replace)
        print(f"queued {rep.added} of {len(tracks)} track(s) in MPD")
        for p in rep.outside:
            eprint(f"  not under MPD's music directory ({printable(root)}): {printable(p)}")
        for p in rep.unknown:
            eprint(f"  MPD does not know this file (not in its database): {printable(p)}")
        if args.radio:
            radio = players.Radio(lib, client, root, ahead=args.ahead, no_same_artist=args.no_same_artist)
            print("sound-alike radio on; Ctrl+C stops", flush=True)
            try:
                radio.run(lambda: False)
            except KeyboardInterrupt:
                print("radio stopped; MPD keeps playing its queue")
        return 0 if rep.added or not tracks else 1
    finally:
        players.disconnect(client)


PLAY = Command(
    "play",
    "play tracks or a playlist in MPD (--mpd, optionally as a sound-alike --radio) or the desktop's player",
    play,
    _arguments,
    check=_check,
)

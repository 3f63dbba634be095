"""Playing library tracks where people listen: MPD (python-mpd2) and the desktop's default player.

MPD names songs relative to its music directory, so a track is queued by its path relative to
that directory as this machine sees it (``Config.player_mpd_music_dir``; empty: asked of MPD, which
answers only on a local socket); tracks outside it are reported, never guessed. The
sound-alike :class:`Radio` keeps MPD's queue a few tracks ahead of what is playing, choosing by
the library's ranking (``Organizer.rank``) under the playlist rules: no track twice, no artist
again within ``no_same_artist`` tracks. :func:`open_in_player` writes an M3U8 and hands it to
the desktop (xdg-open, open, or the Windows shell), or to ``Config.player_command``.
Pure Python, no Qt: the CLI (``musicsim play``) and the app both call these.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicsim import paths
from musicsim.errors import MusicsimError

if TYPE_CHECKING:
    from musicsim.library.facade import Library
    from musicsim.store.schema import Track


class PlayerError(MusicsimError):
    """A player could not be reached or told what to play."""


@contextmanager
def mpd_errors(address: str = "MPD") -> Iterator[None]:
    """python-mpd2's errors (a lost connection, a refused command) as one-line PlayerErrors."""
    from mpd import MPDError

    try:
        yield
    except (MPDError, OSError) as e:
        raise PlayerError(f"{address}: {e or type(e).__name__}") from e


@dataclass
class QueueReport:
    added: int = 0
    outside: list[str] = field(default_factory=list)  # not under MPD's music directory
    unknown: list[str] = field(default_factory=list)  # under it, but MPD does not know the file


def connect(address: str, *, timeout: float = 10.0) -> Any:
    """An MPDClient connected to ``HOST:PORT``, ``HOST`` (port 6600) or a unix socket path."""
    from mpd import MPDClient

    client = MPDClient()
    client.timeout = timeout
    host, port = address, "6600"
    if not address.startswith(("/", "@")) and re.fullmatch(r".+:\d+", address):
        host, port = address.rsplit(":", 1)
    try:
        client.connect(host.strip("[]"), int(port))
    except (OSError, ConnectionError) as e:
        raise PlayerError(f"cannot reach MPD at {address}: {e}") from e
    return client


def music_dir(client: Any, configured: str = "") -> str:
    """MPD's music directory as this machine sees it."""
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    try:
        found = client.config()  # MPD answers this only to clients on a local socket
    except Exception as e:
        raise PlayerError(
            "MPD did not say where its music directory is (it does only over a local socket): "
            "set player_mpd_music_dir (Settings, --player-mpd-music-dir or MUSICSIM_PLAYER_MPD_MUSIC_DIR)"
        ) from e
    return os.path.abspath(found if isinstance(found, str) else found.get("music_directory", ""))


def to_uri(path: str, root: str) -> str | None:
    """``path`` relative to MPD's music directory ``root`` (forward slashes), or None when outside it."""
    rel = os.path.relpath(os.path.abspath(path), root)
    if rel == os.curdir or rel.startswith(os.pardir + os.sep) or rel == os.pardir or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


def queue(
    client: Any, track_paths: list[str], root: str, *, replace: bool = False, play: bool = True, wait_s: float = 30.0
) -> QueueReport:
    """Add the tracks to MPD's queue (after clearing it when ``replace``); files MPD has not seen
    yet are given to its database update once, then added."""
    from mpd import CommandError

    rep = QueueReport()
    uris = []
    for p in track_paths:
        uri = to_uri(p, root)
        (uris.append(uri) if uri is not None else rep.outside.append(p))
    if replace:
        client.clear()
    start = int(client.status().get("playlistlength", 0))
    late = []
    for uri in uris:
        try:
            client.add(uri)
            rep.added += 1
        except CommandError:
            late.append(uri)
    if late:
        _update(client, late, wait_s)
        for uri in late:
            try:
                client.add(uri)
                rep.added += 1
            except CommandError:
                rep.unknown.append(os.path.join(root, uri))
    if play and rep.added and (replace or client.status().get("state") != "play"):
        client.play(start if not replace else 0)
    return rep


def _update(client: Any, uris: list[str], wait_s: float) -> None:
    """Ask MPD to read the folders of ``uris`` into its database, and wait (bounded) until it has."""
    for folder in sorted({u.rsplit("/", 1)[0] if "/" in u else "" for u in uris}):
        client.update(folder) if folder else client.update()
    deadline = time.monotonic() + wait_s
    while "updating_db" in client.status() and time.monotonic() < deadline:
        time.sleep(0.1)


def play_in_mpd(lib: Library, tracks: list[Track], *, address: str | None = None, replace: bool = False) -> QueueReport:
    """Queue ``tracks`` in the MPD of ``address`` (default ``Config.player_mpd_address``) and start playing."""
    address = address or lib.config.player_mpd_address
    client = connect(address)
    try:
        with mpd_errors(address):
            root = music_dir(client, lib.config.player_mpd_music_dir)
            return queue(client, [t.path for t in tracks], root, replace=replace)
    finally:
        disconnect(client)


def disconnect(client: Any) -> None:
    try:
        client.disconnect()
    except Exception:  # noqa: BLE001 - the connection may be gone already
        pass


class Radio:
    """Keeps MPD's queue ``ahead`` tracks beyond the current one, with tracks like the current one.

    Parameters
    ----------
    lib
        The library that chooses (``lib.organizer.rank``).
    client, root
        A connected MPDClient and its music directory as seen here.
    ahead
        How many tracks to keep queued after the current one.
    no_same_artist
        No artist again within this many tracks (0: no rule).
    """

    def __init__(self, lib: Library, client: Any, root: str, *, ahead: int = 3, no_same_artist: int = 3) -> None:
        self.lib, self.client, self.root = lib, client, root
        self.ahead, self.k = ahead, no_same_artist
        self.seen: set[int] = set()
        self.recent: deque[str] = deque(maxlen=max(1, no_same_artist))
        live = lib.tracks()
        self.by_path = {t.path: t for t in live}
        self.by_id = {t.id: t for t in live}

    def _track(self, uri: str) -> Track | None:
        return self.by_path.get(os.path.join(self.root, uri))

    def step(self) -> list[int]:
        """Top the queue up when it runs short; returns the track ids added."""
        st = self.client.status()
        queued = self.client.playlistinfo()
        pos = int(st.get("song", len(queued) - 1 if queued else -1))
        for song in queued:
            t = self._track(song.get("file", ""))
            if t is not None and t.id not in self.seen:
                self._played(t)
        current = self._track(queued[pos]["file"]) if 0 <= pos < len(queued) else None
        want = self.ahead - (len(queued) - pos - 1)
        if current is None or want <= 0:
            return []
        ranked = [tid for tid, _ in self.lib.organizer.rank([current.id]) if tid not in self.seen]
        added: list[int] = []
        while len(added) < want:  # the nearest allowed track each time: a rule may skip one only for now
            tid = next((i for i in ranked if self._allowed(i)), None)
            if tid is None:
                break
            ranked.remove(tid)
            self.client.add(to_uri(self.by_id[tid].path, self.root))
            self._played(self.by_id[tid])
            added.append(tid)
        return added

    def _allowed(self, tid: int) -> bool:
        t = self.by_id.get(tid)
        if t is None or to_uri(t.path, self.root) is None:
            return False
        return not (self.k and t.artist and t.artist.casefold() in self.recent)

    def _played(self, t: Track) -> None:
        self.seen.add(t.id)
        if t.artist:
            self.recent.append(t.artist.casefold())

    def run(self, stop: Callable[[], bool], *, every: float = 2.0) -> None:
        while not stop():
            with mpd_errors():
                self.step()
            time.sleep(every)


def opener(command: str = "") -> list[str]:
    """The program that opens a file with the desktop's default application."""
    if command:
        import shlex

        return shlex.split(command)
    if sys.platform == "darwin":
        return ["open"]
    if sys.platform.startswith("win"):
        return []  # os.startfile
    found = shutil.which("xdg-open")
    if found is None:
        raise PlayerError("no xdg-open here to hand the playlist to a player: set player_command")
    return [found]


def open_in_player(tracks: list[Track], *, name: str = "musicsim", command: str = "") -> Path:
    """Write ``tracks`` as an M3U8 and open it with the default player; returns the file."""
    from musicsim.library.organizing import write_playlist

    if not tracks:
        raise PlayerError("nothing to play: the playlist is empty")
    safe = re.sub(r"[^\w.-]+", "_", name).strip("_") or "musicsim"
    out = paths.cache_dir() / "playlists" / f"{safe}.m3u8"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_playlist(tracks, out, name=name)
    argv = opener(command)
    if not argv:
        os.startfile(out)  # type: ignore[attr-defined]  # Windows only
        return out
    try:
        subprocess.Popen([*argv, str(out)], stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        raise PlayerError(f"cannot start {argv[0]}: {e.strerror or e}") from e
    return out

"""Watching the library folders: file events in, incremental scans of just those paths out.

:class:`FolderWatch` turns watchdog's events (inotify on Linux, FSEvents, ReadDirectoryChangesW)
into settled batches: a path is handed on once nothing has happened under the folders for
``settle`` seconds (or, in a long burst, once its own size and mtime stopped changing), so a
file still being copied is analysed when the copy is done. It also does what the event
source cannot: folders on file systems that send no events (network shares) and folders past
the inotify watch limit are checked by a periodic incremental scan instead; a folder that
disappears (an unmounted drive) has its tracks marked missing, never purged, and is re-armed
and re-scanned when it comes back. :func:`apply` does a batch's library work: a moved or
renamed file keeps its track (vectors, playlists, map position); a file that appears where a
missing track of the same size, format, duration and tags was is taken for that track, moved;
the rest is an ordinary scan of the files named. Pure Python, no Qt: ``musicsim watch`` runs it
in a loop (:func:`run`), the app from a timer. See docs/design.md, "Watching the folders".
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from musicsim.jobs import CancelToken, ProgressFn
from musicsim.scan.walker import is_music, normalise, walk
from musicsim.store import repo

if TYPE_CHECKING:
    from musicsim.library.facade import Library

log = logging.getLogger("musicsim.watch")

# File systems that send no inotify events for changes made elsewhere (other machines, FUSE daemons).
NO_EVENTS_FS = frozenset(
    "nfs nfs4 cifs smb3 smbfs 9p afs ceph glusterfs davfs fuse.sshfs fuse.rclone fuse.davfs2 fuse.gvfsd-fuse".split()
)
LIMIT_FIX = (
    "raise the limit: echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/90-musicsim.conf "
    "&& sudo sysctl --system"
)
MAX_WAIT = 10.0  # a steady stream of events still hands on its settled files this often


@dataclass
class Batch:
    """Settled changes: files to (re)scan, files or folders gone, moves, whole roots to re-scan."""

    changed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    moved: dict[str, str] = field(default_factory=dict)
    rescan: set[str] = field(default_factory=set)
    gone_roots: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed or self.moved or self.rescan or self.gone_roots)

    def __len__(self) -> int:
        return len(self.changed) + len(self.removed) + len(self.moved) + len(self.rescan) + len(self.gone_roots)


@dataclass
class WatchReport:
    analysed: int = 0
    moved: int = 0
    missing: int = 0
    revived: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False

    def summary(self) -> str:
        parts = [f"{n} {w}" for n, w in ((self.analysed, "analysed"), (self.moved, "moved"), (self.revived, "back"))]
        parts += [f"{self.missing} missing", f"{self.failed} failed"]
        return ", ".join(p for p in parts if not p.startswith("0 "))


def mounts() -> dict[str, str]:
    """Mount point -> file-system type (Linux's /proc/self/mounts; empty elsewhere)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
            rows = [line.split() for line in f]
    except OSError:
        return {}
    return {r[1].replace("\\040", " "): r[2] for r in rows if len(r) >= 3}


def fs_type(path: str, table: dict[str, str] | None = None) -> str:
    table = mounts() if table is None else table
    best = max((m for m in table if path == m or path.startswith(m.rstrip("/") + "/")), key=len, default="")
    return table.get(best, "")


def watch_limit() -> int | None:
    try:
        with open("/proc/sys/fs/inotify/max_user_watches") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def count_dirs(root: str, cap: int) -> int:
    """Folders under ``root`` (each takes one inotify watch), counting stops at ``cap``."""
    n, stack = 0, [root]
    while stack and n < cap:
        n += 1
        try:
            with os.scandir(stack.pop()) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))  # hidden ones are watched too
        except OSError:
            continue
    return n


def _signature(root: str, table: dict[str, str]) -> tuple:
    """What changes when a drive is mounted or unmounted at or under ``root``."""
    try:
        st = os.stat(root)
    except OSError:
        return (False,)
    inner = frozenset(m for m in table if m.startswith(root.rstrip("/") + "/"))
    return (True, st.st_dev, inner)


class FolderWatch:
    """Events under ``roots`` gathered into settled :class:`Batch` es (call :meth:`due` often).

    Parameters
    ----------
    roots
        The library folders.
    settle
        Seconds of quiet before changes are handed on.
    poll_seconds
        How often folders without events are re-scanned.
    health_seconds
        How often the folders are checked for disappearing and coming back (mounts).
    observer_factory
        Makes the watchdog observer (tests and the benchmark may pass another).
    """

    def __init__(
        self,
        roots: list[str],
        *,
        settle: float = 1.0,
        poll_seconds: float = 600.0,
        health_seconds: float = 2.0,
        observer_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.roots = sorted({normalise(r) for r in roots})
        self.settle, self.poll_seconds, self.health_seconds = settle, poll_seconds, health_seconds
        self.mode: dict[str, str] = {}  # root -> events | poll | unavailable
        self.notices: list[str] = []
        self._factory = observer_factory
        self._observer: Any = None
        self._watches: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._changed: dict[str, float] = {}  # path -> last event time
        self._stat: dict[str, tuple[int, float] | None] = {}
        self._removed: set[str] = set()
        self._moved: dict[str, str] = {}
        self._last_event = 0.0
        self._first_event = 0.0
        self._polled: dict[str, float] = {}
        self._sig: dict[str, tuple] = {}
        self._health_at = 0.0

    # --- starting and stopping --------------------------------------------------------------

    def start(self) -> None:
        if self._factory is None:
            from watchdog.observers import Observer

            self._factory = Observer
        self._observer = self._factory()
        self._observer.start()
        table = mounts()
        for root in self.roots:
            self._sig[root] = _signature(root, table)
            self._arm(root, table)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def _arm(self, root: str, table: dict[str, str]) -> None:
        """Watch ``root`` by events where it can, else poll it (and say why, once)."""
        old = self._watches.pop(root, None)
        if old is not None:
            try:
                self._observer.unschedule(old)
            except Exception:  # an emitter whose folder vanished is already gone
                pass
        if not os.path.isdir(root):
            self.mode[root] = "unavailable"
            return
        kind = fs_type(root, table)
        if kind in NO_EVENTS_FS:
            self._poll(
                root,
                f"{root} is on {kind}, which sends no change events: it is checked every "
                f"{self.poll_seconds / 60:.0f} min",
            )
            return
        limit = watch_limit()
        if limit is not None and count_dirs(root, limit + 1) > limit:
            self._poll(root, f"{root} has more folders than the inotify watch limit ({limit}); {LIMIT_FIX}")
            return
        try:
            self._watches[root] = self._observer.schedule(_Handler(self), root, recursive=True)
            self.mode[root] = "events"
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EMFILE):
                self._poll(root, f"the inotify watch limit is reached watching {root}; {LIMIT_FIX}")
            else:
                self._poll(root, f"{root} cannot be watched ({e.strerror or e}): it is checked periodically")

    def _poll(self, root: str, why: str) -> None:
        self.mode[root] = "poll"
        self._polled[root] = time.monotonic()
        self.notices.append(why)
        log.warning(why)

    # --- events (watchdog's thread) ---------------------------------------------------------

    def event(self, kind: str, src: str, dest: str | None = None, *, is_dir: bool = False) -> None:
        """Record one event: ``created``, ``modified``, ``closed``, ``deleted`` or ``moved``."""
        now = time.monotonic()
        with self._lock:
            if not (self._changed or self._removed or self._moved):
                self._first_event = now
            self._last_event = now
            if kind == "moved" and dest is not None:
                self._on_move(src, dest, is_dir, now)
            elif kind == "deleted":
                self._changed.pop(src, None)
                self._removed.add(src)
            elif is_dir or is_music(src):
                self._changed[src] = now
                self._removed.discard(src)

    def _on_move(self, src: str, dest: str, is_dir: bool, now: float) -> None:
        if is_dir:
            return  # watchdog follows a folder's move with one event per file inside it
        if not is_music(src):  # written under a temporary name, then renamed into place
            if is_music(dest):
                self._changed[dest] = now
            return
        written = self._changed.pop(src, None) is not None  # changed, then moved: both, in that order
        origin = next((a for a, b in self._moved.items() if b == src), src)  # a -> b, then b -> c
        self._moved.pop(origin, None)
        if not is_music(dest):
            self._removed.add(origin)
            return
        self._moved[origin] = dest
        if written:
            self._changed[dest] = now

    # --- handing on -------------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return len(self._changed) + len(self._removed) + len(self._moved)

    def due(self, now: float | None = None) -> Batch:
        """What has settled since the last call (empty when nothing has)."""
        now = time.monotonic() if now is None else now
        batch = Batch()
        if self._observer is not None and now - self._health_at >= self.health_seconds:
            self._health_at = now
            self._check_roots(batch, now)
        with self._lock:
            quiet = now - self._last_event >= self.settle
            if not quiet and now - self._first_event < MAX_WAIT:
                return batch
            for path, at in list(self._changed.items()):
                if now - at >= self.settle and self._stable(path):
                    del self._changed[path]
                    batch.changed.add(path)
            if quiet:
                batch.removed, self._removed = self._removed, set()
                batch.moved, self._moved = self._moved, {}
            self._first_event = now
        return batch

    def _stable(self, path: str) -> bool:
        """Size and mtime unchanged since the last look (a copy in progress is not)."""
        try:
            st = os.stat(path)
            now = (st.st_size, st.st_mtime)
        except OSError:
            now = None
        before = self._stat.get(path, "unseen")
        self._stat[path] = now
        if before == now or now is None:
            self._stat.pop(path, None)
            return True
        return before == "unseen" and time.time() - now[1] >= self.settle

    def _check_roots(self, batch: Batch, now: float) -> None:
        table = mounts()
        for root in self.roots:
            sig = _signature(root, table)
            if sig != self._sig.get(root):
                self._sig[root] = sig
                self._arm(root, table)
                (batch.rescan if sig[0] else batch.gone_roots).add(root)
            elif self.mode.get(root) == "poll" and now - self._polled.get(root, 0.0) >= self.poll_seconds:
                self._polled[root] = now
                batch.rescan.add(root)

    def describe(self) -> str:
        """One line for a status bar: how each folder is watched."""
        counts = {m: sum(1 for v in self.mode.values() if v == m) for m in ("events", "poll", "unavailable")}
        words = {"events": "watched", "poll": "checked periodically", "unavailable": "unavailable"}
        return ", ".join(f"{n} {words[m]}" for m, n in counts.items() if n) or "no folders"


class _Handler:
    """watchdog's event handler interface, forwarding to :meth:`FolderWatch.event`."""

    KINDS = {"created": "created", "modified": "modified", "closed": "closed", "deleted": "deleted", "moved": "moved"}

    def __init__(self, watch: FolderWatch) -> None:
        self.watch = watch

    def dispatch(self, event: Any) -> None:
        kind = self.KINDS.get(event.event_type)
        if kind is None:
            return
        if kind in ("modified", "closed") and event.is_directory:
            return  # a folder's mtime changes with every file in it; the files report themselves
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if kind == "moved" else None
        self.watch.event(kind, src, dest, is_dir=event.is_directory)


# --- the library's side ----------------------------------------------------------------------


def apply(
    lib: Library, batch: Batch, *, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> WatchReport:
    """Bring the library up to date with ``batch``: moves, then what went, then an incremental scan."""
    rep = WatchReport()
    db, index = lib.db, lib.index
    with db.session() as s:
        for old, new in batch.moved.items():
            rep.moved += _relocate(s, old, new, batch)
        gone = repo.tracks_under(s, batch.removed | batch.gone_roots)
        gone = {p: v for p, v in gone.items() if v[1] != "missing" and not os.path.exists(p)}
        files = _files(batch.changed)
        for path in list(files):
            if _adopt(s, path, gone):
                files.discard(path)
                rep.moved += 1
        repo.mark_status(s, [tid for tid, _ in gone.values()], "missing")
        rep.missing = len(gone)
        rep.revived = len(repo.revive_unchanged(s, [(p, *_stat(p)) for p in files if _stat(p)[0] >= 0]))
    index.sync()
    targets = sorted(files | (batch.rescan - batch.gone_roots))
    if targets:
        scanned = lib.scan(targets, progress=progress, cancel=cancel)
        rep.analysed, rep.failed, rep.failures = scanned.analysed, scanned.failed, scanned.failures
        rep.missing += scanned.missing
        rep.cancelled = scanned.cancelled
    return rep


def _stat(path: str) -> tuple[int, float]:
    try:
        st = os.stat(path)
    except OSError:
        return -1, 0.0
    return st.st_size, st.st_mtime


def _files(paths: set[str]) -> set[str]:
    """The music files named, folders expanded (a folder moved in arrives as one event)."""
    out = {p for p in paths if os.path.isfile(p)}
    out |= {e.path for e in walk(sorted(p for p in paths if os.path.isdir(p)))}
    return out


def _relocate(s, old: str, new: str, batch: Batch) -> int:
    """A move the watcher saw: the track keeps its id and vectors. Unknown: the new file is scanned."""
    known = repo.tracks_under(s, [old]).get(old)
    size, mtime = _stat(new)
    if known is not None and size >= 0 and repo.relocate_track(s, known[0], path=new, size=size, mtime=mtime):
        return 1
    batch.changed.add(new)
    if known is not None:
        batch.removed.add(old)
    return 0


def _adopt(s, path: str, gone: dict[str, tuple[int, str]]) -> bool:
    """A file that appeared is a track that went (this batch, or missing before) when its size,
    format, duration and tags agree and only one track fits: it is relocated, not re-analysed."""
    from musicsim.audio.tags import read_tags

    size, mtime = _stat(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if size < 0 or repo.tracks_under(s, [path]).get(path):
        return False
    gone_ids = {tid for tid, _ in gone.values()}
    pool = repo.relocation_candidates(s, size, fmt)
    pool += [t for t in repo.tracks_by_id(s, gone_ids).values() if t.size == size and t.format == fmt]
    # a move whose event was lost (e.g. into a folder created just before, not yet watched): the old
    # path is still live in the database but its file is gone
    pool += [
        t for t in repo.tracks_of_size(s, size) if t.format == fmt and t.status == "ok" and not os.path.exists(t.path)
    ]
    if not pool:
        return False
    tags = read_tags(path)
    fits = {
        t.id: t
        for t in pool
        if t.duration is not None
        and tags["duration"] is not None
        and abs(t.duration - tags["duration"]) < 0.05
        and (t.title, t.artist, t.album) == (tags["title"], tags["artist"], tags["album"])
    }
    if len(fits) != 1:
        return False
    ((tid, track),) = fits.items()
    old = track.path
    if not repo.relocate_track(s, tid, path=path, size=size, mtime=mtime):
        return False
    gone.pop(old, None)
    return True


def run(
    lib: Library,
    roots: list[str],
    *,
    stop: threading.Event,
    on_report: Callable[[Batch, WatchReport], None] = lambda b, r: None,
    on_notice: Callable[[str], None] = lambda m: None,
    on_started: Callable[[FolderWatch], None] = lambda fw: None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    tick: float = 0.2,
) -> None:
    """Watch ``roots`` and keep ``lib`` up to date until ``stop`` is set (``musicsim watch``)."""
    cfg = lib.config
    fw = FolderWatch(roots, settle=cfg.watch_settle_seconds, poll_seconds=cfg.watch_poll_minutes * 60)
    fw.start()
    on_started(fw)  # the folders are watched from here on
    try:
        while not stop.wait(tick):
            while fw.notices:
                on_notice(fw.notices.pop(0))
            batch = fw.due()
            if batch:
                on_report(batch, apply(lib, batch, progress=progress, cancel=cancel))
    finally:
        fw.stop()

"""Find music files under folders: skips hidden entries, survives symlink loops and unreadable folders.

Only regular files are yielded (a FIFO or device named ``*.mp3`` would block a decoder), and
names that are not valid UTF-8 are reported rather than yielded: the library stores paths
as text, so such a file could be neither stored nor named in a failure.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from musicsim.audio.sniff import SUPPORTED_EXTENSIONS


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    mtime: float

    @property
    def ext(self) -> str:
        return os.path.splitext(self.path)[1].lower()


OnError = Callable[[str, str], None]


def normalise(path: str | os.PathLike) -> str:
    """Absolute path as the user sees it (symlinks are not resolved)."""
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def under(path: str, roots: Iterable[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one of them (by path, not by a prefix of a
    name: ``/music2/a.mp3`` is not under ``/music``)."""
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def exists(path: str) -> bool:
    """Whether ``path`` exists; True when that cannot be told (a permission, an I/O error), so
    nothing is forgotten on a doubt. A path longer than the system's limit (``ENAMETOOLONG``,
    4096 bytes on Linux) is followed folder by folder."""
    try:
        os.stat(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            return True
    except ValueError:  # a NUL in the name: no file has it
        return False
    return _exists_by_parts(path)


def _exists_by_parts(path: str) -> bool:
    parts = [p for p in os.fsencode(os.path.abspath(path)).split(b"/") if p]
    if not parts or any(len(p) > 255 for p in parts):  # no file system allows a longer name
        return False
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open("/", flags)
    except OSError:
        return True
    try:
        for name in parts[:-1]:
            nxt = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.stat(parts[-1], dir_fd=fd)
        return True
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def is_music(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in SUPPORTED_EXTENSIONS


def storable(path: str) -> bool:
    """True when ``path`` is valid text (a Linux name may hold bytes that are not UTF-8)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display(path: str) -> str:
    """``path`` as storable, printable text: undecodable bytes become ``\\xNN``."""
    if storable(path):
        return path
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_NOT_UTF8 = "name is not valid UTF-8; rename it to add it to the library"


def walk(paths: Iterable[str | os.PathLike], *, on_error: OnError | None = None) -> Iterator[FileEntry]:
    """Yield every music file under ``paths`` (files are taken as given) once.

    Directories are entered once by their real identity (device, inode), so symlink
    loops end; the same file reached by two routes is yielded once.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    report = on_error or (lambda p, r: None)

    def err(path: str, reason: str) -> None:
        report(display(path), reason)

    for top in paths:
        top = normalise(top)
        if not storable(top):
            err(top, _NOT_UTF8)
            continue
        try:
            st = os.stat(top)
        except OSError as e:
            err(top, f"cannot open: {e.strerror or e}")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(top, seen_dirs, seen_files, err)
        elif is_music(top):
            if not stat.S_ISREG(st.st_mode):
                err(top, "not a regular file (a pipe, socket or device)")
                continue
            entry = _entry(top, st, seen_files)
            if entry:
                yield entry


def _entry(path: str, st: os.stat_result, seen_files: set) -> FileEntry | None:
    key = (st.st_dev, st.st_ino)
    if key in seen_files:
        return None
    seen_files.add(key)
    return FileEntry(path, st.st_size, st.st_mtime)


def _walk_dir(top: str, seen_dirs: set, seen_files: set, err: OnError) -> Iterator[FileEntry]:
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                continue
            seen_dirs.add(key)
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            err(d, f"folder not readable: {e.strerror or e}")
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir(follow_symlinks=True):
                    if storable(e.name):
                        subdirs.append(e.path)
                    else:
                        err(e.path, "folder " + _NOT_UTF8)
                elif e.is_file(follow_symlinks=True) and is_music(e.name):
                    if not storable(e.name):
                        err(e.path, "file " + _NOT_UTF8)
                        continue
                    st = e.stat(follow_symlinks=True)
                    if not stat.S_ISREG(st.st_mode):  # replaced since scandir looked
                        continue
                    entry = _entry(e.path, st, seen_files)
                    if entry:
                        yield entry
            except OSError as ex:  # dangling symlink, file vanished, permission
                err(e.path, f"cannot open: {ex.strerror or ex}")
        stack.extend(reversed(subdirs))

"""Find music files under folders: skips hidden entries, survives symlink loops and unreadable folders."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from musicsim.audio.decode import SUPPORTED_EXTENSIONS


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


def is_music(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in SUPPORTED_EXTENSIONS


def walk(paths: Iterable[str | os.PathLike], *, on_error: OnError | None = None) -> Iterator[FileEntry]:
    """Yield every music file under ``paths`` (files are taken as given) once.

    Directories are entered once by their real identity (device, inode), so symlink
    loops end; the same file reached by two routes is yielded once.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    err = on_error or (lambda p, r: None)
    for top in paths:
        top = normalise(top)
        try:
            st = os.stat(top)
        except OSError as e:
            err(top, f"cannot open: {e.strerror or e}")
            continue
        if os.path.isdir(top):
            yield from _walk_dir(top, seen_dirs, seen_files, err)
        elif is_music(top):
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
                    subdirs.append(e.path)
                elif e.is_file(follow_symlinks=True) and is_music(e.name):
                    entry = _entry(e.path, e.stat(follow_symlinks=True), seen_files)
                    if entry:
                        yield entry
            except OSError as ex:  # dangling symlink, file vanished, permission
                err(e.path, f"cannot open: {ex.strerror or ex}")
        stack.extend(reversed(subdirs))

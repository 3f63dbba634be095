"""One exception family for everything musicsim reports to a person.

Each error renders as a single line naming the file (when there is one) and the reason,
so a scan can record it in ``failures`` and go on.
"""

from __future__ import annotations

import os


class MusicsimError(Exception):
    """Base class: ``str(err)`` is a one-line, user-facing message."""

    def __init__(self, reason: str, *, path: str | os.PathLike[str] | None = None) -> None:
        self.reason = " ".join(str(reason).split())  # always one line
        self.path = str(path) if path is not None else None
        super().__init__(self.reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class DecodeError(MusicsimError):
    """The file could not be decoded (empty, truncated, corrupt, not audio)."""

    @classmethod
    def from_os_error(cls, exc: OSError, path: str | os.PathLike[str]) -> DecodeError:
        """The reason a file could not be read, in words a person understands."""
        if isinstance(exc, FileNotFoundError):
            return cls("file not found", path=path)
        if isinstance(exc, IsADirectoryError):
            return cls("is a directory, not a file", path=path)
        if isinstance(exc, PermissionError):
            return cls("permission denied", path=path)
        return cls(f"cannot read file: {exc.strerror or exc}", path=path)


class UnsupportedFormat(DecodeError):
    """The file extension is not one musicsim reads."""


class MissingDecoder(DecodeError):
    """A decoder needed for this format (ffmpeg, FluidSynth) is not installed."""


class ModelMismatch(MusicsimError):
    """A checkpoint does not match the front end or architecture it is used with."""


class CheckpointError(MusicsimError):
    """A checkpoint file is unreadable, unsafe (carries code) or incomplete."""


class SchemaTooNew(MusicsimError):
    """The database was written by a newer musicsim; it is left untouched."""


class LibraryBusy(MusicsimError):
    """Another musicsim process is writing to this library."""


class NotFound(MusicsimError):
    """A query (path, id, text) matched no track."""


class Cancelled(MusicsimError):
    """A long job was cancelled by the user."""

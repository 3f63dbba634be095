"""Opening the library database: version check, backup, migrations, WAL, one writer.

The schema version lives in SQLite's ``PRAGMA user_version``. It is read through a
read-only connection *before* anything else touches the file, so a database from a
newer musicsim is refused untouched. Before any migration the file is copied with
SQLite's online backup API. Migrations are plain functions in ``MIGRATIONS``: for a
single-file desktop database this is simpler and more transparent than Alembic's
revision graph, and it is what beets and Picard do too.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from musicsim.errors import LibraryBusy, MusicsimError, SchemaTooNew
from musicsim.store.schema import Base

SCHEMA_VERSION = 2


def _create_v1(conn: sqlite3.Connection | None, engine: Engine) -> None:
    Base.metadata.create_all(engine)


def _add_descriptors(conn: sqlite3.Connection | None, engine: Engine) -> None:
    """2: the ``descriptors`` table (tempo, key, loudness, ... per track), and each track's group
    at every level of the cluster hierarchy (``track_maps.levels``). Tracks analysed before
    have no descriptors until the next scan, which analyses them again (library.scan.plan)."""
    from musicsim.store.schema import TrackDescriptors

    Base.metadata.create_all(engine, tables=[TrackDescriptors.__table__])  # type: ignore[list-item]
    with engine.begin() as c:
        if "levels" not in [r[1] for r in c.exec_driver_sql("PRAGMA table_info(track_maps)")]:
            c.exec_driver_sql("ALTER TABLE track_maps ADD COLUMN levels BLOB")


# version -> function that brings a database at version-1 up to version.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection | None, Engine], None]] = {1: _create_v1, 2: _add_descriptors}


def read_version(path: Path) -> int:
    """``user_version`` read without writing anything (0 for a new or empty file).

    Without a pending WAL the version is read from the file header (bytes 60-63), so a
    database that will be refused is not even opened by SQLite (which would leave
    ``-wal``/``-shm`` files beside it).
    """
    if not path.exists() or path.stat().st_size == 0:
        return 0
    wal = path.with_name(path.name + "-wal")
    if not (wal.exists() and wal.stat().st_size > 0):
        try:
            with open(path, "rb") as f:
                head = f.read(100)
        except OSError as e:
            raise MusicsimError(f"cannot read the library database: {e.strerror or e}", path=path) from None
        if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
            raise MusicsimError("not a musicsim library database (not an SQLite file)", path=path)
        return int.from_bytes(head[60:64], "big", signed=True)
    uri = f"file:{path.as_posix()}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            return int(con.execute("PRAGMA user_version").fetchone()[0])
        finally:
            con.close()
    except sqlite3.OperationalError as e:
        raise MusicsimError(f"cannot open the library database ({e})", path=path) from None
    except sqlite3.DatabaseError as e:
        raise MusicsimError(f"not a musicsim library database ({e})", path=path) from None


def backup(path: Path, version: int) -> Path:
    """Copy the database with SQLite's backup API (consistent even with a WAL)."""
    dest = path.with_name(f"{path.name}.v{version}.bak")
    src = sqlite3.connect(str(path))
    try:
        dst = sqlite3.connect(str(dest))
        with dst:
            src.backup(dst)
        dst.close()
    finally:
        src.close()
    return dest


class WriterLock:
    """An exclusive advisory lock on ``<db>.lock``: at most one writing process per library."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fh: TextIO | None = None

    def acquire(self) -> None:
        if self._fh is not None:
            return
        fh = open(self.path, "a+")
        try:
            _lock_file(fh)
        except OSError:
            fh.close()
            raise LibraryBusy(
                "library busy: another musicsim is writing to it; try again when it is done",
                path=self.path.with_suffix(""),
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing drops the lock
            self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None


def _lock_file(fh: TextIO) -> None:
    if sys.platform == "win32":  # no fcntl there
        import msvcrt

        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _on_connect(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class Database:
    """An open library database. ``writable`` takes the single-writer lock."""

    def __init__(self, path: str | os.PathLike, *, writable: bool = True) -> None:
        self.path = Path(path).expanduser().resolve()
        self.lock = WriterLock(self.path)
        version = read_version(self.path)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"library database is schema version {version}, newer than this musicsim understands "
                f"({SCHEMA_VERSION}); upgrade musicsim. The file was not changed",
                path=self.path,
            )
        if not writable and version < SCHEMA_VERSION:
            writable = True  # a new or old database must be created/migrated once
        if writable:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.lock.acquire()
        # Connections come from a pool, one thread at a time: safe to hand between threads.
        self.engine = create_engine(f"sqlite:///{self.path}", connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", _on_connect)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if writable:
            with self.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            self._migrate(version)
        self.writable = writable

    def _migrate(self, version: int) -> None:
        if version == SCHEMA_VERSION:
            return
        if version > 0:
            self.backup_path = backup(self.path, version)
        for v in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[v](None, self.engine)
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"PRAGMA user_version={int(v)}")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self.sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def require_writer(self) -> None:
        if not self.writable:
            self.lock.acquire()
            self.writable = True

    def integrity_ok(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"

    def close(self) -> None:
        self.engine.dispose()
        self.lock.release()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

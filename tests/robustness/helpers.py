"""Checks shared by the robustness tests: file-tree snapshots, database and index health,
per-call time limits, and running a process without root's permission override."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ file-tree snapshots


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(root: str | os.PathLike) -> dict[bytes, tuple]:
    """Every entry under ``root`` (hidden ones too, links not followed): kind, mode, content.

    Keys are bytes so names that are not UTF-8 compare exactly. Regular files are hashed;
    files this process cannot read are compared by size and mtime.
    """
    out: dict[bytes, tuple] = {}
    root_b = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(root_b, followlinks=False):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root_b)
            st = os.lstat(full)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode)
            elif stat.S_ISREG(st.st_mode):
                try:
                    out[rel] = ("file", mode, st.st_size, _sha256(full))
                except PermissionError:
                    out[rel] = ("file", mode, st.st_size, st.st_mtime_ns)
            else:
                out[rel] = ("special", stat.S_IFMT(st.st_mode), mode)
    return out


def assert_same_tree(before: dict, after: dict, what: str = "") -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), f"{what}: added {added[:5]}, removed {removed[:5]}, changed {changed[:5]}"


# ------------------------------------------------------------------ database and index


def _connect_ro(db) -> sqlite3.Connection:
    """A read-only connection; on read-only media (where WAL needs a -shm file that cannot be
    created) the file is opened as immutable."""
    uri = f"file:{Path(db).as_posix()}?mode=ro"
    con = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return con
    except sqlite3.OperationalError:
        con.close()
        return sqlite3.connect(uri + "&immutable=1", uri=True)


def db_health(db: str | os.PathLike) -> dict:
    """integrity_check, duplicate paths and row counts, read through a read-only connection."""
    con = _connect_ro(db)
    try:
        return {
            "integrity": con.execute("PRAGMA integrity_check").fetchone()[0],
            "tracks": con.execute("SELECT count(*) FROM tracks").fetchone()[0],
            "dup_tracks": con.execute("SELECT count(*) - count(DISTINCT path) FROM tracks").fetchone()[0],
            "dup_failures": con.execute("SELECT count(*) - count(DISTINCT path) FROM failures").fetchone()[0],
            "embeddings": con.execute("SELECT count(*) FROM embeddings").fetchone()[0],
            "orphans": con.execute(
                "SELECT count(*) FROM embeddings WHERE track_id NOT IN (SELECT id FROM tracks)"
            ).fetchone()[0],
            "fk": con.execute("PRAGMA foreign_key_check").fetchall(),
        }
    finally:
        con.close()


def assert_db_healthy(db) -> dict:
    h = db_health(db)
    assert h["integrity"] == "ok", h
    assert h["dup_tracks"] == 0 and h["dup_failures"] == 0 and h["orphans"] == 0 and not h["fk"], h
    return h


def saved_index_ids(db) -> set[int] | None:
    """Live labels of the active model's index file exactly as saved (None: no usable file)."""
    from musicsim import paths
    from musicsim.index import ann

    con = _connect_ro(db)
    try:
        name, checksum, config = con.execute("SELECT name, checksum, config FROM models WHERE active").fetchone()
    finally:
        con.close()
    import json

    from musicsim.model.resnet import ModelConfig

    dim = ModelConfig.from_dict(json.loads(config)).track_dim
    idx = ann.load(paths.index_dir(Path(db).resolve()) / f"{name}.hnsw", dim=dim, checksum=checksum)
    return None if idx is None else idx.live_ids()


def live_track_ids(db) -> set[int]:
    con = _connect_ro(db)
    try:
        rows = con.execute(
            "SELECT t.id FROM tracks t JOIN embeddings e ON e.track_id = t.id "
            "JOIN models m ON m.id = e.model_id AND m.active WHERE t.status = 'ok'"
        )
        return {r[0] for r in rows}
    finally:
        con.close()


def assert_index_matches(db) -> None:
    saved = saved_index_ids(db)
    assert saved is not None, "no usable index file beside the database"
    assert saved == live_track_ids(db)


# ------------------------------------------------------------------ time limits


class Hang(Exception):
    """A call ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`Hang` in this (main) thread when the block runs longer than ``seconds``."""

    def on_alarm(_sig, _frame):
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ permissions as a user


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def drop_dac_override() -> None:
    """preexec_fn: take away root's power to ignore permission bits, for the exec'd program.

    Dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set means the
    program started by exec (and every process it forks) obeys chmod like a normal user.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def permission_bits_enforced(tmp: Path) -> tuple[bool, object, str]:
    """Can a child process be made to obey chmod 000? Returns (ok, preexec_fn, why not)."""
    probe = tmp / "probe-unreadable"
    probe.write_bytes(b"x")
    os.chmod(probe, 0)
    try:
        code = f"open({str(probe)!r}, 'rb')"
        if os.geteuid() != 0:
            r = subprocess.run([sys.executable, "-c", code], capture_output=True)
            return r.returncode != 0, None, "" if r.returncode else "chmod 000 does not block reads here"
        try:
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, preexec_fn=drop_dac_override)
        except (OSError, subprocess.SubprocessError) as e:
            return False, None, f"running as root and cannot drop CAP_DAC_OVERRIDE ({e})"
        if r.returncode == 0:
            return False, None, "running as root and chmod 000 still does not block reads"
        return True, drop_dac_override, ""
    finally:
        os.chmod(probe, 0o600)
        probe.unlink()


def restore_permissions(root: Path) -> None:
    """chmod 755 every folder and 644 every file under ``root`` (so it can be deleted).

    Top-down: a folder is fixed before os.walk enters it."""
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p) and stat.S_ISREG(os.lstat(p).st_mode):
                os.chmod(p, 0o644)


def musicsim_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "musicsim", *args]


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env

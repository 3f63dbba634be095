"""Disk full, read-only data folder, old and new schemas, two instances: through the CLI.

Real faults where the machine allows (a 2 MiB tmpfs filled up, a tmpfs remounted read-only;
both need root and mount), otherwise chmod 555 (as a normal user); and always injected
faults at the write calls (index save, SQL INSERT), which need no privileges.
"""

from __future__ import annotations

import errno
import hashlib
import os
import select
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass

import pytest

from musicsim.cli import main
from musicsim.index import ann
from musicsim.library import Library
from musicsim.store import db as dbmod
from tests.fixtures.generate import synth, write_audio
from tests.robustness.conftest import copy_library
from tests.robustness.helpers import (
    assert_db_healthy,
    assert_index_matches,
    assert_same_tree,
    child_env,
    live_track_ids,
    musicsim_cmd,
    snapshot,
)


@dataclass
class CliOutcome:
    """What one in-process `musicsim` command left: its exit code, error lines and any escaped exception."""

    args: tuple
    rc: int | None
    errors: list[str]  # stderr lines that are not notes or warnings
    raised: str | None  # the exception that escaped main(): a traceback for the user


def _sha(p) -> str:
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def _error_lines(err: str) -> list[str]:
    """The lines of stderr that are errors (notes and warnings about the model are not)."""
    return [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("note:", "warning:"))]


def _cli(capsys, *args: str) -> CliOutcome:
    """Run ``musicsim ARGS`` in this process, as a user would see it."""
    capsys.readouterr()
    rc, raised = None, None
    try:
        rc = main(list(args))
    except Exception as e:  # noqa: BLE001
        raised = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}"
    return CliOutcome(args, rc, _error_lines(capsys.readouterr().err), raised)


def _one_line_error(run: CliOutcome) -> None:
    """The run failed with exactly one `musicsim: ...` line (call after the data checks)."""
    assert run.raised is None, run
    assert run.rc not in (0, None) and len(run.errors) == 1 and run.errors[0].startswith("musicsim: "), run


def _new_music(root, n: int = 6):
    for i in range(n):
        write_audio(
            root / f"new{i:02d}.wav", synth(("sine", "noise", "chord", "clicks")[i % 4], seconds=1.0, variant=20 + i)
        )
    return root


def _tracks(db) -> int:
    return assert_db_healthy(db)["tracks"]


# --------------------------------------------------------------------------- real mounts


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MiB tmpfs (root only); yields its path and a function to remount it ro/rw."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=755", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")

    def remount(mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(mnt)], check=True, capture_output=True)

    try:
        yield mnt, remount
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder, leave_kib: int):
    """Fill the file system of ``folder`` up, then give ``leave_kib`` KiB back."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\xa5" * 65536)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    try:
        while True:
            os.write(fd, b"\xa5" * 512)
    except OSError:
        pass
    os.close(fd)
    os.truncate(filler, max(0, os.path.getsize(filler) - leave_kib * 1024))
    return filler


@pytest.mark.parametrize("leave_kib", [0, 64], ids=["no-space-at-all", "runs-out-mid-scan"])
def test_disk_full(tmpfs, small_library, tmp_path, capsys, leave_kib):
    mnt, _ = tmpfs
    music, db0 = small_library
    db = copy_library(db0, mnt)
    before_rows = _tracks(db)
    new = _new_music(tmp_path / "new", 10)
    trees = {p: snapshot(p) for p in (music, new)}
    filler = _fill(mnt, leave_kib)
    scan = _cli(capsys, "--db", str(db), "--workers", "1", "scan", str(new))
    readers = [_cli(capsys, "--db", str(db), *args) for args in (["status"], ["failures"])]
    os.unlink(filler)
    # No corruption, no lost rows, index consistent (or rebuilt), music untouched.
    assert _tracks(db) >= before_rows
    with Library(db) as lib:
        assert lib.index.ann().live_ids() == live_track_ids(db)
    assert_index_matches(db)
    for p, tree in trees.items():
        assert_same_tree(tree, snapshot(p), f"{p} after disk full")
    # What the user sees: one line, non-zero exit (readers may also work).
    for run in readers:
        if run.rc != 0:
            _one_line_error(run)
    _one_line_error(scan)


@pytest.fixture
def readonly_home(tmp_path, small_library, monkeypatch):
    """MUSICSIM_HOME holding a scanned library, made read-only by the strongest means at hand."""
    music, db0 = small_library
    if os.geteuid() != 0:
        home = tmp_path / "home-ro"
        copy_library(db0, home).rename(home / "library.db")
        for p in home.rglob("*"):
            p.chmod(0o555 if p.is_dir() else 0o444)
        home.chmod(0o555)
        yield home, music, "chmod 555"
        home.chmod(0o755)
        for p in home.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        return
    mnt = tmp_path / "home-ro"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=755", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"as root chmod 555 does not protect a folder and tmpfs cannot be mounted: {r.stderr.strip()}")
    try:
        for p in db0.parent.iterdir():  # the library under its default name in MUSICSIM_HOME
            if p.name.startswith(db0.stem):
                name = "library" + p.name[len(db0.stem) :]
                (shutil.copytree if p.is_dir() else shutil.copy2)(p, mnt / name)
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, capture_output=True)
        yield mnt, music, "read-only tmpfs"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_readonly_data_folder(readonly_home, tmp_path, capsys, monkeypatch):
    home, music, how = readonly_home
    monkeypatch.setenv("MUSICSIM_HOME", str(home))
    db = home / "library.db"
    sha = _sha(db)
    new = _new_music(tmp_path / "new", 2)
    trees = {p: snapshot(p) for p in (music, new)}
    con = sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True)  # the mount may be read-only
    (active,) = con.execute("select name from models where active").fetchone()
    con.close()
    writers = [_cli(capsys, *args) for args in (["scan", str(new)], ["purge"], ["model", "use", active])]
    readers = [_cli(capsys, *args) for args in (["status"], ["similar", "sine"], ["failures"])]
    assert _sha(db) == sha
    assert assert_db_healthy(db)["tracks"] == 13
    for p, tree in trees.items():
        assert_same_tree(tree, snapshot(p), f"{p} after read-only runs")
    for run in readers:
        if run.rc != 0:
            _one_line_error(run)
    for run in writers:
        _one_line_error(run)
    print(f"\nread-only data folder via {how}: writers refused with one line, database unchanged")


def test_unopenable_database_is_not_called_foreign(readonly_home, capsys, monkeypatch):
    home, _, _ = readonly_home
    monkeypatch.setenv("MUSICSIM_HOME", str(home))
    run = _cli(capsys, "scan", str(home))
    _one_line_error(run)
    assert "not a musicsim library database" not in run.errors[0], run.errors[0]


# --------------------------------------------------------------------------- injected faults


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["ENOSPC", "EROFS"])
def test_index_save_fails(small_library, tmp_path, capsys, monkeypatch, code):
    music, db = small_library
    before = _tracks(db)
    new = _new_music(tmp_path / "new", 3)

    def fail(self, path):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(ann.AnnIndex, "save", fail)
    run = _cli(capsys, "--db", str(db), "scan", str(new))
    monkeypatch.undo()
    assert _tracks(db) == before + 3  # the analysed tracks were committed
    with Library(db) as lib:
        assert lib.index.ann().live_ids() == live_track_ids(db)  # caught up from the database
    assert_index_matches(db)
    _one_line_error(run)
    assert os.strerror(code) in run.errors[0]


@pytest.mark.parametrize("message", ["database or disk is full", "attempt to write a readonly database"])
def test_sql_write_fails(small_library, tmp_path, capsys, monkeypatch, message):
    from sqlalchemy import event

    music, db = small_library
    before = _tracks(db)
    new = _new_music(tmp_path / "new", 2)
    real_create_engine = dbmod.create_engine

    def failing_engine(*a, **kw):
        engine = real_create_engine(*a, **kw)

        @event.listens_for(engine, "before_cursor_execute")
        def refuse(conn, cursor, statement, params, context, executemany):
            if statement.lstrip().upper().startswith("INSERT INTO TRACKS"):
                raise sqlite3.OperationalError(message)

        return engine

    monkeypatch.setattr(dbmod, "create_engine", failing_engine)
    run = _cli(capsys, "--db", str(db), "scan", str(new))
    monkeypatch.undo()
    assert _tracks(db) == before
    with Library(db) as lib:
        assert lib.index.ann().live_ids() == live_track_ids(db)
    _one_line_error(run)
    assert message in run.errors[0]


# --------------------------------------------------------------------------- schema versions


def test_old_schema_migrates_after_backup_through_cli(small_library, capsys, schema_v2_migration):
    music, db = small_library
    rows = _tracks(db)
    now = dbmod.SCHEMA_VERSION
    calls = schema_v2_migration()
    run = _cli(capsys, "--db", str(db), "status")
    assert run.rc == 0 and not run.errors and not run.raised and calls == [now + 1], run
    backup = db.with_name(db.name + f".v{now}.bak")
    con = sqlite3.connect(backup)
    assert con.execute("PRAGMA user_version").fetchone()[0] == now
    assert con.execute("SELECT count(*) FROM tracks").fetchone()[0] == rows
    con.close()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == now + 1
    assert "rating" in [r[1] for r in con.execute("PRAGMA table_info(tracks)")]
    con.close()
    assert _tracks(db) == rows
    assert _cli(capsys, "--db", str(db), "similar", str(music / "sine" / "sine_0.wav")).rc == 0


def test_newer_schema_is_refused_untouched_through_cli(small_library, capsys):
    music, db = small_library
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version={int(dbmod.SCHEMA_VERSION + 3)}")
    con.commit()
    con.close()
    files = {p.name: _sha(p) for p in db.parent.rglob("*") if p.is_file()}
    for args in (["status"], ["scan", str(music)], ["similar", "sine"], ["purge"]):
        run = _cli(capsys, "--db", str(db), *args)
        assert run.rc == 1 and not run.raised, run
        assert len(run.errors) == 1 and "newer" in run.errors[0] and str(db) in run.errors[0], run
    after = {p.name: _sha(p) for p in db.parent.rglob("*") if p.is_file()}
    assert {n: h for n, h in after.items() if n in files} == files  # the database and its index: same bytes
    extra = sorted(set(after) - set(files))
    assert not extra, f"files left beside a refused database: {extra}"


# --------------------------------------------------------------------------- two instances

# A real scan that pauses after its first file until told to go on (a line on stdin).
HOLDER = """
import sys
from musicsim.library import Library

def main():
    lib = Library(sys.argv[1])
    paused = []

    def progress(p):
        if p.stage == "scan" and not paused:
            paused.append(1)
            print("scanning", flush=True)
            sys.stdin.readline()

    rep = lib.scan([sys.argv[2]], progress=progress)
    lib.close()
    print("done", rep.analysed, flush=True)

if __name__ == "__main__":
    main()
"""


def test_second_writer_is_told_library_is_busy(small_library, tmp_path, capsys):
    music, db = small_library
    new = _new_music(tmp_path / "new", 3)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(new)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(MUSICSIM_WORKERS="1"),
    )
    try:
        ready, _, _ = select.select([holder.stdout], [], [], 180)
        assert ready and holder.stdout.readline().strip() == "scanning", holder.stderr.read()[-2000:]
        second = subprocess.run(
            musicsim_cmd("--db", str(db), "scan", str(new)),
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=120,
        )
        assert second.returncode == 1, second.stderr
        errors = _error_lines(second.stderr)
        assert len(errors) == 1 and ("busy" in errors[0] or "another musicsim is writing" in errors[0]), errors
        # Readers carry on beside the writer.
        run = _cli(capsys, "--db", str(db), "status")
        assert run.rc == 0 and not run.errors and not run.raised, run
        run = _cli(capsys, "--db", str(db), "similar", "1", "-n", "3")
        assert run.rc == 0 and not run.errors and not run.raised, run
        out, err = holder.communicate("go\n", timeout=180)
        assert holder.returncode == 0, err[-2000:]
        assert out.strip().endswith("done 3")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    h = assert_db_healthy(db)
    assert h["tracks"] == 13 + 3
    assert_index_matches(db)
    assert _cli(capsys, "--db", str(db), "scan", str(new)).rc == 0  # free again

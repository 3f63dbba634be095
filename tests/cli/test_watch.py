"""``musicsim watch`` in the foreground, as a person runs it: a file lands, it becomes searchable, Ctrl+C stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from musicsim.cli import main
from musicsim.library import Library
from tests.fixtures.generate import synth, write_audio


def test_watch_makes_a_new_file_searchable_and_stops_on_ctrl_c(tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    db = tmp_path / "lib.db"
    env = {**os.environ, "MUSICSIM_WATCH_SETTLE_SECONDS": "0.3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicsim", "--db", str(db), "watch", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("watching 1 folder")
        new = write_audio(root / "new.wav", synth("chord", seconds=0.4))
        deadline, found = time.monotonic() + 150, []  # a busy 2-core machine: up to minutes
        while not found and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            with Library(db, writable=False) as lib:
                found = [t for t in lib.tracks() if t.path == str(new)]
        assert found, proc.stderr.read() if proc.poll() is not None else "not searchable within 150 s"
        assert "1 change(s): 1 analysed" in proc.stdout.readline()  # the report, once the batch is done
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped watching" in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_watch_without_folders_is_a_usage_error(tmp_path, capsys):
    assert main(["--db", str(tmp_path / "lib.db"), "watch"]) == 2
    assert "no folders" in capsys.readouterr().err


def test_ctrl_c_stops_the_watch_between_batches_and_a_second_one_interrupts():
    from musicsim.cli.watch import _stop_on_ctrl_c
    from musicsim.jobs import CancelToken

    stop, cancel = threading.Event(), CancelToken()
    before = signal.getsignal(signal.SIGINT)
    previous = _stop_on_ctrl_c(stop, cancel)
    try:
        signal.raise_signal(signal.SIGINT)  # the first: no exception wherever the program is
        assert stop.is_set() and cancel.cancelled
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # the second: at once
    finally:
        signal.signal(signal.SIGINT, previous)
    assert signal.getsignal(signal.SIGINT) is before

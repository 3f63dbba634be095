"""Watching the library folders: latency from a file landing to it being searchable, and the idle cost.

Latency runs ``musicsim watch`` as a person would (a separate process on a new library over a
generated folder) and polls a read-only Library until the new tracks resolve as analysed:

* one file: a short WAV copied in (renamed into place, as a finished download lands);
* a burst: ``--burst`` WAVs copied in one after another; timed from the last copy.

Idle CPU watches ``LIBRARY`` (or the generated folder) for ``--idle-seconds`` with nothing
changing, in this process: the watcher's timer loop, its folder checks and watchdog's inotify
thread (an idle watch analyses nothing, so the library is not involved), as CPU seconds per
wall second (1.0 = one core).

With ``--idle-process`` the library is scanned into a new database and ``musicsim watch``
itself is timed idle (its process's CPU from /proc, Linux).

    python tests/benchmarks/bench_watch.py [--library LIBRARY [--idle-process]] [--burst 500] [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _wait_searchable(lib, paths: list[str], timeout: float) -> float:
    """Seconds until every path resolves to an analysed track (polled every 20 ms)."""
    start, left = time.perf_counter(), set(paths)
    while left and time.perf_counter() - start < timeout:
        for p in list(left):
            try:
                if lib.resolve(p)[0].status == "ok":
                    left.discard(p)
            except Exception:  # noqa: BLE001 - not there yet
                pass
        if left:
            time.sleep(0.02)
    if left:
        raise SystemExit(f"{len(left)} file(s) not searchable within {timeout:.0f} s")
    return time.perf_counter() - start


def latency(work: Path, burst: int, settle: float) -> None:
    from musicsim.library import Library
    from tests.fixtures.generate import synth, write_audio

    music, staging = work / "music", work / "staging"
    music.mkdir()
    db = work / "lib.db"
    env = {**os.environ, "MUSICSIM_WATCH_SETTLE_SECONDS": str(settle), "MUSICSIM_HOME": str(work / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicsim", "--db", str(db), "watch", str(music)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("watching")
        time.sleep(1.0)
        os.environ["MUSICSIM_HOME"] = str(work / "home")
        lib = Library(db, writable=False)
        for i in range(3):  # the first pays for loading the model and imports in the watching process
            one = write_audio(staging / f"one{i}.wav", synth("chord", seconds=3.0, variant=i))
            os.rename(one, music / one.name)
            t = _wait_searchable(lib, [str(music / one.name)], 300)
            print(f"one file (3 s WAV) #{i + 1} landing -> searchable: {t:.2f} s (settle {settle} s)", flush=True)
            time.sleep(2.0)
        if not burst:
            return
        src = write_audio(staging / "tiny.wav", synth("sine", seconds=0.4))
        (music / "burst").mkdir()
        t0 = time.perf_counter()
        names = []
        for i in range(burst):
            names.append(str(music / "burst" / f"t{i:04d}.wav"))
            shutil.copy(src, names[-1])
        copy_s = time.perf_counter() - t0
        t = _wait_searchable(lib, names, 1800)
        print(f"burst of {burst} (0.4 s WAVs, copied in {copy_s:.2f} s): last copy -> all searchable {t:.1f} s")
        lib.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def idle(root: Path, seconds: float) -> None:
    from musicsim.library.watch import FolderWatch

    fw = FolderWatch([str(root)])
    t0 = time.perf_counter()
    fw.start()
    print(f"watching {root}: {fw.describe()} (started in {time.perf_counter() - t0:.2f} s)")
    stop = threading.Event()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while not stop.wait(0.2):  # the loop of musicsim.library.watch.run, with nothing to apply
        if fw.due():
            print("  (a change arrived during the idle measurement)")
        if time.perf_counter() - wall0 >= seconds:
            break
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    fw.stop()
    print(f"idle watch over {seconds:.0f} s: {cpu:.3f} CPU s = {100 * cpu / wall:.3f} % of one core")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc), its waited-for children included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def idle_process(root: Path, work: Path, seconds: float) -> None:
    """``musicsim watch`` itself, idle over a scanned ``root``: its process's CPU over ``seconds``."""
    db, env = work / "idle.db", {**os.environ, "MUSICSIM_HOME": str(work / "home")}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "musicsim", "--db", str(db), "scan", str(root)], env=env, check=False)
    print(f"scanned {root} in {time.perf_counter() - t0:.0f} s", flush=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicsim", "--db", str(db), "watch"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("watching")
        time.sleep(5.0)
        cpu0, wall0 = _cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(seconds)
        cpu, wall = _cpu_seconds(proc.pid) - cpu0, time.perf_counter() - wall0
        print(f"musicsim watch idle over {wall:.0f} s: {cpu:.2f} CPU s = {100 * cpu / wall:.2f} % of one core")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", help="folder to watch for the idle measurement (default: the generated one)")
    ap.add_argument("--burst", type=int, default=500)
    ap.add_argument("--settle", type=float, default=1.0, help="watch_settle_seconds (the default is 1.0)")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--idle-process", action="store_true", help="also scan --library and time musicsim watch idle")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.skip_latency:
            latency(work, args.burst, args.settle)
        idle(Path(args.library) if args.library else work, args.idle_seconds)
        if args.idle_process and args.library:
            idle_process(Path(args.library), work, args.idle_seconds)


if __name__ == "__main__":
    main()

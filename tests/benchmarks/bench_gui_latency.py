"""How long the GUI's event loop stalls while the app works (a script, not a test).

A 10 ms QTimer probe runs on the main thread; every gap between two ticks beyond 10 ms
is a stall the user would feel. Phases:

``scan``      drop a generated library on the real window and wait until the scan, the
              table reloads and the automatic clustering are done;
``big``       (``--big N``) a synthetic N-track library (tags + random clustered vectors
              written straight into a database): open it, sort by similarity, filter,
              sort by columns, select all, and optionally (``--big-clusters``) cluster it;
``train``     (when ``Library.train`` exists) a short training run from the Training panel;
``startup``   (``--startup RUNS``) launch the app (``musicsim.gui.app.run``, a fresh process each
              run) on a synthetic library of ``--startup-tracks`` tracks and time, from the
              launch: the first paint of the window, the first paint of the table with rows,
              whether the first-run screen was ever painted, torch / scikit-learn loaded by
              then, and the worst stall until the background warm-up is done
              (``--startup-only`` runs this phase alone).

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_gui_latency.py [--files 48] [--big 100000]
    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_gui_latency.py --startup 5 --startup-only

Prints, per phase: duration, max stall, 95th / 99th percentile stall, stalls over 100 ms.
``--trace-stalls`` also names what every thread was doing during each stall (a watchdog
thread samples the Python stacks when the probe is 60 ms late).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class Probe:
    def __init__(self, app, interval_ms: int = 10) -> None:
        from PySide6.QtCore import Qt, QTimer  # noqa: TID251 - a GUI benchmark

        self.interval = interval_ms / 1000
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.last = None
        self.app = app
        self.stage = ""  # what the app last reported (progress stage), to place each stall
        self.stalls: list[tuple[float, float, str]] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            gap = max(0.0, now - self.last - self.interval)
            self.gaps.append(gap)
            if gap > 0.1:
                self.stalls.append((self.last - self.t0, gap, self.stage))
        self.last = now

    def start(self) -> None:
        self.gaps, self.last, self.stalls = [], None, []
        self.t0 = time.perf_counter()
        self.timer.start()

    def stop(self, phase: str) -> dict:
        self.timer.stop()
        g = np.asarray(self.gaps or [0.0]) * 1000
        row = {
            "phase": phase,
            "seconds": time.perf_counter() - self.t0,
            "ticks": len(self.gaps),
            "max_ms": float(g.max()),
            "p95_ms": float(np.percentile(g, 95)),
            "p99_ms": float(np.percentile(g, 99)),
            "over_100ms": int((g > 100).sum()),
        }
        print(
            f"{phase:<34} {row['seconds']:7.1f} s  ticks {row['ticks']:6d}  max {row['max_ms']:7.1f} ms  "
            f"p95 {row['p95_ms']:6.1f} ms  p99 {row['p99_ms']:6.1f} ms  >100 ms: {row['over_100ms']}",
            flush=True,
        )
        for at, gap, stage in self.stalls:
            print(f"    stall {gap * 1000:6.1f} ms at {at:6.2f} s, after progress: {stage or '-'}", flush=True)
        return row


class GcWatch:
    """Times the interpreter's garbage collections: a full collection holds the GIL, so every
    thread (the event loop included) waits for it."""

    def __init__(self) -> None:
        import gc

        self.slow: list[tuple[int, float]] = []
        self._t = 0.0
        gc.callbacks.append(self._cb)

    def _cb(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            d = time.perf_counter() - self._t
            if d > 0.05:
                self.slow.append((info.get("generation", -1), d))

    def report(self) -> None:
        for gen, d in self.slow:
            print(f"    garbage collection of generation {gen}: {d * 1000:.0f} ms", flush=True)
        self.slow = []


class StallTracer:
    """Samples every thread's Python stack while the probe is late, to say what stalls it."""

    def __init__(self, probe: Probe, late_s: float = 0.06) -> None:
        import threading

        self.probe, self.late = probe, late_s
        self.samples: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-tracer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import threading
        import traceback

        names = {}
        while not self._stop.wait(0.02):
            last = self.probe.last
            if last is None or time.perf_counter() - last < self.late:
                continue
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == threading.get_ident():
                    continue
                stack = traceback.extract_stack(frame)[-4:]
                where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack))
                key = f"[{names.get(ident, ident)}] {where}"
                self.samples[key] = self.samples.get(key, 0) + 1

    def report(self, top: int = 8) -> None:
        for key, n in sorted(self.samples.items(), key=lambda kv: -kv[1])[:top]:
            print(f"    {n:4d} x {key}", flush=True)
        self.samples = {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=48, help="generated tracks for the scan phase (default 48)")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each generated track")
    ap.add_argument("--library", help="scan this folder instead of a generated one")
    ap.add_argument("--big", type=int, default=0, help="also run the big-library phase with this many tracks")
    ap.add_argument("--big-clusters", action="store_true", help="cluster the big library too (O(n^2): minutes)")
    ap.add_argument("--train-minutes", type=float, default=0.5)
    ap.add_argument("--trace-stalls", action="store_true", help="sample thread stacks during stalls")
    ap.add_argument("--switch-interval", type=float, help="override the app's GIL switch interval (seconds)")
    ap.add_argument("--startup", type=int, default=0, metavar="RUNS", help="time the app's start-up RUNS times")
    ap.add_argument("--startup-tracks", type=int, default=113, help="tracks of the start-up phase's library")
    ap.add_argument("--startup-only", action="store_true", help="run the start-up phase only")
    ap.add_argument("--startup-child", nargs=2, metavar=("DB", "T0"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.startup_child:
        return startup_child(args.startup_child[0], float(args.startup_child[1]))

    tmp = Path(tempfile.mkdtemp(prefix="musicsim-bench-gui-"))
    os.environ["MUSICSIM_HOME"] = str(tmp / "home")

    from PySide6.QtCore import QEventLoop  # noqa: TID251
    from PySide6.QtWidgets import QApplication  # noqa: TID251

    import musicsim.gui  # noqa: F401 - PySide6 6.12.0 refcount guard

    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    from musicsim.gui.mainwindow import MainWindow
    from musicsim.gui.settings import SettingsStore
    from musicsim.library import Library

    app = QApplication.instance() or QApplication([sys.argv[0]])
    probe = Probe(app)
    tracer = StallTracer(probe) if args.trace_stalls else None
    gcw = GcWatch()
    results = []

    def wait(pred, what: str, timeout: float = 3600) -> None:
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                raise SystemExit(f"timed out waiting for {what}")
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
            time.sleep(0.002)

    def open_window(db: Path) -> tuple[MainWindow, dict]:
        events: dict = {}
        win = MainWindow(db_path=db, settings=SettingsStore(tmp / f"{db.stem}.ini"))
        for sig in (
            "library_opened",
            "scan_finished",
            "clusters_loaded",
            "similarity_done",
            "training_done",
            "tracks_loaded",
        ):
            getattr(win.events, sig).connect(lambda *a, s=sig: events.__setitem__(s, a[0] if a else True))
        win.resize(1280, 800)
        win.show()
        return win, events

    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"platform {os.environ.get('QT_QPA_PLATFORM')}",
        flush=True,
    )
    if args.startup:
        startup(tmp, runs=args.startup, tracks=args.startup_tracks)
        if args.startup_only:
            return 0

    # --- scan -------------------------------------------------------------------------------
    if args.library:
        library = Path(args.library)
    else:
        from tests.fixtures.generate import make_library

        library = tmp / "music"
        make_library(library, per_family=max(1, args.files // 4), seconds=args.seconds)
    n_files = sum(1 for p in library.rglob("*") if p.is_file())
    win, ev = open_window(tmp / "scan" / "library.db")
    probe.start()
    wait(lambda: "library_opened" in ev and win.runner.idle(), "the library to open")
    results.append(probe.stop("open empty library"))
    probe.start()
    win.scanning.add_paths([str(library)])
    wait(lambda: "scan_finished" in ev, "the scan")
    rep = ev["scan_finished"]
    results.append(probe.stop(f"scan {n_files} files ({rep.analysed} analysed)"))
    probe.start()
    wait(lambda: win.runner.idle(), "reload and clustering after the scan")
    results.append(probe.stop("after scan: reload + clusters"))
    gcw.report()
    if tracer:
        tracer.report()

    # --- train ------------------------------------------------------------------------------
    if callable(getattr(Library, "train", None)):
        on_progress = win.ui.training.on_progress

        def note(p) -> None:
            probe.stage = f"{p.stage} {p.done}/{p.total}"
            on_progress(p)

        win.ui.training.on_progress = note
        # as a person does it: open the Training tab (its first showing is timed on its own), then start
        probe.start()
        win.show_training()
        settle = time.monotonic() + 0.5
        wait(lambda: time.monotonic() > settle, "the Training tab")
        results.append(probe.stop("open the Training tab"))
        probe.start()
        win.training_jobs.start_training(args.train_minutes, "auto")
        wait(lambda: "training_done" in ev, "training")
        wait(lambda: win.runner.idle(), "re-embedding after training")
        results.append(probe.stop(f"train {args.train_minutes} min ({ev['training_done']})"))
        gcw.report()
        if tracer:
            tracer.report()
    else:
        print("train: skipped (Library.train is not available yet)")
    win.close()

    # --- big library ------------------------------------------------------------------------
    if args.big:
        db = tmp / "big" / "library.db"
        t0 = time.perf_counter()
        synthesise(db, args.big)
        print(f"synthesised {args.big} tracks in {time.perf_counter() - t0:.1f} s", flush=True)
        win, ev = open_window(db)
        probe.start()
        wait(lambda: "library_opened" in ev and win.runner.idle() and win.model.total == args.big, "the big library")
        results.append(probe.stop(f"open {args.big} tracks"))
        timings = {}
        from PySide6.QtCore import Qt  # noqa: TID251

        from musicsim.gui.tablemodel import COL

        # direct main-thread costs of table operations (each blocks the loop for its duration)
        for key in ("title", "artist", "duration", "genre"):
            t = time.perf_counter()
            win.ui.library_page.table.sortByColumn(COL[key], Qt.SortOrder.AscendingOrder)
            app.processEvents()
            timings[f"sort by {key}"] = time.perf_counter() - t
        for text in ("a", "ar", "art", "artist 12", "artist 123", "artist 123 rock", ""):  # typing, then clearing
            t = time.perf_counter()
            win.model.set_filter(text)
            app.processEvents()
            timings[f"filter {text!r}"] = time.perf_counter() - t
        t = time.perf_counter()
        win.ui.library_page.table.selectAll()
        app.processEvents()
        timings["select all + repaint"] = time.perf_counter() - t
        win.selection.select_tracks([int(win.model.cols.ids[7])])
        probe.start()
        t = time.perf_counter()
        win.organizing.sort_by_similarity()
        wait(lambda: "similarity_done" in ev, "the similarity sort")
        timings["sort by similarity (worker + apply)"] = time.perf_counter() - t
        results.append(probe.stop(f"{args.big} tracks: similarity sort"))
        for k, v in timings.items():
            print(f"    {k:<40} {v * 1000:8.1f} ms")
        if args.big_clusters:
            ev.pop("clusters_loaded", None)
            probe.start()
            win.organizing.compute_clusters()
            wait(lambda: "clusters_loaded" in ev and win.runner.idle(), "clusters of the big library")
            results.append(probe.stop(f"{args.big} tracks: clusters + outliers"))
        win.close()

    worst = max(r["max_ms"] for r in results)
    busy = [r["max_ms"] for r in results if r["phase"].startswith(("scan", "train"))]
    if busy:  # the target: never more than 100 ms while a scan or a training runs
        print(
            f"worst stall during scans and training: {max(busy):.1f} ms "
            f"({'OK' if max(busy) <= 100 else 'over the 100 ms budget'})"
        )
    print(f"worst stall in any phase: {worst:.1f} ms")
    return 0


def startup(tmp: Path, *, runs: int, tracks: int) -> list[dict]:
    """Launch the app ``runs`` times on a synthetic library; print each run and the medians."""
    import json
    import subprocess

    db = tmp / "startup" / "library.db"
    synthesise(db, tracks)
    rows = []
    for i in range(runs):
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, __file__, "--startup-child", str(db), repr(t0)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode or not lines:
            print(out.stdout[-2000:], out.stderr[-4000:], flush=True)
            raise SystemExit("the start-up run failed")
        r = json.loads(lines[-1])
        rows.append(r)
        print(
            f"start-up run {i + 1} ({tracks} tracks): window {r['window_s']:.2f} s, table {r['table_s']:.2f} s, "
            f"first-run screen painted: {r['welcome_painted']}, at the table torch {r['torch_at_table']} "
            f"sklearn {r['sklearn_at_table']}; warm-up done {r['warm_s']:.2f} s; worst stall "
            f"{r['max_stall_ms']:.1f} ms ({r['over_100ms']} over 100 ms), before the table {r['max_stall_table_ms']:.1f} ms",
            flush=True,
        )
    for key in ("window_s", "table_s", "warm_s", "max_stall_ms"):
        vals = [r[key] for r in rows]
        print(
            f"    {key:<14} median {np.median(vals):7.2f}  first run {vals[0]:7.2f}  max {max(vals):7.2f}", flush=True
        )
    return rows


def startup_child(db: str, t0: float) -> int:
    """One launch of the app, timed from ``t0`` (the parent's clock before it started this process)."""
    import json

    from PySide6.QtCore import QEvent, QObject, Qt, QTimer  # noqa: TID251 - a GUI benchmark
    from PySide6.QtWidgets import QApplication  # noqa: TID251

    import musicsim.gui  # noqa: F401
    from musicsim.gui import app as gui_app

    qapp = QApplication.instance() or QApplication([sys.argv[0]])  # run() reuses it
    res: dict = {"welcome_painted": False, "window_s": None, "table_s": None}
    state: dict = {"win": None, "idle_since": None}
    gaps: list[tuple[float, float]] = []  # (when, gap)
    last = [None]

    def now() -> float:
        return time.time() - t0

    class Watch(QObject):
        def eventFilter(self, obj, ev):  # noqa: N802
            if ev.type() == QEvent.Type.Paint:
                name = type(obj).__name__
                if res["window_s"] is None and obj.isWindow() and name == "MainWindow":
                    res["window_s"] = now()
                    state["win"] = obj
                if name == "WelcomePage":
                    res["welcome_painted"] = True
                win = state["win"]
                if (
                    res["table_s"] is None
                    and win is not None
                    and obj is win.ui.library_page.table.viewport()
                    and win.model.rowCount() > 0
                ):
                    res["table_s"] = now()
                    res["torch_at_table"] = "torch" in sys.modules
                    res["sklearn_at_table"] = "sklearn" in sys.modules
            return False

    def tick() -> None:
        t = time.perf_counter()
        if last[0] is not None:
            gaps.append((now(), max(0.0, t - last[0] - 0.01)))
        last[0] = t
        win = state["win"]
        if win is None or res["table_s"] is None:
            return
        if not win.runner.idle():
            state["idle_since"] = None
        elif state["idle_since"] is None:
            state["idle_since"] = t
        elif t - state["idle_since"] > 1.0 or now() > 120:
            res["warm_s"] = now() - 1.0
            res["torch_at_end"] = "torch" in sys.modules
            win.close()

    watch = Watch()
    qapp.installEventFilter(watch)
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    QTimer.singleShot(0, timer.start)
    settings = Path(db).with_suffix(".ini")
    rc = gui_app.run(["--db", db, "--settings", str(settings)])
    g = [gap for _, gap in gaps]
    before = [gap for at, gap in gaps if res["table_s"] is not None and at <= res["table_s"]]
    res.update(
        rc=rc,
        max_stall_ms=1000 * max(g or [0.0]),
        over_100ms=sum(x > 0.1 for x in g),
        max_stall_table_ms=1000 * max(before or [0.0]),
    )
    print(json.dumps(res), flush=True)
    return 0


def synthesise(db: Path, n: int, *, seed: int = 0) -> None:
    """N tracks with tags and clustered unit vectors, written in bulk (no audio)."""
    from sqlalchemy import insert  # noqa: TID251 - benchmark set-up, not GUI code

    from musicsim.library import Library
    from musicsim.store.schema import Embedding, Meta, Track

    rng = np.random.default_rng(seed)
    with Library(db) as lib:
        mid = lib.model_row.id
        dim = lib.loaded.config.track_dim
        centres = rng.normal(size=(24, dim))
        genres = ["rock", "jazz", "ambient", "techno", "folk", "classical", "hip hop", "metal", ""]
        now = time.time()
        with lib.db.session() as s:
            for start in range(0, n, 5000):
                stop = min(n, start + 5000)
                tracks, embs = [], []
                for i in range(start, stop):
                    a = int(rng.integers(0, max(1, n // 12)))
                    tracks.append(
                        {
                            "id": i + 1,
                            "path": f"/synthetic/artist {a}/album {i // 11}/track {i}.mp3",
                            "size": 4_000_000,
                            "mtime": now,
                            "format": "mp3",
                            "duration": float(rng.uniform(90, 420)),
                            "title": f"Track {i} {rng.integers(1e6)}",
                            "artist": f"Artist {a}",
                            "album": f"Album {i // 11}",
                            "genre": genres[i % len(genres)],
                            "status": "ok",
                            "extra": {},
                            "degraded": False,
                        }
                    )
                    v = centres[i % 24] + 0.6 * rng.normal(size=dim)
                    v = (v / np.linalg.norm(v)).astype(np.float32)
                    embs.append(
                        {
                            "track_id": i + 1,
                            "model_id": mid,
                            "dim": dim,
                            "vector": v.tobytes(),
                            "n_segments": 1,
                            "segments": v.astype(np.float16).tobytes(),
                            "segment_starts": np.zeros(1, np.float32).tobytes(),
                            "seq": i + 1,
                        }
                    )
                s.execute(insert(Track), tracks)
                s.execute(insert(Embedding), embs)
            s.merge(Meta(key="embedding_seq", value=str(n)))


if __name__ == "__main__":
    sys.exit(main())

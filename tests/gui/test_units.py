"""Unit tests of the GUI's building blocks: worker helper, table model at 100k rows, map geometry."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableView

from musicsim.errors import Cancelled
from musicsim.gui.backend import ClusterData, TrackColumns
from musicsim.gui.clustermap import ClusterMap, points_in_polygon
from musicsim.gui.tablemodel import COL, TrackTableModel
from musicsim.gui.workers import JobRunner
from musicsim.jobs import Progress

pytestmark = pytest.mark.gui


def synthetic(n: int, start: int = 1) -> TrackColumns:
    rng = np.random.default_rng(0)
    rows = [
        (
            i,
            f"Title {rng.integers(1e6)}",
            f"Artist {i % 997}",
            f"Album {i % 5003}",
            ("rock", "jazz", "")[i % 3],
            float(rng.uniform(60, 400)),
            "mp3",
            f"/music/a{i % 997}/t{i}.mp3",
            None,
        )
        for i in range(start, start + n)
    ]
    return TrackColumns.from_rows(rows)


# --- workers ---------------------------------------------------------------------------------


def test_job_result_and_error_arrive_on_the_main_thread(qtbot):
    runner = JobRunner()
    main = threading.get_ident()
    seen = {}

    def work():
        seen["worker"] = threading.get_ident()
        return 42

    job = runner.submit(work, name="answer", on_result=lambda r: seen.update(result=r, thread=threading.get_ident()))
    with qtbot.waitSignal(job.done, timeout=5000):
        pass
    assert seen["result"] == 42 and seen["thread"] == main and seen["worker"] != main

    errors = []
    job = runner.submit(lambda: 1 / 0, name="boom", on_error=errors.append)
    with qtbot.waitSignal(job.done, timeout=5000):
        pass
    assert isinstance(errors[0].original, ZeroDivisionError) and "ZeroDivisionError" in errors[0].traceback
    assert runner.idle()


def test_progress_is_throttled_and_cancel_reaches_the_job(qtbot):
    runner = JobRunner()
    received = []
    started = threading.Event()

    def work(progress, cancel):
        started.set()
        for i in range(1_000_000):
            progress(Progress("count", i, 0))
            cancel.check()
            if i % 1000 == 0:
                time.sleep(0.001)
        return "not cancelled"

    job = runner.submit(work, name="spin", long=True, on_progress=received.append)
    qtbot.wait(600)
    job.cancel()
    with qtbot.waitSignal(job.cancelled, timeout=5000):
        pass
    assert started.is_set()
    assert 1 <= len(received) <= 12  # ~10 per second, not one per call
    assert received[-1].done > received[0].done


def test_synchronous_mode_and_exclusive_lane_busy_flag(qtbot):
    runner = JobRunner(synchronous=True)
    busy = []
    runner.busy_changed.connect(busy.append)
    out = []
    runner.submit(
        lambda progress, cancel: progress(Progress("x", 1, 1)) or "done",
        name="sync",
        lane="exclusive",
        long=True,
        on_result=out.append,
    )
    assert out == ["done"] and busy == [True, False]

    def cancelled(progress, cancel):
        raise Cancelled("stop")

    flags = []
    runner.submit(cancelled, name="c", long=True, on_cancelled=lambda: flags.append("cancelled"))
    assert flags == ["cancelled"]


# --- table model -----------------------------------------------------------------------------


def exercise_table_at_100k_rows(qtbot) -> dict[str, float]:
    """Sort, filter, grow and paint a 100,000-row table, checking each result; return the seconds each took."""
    model = TrackTableModel()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.verticalHeader().hide()
    view.resize(900, 600)
    view.show()
    cols = synthetic(100_000).prepare()  # the loader does this in its worker
    t0 = time.perf_counter()
    model.set_tracks(cols)
    assert model.rowCount() == 100_000
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    model.sort(COL["title"], Qt.SortOrder.AscendingOrder)
    t_sort = time.perf_counter() - t0
    titles = [model.data(model.index(r, COL["title"])) for r in range(200)]
    assert titles == sorted(titles, key=str.casefold)

    model.sort(COL["duration"], Qt.SortOrder.DescendingOrder)
    d = model.cols.duration[model.view]
    assert np.all(np.diff(d) <= 0)

    t0 = time.perf_counter()
    model.set_filter("artist 996 jazz")
    t_filter = time.perf_counter() - t0
    assert 0 < model.rowCount() < 1000
    for r in range(model.rowCount()):
        text = " ".join(model.data(model.index(r, c)) for c in range(6)) + " " + model.cols.path[model.view[r]]
        assert all(t in text.casefold() for t in ("artist", "996", "jazz"))
    model.set_filter("")

    # a selection survives re-sorting (persistent indexes are remapped by track id)
    row = model.row_of_id(12345)
    view.selectRow(row)
    model.sort(COL["artist"], Qt.SortOrder.AscendingOrder)
    sel = view.selectionModel().selectedRows()
    assert [model.id_at(i.row()) for i in sel] == [12345]

    # a scan's batch arriving while the table is sorted by a text column
    batch = synthetic(2000, start=100_001).prepare()
    merged = model.cols.extended(batch)  # the window does this in the refresh worker
    t0 = time.perf_counter()
    added = model.add_tracks(batch, merged=merged)
    t_add = time.perf_counter() - t0
    assert added == 2000 and model.rowCount() == 102_000
    artists = [model.cols.artist[p].casefold() for p in model.view]
    assert artists == sorted(artists, key=lambda a: (a == "", a))
    assert [model.id_at(i.row()) for i in view.selectionModel().selectedRows()] == [12345]

    t0 = time.perf_counter()
    view.scrollToBottom()
    qtbot.wait(10)
    view.viewport().repaint()
    t_paint = time.perf_counter() - t0
    return {"load": t_load, "sort": t_sort, "filter": t_filter, "add": t_add, "paint": t_paint}


def test_table_model_sorts_filters_and_grows_at_100k_rows(qtbot):
    exercise_table_at_100k_rows(qtbot)


@pytest.mark.perf
def test_table_model_at_100k_rows_is_fast_enough_to_feel_instant(qtbot):
    t = exercise_table_at_100k_rows(qtbot)
    print("100k rows: " + " ".join(f"{k} {v:.3f}s" for k, v in t.items()))
    assert t["load"] < 0.3 and t["sort"] < 0.3 and t["filter"] < 0.5 and t["add"] < 0.3 and t["paint"] < 0.5


def test_similarity_sort_puts_seeds_first_then_ascending_distance(qtbot):
    model = TrackTableModel()
    model.set_tracks(synthetic(50))
    ids = model.cols.ids
    seed = int(ids[10])
    others = np.array([i for i in ids if i != seed])
    dist = np.linspace(0.5, 0.0, len(others))  # reversed on purpose
    model.set_similarity([seed], others, dist)
    assert model.id_at(0) == seed
    assert model.data(model.index(0, COL["distance"])) == "seed"
    shown = [float(model.data(model.index(r, COL["distance"]))) for r in range(1, 50)]
    assert shown == sorted(shown)
    model.clear_similarity()
    assert not model.has_similarity and model.id_at(0) == int(ids[0])


# --- cluster map -----------------------------------------------------------------------------


def test_points_in_polygon():
    px = np.array([0.5, 2.0, 0.1, 0.9])
    py = np.array([0.5, 0.5, 0.9, 0.1])
    square = np.array([(0, 0), (1, 0), (1, 1), (0, 1)], dtype=float)
    assert points_in_polygon(px, py, square).tolist() == [True, False, True, True]


def exercise_cluster_map_at_100k_points(qtbot) -> float:
    """Draw, zoom and lasso 100,000 points, checking each result; return the seconds the first paint took."""
    n = 100_000
    rng = np.random.default_rng(1)
    data = ClusterData(
        ids=np.arange(1, n + 1),
        cluster=rng.integers(0, 8, n),
        x=rng.normal(size=n),
        y=rng.normal(size=n),
        outlier=rng.normal(size=n),
        names={i: f"c{i}" for i in range(8)},
    )
    m = ClusterMap()
    qtbot.addWidget(m)
    m.resize(800, 600)
    m.show()
    m.set_data(data)
    assert m.point_count() == n and len(m.clusters()) == 8
    t0 = time.perf_counter()
    m.grab()  # renders through paintEvent
    t_paint = time.perf_counter() - t0
    centre = m.screen_pos(1)
    m.zoom(2.0, centre)
    after = m.screen_pos(1)
    assert abs(after.x() - centre.x()) < 1e-6 and abs(after.y() - centre.y()) < 1e-6  # zoom keeps the cursor's point
    with qtbot.waitSignal(m.selection_changed) as sig:
        m.lasso_select([(0, 0), (800, 0), (800, 600), (0, 600)])
    assert 0 < len(sig.args[0]) < n  # zoomed in: only what is on screen
    return t_paint


def test_cluster_map_draws_large_libraries_and_zooms(qtbot):
    exercise_cluster_map_at_100k_points(qtbot)


@pytest.mark.perf
def test_cluster_map_paints_100k_points_within_a_second(qtbot):
    t_paint = exercise_cluster_map_at_100k_points(qtbot)
    print(f"paint 100k points: {t_paint:.3f}s")
    assert t_paint < 1.0


def test_filter_narrowing_while_typing_matches_a_fresh_search(qtbot):
    model = TrackTableModel()
    model.set_tracks(synthetic(20_000).prepare())
    for text in ("artist 9", "artist 99", "artist 995 r", "artist 995 ro"):
        model.set_filter(text)
        narrowed = set(model.ids_in_view().tolist())
        fresh = TrackTableModel()
        fresh.set_tracks(model.cols)
        fresh.set_filter(text)
        assert narrowed == set(fresh.ids_in_view().tolist()) and narrowed


def test_training_panel_names_each_stage(qtbot):
    from musicsim.gui.training import STAGE_TITLES, TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.on_progress(Progress("related", 0, 0, "120 tracks"))
    assert panel.labels["stage"].text() == "Finding tracks that already sound alike: 120 tracks"
    panel.on_progress(Progress("train", 3, 10, "epoch 1", eta_s=30.0))
    assert panel.labels["stage"].text() == "Training: epoch 1" and panel.bar.value() == 3
    panel.on_progress(Progress("something-new", 0, 0))  # a stage the panel does not know keeps its key
    assert panel.labels["stage"].text() == "something-new"
    assert all(t and t[0].isupper() for t in STAGE_TITLES.values())
    # a very long detail (a file name) does not re-lay out the panel
    panel.resize(900, 500)
    panel.show()
    qtbot.waitExposed(panel)
    groups = [panel.bar.parentWidget(), panel.start.parentWidget()]
    widths = [g.width() for g in groups]
    panel.on_progress(Progress("reembed", 1, 500, "a very long file name " * 12 + ".mp3"))
    qtbot.wait(50)
    assert [g.width() for g in groups] == widths
    assert panel.labels["stage"].toolTip().endswith(".mp3")


def test_training_panel_offers_until_it_stops_improving(qtbot):
    from musicsim.gui.training import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.minutes.setValue(12.0)
    with qtbot.waitSignal(panel.start_requested) as sig:
        panel.start.click()
    assert sig.args == [12.0, "auto", False]
    panel.mode.setCurrentIndex(1)  # the limit has its own figure, and the budget comes back after
    assert panel.minutes_label.text() == "At most" and panel.minutes.value() == 60.0
    with qtbot.waitSignal(panel.start_requested) as sig:
        panel.start.click()
    assert sig.args == [60.0, "auto", True]
    panel.mode.setCurrentIndex(0)
    assert panel.minutes_label.text() == "Time budget" and panel.minutes.value() == 12.0
    # the time left of such a run: the limit's until it can be estimated, then both, then the cool-down's
    eta = panel.labels["eta"]
    panel.on_progress(Progress("train", 5, 0, "epoch 1", eta_s=None, info={"eta_max": 3000.0, "cooling": False}))
    assert eta.text().startswith("at most 50") and "estimate follows" in eta.text()
    panel.on_progress(Progress("train", 9, 20, "epoch 2", eta_s=240.0, info={"eta_max": 2900.0, "cooling": False}))
    assert eta.text().startswith("about 4") and "at most 48" in eta.text()
    panel.on_progress(Progress("train", 9, 20, "epoch 2", eta_s=2900.0, info={"eta_max": 2900.0, "cooling": False}))
    assert "still improving" in eta.text()
    panel.on_progress(Progress("train", 18, 20, "epoch 2", eta_s=30.0, info={"eta_max": 2800.0, "cooling": True}))
    assert "finishing" in eta.text()
    # the re-embedding after it has a time left of its own (the merged info still holds eta_max)
    panel.on_progress(Progress("reembed", 1, 10, "a.ogg", eta_s=90.0, info={"eta_max": 2800.0, "cooling": True}))
    assert "finishing" not in eta.text() and "1" in eta.text()


def test_loss_curve_takes_points_from_training_only(qtbot):
    from musicsim.gui.training import TrainingPanel

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.on_progress(Progress("train", 5, 10, "epoch 1", info={"loss": 0.5}))
    panel.on_progress(Progress("validate", 5, 10, "epoch 1", info={"loss": 0.5, "held_out_loss": 0.4, "val_step": 5}))
    # what the GUI delivers during re-embedding: the job's merged info still holds the last loss
    panel.on_progress(Progress("reembed", 60, 113, "a.ogg", info={"loss": 0.5, "held_out_loss": 0.4, "val_step": 5}))
    assert [x for x, _ in panel.curve.loss] == [5.0, 5.0] and panel.curve.val_loss == [(5.0, 0.4)]
    # the loss the trainer names as the one it watches is what the panel shows, whichever losses
    # the report also carries (the panel does not choose among them)
    info = {"val_loss": 0.0, "val_all": 1e-5, "val_nce": 1.5, "held_out_loss": 1.5, "val_step": 9}
    panel.on_progress(Progress("validate", 9, 10, "epoch 3", info=info))
    assert panel.curve.val_loss[-1] == (9.0, 1.5) and panel.labels["val_loss"].text() == "1.5000"
    info = {"val_loss": 0.7, "val_acc": 0.5, "val_step": 10}  # no watched loss: no point, no label change
    panel.on_progress(Progress("validate", 10, 10, "epoch 4", info=info))
    assert panel.curve.val_loss[-1] == (9.0, 1.5) and panel.labels["val_loss"].text() == "1.5000"

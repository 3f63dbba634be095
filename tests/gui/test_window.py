"""The main window end to end: real SQLite library, real decoding, offscreen Qt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QApplication

from musicsim.gui.about import about_text
from musicsim.gui.mainwindow import MainWindow
from musicsim.gui.settings import SettingsDialog, SettingsStore
from musicsim.gui.tablemodel import COL
from musicsim.library import Library
from tests.gui.conftest import family_of, wait_idle

pytestmark = pytest.mark.gui


def drop(win: MainWindow, *paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = QPoint(win.width() // 2, win.height() // 2)
    enter = QDragEnterEvent(
        centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted()
    event = QDropEvent(
        QPointF(centre), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(win, event)


def test_empty_library_shows_the_first_run_screen(make_window):
    win = make_window()
    assert win.ui.stack.currentWidget() is win.ui.welcome
    assert win.model.total == 0
    assert any(
        "Drop music folders" in w.text() for w in win.ui.welcome.findChildren(type(win.ui.library_page.count_label))
    )
    assert win.ui.welcome.button.isEnabled()
    # actions that need tracks fail politely, no dialog
    assert win.organizing.sort_by_similarity() is None
    assert "Select" in win.statusBar().currentMessage()
    assert "musicsim" in about_text(win.session.status) and "Qt" in about_text(win.session.status)


def test_dropping_folders_scans_them_fills_the_table_and_lists_failures(qtbot, make_window, family_library, tmp_path):
    from tests.fixtures.generate import make_bad_files

    root, families = family_library
    bad = make_bad_files(tmp_path / "bad")
    win = make_window()
    with qtbot.waitSignal(win.events.scan_finished, timeout=180_000) as done:
        drop(win, root, tmp_path / "bad")  # two folders in one drop
        assert win.scanning.scan_job is not None and win.jobs.widget.isVisible()
        assert win.ui.stack.currentWidget() is win.ui.splitter  # the table shows while the scan runs
    rep = done.args[0]
    assert rep.analysed >= len(families) and not rep.cancelled and rep.failures
    qtbot.waitUntil(lambda: set(families) <= set(win.model.cols.path), timeout=30_000)
    wait_idle(qtbot, win)
    assert not win.jobs.widget.isVisible()
    assert str(root) in win.session.roots and str(tmp_path / "bad") in win.session.roots
    titles = {win.model.data(win.model.index(r, COL["title"])) for r in range(win.model.rowCount())}
    assert "sine 0" in titles

    # failures: a status-bar button and a dialog with one line per file and its reason
    assert win.ui.failures_button.isVisible() and "failed" in win.ui.failures_button.text()
    win.ui.failures_button.click()
    qtbot.waitUntil(
        lambda: win.scanning.failures_dialog is not None and win.scanning.failures_dialog.isVisible(), timeout=10_000
    )
    table = win.scanning.failures_dialog.table
    listed = {table.item(r, 0).text(): table.item(r, 2).text() for r in range(table.rowCount())}
    for path, kind in bad.items():
        if kind in ("empty", "text", "png"):
            assert listed.get(str(path)), (kind, listed)
    win.scanning.failures_dialog.close()

    # files disappear under the app: a rescan marks them missing, the table follows, no dialogs
    total = win.model.total
    gone = [p for p, fam in families.items() if fam == "noise"][:2]
    for p in gone:
        os.remove(p)
    with qtbot.waitSignal(win.events.scan_finished, timeout=120_000) as done:
        win.ui.act_rescan.trigger()
    assert done.args[0].missing == 2
    qtbot.waitUntil(lambda: win.model.total == total - 2, timeout=30_000)
    assert not set(gone) & set(win.model.cols.path)
    wait_idle(qtbot, win)
    assert not [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.inherits("QDialog")]
    # "Forget missing tracks" forgets them and frees their cached log-Mel frames
    win.ui.act_purge.trigger()
    qtbot.waitUntil(lambda: "Forgot 2 tracks" in win.statusBar().currentMessage(), timeout=30_000)
    assert "freed" in win.statusBar().currentMessage()
    wait_idle(qtbot, win)


def test_cancel_stops_a_scan_and_rows_appear_while_it_runs(qtbot, make_window, tmp_path):
    import time as _time

    from tests.fixtures.generate import make_library

    root = tmp_path / "big"
    files = make_library(root, per_family=4, seconds=8.0, formats=(".wav", ".flac"))
    win = make_window()
    real_scan = win.session.backend.scan

    def slow_scan(paths, *, progress=None, cancel=None, **kw):
        """The real scan, held back a little per track so that the cancel lands mid-scan on any machine."""

        def slow(p):
            progress(p)
            if p.stage == "scan" and p.done:
                _time.sleep(0.4)

        return real_scan(paths, progress=slow, cancel=cancel, **kw)

    win.session.backend.scan = slow_scan
    counts = []
    win.events.tracks_loaded.connect(lambda: counts.append(win.model.total))
    job = win.scanning.add_paths([str(root)])
    assert job is not None
    qtbot.waitUntil(lambda: win.model.total >= 2, timeout=120_000)  # incremental refresh during the scan
    assert win.scanning.scan_job is not None
    with qtbot.waitSignal(win.events.scan_finished, timeout=60_000) as done:
        win.jobs.cancel_button.click()
    rep = done.args[0]
    assert rep.cancelled
    wait_idle(qtbot, win)
    assert 2 <= win.model.total < len(files)
    assert counts and counts[0] < len(files)
    assert "cancelled" in win.statusBar().currentMessage().lower()


def test_sort_by_similarity_reorders_rows(qtbot, window_on_scanned):
    win, _root, families = window_on_scanned
    assert win.ui.act_similar.shortcut() == QKeySequence("Ctrl+Shift+S")
    hits = 0
    for family in ("sine", "noise", "chord", "clicks"):
        seed = next(int(i) for i, p in zip(win.model.cols.ids, win.model.cols.path) if families[p] == family)
        win.selection.select_tracks([seed])
        with qtbot.waitSignal(win.events.similarity_done, timeout=30_000):
            win.ui.act_similar.trigger()
        m = win.model
        assert m.id_at(0) == seed and m.data(m.index(0, COL["distance"])) == "seed"
        dist = [float(m.data(m.index(r, COL["distance"]))) for r in range(1, m.rowCount())]
        assert dist == sorted(dist) and len(dist) == len(families) - 1
        assert not win.ui.library_page.table.isColumnHidden(COL["distance"])
        assert win.selection.selected_ids() == [seed]
        top = [family_of(win, families, m.id_at(r)) for r in (1, 2)]
        hits += sum(f == family for f in top)
    assert hits >= 6, hits  # of 8: the two nearest tracks are mostly of the seed's family
    assert win.ui.library_page.similar_bar.isVisible()
    win.organizing.clear_similarity()
    assert win.ui.library_page.table.isColumnHidden(COL["distance"]) and not win.model.has_similarity


def test_make_playlist_reorder_smooth_and_export(qtbot, window_on_scanned, tmp_path):
    win, _root, families = window_on_scanned
    seed = int(win.model.cols.ids[0])
    with qtbot.waitSignal(win.events.playlists_loaded, timeout=30_000):
        with qtbot.waitSignal(win.events.playlist_made, timeout=30_000):
            win.organizing.make_playlist([seed], n=6, no_same_artist=0, smooth=True, name="Test list")
    panel = win.ui.playlist_panel
    qtbot.waitUntil(lambda: panel.tracks.count() == 6, timeout=30_000)
    assert panel.list.count() == 1 and "Test list" in panel.list.item(0).text()
    ids = panel.tracks.track_ids()
    assert seed not in ids and len(set(ids)) == 6

    # drag-reorder (what an internal move does) is saved
    panel.tracks.move_row(0, 3)
    new_order = panel.tracks.track_ids()
    assert new_order == ids[1:4] + ids[:1] + ids[4:]
    wait_idle(qtbot, win)
    stored = [t[0] for t in win.session.backend.playlist_tracks(panel.current_pid)]
    assert stored == new_order

    # smooth order keeps the same tracks
    panel.smooth_button.click()
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: panel.tracks.count() == 6, timeout=10_000)
    assert sorted(panel.tracks.track_ids()) == sorted(ids)

    out = tmp_path / "out" / "list.m3u8"
    out.parent.mkdir()
    exported = []
    panel.export_to(str(out), on_done=exported.append)
    qtbot.waitUntil(lambda: bool(exported), timeout=10_000)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    listed = [ln for ln in lines if ln and not ln.startswith("#")]
    want = [win.model.track(i)["path"] for i in panel.tracks.track_ids()]
    assert [os.path.abspath(p) for p in listed] == want
    xspf = tmp_path / "out" / "list.xspf"
    panel.export_to(str(xspf), on_done=exported.append)
    qtbot.waitUntil(lambda: len(exported) == 2, timeout=10_000)
    assert xspf.read_text(encoding="utf-8").count("<track>") == 6

    # import it back as a second playlist
    with qtbot.waitSignal(win.events.playlists_loaded, timeout=30_000):
        panel.import_from(str(out))
    assert panel.list.count() == 2


def test_cluster_map_shows_one_point_per_track_and_selects(qtbot, window_on_scanned):
    win, _root, families = window_on_scanned
    assert win.ui.cluster_page.map.point_count() == 0  # never computed: the map says how to get one
    win.ui.tabs.setCurrentWidget(win.ui.cluster_page)
    win.ui.cluster_page.k_spin.setValue(4)
    with qtbot.waitSignal(win.events.clusters_loaded, timeout=60_000):
        win.ui.cluster_page.compute_button.click()
    cmap = win.ui.cluster_page.map
    assert cmap.point_count() == win.model.total == len(families)
    assert sorted(cmap.data.ids.tolist()) == sorted(win.model.cols.ids.tolist())
    assert win.ui.cluster_page.legend.count() == len(cmap.clusters()) == 4
    assert all(win.model.data(win.model.index(r, COL["cluster"])) for r in range(win.model.rowCount()))

    # hover shows the track, a click selects it in the table, a lasso selects many
    tid = int(cmap.data.ids[0])
    pos = cmap.screen_pos(tid)
    assert win.model.track(tid)["title"] in cmap.describe(tid)
    qtbot.mouseMove(cmap, pos.toPoint())
    qtbot.mouseClick(cmap, Qt.MouseButton.LeftButton, pos=pos.toPoint())
    qtbot.waitUntil(lambda: win.selection.selected_ids() == [tid], timeout=5000)
    w, h = cmap.width(), cmap.height()
    cmap.lasso_select([(0, 0), (w, 0), (w, h), (0, h)])
    assert sorted(win.selection.selected_ids()) == sorted(win.model.cols.ids.tolist())
    # legend click selects a cluster's tracks
    win.ui.cluster_page.legend.itemClicked.emit(win.ui.cluster_page.legend.item(0))
    c0 = int(win.ui.cluster_page.legend.item(0).data(Qt.ItemDataRole.UserRole))
    assert sorted(win.selection.selected_ids()) == sorted(cmap.data.ids[cmap.data.cluster == c0].tolist())
    # zoom with the wheel keeps working without errors
    cmap.zoom(2.0)
    cmap.fit()

    # outliers view is filled, ranked by score with a reason
    wait_idle(qtbot, win)
    table = win.ui.outlier_panel.table
    qtbot.waitUntil(lambda: table.rowCount() > 0, timeout=10_000)
    scores = [float(table.item(r, 0).text()) for r in range(table.rowCount())]
    assert scores == sorted(scores, reverse=True)
    assert "centre" in table.item(0, 4).text()


def test_a_library_another_musicsim_writes_opens_read_only_without_training(make_window, scanned_db):
    db, _root, families = scanned_db
    holder = Library(db)  # another musicsim holds the writer lock
    try:
        before = db.read_bytes()
        win = make_window(db)
        assert not win.session.backend.writable and win.model.total == len(families)
        assert not win.ui.training.start.isEnabled()
        assert "read-only" in win.ui.training.message.text()
        assert win.training_jobs.start_training(0.1, "cpu") is None and win.training_jobs.train_job is None
        assert not win.ui.act_add_folder.isEnabled() and not win.ui.act_rescan.isEnabled()
        others = [a for a in win.ui.model_group.actions() if not a.isChecked()]
        assert all(not a.isEnabled() and "read-only" in a.toolTip() for a in others)
        win.close()
        assert db.read_bytes() == before
    finally:
        holder.close()


def test_training_panel_runs_and_cancels(qtbot, window_on_scanned):
    win, _root, _families = window_on_scanned
    panel = win.ui.training
    assert panel.start.isEnabled(), panel.message.text()
    models_before = len(win.session.status.get("models", []))
    with qtbot.waitSignal(win.events.training_done, timeout=300_000) as done:
        win.training_jobs.start_training(0.4, "cpu")
    assert done.args[0] == "finished", panel.message.text()
    assert panel.curve.point_count() > 0 and panel.labels["device"].text() not in ("–", "")
    assert panel.labels["stage"].text() == "finished" and panel.bar.value() == panel.bar.maximum()
    wait_idle(qtbot, win)
    assert len(win.session.status.get("models", [])) == models_before + 1

    with qtbot.waitSignal(win.events.training_done, timeout=120_000) as done:
        win.training_jobs.start_training(5.0, "cpu")
        QTimer.singleShot(3000, panel.cancel.click)
    assert done.args[0] == "cancelled"
    assert panel.labels["stage"].text() == "cancelled" and panel.bar.value() == 0

    # until it stops improving, within 0.3 min: the panel shows the limit's time left, and the
    # run cools down at 80 % of the limit if the held-out loss is still falling
    shown = []
    panel.labels["eta"].setText = lambda text, f=panel.labels["eta"].setText: (shown.append(text), f(text))
    panel.mode.setCurrentIndex(1)
    panel.minutes.setValue(0.3)
    with qtbot.waitSignal(win.events.training_done, timeout=300_000) as done:
        panel.start.click()
    assert done.args[0] == "finished", panel.message.text()
    assert any("at most" in t or "finishing" in t for t in shown), shown
    wait_idle(qtbot, win)
    assert len(win.session.status.get("models", [])) == models_before + 2


def test_midi_preview_renders_a_wav(tmp_path):
    import soundfile

    from musicsim.gui.preview import render_midi_to_wav
    from tests.fixtures.generate import write_midi

    mid = write_midi(tmp_path / "a.mid", seconds=2.0)
    wav = render_midi_to_wav(str(mid), str(tmp_path), None)
    info = soundfile.info(wav)
    assert info.samplerate == 22050 and info.duration > 1.0


def test_preview_is_disabled_with_a_reason_without_qtmultimedia(make_window):
    win = make_window()
    if win.preview.available:
        pytest.skip("QtMultimedia is installed here")
    assert not win.ui.act_play.isEnabled()
    assert "QtMultimedia" in win.ui.act_play.toolTip()


def test_settings_and_window_state_persist_across_restarts(qtbot, make_window, tmp_path):
    ini = tmp_path / "persist.ini"
    win = make_window(settings=ini)
    dlg = SettingsDialog(
        win.settings,
        roots=[],
        models=win.session.status.get("models", []),
        can_switch_model=win.session.backend.writable,
        parent=win,
    )
    assert set(dlg.editors) >= {"soundfont", "device", "analysis_windows", "rescan_on_start"}
    assert not dlg.editors["workers"].isEnabled()  # MUSICSIM_WORKERS is set by the test environment
    dlg.set_values({"analysis_windows": 4, "window_seconds": 5.0, "device": "cpu", "soundfont": "/x/y.sf2"})
    dlg.save()
    win.apply_settings()
    assert win.session.config.analysis_windows == 4 and win.session.backend.lib.config.analysis_windows == 4
    win.resize(1111, 777)
    win.ui.tabs.setCurrentWidget(win.ui.outlier_panel)
    win.close()

    win2 = make_window(settings=ini)
    cfg = win2.session.config
    assert (cfg.analysis_windows, cfg.window_seconds, cfg.device, cfg.soundfont) == (4, 5.0, "cpu", "/x/y.sf2")
    assert (win2.width(), win2.height()) == (1111, 777) or win2.settings.bytes("window/geometry") is not None
    assert win2.ui.tabs.currentWidget() is win2.ui.outlier_panel
    assert SettingsStore(ini).value("window/tab") == "Outliers"  # by name, so a new tab does not shift it
    assert "workers" not in SettingsStore(ini).stored()
    text = Path(ini).read_text()
    assert "analysis_windows=4" in text


def test_run_opens_the_app_and_returns_when_closed(qtbot, tmp_path):
    from musicsim.gui import app as gui_app

    closed = []

    def close_when_ready():
        wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if wins and wins[-1].session.ready and wins[-1].runner.idle():
            closed.append(wins[-1].ui.stack.currentWidget() is wins[-1].ui.welcome)
            wins[-1].close()
        else:
            QTimer.singleShot(100, close_when_ready)

    QTimer.singleShot(100, close_when_ready)
    rc = gui_app.run(["--db", str(tmp_path / "run" / "library.db"), "--settings", str(tmp_path / "run.ini")])
    assert rc == 0 and closed == [True]


def test_training_panel_shows_progress_and_cancels_with_a_stand_in_trainer(qtbot, window_on_scanned):
    """The panel's wiring (live curve, device, ETA, cancel, model refresh) with a fake Library.train."""
    import time as _time

    from musicsim.jobs import Progress

    win, _root, _families = window_on_scanned
    calls = []

    def fake_train(*, minutes, device="auto", progress=None, cancel=None, **options):
        calls.append((minutes, device))
        for step in range(1, 400):
            if cancel is not None and cancel.cancelled:
                return {"cancelled": True}
            info = {"loss": 1.0 / step, "epoch": step / 100, "device": "CPU (stand-in)"}
            if step % 20 == 0:
                info.update(held_out_loss=1.2 / step, val_acc=min(0.99, 0.5 + step / 800))
            progress(Progress("train", step, 400, f"epoch {step / 100:.2f}", eta_s=(400 - step) * 0.005, info=info))
            _time.sleep(0.005)
        return {"name": "stand-in", "cancelled": False}

    win.session.backend.lib.train = fake_train  # instance attribute: the real Library is untouched
    win.ui.training.set_available(True)
    win.update_actions()
    assert win.ui.training.start.isEnabled()
    with qtbot.waitSignal(win.events.training_done, timeout=30_000) as done:
        win.ui.training.minutes.setValue(0.5)
        win.ui.training.start.click()
    assert done.args[0] == "finished" and calls == [(0.5, "auto")]
    panel = win.ui.training
    assert 3 <= panel.curve.point_count() <= 40  # throttled: ~10 updates a second, not 400
    assert panel.curve.val_acc and panel.labels["device"].text() == "CPU (stand-in)"
    assert "%" in panel.labels["val_acc"].text()
    wait_idle(qtbot, win)

    with qtbot.waitSignal(win.events.training_done, timeout=30_000) as done:
        panel.start.click()
        qtbot.waitUntil(lambda: panel.curve.point_count() > 0, timeout=10_000)
        panel.cancel.click()
    assert done.args[0] == "cancelled"
    assert "cancelled" in panel.message.text().lower()
    wait_idle(qtbot, win)
    assert panel.start.isEnabled()


def test_preview_plays_the_selected_track(qtbot, window_on_scanned):
    win, root, families = window_on_scanned
    if not win.preview.available:
        pytest.skip(win.preview.reason)
    wav = next(p for p in families if p.endswith((".wav", ".flac", ".ogg")))
    tid = next(int(t) for t in win.model.ids_in_view() if win.model.track(int(t))["path"] == wav)
    assert win.selection.select_tracks([tid]) == 1
    assert win.ui.act_play.isEnabled() and not win.ui.act_stop.isEnabled()  # nothing plays yet
    win.ui.act_play.trigger()
    assert win.preview.current == wav
    assert win.preview.player.source().toLocalFile() == wav
    assert win.ui.act_stop.isEnabled()
    win.ui.act_stop.trigger()
    assert win.preview.current is None and not win.ui.act_stop.isEnabled()


def test_removing_a_library_folder_in_settings(qtbot, window_on_scanned, monkeypatch):
    win, root, families = window_on_scanned
    assert str(root) in win.session.roots
    monkeypatch.setattr(
        SettingsDialog, "exec", lambda self: (self.roots.setCurrentRow(0), self._remove_selected_root(), 1)[-1]
    )
    win.settings_dialog()
    qtbot.waitUntil(lambda: str(root) not in win.session.backend.status()["roots"], timeout=30_000)


def test_a_new_built_in_model_is_switched_to_and_the_library_analysed_again(
    make_window, scanned_db, tmp_path, monkeypatch, qtbot
):
    """musicsim upgraded with another built-in model: the window opens the library on it and
    re-scans the library's folders so that every track has a vector from it."""
    import musicsim.model.checkpoint as checkpoint
    from musicsim.audio.features import FrontEnd
    from musicsim.model.resnet import ModelConfig, build_model

    db, root, families = scanned_db
    shipped = tmp_path / "shipped" / "default.pt"
    shipped.parent.mkdir()
    net = build_model(ModelConfig(width=4, embed_dim=16, pooling="multilevel"), seed=3)
    checkpoint.save_checkpoint(checkpoint.make_checkpoint(net, FrontEnd(), name="builtin-next"), shipped)
    monkeypatch.setattr(checkpoint, "DEFAULT_RESOURCE", shipped)
    win = make_window(db)
    assert win.session.lib.model_row.name == "builtin-next" and win.session.lib.replaced_default[1] == "builtin-next"
    qtbot.waitUntil(lambda: len(win.session.lib.index.ann()) == len(families) and win.runner.idle(), timeout=120_000)
    assert win.session.lib.index.ann().dim == 2 * (16 + 32)
    assert win.model.total == len(families)


def test_a_tab_saved_by_index_in_older_settings_opens_the_same_tab(make_window, tmp_path):
    ini = tmp_path / "old.ini"
    old = SettingsStore(ini)
    old.set_value("window/tab", 3)  # "Training" before the Duplicates tab came in at index 3
    old.qs.sync()
    win = make_window(settings=ini)
    assert win.ui.tabs.currentWidget() is win.ui.training


def test_loss_curve_keeps_every_validation_even_with_equal_scores(qtbot):
    from musicsim.gui.training import LossCurve

    curve = LossCurve()
    qtbot.addWidget(curve)
    merged: dict = {}
    # As the GUI delivers them: info merged over the job, so the last validation rides along.
    for step, extra in (
        (10, {}),
        (20, {"held_out_loss": 0.01, "val_acc": 1.0, "val_step": 20}),
        (30, {}),
        (40, {"held_out_loss": 0.01, "val_acc": 1.0, "val_step": 40}),
        (50, {}),
    ):
        merged.update(extra, loss=1.0 / step)
        curve.add(float(step), dict(merged))
    assert curve.point_count() == 5
    assert curve.val_acc == [(20.0, 1.0), (40.0, 1.0)] and [x for x, _ in curve.val_loss] == [20.0, 40.0]

"""The Duplicates tab: a real scanned library holding one file twice, offscreen Qt."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from musicsim.library import Library
from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.gui


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def library_with_a_copy(family_library, tmp_path):
    root, families = family_library
    src = Path(next(p for p, f in families.items() if f == "chord"))
    copy = root / "copies" / f"copy of {src.name}"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    db = tmp_path / "db" / "library.db"
    with Library(db) as lib:
        rep = lib.scan([str(root)])
    assert rep.analysed == len(families) + 1, rep.failures
    return db, root, str(src), str(copy)


def test_duplicates_tab_finds_the_copy_and_shows_either_side(qtbot, make_window, library_with_a_copy):
    db, root, src, copy = library_with_a_copy
    before = _snapshot(root)
    win = make_window(db)
    panel = win.ui.dup_panel
    assert panel.stale and panel.table.rowCount() == 0 and "Find duplicates" in panel.empty.text()
    win.ui.tabs.setCurrentWidget(panel)  # showing the tab searches once
    qtbot.waitUntil(lambda: panel.table.rowCount() > 0, timeout=30_000)
    wait_idle(qtbot, win)
    assert not panel.stale and panel.find.isEnabled()
    pairs = {
        frozenset((panel.table.item(r, 1).toolTip(), panel.table.item(r, 3).toolTip()))
        for r in range(panel.table.rowCount())
    }
    assert frozenset((src, copy)) in pairs
    dists = [float(panel.table.item(r, 0).text()) for r in range(panel.table.rowCount())]
    assert dists == sorted(dists) and f"{len(pairs)} pairs" in panel.info.text()
    row = next(
        r
        for r in range(panel.table.rowCount())
        if {panel.table.item(r, 1).toolTip(), panel.table.item(r, 3).toolTip()} == {src, copy}
    )
    assert panel.table.item(row, 2).text() in (os.path.basename(os.path.dirname(src)), "copies")

    # double-clicking a side selects that track in the library table
    ids = {p: int(i) for i, p in zip(win.model.cols.ids, win.model.cols.path, strict=True)}
    for col, side in ((1, 0), (3, 1), (4, 1)):
        panel.table.cellDoubleClicked.emit(row, col)
        assert win.selection.selected_ids() == [panel.track_id(row, side)]
        assert panel.track_id(row, side) == ids[panel.table.item(row, 1 if side == 0 else 3).toolTip()]

    # a change to the library marks the rows out of date; the button searches again
    win.events.tracks_loaded.emit()
    assert panel.stale and "changed" in panel.info.text()
    panel.find.click()
    wait_idle(qtbot, win)
    assert not panel.stale and "changed" not in panel.info.text() and panel.table.rowCount() == len(pairs)
    # a change while it searches: the rows it finds are shown as out of date
    win.organizing.find_duplicates()
    win.events.tracks_loaded.emit()  # before the search's result is delivered to the window
    wait_idle(qtbot, win)
    assert panel.stale and "changed" in panel.info.text() and panel.table.rowCount() == len(pairs)
    assert _snapshot(root) == before  # nothing in the music folder was changed


def test_duplicates_tab_says_so_when_there_are_none(qtbot, window_on_scanned):
    win, _root, _families = window_on_scanned
    panel = win.ui.dup_panel
    # a threshold no pair can be under: the library has no duplicates then
    win.session.backend.lib.organizer.dup_threshold = lambda: 0.0
    panel.find.click()
    wait_idle(qtbot, win)
    assert panel.table.rowCount() == 0 and panel.table.isHidden() and not panel.empty.isHidden()
    assert "No duplicates" in panel.empty.text()

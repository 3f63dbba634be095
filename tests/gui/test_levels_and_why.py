"""Issue 31 in the window: the Clusters tab's level slider, the optional descriptor columns, and
the "why" of the Distance column's tooltip and the playlist view (real library, offscreen Qt)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from musicsim.gui.tablemodel import COL, COLUMNS, OPTIONAL_COLUMNS
from musicsim.organize.words import camelot_code
from tests.gui.conftest import wait_idle

pytestmark = pytest.mark.gui


def _compute_default_clusters(qtbot, win) -> None:
    page = win.ui.cluster_page
    win.ui.tabs.setCurrentWidget(page)
    page.k_spin.setValue(0)  # 0: the hierarchy's default level
    with qtbot.waitSignal(win.events.clusters_loaded, timeout=60_000):
        page.compute_button.click()
    wait_idle(qtbot, win)


def _shown(cmap) -> tuple[dict[int, int], dict[int, int]]:
    """track id -> (group id, colour) as the map has them now."""
    ids = cmap.data.ids.tolist()
    return dict(zip(ids, cmap.data.cluster.tolist())), dict(zip(ids, cmap._colors.tolist()))


def test_level_slider_moves_between_levels_keeping_ids_and_colours(qtbot, window_on_scanned):
    win, _root, families = window_on_scanned
    _compute_default_clusters(qtbot, win)
    page, cmap, levels = win.ui.cluster_page, win.ui.cluster_page.map, win.organizing.levels
    slider = page.level_slider
    assert page.level_row.isVisible() and levels.levels[0] == 2 and len(levels.levels) >= 2
    assert (slider.minimum(), slider.maximum()) == (levels.levels[0], levels.levels[-1])
    assert slider.value() == levels.default and page.level_label.text() == f"{levels.default} groups (the default)"

    seen = {}
    for k in levels.levels:  # each move is a lookup: the map has changed before anything else runs
        slider.setValue(k)
        assert len(cmap.clusters()) == k == page.legend.count(), k
        assert page.level_label.text().startswith(f"{k} groups")
        assert {n for _, n, _ in cmap.clusters()} == set(levels.names[k].values())
        seen[k] = _shown(cmap)
    assert cmap.point_count() == len(families)
    for k in levels.levels[1:]:
        (coarse, coarse_rgb), (fine, fine_rgb) = seen[k - 1], seen[k]
        moved = [t for t in coarse if coarse[t] != fine[t]]
        assert moved and {fine[t] for t in moved} == {k - 1}, (k, moved)  # one group split; its smaller part is new
        assert all(coarse_rgb[t] == fine_rgb[t] for t in coarse if t not in moved)  # every other track keeps its colour
        assert len({fine_rgb[t] for t in moved}) == 1 and fine_rgb[moved[0]] not in {coarse_rgb[t] for t in coarse}

    # the table's Cluster column follows the level shown
    slider.setValue(levels.levels[-1])
    m = win.model
    shown = {m.data(m.index(r, COL["cluster"])) for r in range(m.rowCount())}
    assert shown == set(levels.names[levels.levels[-1]].values())
    slider.setValue(2)
    assert len({m.data(m.index(r, COL["cluster"])) for r in range(m.rowCount())}) == 2


def test_descriptor_columns_shown_from_the_header_menu_sorted_and_filtered(qtbot, window_on_scanned):
    win, _root, families = window_on_scanned
    page, m = win.ui.library_page, win.model
    desc = win.session.backend.org.descriptors()
    assert len(desc) == len(families)
    qtbot.waitUntil(lambda: any(m.keys), timeout=30_000)  # loaded with the library
    assert all(page.table.isColumnHidden(COL[k]) for k in OPTIONAL_COLUMNS)

    menu = page.column_menu()
    names = dict(COLUMNS)
    actions = {a.text(): a for a in menu.actions()}
    assert set(actions) == {names[k] for k in OPTIONAL_COLUMNS}
    for key in OPTIONAL_COLUMNS:
        actions[names[key]].setChecked(True)
    assert not any(page.table.isColumnHidden(COL[k]) for k in OPTIONAL_COLUMNS)
    actions[names["brightness"]].setChecked(False)
    assert page.table.isColumnHidden(COL["brightness"])

    def cell(r: int, key: str) -> str:
        return m.data(m.index(r, COL[key]))

    for r in range(m.rowCount()):  # the values are the stored descriptors
        d = desc[m.id_at(r)]
        assert cell(r, "key") == f"{d['key']} {d['mode'][:3]} ({camelot_code(d['key'], d['mode'])})"
        assert (cell(r, "tempo") == "") == (d["tempo"] is None)
        if d["tempo"] is not None:
            assert abs(float(cell(r, "tempo")) - d["tempo"]) <= 0.5

    m.sort(COL["tempo"], Qt.SortOrder.AscendingOrder)
    tempi = [float(cell(r, "tempo")) for r in range(m.rowCount()) if cell(r, "tempo")]
    assert tempi == sorted(tempi) and len(tempi) == sum(d["tempo"] is not None for d in desc.values())

    known = sorted(d["tempo"] for d in desc.values() if d["tempo"] is not None)
    cut = known[len(known) // 2]
    page.filter_edit.setText(f"bpm>{cut}")
    qtbot.waitUntil(lambda: m.filter_text == f"bpm>{cut}", timeout=5000)
    assert m.rowCount() == sum(1 for t in known if t > cut) > 0
    assert all(desc[m.id_at(r)]["tempo"] > cut for r in range(m.rowCount()))

    some = desc[m.id_at(0)] if m.rowCount() else next(iter(desc.values()))
    word = some["key"].lower() + ("m" if some["mode"] == "minor" else "")
    m.set_filter(f"key:{word}")
    want = {t for t, d in desc.items() if (d["key"], d["mode"]) == (some["key"], some["mode"])}
    assert {m.id_at(r) for r in range(m.rowCount())} == want
    m.set_filter(f"key:{word} bpm>{cut}")
    assert {m.id_at(r) for r in range(m.rowCount())} == {t for t in want if (desc[t]["tempo"] or -math.inf) > cut}
    m.set_filter("")
    assert m.rowCount() == len(families)


def test_distance_tooltip_and_playlist_line_say_why(qtbot, window_on_scanned):
    win, _root, _families = window_on_scanned
    org, m = win.session.backend.org, win.model
    seed = int(m.cols.ids[0])
    win.selection.select_tracks([seed])
    with qtbot.waitSignal(win.events.similarity_done, timeout=30_000):
        win.ui.act_similar.trigger()
    assert m.id_at(0) == seed
    for r in range(1, m.rowCount()):
        tip = m.data(m.index(r, COL["distance"]), Qt.ItemDataRole.ToolTipRole)
        assert tip == org.explain(seed, m.id_at(r)).multiline, r  # one fact a line
        assert tip.startswith(("Shared:\n  • ", "Different:\n  • ")) or tip == "nothing stands out"
    assert m.data(m.index(1, COL["title"]), Qt.ItemDataRole.ToolTipRole) == m.track(m.id_at(1))["path"]

    with qtbot.waitSignal(win.events.playlist_made, timeout=30_000):
        win.organizing.make_playlist([seed], n=5, no_same_artist=0, smooth=True, name="Why list")
    panel = win.ui.playlist_panel
    qtbot.waitUntil(lambda: panel.tracks.count() == 5, timeout=30_000)
    wait_idle(qtbot, win)
    ids = panel.tracks.track_ids()
    for row in (2, 1):
        panel.tracks.setCurrentRow(row)
        want = org.explain(ids[row - 1], ids[row]).text
        qtbot.waitUntil(lambda w=want: panel.why.text().endswith(w), timeout=10_000)
        assert panel.why.text() == f"After “{panel.tracks.item(row - 1).text()}”: {want}"
    panel.tracks.setCurrentRow(0)  # the first track follows nothing
    assert panel.why.text() == ""
    assert np.isfinite(m.distance).any()

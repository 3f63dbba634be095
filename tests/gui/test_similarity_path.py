"""The app's "Sort by similarity" and ``musicsim similar`` give one answer (one code path in the library)."""

from __future__ import annotations

import numpy as np
import pytest

from musicsim.gui.tablemodel import COL

pytestmark = pytest.mark.gui

TOP_N = 5


def test_sort_by_similarity_agrees_with_library_similar(qtbot, window_on_scanned):
    win, _root, families = window_on_scanned
    seed = int(win.model.cols.ids[len(families) // 2])
    win.selection.select_tracks([seed])
    with qtbot.waitSignal(win.events.similarity_done, timeout=30_000):
        win.ui.act_similar.trigger()

    m = win.model
    assert m.id_at(0) == seed and m.data(m.index(0, COL["distance"])) == "seed"
    shown_ids = [m.id_at(r) for r in range(1, TOP_N + 1)]
    shown_dist = [m.track(i)["distance"] for i in shown_ids]  # the column shows them rounded to 4 places

    hits = win.session.lib.similar(seed, TOP_N)
    assert shown_ids == [int(h.track.id) for h in hits]
    np.testing.assert_allclose(shown_dist, [h.distance for h in hits], atol=1e-5)

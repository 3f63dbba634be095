"""The window watches its library folders (on by default): a new file appears in the table by itself."""

from __future__ import annotations

from musicsim.library import Library
from tests.fixtures.generate import synth, write_audio
from tests.gui.conftest import wait_idle


def test_a_file_added_to_a_library_folder_appears_and_the_setting_turns_watching_off(qtbot, make_window, tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    db = tmp_path / "lib" / "library.db"
    with Library(db) as lib:
        lib.scan([str(root)])  # an empty library folder
    win = make_window(db)
    win.settings.update({"watch_settle_seconds": 0.3})
    win.apply_settings()
    qtbot.waitUntil(lambda: win.watching.active, timeout=30_000)
    assert win.watching.label.isVisible() and "1 watched" in win.watching.label.text()

    write_audio(root / "new.wav", synth("chord", seconds=0.4), tags={"title": "Fresh"})
    qtbot.waitUntil(lambda: win.model.total == 1, timeout=90_000)
    wait_idle(qtbot, win)
    assert win.model.track(win.model.cols.ids[0].item())["title"] == "Fresh"
    assert "Folders changed: 1 analysed" in win.statusBar().currentMessage()

    win.settings.update({"watch_folders": False})
    win.apply_settings()
    assert not win.watching.active and not win.watching.label.isVisible()

"""Drive the real app on a generated library and save screenshots of its main views.

Run through ``packaging/screenshots.sh`` (Xvfb); with QT_QPA_PLATFORM=offscreen it works
without a display too. Everything it writes, except the screenshots, goes to a temporary
folder (library, database, settings), so the user's own library is never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_BYTES = 300_000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", nargs="?", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--library", help="scan this folder instead of a generated one")
    ap.add_argument("--size", default="1400x900")
    ap.add_argument("--train-minutes", type=float, default=0.5)
    ap.add_argument(
        "--seed",
        default="chord",
        help="seed track of the similarity view: the first whose genre, title "
        "or path contains this text (default: a chord track of the generated library)",
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.lower().split("x"))

    tmp = Path(tempfile.mkdtemp(prefix="musicsim-shots-"))
    os.environ["MUSICSIM_HOME"] = str(tmp / "home")
    os.environ.setdefault("MUSICSIM_WORKERS", str(max(1, min(4, os.cpu_count() or 1))))
    if args.library:
        library = Path(args.library).resolve()
    else:
        library = tmp / "Music"
        generate(library)

    from PySide6.QtCore import QEventLoop, Qt  # noqa: TID251 - a GUI driver, like tests/gui
    from PySide6.QtGui import QImage  # noqa: TID251
    from PySide6.QtWidgets import QApplication  # noqa: TID251

    from musicsim.gui.mainwindow import MainWindow
    from musicsim.gui.settings import SettingsStore

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("musicsim")
    app.setApplicationName("musicsim")

    def pump(seconds: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.005)

    def wait(pred, what: str, timeout: float = 600.0) -> None:
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > end:
                raise SystemExit(f"screenshots: timed out waiting for {what}")
            pump(0.05)

    def shot(name: str) -> Path:
        pump(0.4)
        img = win.grab().toImage()
        path = out / name
        img.save(str(path), "PNG")
        if path.stat().st_size > MAX_BYTES:  # fall back to a 256-colour palette
            img.convertToFormat(QImage.Format.Format_Indexed8, Qt.ImageConversionFlag.ThresholdDither).save(
                str(path), "PNG"
            )
        print(f"{path}  {path.stat().st_size // 1024} KB")
        return path

    def shot_with_tooltip(name: str, row: int) -> None:
        """A screenshot with the Distance column's tooltip of ``row`` showing (it is a window of
        its own: the screen is grabbed where the display has one)."""
        from PySide6.QtWidgets import QToolTip  # noqa: TID251

        from musicsim.gui.tablemodel import COL

        table = win.ui.library_page.table
        index = win.model.index(row, COL["distance"])
        table.scrollTo(index)
        at = table.viewport().mapToGlobal(table.visualRect(index).center())
        QToolTip.showText(at, win.model.data(index, Qt.ItemDataRole.ToolTipRole), table.viewport())
        pump(0.6)
        screen = app.primaryScreen()
        geo = win.frameGeometry()
        grabbed = screen.grabWindow(0, geo.x(), geo.y(), geo.width(), geo.height()) if screen else None
        if grabbed is None or grabbed.isNull() or app.platformName() == "offscreen":
            grabbed = win.grab()  # no display to grab: the window alone, without the tooltip
        path = out / name
        grabbed.save(str(path), "PNG")
        if path.stat().st_size > MAX_BYTES:
            grabbed.toImage().convertToFormat(
                QImage.Format.Format_Indexed8, Qt.ImageConversionFlag.ThresholdDither
            ).save(str(path), "PNG")
        QToolTip.hideText()
        print(f"{path}  {path.stat().st_size // 1024} KB")

    events: dict[str, object] = {}
    win = MainWindow(db_path=tmp / "home" / "library.db", settings=SettingsStore(tmp / "settings.ini"))
    for sig in (
        "library_opened",
        "scan_finished",
        "clusters_loaded",
        "similarity_done",
        "playlist_made",
        "training_done",
        "tracks_loaded",
        "status_loaded",
    ):
        getattr(win.events, sig).connect(lambda *a, s=sig: events.__setitem__(s, a[0] if a else True))
    win.setGeometry(0, 0, width, height)
    win.show()
    wait(lambda: "library_opened" in events and "status_loaded" in events, "the library to open")
    shot("first-run.png")

    events.pop("clusters_loaded", None)
    win.scanning.add_paths([str(library)])
    wait(lambda: "scan_finished" in events, "the scan", 1800)
    wait(lambda: "clusters_loaded" in events and win.runner.idle(), "the clusters")

    # Library sorted by similarity to a chord track, and a playlist made from it
    model = win.model
    seed = next(
        (
            int(t)
            for t in model.cols.ids
            if any(args.seed.lower() in str(model.track(int(t))[k] or "").lower() for k in ("genre", "title", "path"))
        ),
        int(model.cols.ids[0]),
    )
    win.organizing.sort_by_similarity([seed])
    wait(lambda: "similarity_done" in events, "the similarity sort")
    win.organizing.make_playlist([seed], n=12, no_same_artist=0, smooth=True, name=f"Like {model.track(seed)['title']}")
    wait(lambda: "playlist_made" in events and win.runner.idle(), "the playlist")
    pump(0.5)
    win.selection.select_tracks([seed])
    win.ui.tabs.setCurrentWidget(win.ui.library_page)
    shot("library-similarity.png")

    # Cluster map with one cluster selected by a lasso around its points
    win.ui.tabs.setCurrentWidget(win.ui.cluster_page)
    pump(0.3)
    cmap = win.ui.cluster_page.map
    cmap.fit()
    if len(cmap.data):
        sx, sy = cmap.to_screen()
        members = cmap.data.cluster == cmap.data.cluster[0]
        x0, x1 = sx[members].min() - 12, sx[members].max() + 12
        y0, y1 = sy[members].min() - 12, sy[members].max() + 12
        cmap.lasso_select([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        i = int(sy.argmin())  # hover the top-most point so its ring shows
        cmap.hover_index = i
        cmap.update()
    shot("cluster-map.png")

    # The same map at a coarse and at a fine level of the hierarchy (the slider; ids and colours
    # stay with their tracks from one level to the next)
    levels = win.organizing.levels.levels
    if levels:
        slider = win.ui.cluster_page.level_slider
        slider.setValue(levels[0])
        win.selection.select_tracks([])  # no lasso rings: the colours alone
        pump(0.5)
        shot("clusters-coarse.png")
        slider.setValue(levels[min(len(levels) - 1, levels.index(win.organizing.levels.default) + 4)])
        shot("clusters-fine.png")
        slider.setValue(win.organizing.levels.default)

    # Why a track is like the seed: the Distance column's tooltip, and the playlist view's line
    # for the third track of the playlist
    win.ui.tabs.setCurrentWidget(win.ui.library_page)
    win.selection.select_tracks([seed])
    panel = win.ui.playlist_panel
    if panel.tracks.count() > 2:
        panel.tracks.setCurrentRow(2)
        wait(lambda: panel.why.text() != "" and win.runner.idle(), "the playlist's explanation")
    shot_with_tooltip("explanation.png", 3)

    win.ui.tabs.setCurrentWidget(win.ui.outlier_panel)
    shot("outliers.png")

    win.ui.tabs.setCurrentWidget(win.ui.dup_panel)  # showing the tab searches
    wait(lambda: win.ui.dup_panel.table.rowCount() > 0 and win.runner.idle(), "the duplicates")
    shot("duplicates.png")

    win.ui.tabs.setCurrentWidget(win.ui.training)
    if win.session.backend is not None and win.session.backend.writable:
        win.ui.training.mode.setCurrentIndex(1)  # until it stops improving, within --train-minutes
        win.ui.training.minutes.setValue(args.train_minutes)
        win.ui.training.start.click()
        wait(lambda: win.ui.training.curve.point_count() >= 3 or "training_done" in events, "training progress", 900)
        wait(lambda: "training_done" in events, "the end of training", 1800)
    shot("training.png")

    win.close()
    pump(0.2)
    return 0


def generate(root: Path) -> None:
    """Four timbre families, a few MIDI files, one track twice and one broken file (for the
    failures count)."""
    from tests.fixtures.generate import make_library, write_midi

    make_library(root, per_family=6, seconds=8.0)
    for program, name in ((0, "piano"), (24, "guitar"), (40, "violin")):
        write_midi(
            root / "midi" / f"{name}.mid",
            program=program,
            variant=program % 5,
            seconds=8.0,
            title=f"{name.title()} melody",
        )
    chord = sorted((root / "chord").iterdir())[0]  # the same recording kept twice, for the Duplicates tab
    (root / "copies").mkdir(parents=True, exist_ok=True)
    shutil.copy(chord, root / "copies" / chord.name)
    (root / "broken").mkdir(parents=True, exist_ok=True)
    (root / "broken" / "truncated.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00not really an mp3")


if __name__ == "__main__":
    sys.exit(main())

"""The training panel: fine-tune the model on the user's library, with a live loss curve."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from musicsim.gui.tablemodel import format_duration
from musicsim.jobs import Progress

LOSS_COLOR = QColor("#1f77b4")
VAL_COLOR = QColor("#ff7f0e")
ACC_COLOR = QColor("#2ca02c")

# The progress stages of training and re-embedding (trainer, musicsim.melcache, musicsim.library.reembed) as the panel names them.
STAGE_TITLES = {
    "cache": "Reading the library's sound",
    "related": "Finding tracks that already sound alike",
    "train": "Training",
    "validate": "Checking on held-out tracks",
    "reembed": "Re-analysing the library",
}
CURVE_STAGES = ("train", "validate")


def stage_text(p: Progress) -> str:
    """The panel's stage line: a readable title, then the job's own detail (epoch, file, count)."""
    title = STAGE_TITLES.get(p.stage, p.stage)
    return f"{title}: {p.current}" if p.current else title


def held_out_loss(info: dict) -> float | None:
    """The validation loss the panel shows: the one the trainer reports as what "until it
    stops improving" watches (``held_out_loss``; the trainer decides which loss that is)."""
    v = info.get("held_out_loss")
    return None if v is None else float(v)


def format_eta(seconds: float | None) -> str:
    return format_duration(seconds) or "–"


def format_plateau_eta(likely: float | None, at_most: float | None, cooling: bool) -> str:
    """Time left of a run that trains until it stops improving (trainer.plateau): the likely
    figure once the held-out loss's fall can be extrapolated, and always the cap's."""
    if cooling:
        return f"{format_eta(likely)} (it stopped improving: finishing)"
    if likely is None:
        return f"at most {format_eta(at_most)} (an estimate follows once the held-out loss levels off)"
    if at_most is not None and likely >= at_most - 1:
        return f"{format_eta(at_most)} (the time limit; it is still improving)"
    return f"about {format_eta(likely)} (at most {format_eta(at_most)})"


LABEL_TIPS = {
    "loss": "Training loss: the mean over the triplets of each batch that still break the margin (batch-all "
    "mining), so it stays well above the validation loss even while the model improves",
    "val_loss": "Loss on tracks held out from training (InfoNCE: each segment's neighbour against every "
    "segment of another track): what 'Until it stops improving' watches",
    "val_acc": "Share of held-out triplets whose neighbour (same track, close in time) is nearer than their "
    "distant segment (another track)",
}


class LossCurve(QWidget):
    """Training and validation loss (left axis) and validation accuracy (right axis, %)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.clear()

    def clear(self) -> None:
        self.loss: list[tuple[float, float]] = []
        self.val_loss: list[tuple[float, float]] = []
        self.val_acc: list[tuple[float, float]] = []
        self._val_key: object = None
        self.update()

    def add(self, x: float, info: dict) -> None:
        """Add a point from a training Progress.info.

        The GUI merges ``info`` over a job's life, so the last validation's scores ride along
        with every later report: a validation is new when its ``val_step`` (or, without
        one, its scores) changed; two validations that score the same both get a point.
        """
        if info.get("loss") is not None:
            self.loss.append((x, float(info["loss"])))
        val_step = info.get("val_step")
        val_loss = held_out_loss(info)
        key = (val_loss, info.get("val_acc")) if val_step is None else val_step
        if (val_loss is not None or info.get("val_acc") is not None) and key != self._val_key:
            self._val_key = key
            at = x if val_step is None else float(val_step)
            if val_loss is not None:
                self.val_loss.append((at, float(val_loss)))
            if info.get("val_acc") is not None:
                self.val_acc.append((at, float(info["val_acc"])))
        self.update()

    def point_count(self) -> int:
        return len(self.loss)

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.fillRect(self.rect(), self.palette().base())
        fm = p.fontMetrics()
        left, right, top, bottom = (
            8 + fm.horizontalAdvance("0.000"),
            10 + fm.horizontalAdvance("100%"),
            26,
            10 + fm.height() + 4,
        )
        plot = QRectF(left, top, max(10, self.width() - left - right), max(10, self.height() - top - bottom))
        p.setPen(QPen(self.palette().mid().color(), 1))
        p.drawRect(plot)
        series = [s for s in (self.loss, self.val_loss) if s]
        self._legend(p)
        if not series:
            p.setPen(self.palette().placeholderText().color())
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "The loss curve appears here while training runs.")
            return
        xs = [x for s in series + [self.val_acc] for x, _ in s]
        ys = [y for s in series for _, y in s if math.isfinite(y)]
        x0, x1 = min(xs), max(xs)
        if x1 <= x0:
            x1 = x0 + 1
        y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)
        if y1 - y0 < 1e-6:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.08
        y0, y1 = max(0.0, y0 - pad) if y0 >= 0 else y0 - pad, y1 + pad

        def px(x):
            return plot.left() + (x - x0) / (x1 - x0) * plot.width()

        def py(y):
            return plot.bottom() - (y - y0) / (y1 - y0) * plot.height()

        # grid and left labels
        grid = QPen(self.palette().midlight().color(), 1, Qt.PenStyle.DotLine)
        text = self.palette().text().color()
        for k in range(5):
            v = y0 + (y1 - y0) * k / 4
            y = py(v)
            p.setPen(grid)
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(text)
            p.drawText(
                QRectF(0, y - fm.height() / 2, left - 4, fm.height()),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{v:.3f}",
            )
            p.setPen(ACC_COLOR.darker(130))
            p.drawText(
                QRectF(plot.right() + 4, plot.bottom() - plot.height() * k / 4 - fm.height() / 2, right, fm.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{25 * k}%",
            )
        p.setPen(text)
        p.drawText(
            QRectF(plot.left(), plot.bottom() + 2, plot.width(), fm.height() + 2),
            Qt.AlignmentFlag.AlignCenter,
            f"step {int(x0)} – {int(x1)}",
        )

        def line(points, color, *, acc=False, width=1.8):
            if not points:
                return
            path = QPainterPath()
            for j, (x, y) in enumerate(points):
                yy = plot.bottom() - y * plot.height() if acc else py(y)
                pt = QPointF(px(x), yy)
                path.moveTo(pt) if j == 0 else path.lineTo(pt)
            p.setPen(QPen(color, width))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
            if len(points) < 40:
                p.setBrush(color)
                for x, y in points:
                    yy = plot.bottom() - y * plot.height() if acc else py(y)
                    p.drawEllipse(QPointF(px(x), yy), 2.5, 2.5)

        p.save()
        p.setClipRect(plot.adjusted(-3, -3, 3, 3))
        line(self.loss, LOSS_COLOR, width=1.4)
        line(self.val_loss, VAL_COLOR, width=2.0)
        line(self.val_acc, ACC_COLOR, acc=True, width=2.0)
        p.restore()

    def _legend(self, p: QPainter) -> None:
        x = 10
        fm = p.fontMetrics()
        for label, color in (
            ("training loss", LOSS_COLOR),
            ("validation loss", VAL_COLOR),
            ("validation triplet accuracy (right axis)", ACC_COLOR),
        ):
            p.setPen(QPen(color, 3))
            p.drawLine(QPointF(x, 13), QPointF(x + 18, 13))
            p.setPen(self.palette().text().color())
            p.drawText(QPointF(x + 24, 13 + fm.ascent() / 2 - 1), label)
            x += 24 + fm.horizontalAdvance(label) + 18


class TrainingPanel(QWidget):
    """Start / cancel a training run and watch it. The window runs the job (workers.py)."""

    start_requested = Signal(float, str, bool)  # minutes (the budget, or the cap), device, until it stops improving
    cancel_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "<b>Train on my library</b> fine-tunes the sound model on your own music, without labels: "
            "segments close in time within a track are taught to be neighbours, segments of other tracks to be "
            "far apart. When it ends the library is re-embedded and the new model becomes active; the previous "
            "model stays selectable in the Model menu."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        top = QHBoxLayout()
        opts = QGroupBox("Run")
        form = QFormLayout(opts)
        self.mode = QComboBox()
        self.mode.addItems(["For a time budget", "Until it stops improving"])
        self.mode.setToolTip(
            "Until it stops improving: trains while the loss on tracks held out from training keeps "
            "falling, then eases off and ends, within the time limit"
        )
        form.addRow("Train", self.mode)
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.1, 24 * 60)
        self.minutes.setDecimals(1)
        self.minutes.setValue(10.0)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("Time budget for training (re-embedding the library comes after it)")
        self.minutes_label = QLabel("Time budget")
        form.addRow(self.minutes_label, self.minutes)
        self._budget = {0: 10.0, 1: 60.0}  # each mode keeps its own figure
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda", "mps"])
        self.device.setToolTip("auto: a CUDA GPU, then Apple MPS, then the CPU")
        form.addRow("Device", self.device)
        buttons = QHBoxLayout()
        self.start = QPushButton("Train on my library")
        self.start.clicked.connect(
            lambda: self.start_requested.emit(self.minutes.value(), self.device.currentText(), self.until_plateau)
        )
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.cancel_requested.emit)
        buttons.addWidget(self.start)
        buttons.addWidget(self.cancel)
        form.addRow(buttons)
        opts.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        top.addWidget(opts, 1, Qt.AlignmentFlag.AlignTop)

        live = QGroupBox("Progress")
        grid = QGridLayout(live)
        self.labels: dict[str, QLabel] = {}
        for row, (key, title) in enumerate(
            (
                ("device", "Running on"),
                ("stage", "Stage"),
                ("epoch", "Epoch"),
                ("loss", "Loss"),
                ("val_loss", "Validation loss"),
                ("val_acc", "Validation triplet accuracy"),
                ("eta", "Time left"),
            )
        ):
            name = QLabel(title + ":")
            name.setToolTip(LABEL_TIPS.get(key, ""))
            grid.addWidget(name, row, 0)
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            # a long file name in the stage line is clipped (full text in the tooltip), never re-lays out the panel
            value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            grid.addWidget(value, row, 1)
            self.labels[key] = value
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setValue(0)
        grid.addWidget(self.bar, 7, 0, 1, 2)
        grid.setColumnStretch(1, 1)
        top.addWidget(live, 2)
        layout.addLayout(top)

        self.curve = LossCurve()
        layout.addWidget(self.curve, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.running = False
        self.available = True

    @property
    def until_plateau(self) -> bool:
        return self.mode.currentIndex() == 1

    def _mode_changed(self, index: int) -> None:
        self._budget[1 - index] = self.minutes.value()
        self.minutes.setValue(self._budget[index])
        self.minutes_label.setText("At most" if index == 1 else "Time budget")
        self.minutes.setToolTip(
            "Training ends earlier when it stops improving, and never later than this"
            if index == 1
            else "Time budget for training (re-embedding the library comes after it)"
        )

    def set_available(self, available: bool, reason: str = "") -> None:
        self.available = available
        self.start.setEnabled(available and not self.running)
        self.start.setToolTip("" if available else reason)
        if not available:
            self.message.setText(reason)

    def set_busy_elsewhere(self, busy: bool) -> None:
        """Another long job (a scan) runs: training waits for it."""
        if not self.running:
            self.start.setEnabled(self.available and not busy)

    def started(self, device: str) -> None:
        self.running = True
        self.curve.clear()
        self.start.setEnabled(False)
        self.cancel.setEnabled(True)
        self.bar.setRange(0, 0)
        for v in self.labels.values():
            v.setText("–")
        self.labels["device"].setText(device if device != "auto" else "detecting…")
        self.labels["stage"].setText("preparing (decoding the library)")
        self.message.setText("")

    def on_progress(self, p: Progress) -> None:
        info = p.info or {}
        if p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
        text = stage_text(p)
        self.labels["stage"].setText(text)
        self.labels["stage"].setToolTip(text)
        if p.stage in CURVE_STAGES and "eta_max" in info:
            self.labels["eta"].setText(format_plateau_eta(p.eta_s, info.get("eta_max"), bool(info.get("cooling"))))
        else:
            self.labels["eta"].setText(format_eta(p.eta_s))
        if info.get("device"):
            self.labels["device"].setText(str(info["device"]))
        if info.get("epoch") is not None:
            self.labels["epoch"].setText(f"{float(info['epoch']):.2f}")
        for key, value in (("loss", info.get("loss")), ("val_loss", held_out_loss(info))):
            if value is not None:
                self.labels[key].setText(f"{float(value):.4f}")
        if info.get("val_acc") is not None:
            self.labels["val_acc"].setText(f"{100 * float(info['val_acc']):.1f}%")
        # info is merged over the job's life, so the re-embedding after training still carries the
        # last loss: only the training's own reports are points of the curve (x is their step)
        if p.stage in CURVE_STAGES and (info.get("loss") is not None or held_out_loss(info) is not None):
            self.curve.add(float(p.done), info)

    def finished(self, message: str, outcome: str = "finished") -> None:
        """End a run: ``outcome`` is "finished", "cancelled" or "failed". A finished run fills
        the bar; any other empties it, since nothing of that run is kept."""
        self.running = False
        self.cancel.setEnabled(False)
        self.start.setEnabled(self.available)
        if self.bar.maximum() == 0:  # still busy-indicating: nothing was counted yet
            self.bar.setRange(0, 1)
        self.bar.setValue(self.bar.maximum() if outcome == "finished" else 0)
        self.labels["stage"].setText(outcome)
        self.labels["stage"].setToolTip("")
        self.labels["eta"].setText("–")
        self.message.setText(message)

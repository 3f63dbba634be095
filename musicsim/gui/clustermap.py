"""The cluster map: one point per track on the 2-D map, coloured by cluster.

A custom painted widget (no scene graph: 100,000 QGraphicsItems would be slow). Screen
positions come from numpy; small libraries are drawn as antialiased discs with QPainter,
large ones are splatted into a QImage with numpy. Wheel zooms around the cursor,
right/middle drag (or Ctrl + drag) pans, left drag draws a lasso, a click selects the
nearest track, double-click fits the view, hovering shows the track.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QToolTip, QWidget

from musicsim.gui.backend import ClusterData

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#ad494a",
    "#637939",
    "#e7ba52",
    "#7b4173",
    "#3182bd",
    "#31a354",
    "#756bb1",
    "#fd8d3c",
    "#636363",
)
PAINTER_LIMIT = 5000  # above this many visible points, splat with numpy
HOVER_PX = 8.0
CLICK_PX = 4


def cluster_color(cluster: int) -> QColor:
    if cluster < 0:
        return QColor("#9a9a9a")
    return QColor(PALETTE[cluster % len(PALETTE)])


def points_in_polygon(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points (loop over the polygon's edges)."""
    inside = np.zeros(px.shape, dtype=bool)
    if len(poly) < 3:
        return inside
    xs, ys = poly[:, 0], poly[:, 1]
    box = (px >= xs.min()) & (px <= xs.max()) & (py >= ys.min()) & (py <= ys.max())
    cand = np.flatnonzero(box)
    if not cand.size:
        return inside
    x, y = px[cand], py[cand]
    hit = np.zeros(cand.size, dtype=bool)
    x0, y0 = xs[-1], ys[-1]
    for x1, y1 in zip(xs.tolist(), ys.tolist()):
        if y1 != y0:
            crosses = (y1 > y) != (y0 > y)
            xint = x1 + (y - y1) * (x0 - x1) / (y0 - y1)
            hit ^= crosses & (x < xint)
        x0, y0 = x1, y1
    inside[cand] = hit
    return inside


class ClusterMap(QWidget):
    """Emits ``selection_changed(ids)`` when the user selects on the map."""

    selection_changed = Signal(object)  # np.ndarray of track ids
    hovered = Signal(int)  # track id, -1 when none

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.data = ClusterData.empty()
        self.describe = lambda track_id: f"track {track_id}"  # set by the window (title, artist, cluster)
        self.placeholder = "No map yet: compute clusters to draw the library."
        self.selected = np.zeros(0, dtype=bool)
        self.hover_index = -1
        self.scale = 1.0
        self.center = np.zeros(2)
        self._fitted = False
        self._drag_start: QPointF | None = None
        self._drag_mode: str | None = None  # "pan" | "lasso"
        self._lasso: list[QPointF] = []
        self._pan_origin = None
        self._colors = np.zeros(0, dtype=np.uint32)
        self._image_buffer = None

    # --- data -------------------------------------------------------------------------------

    def set_data(self, data: ClusterData) -> None:
        keep_view = self._fitted and len(self.data) == len(data) and len(data) > 0
        self.data = data
        self.selected = np.zeros(len(data), dtype=bool)
        self.hover_index = -1
        argb = np.array([cluster_color(int(c)).rgba() for c in range(len(PALETTE))], dtype=np.uint32)
        self._colors = argb[np.mod(data.cluster, len(PALETTE))] if len(data) else np.zeros(0, dtype=np.uint32)
        if len(data):
            self._colors = np.where(data.cluster < 0, np.uint32(0xFF9A9A9A), self._colors).astype(np.uint32)
        if not keep_view:
            self.fit()
        self.update()

    def point_count(self) -> int:
        return len(self.data)

    def clusters(self) -> list[tuple[int, str, int]]:
        """(cluster id, name, size) for the legend."""
        if not len(self.data):
            return []
        ids, sizes = np.unique(self.data.cluster, return_counts=True)
        return [(int(c), self.data.names.get(int(c), f"Cluster {int(c)}"), int(s)) for c, s in zip(ids, sizes)]

    def set_highlight(self, track_ids) -> None:
        """Mark tracks selected elsewhere (the table) without emitting."""
        if not len(self.data):
            return
        self.selected = np.isin(self.data.ids, np.asarray(list(track_ids), dtype=np.int64))
        self.update()

    def selected_ids(self) -> np.ndarray:
        return self.data.ids[self.selected] if len(self.data) else np.zeros(0, dtype=np.int64)

    def select_cluster(self, cluster: int) -> None:
        if len(self.data):
            self._select(self.data.cluster == cluster, additive=False)

    # --- geometry ---------------------------------------------------------------------------

    def fit(self) -> None:
        d = self.data
        if not len(d):
            self.scale, self.center, self._fitted = 1.0, np.zeros(2), False
            return
        x0, x1 = float(np.nanmin(d.x)), float(np.nanmax(d.x))
        y0, y1 = float(np.nanmin(d.y)), float(np.nanmax(d.y))
        w, h = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
        self.center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        margin = 28.0
        self.scale = min((self.width() - 2 * margin) / w, (self.height() - 2 * margin) / h)
        self.scale = max(self.scale, 1e-9)
        self._fitted = self.width() > 50
        self.update()

    def to_screen(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        sx = (d.x - self.center[0]) * self.scale + self.width() / 2
        sy = (self.center[1] - d.y) * self.scale + self.height() / 2
        return sx, sy

    def screen_pos(self, track_id: int) -> QPointF | None:
        """Where a track is drawn (widget coordinates), or None."""
        hits = np.flatnonzero(self.data.ids == int(track_id)) if len(self.data) else []
        if not len(hits):
            return None
        sx, sy = self.to_screen()
        return QPointF(float(sx[hits[0]]), float(sy[hits[0]]))

    def nearest(self, pos: QPointF, radius: float = HOVER_PX) -> int:
        if not len(self.data):
            return -1
        sx, sy = self.to_screen()
        d2 = (sx - pos.x()) ** 2 + (sy - pos.y()) ** 2
        i = int(np.argmin(d2))
        return i if d2[i] <= radius * radius else -1

    def zoom(self, factor: float, around: QPointF | None = None) -> None:
        if not len(self.data):
            return
        around = around or QPointF(self.width() / 2, self.height() / 2)
        # keep the data point under the cursor fixed
        dx = (around.x() - self.width() / 2) / self.scale
        dy = (around.y() - self.height() / 2) / self.scale
        anchor = self.center + np.array([dx, -dy])
        self.scale *= factor
        self.center = anchor - np.array([dx, -dy]) / factor
        self.update()

    # --- painting ---------------------------------------------------------------------------

    def _radius(self, n: int) -> float:
        if n <= 200:
            return 6.0
        if n <= 2000:
            return 4.0
        if n <= 20000:
            return 2.5
        return 1.5

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().base())
        d = self.data
        if not len(d):
            p.setPen(self.palette().placeholderText().color())
            font = p.font()
            font.setPointSizeF(font.pointSizeF() * 1.2)
            p.setFont(font)
            p.drawText(
                self.rect().adjusted(20, 20, -20, -20),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.placeholder,
            )
            return
        sx, sy = self.to_screen()
        w, h = self.width(), self.height()
        visible = (sx >= -10) & (sx <= w + 10) & (sy >= -10) & (sy <= h + 10)
        r = self._radius(len(d))
        if int(visible.sum()) <= PAINTER_LIMIT:
            self._paint_discs(p, sx, sy, visible, r)
        else:
            self._paint_splat(p, sx, sy, visible, r)
        sel = np.flatnonzero(self.selected & visible)
        if sel.size:
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(20, 20, 20), 1.6))
            p.setBrush(Qt.BrushStyle.NoBrush)
            rr = r + 2.5
            for i in sel[:5000].tolist():
                p.drawEllipse(QPointF(float(sx[i]), float(sy[i])), rr, rr)
        if 0 <= self.hover_index < len(d):
            i = self.hover_index
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(0, 0, 0), 2.0))
            p.setBrush(QBrush(cluster_color(int(d.cluster[i]))))
            p.drawEllipse(QPointF(float(sx[i]), float(sy[i])), r + 3, r + 3)
        if self._lasso:
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            pen = QPen(QColor(40, 40, 40), 1.2, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(QColor(60, 120, 220, 40))
            p.drawPolygon(QPolygonF(self._lasso))
        self._paint_hint(p)

    def _paint_discs(self, p: QPainter, sx, sy, visible, r: float) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        d = self.data
        outline = QColor(255, 255, 255) if r >= 4 else Qt.PenStyle.NoPen
        for c in np.unique(d.cluster[visible]).tolist():
            idx = np.flatnonzero(visible & (d.cluster == c))
            color = cluster_color(int(c))
            p.setBrush(color)
            p.setPen(QPen(outline, 1.0) if isinstance(outline, QColor) else Qt.PenStyle.NoPen)
            for x, y in zip(sx[idx].tolist(), sy[idx].tolist()):
                p.drawEllipse(QPointF(x, y), r, r)

    def _paint_splat(self, p: QPainter, sx, sy, visible, r: float) -> None:
        w, h = max(self.width(), 1), max(self.height(), 1)
        buf = np.zeros((h, w), dtype=np.uint32)
        xi = np.round(sx[visible]).astype(np.int64)
        yi = np.round(sy[visible]).astype(np.int64)
        colors = self._colors[visible]
        rad = max(1, int(round(r)))
        offsets = [
            (dx, dy) for dy in range(-rad, rad + 1) for dx in range(-rad, rad + 1) if dx * dx + dy * dy <= r * r + 0.5
        ]
        for dx, dy in offsets:
            xx, yy = xi + dx, yi + dy
            ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            buf[yy[ok], xx[ok]] = colors[ok]
        self._image_buffer = buf  # QImage does not copy: keep the array alive while painting
        img = QImage(buf.data, w, h, w * 4, QImage.Format.Format_ARGB32)
        p.drawImage(0, 0, img)

    def _paint_hint(self, p: QPainter) -> None:
        text = "wheel: zoom · right-drag: pan · drag: lasso select · double-click: fit"
        fm = p.fontMetrics()
        rect = QRectF(8, self.height() - fm.height() - 8, fm.horizontalAdvance(text) + 12, fm.height() + 4)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(255, 255, 255, 200))
        p.drawRect(rect)
        p.setPen(QColor(90, 90, 90))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if not self._fitted and len(self.data):
            self.fit()

    # --- interaction ------------------------------------------------------------------------

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom(1.25**steps, event.position())
        event.accept()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        self._drag_start = pos
        pan = event.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton) or (
            event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        )
        if pan:
            self._drag_mode = "pan"
            self._pan_origin = (pos, self.center.copy())
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton:
            self._drag_mode = "lasso"
            self._lasso = []
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self._drag_mode == "pan" and self._pan_origin is not None:
            start, center = self._pan_origin
            delta = np.array([pos.x() - start.x(), -(pos.y() - start.y())]) / self.scale
            self.center = center - delta
            self.update()
            return
        if self._drag_mode == "lasso" and self._drag_start is not None:
            if not self._lasso and (pos - self._drag_start).manhattanLength() > CLICK_PX:
                self._lasso = [self._drag_start]
            if self._lasso:
                self._lasso.append(pos)
                self.update()
            return
        i = self.nearest(pos)
        if i != self.hover_index:
            self.hover_index = i
            self.update()
            self.hovered.emit(int(self.data.ids[i]) if i >= 0 else -1)
        if i >= 0:
            QToolTip.showText(event.globalPosition().toPoint(), self.describe(int(self.data.ids[i])), self)
        else:
            QToolTip.hideText()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        mode, self._drag_mode = self._drag_mode, None
        self.unsetCursor()
        additive = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if mode == "lasso":
            if len(self._lasso) >= 3:
                self.lasso_select([(q.x(), q.y()) for q in self._lasso], additive=additive)
            else:
                i = self.nearest(event.position())
                mask = np.zeros(len(self.data), dtype=bool)
                if i >= 0:
                    mask[i] = True
                self._select(mask, additive=additive)
            self._lasso = []
            self.update()
        self._drag_start = None
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        self.fit()
        event.accept()

    def leaveEvent(self, event) -> None:  # noqa: N802
        if self.hover_index != -1:
            self.hover_index = -1
            self.update()
        super().leaveEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom(1.25)
        elif key == Qt.Key.Key_Minus:
            self.zoom(0.8)
        elif key in (Qt.Key.Key_0, Qt.Key.Key_Home):
            self.fit()
        else:
            super().keyPressEvent(event)

    def lasso_select(self, polygon: list[tuple[float, float]], *, additive: bool = False) -> np.ndarray:
        """Select the points inside a polygon given in widget coordinates; return their ids."""
        if not len(self.data):
            return np.zeros(0, dtype=np.int64)
        sx, sy = self.to_screen()
        mask = points_in_polygon(sx, sy, np.asarray(polygon, dtype=np.float64))
        self._select(mask, additive=additive)
        return self.data.ids[mask]

    def _select(self, mask: np.ndarray, *, additive: bool) -> None:
        self.selected = (self.selected | mask) if additive and self.selected.size == mask.size else mask
        self.update()
        self.selection_changed.emit(self.selected_ids())


__all__ = ["ClusterMap", "PALETTE", "cluster_color", "points_in_polygon"]

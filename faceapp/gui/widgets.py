"""Reusable widgets: the video view with face overlays, image conversion helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

GOOD = QColor("#2ecc71")
BAD = QColor("#e74c3c")
WARN = QColor("#f39c12")
NEUTRAL = QColor("#3498db")


def to_qimage(rgb: np.ndarray) -> QImage:
    """An RGB uint8 (H, W, 3) array as a QImage that owns its pixels (safe to send across threads)."""
    arr = np.ascontiguousarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB (H, W, 3) array, got shape {arr.shape}")
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888).copy()


def jpeg_pixmap(data: bytes, size: int | None = None) -> QPixmap:
    pix = QPixmap()
    pix.loadFromData(data, "JPEG")
    if size and not pix.isNull():
        pix = pix.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return pix


@dataclass(frozen=True, eq=False)
class Overlay:
    """One face drawn over the picture, in the picture's pixel coordinates."""

    box: tuple[float, float, float, float]
    points: np.ndarray | None = None  # (N, 2) landmarks: MTCNN's 5 or the 68-point model's
    label: str = ""
    color: QColor = field(default_factory=lambda: QColor(NEUTRAL))
    # polylines through ``points`` (index tuples; a closed loop repeats its first index), e.g.
    # faceapp.landmarks.points.CONTOURS for 68 points
    contours: tuple[tuple[int, ...], ...] = ()
    detail: str = ""  # a second, smaller line under the box (e.g. the head pose)


class VideoView(QWidget):
    """Shows a picture scaled to fit (aspect kept), face boxes, landmarks and labels, and a
    centred message (e.g. "Starting camera..." or a camera error) or a big countdown."""

    clicked = Signal(float, float)  # a click on the picture, in image pixels (x, y)

    def __init__(self, parent: QWidget | None = None, *, placeholder: str = "", background: str = "#111111") -> None:
        super().__init__(parent)
        self._background = QColor(background)
        self._image: QImage | None = None
        self._overlays: Sequence[Overlay] = ()
        self._message = placeholder
        self._message_color = QColor("#dddddd")
        self._big = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return QSize(640, 480)

    # -- content ----------------------------------------------------------------------------
    def set_frame(self, image: QImage | None, overlays: Sequence[Overlay] = ()) -> None:
        self._image = image
        self._overlays = tuple(overlays)
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def set_message(self, text: str, *, error: bool = False) -> None:
        self._message = text
        self._message_color = BAD.lighter(130) if error else QColor("#dddddd")
        self.update()

    def message(self) -> str:
        return self._message

    def set_big_text(self, text: str) -> None:
        """A large centred text over the picture (the snapshot countdown)."""
        self._big = text
        self.update()

    def clear(self, message: str = "") -> None:
        self._image = None
        self._overlays = ()
        self.set_message(message)

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        if self._image is not None and event.button() == Qt.MouseButton.LeftButton:
            target, scale = self._target()
            pos = event.position()
            if target.contains(pos):
                self.clicked.emit((pos.x() - target.x()) / scale, (pos.y() - target.y()) / scale)
        super().mousePressEvent(event)

    # -- painting ---------------------------------------------------------------------------
    def _target(self) -> tuple[QRectF, float]:
        assert self._image is not None
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h), scale

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(self.rect(), self._background)
        if self._image is not None and not self._image.isNull():
            target, scale = self._target()
            p.drawImage(target, self._image)
            self._paint_overlays(p, target, scale)
        if self._message:
            self._paint_message(p)
        if self._big:
            font = QFont(self.font())
            font.setPixelSize(max(24, self.height() // 3))
            font.setBold(True)
            p.setFont(font)
            p.setPen(QColor(255, 255, 255, 230))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._big)
        p.end()

    def _paint_overlays(self, p: QPainter, target: QRectF, scale: float) -> None:
        font = QFont(self.font())
        font.setPixelSize(max(12, int(target.height() / 28)))
        font.setBold(True)
        p.setFont(font)
        metrics = p.fontMetrics()
        line = max(2.0, target.height() / 240)
        for ov in self._overlays:
            x1, y1, x2, y2 = ov.box
            rect = QRectF(target.x() + x1 * scale, target.y() + y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale)
            p.setPen(QPen(ov.color, line))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(rect)
            if ov.points is not None:
                pts = [QPointF(target.x() + x * scale, target.y() + y * scale)
                       for x, y in np.asarray(ov.points, dtype=np.float64).reshape(-1, 2)]
                if ov.contours:
                    p.setPen(QPen(ov.color.lighter(125), max(1.0, line / 2)))
                    for contour in ov.contours:
                        p.drawPolyline([pts[i] for i in contour if i < len(pts)])
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(ov.color)
                r = max(2.0, line * 1.2) if len(pts) <= 5 else max(1.5, line * 0.7)
                for q in pts:
                    p.drawEllipse(q, r, r)
            if ov.detail:
                small = QFont(font)
                small.setPixelSize(max(10, int(font.pixelSize() * 0.7)))
                small.setBold(False)
                p.setFont(small)
                sm = p.fontMetrics()
                dw, dh = sm.horizontalAdvance(ov.detail) + 10, sm.height() + 4
                below = QRectF(rect.left() - line / 2, rect.bottom() + line / 2, dw, dh)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(0, 0, 0, 170))
                p.drawRect(below)
                p.setPen(QColor("#ffffff"))
                p.drawText(below, Qt.AlignmentFlag.AlignCenter, ov.detail)
                p.setFont(font)
            if ov.label:
                tw, th = metrics.horizontalAdvance(ov.label) + 10, metrics.height() + 4
                top = rect.top() - th if rect.top() - th >= target.top() else rect.bottom()
                box = QRectF(rect.left() - line / 2, top, tw, th)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(ov.color)
                p.drawRect(box)
                p.setPen(QColor("#000000") if ov.color.lightness() > 110 else QColor("#ffffff"))
                p.drawText(box, Qt.AlignmentFlag.AlignCenter, ov.label)

    def _paint_message(self, p: QPainter) -> None:
        font = QFont(self.font())
        font.setPixelSize(max(14, self.height() // 22))
        p.setFont(font)
        area = self.rect().adjusted(20, 20, -20, -20)
        bound = p.fontMetrics().boundingRect(area, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter, self._message)
        band = QRectF(bound).adjusted(-16, -10, 16, 10)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 170))
        p.drawRoundedRect(band, 8, 8)
        p.setPen(self._message_color)
        p.drawText(area, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignCenter, self._message)


class ImageBox(QLabel):
    """A fixed-size picture (an aligned face, a thumbnail) with a placeholder text."""

    def __init__(self, size: int, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(placeholder, parent)
        self._size = size
        self._placeholder = placeholder
        self.setFixedSize(size, size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setStyleSheet("QLabel { background: #222; color: #aaa; border: 1px solid #444; }")

    def set_image(self, image: QImage | QPixmap | None) -> None:
        if image is None:
            self.clear()
            self.setText(self._placeholder)
            return
        pix = QPixmap.fromImage(image) if isinstance(image, QImage) else image
        self.setPixmap(
            pix.scaled(self._size, self._size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        )

"""MTCNN (facenet-pytorch's networks and weights) on ONNX Runtime, without torch.

The three networks are the ONNX exports of facenet-pytorch's PNet / RNet / ONet; the rest of
``facenet_pytorch.models.utils.detect_face.detect_face`` (image pyramid, "area" resampling,
bounding-box generation, the NMS rounds, box regression, landmark scaling) is re-done here in
NumPy, step for step, so the detections equal the torch path's up to float rounding
(tests/packaging/test_onnx_backend.py compares them on LFW photos).

``OnnxMTCNN.detect(batch, landmarks=True)`` has the shape of ``facenet_pytorch.MTCNN.detect``
with ``keep_all=True, select_largest=True``: per image an ``(n, 4)`` box array (or None), the
scores and the ``(n, 5, 2)`` landmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from faceapp import runtime

_F32 = np.float32


@lru_cache(maxsize=256)
def _area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 matrix (n_out, n_in) selecting each output cell's input window, and the window sizes.

    Windows as in torch's adaptive average pooling (``interpolate(mode="area")``):
    ``[floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out))``."""
    m = np.zeros((n_out, n_in), dtype=_F32)
    counts = np.empty(n_out, dtype=_F32)
    for i in range(n_out):
        s = (i * n_in) // n_out
        e = -(-((i + 1) * n_in) // n_out)
        m[i, s:e] = 1.0
        counts[i] = e - s
    return m, counts


@lru_cache(maxsize=256)
def _area_windows(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same windows as start and end indices (``[start, end)``) and sizes."""
    i = np.arange(n_out, dtype=np.int64)
    start = (i * n_in) // n_out
    end = -(-((i + 1) * n_in) // n_out)
    return start, end, (end - start).astype(_F32)


def imresample(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``torch.nn.functional.interpolate(img, size, mode="area")`` for (N, C, H, W) float32.

    The window sums are exact here (the inputs are whole pixel values), then divided by the
    window height and width as torch does."""
    oh, ow = size
    mh, ch = _area_weights(img.shape[2], oh)
    mw, cw = _area_weights(img.shape[3], ow)
    s = np.matmul(np.matmul(mh, img), mw.T)
    return (s / ch[:, None]) / cw[None, :]


def integral_images(batch: np.ndarray) -> np.ndarray:
    """(N, 3, H + 1, W + 1) summed-area tables of an (N, H, W, 3) uint8 batch, channel first
    (lookups along the last axis are the fast ones): int32 while no sum can overflow it (frames
    up to 8.4 million pixels), else float64; exact either way."""
    import cv2

    batch = np.asarray(batch)
    depth = cv2.CV_32S if 255 * batch.shape[1] * batch.shape[2] < 2**31 else cv2.CV_64F
    return np.stack([np.stack([cv2.integral(plane, sdepth=depth) for plane in cv2.split(np.ascontiguousarray(im, dtype=np.uint8))])
                     for im in batch])


def imresample_integral(integral: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`imresample` of the image whose summed-area table is ``integral`` (from
    :func:`integral_images`): the same window sums, exact, from four lookups per output pixel
    instead of two dense 0/1 matrix products over the whole image (those took 270 ms of a 1080p
    frame's 425 ms detection). Returns (N, 3, oh, ow) float32."""
    oh, ow = size
    hs, he, ch = _area_windows(integral.shape[2] - 1, oh)
    ws, we, cw = _area_windows(integral.shape[3] - 1, ow)
    rows = np.take(integral, he, axis=2) - np.take(integral, hs, axis=2)  # (N, 3, oh, W + 1)
    s = (np.take(rows, we, axis=3) - np.take(rows, ws, axis=3)).astype(_F32)
    return (s / ch[:, None]) / cw[None, :]


def _normalize(x: np.ndarray) -> np.ndarray:
    return ((x - _F32(127.5)) * _F32(0.0078125)).astype(_F32, copy=False)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy IoU NMS as ``torchvision.ops.nms``: indices kept, highest score first."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1 :]
        rest = rest[~suppressed[rest]]
        if len(rest) == 0:
            continue
        w = np.maximum(_F32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(_F32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou > threshold]] = True
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, threshold: float) -> np.ndarray:
    """``torchvision.ops.batched_nms``: NMS within each ``idxs`` group; kept indices by score."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    keep = np.concatenate([np.flatnonzero(idxs == g)[nms(boxes[idxs == g], scores[idxs == g], threshold)] for g in np.unique(idxs)])
    return keep[np.argsort(-scores[keep], kind="stable")]


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's ``nms_numpy(..., 'Min')`` (inclusive pixel areas, overlap of the smaller)."""
    if boxes.size == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2 = (boxes[:, i].copy() for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    pick = []
    while order.size > 0:
        i = order[-1]
        pick.append(i)
        idx = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[idx]) - np.maximum(x1[i], x1[idx]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[idx]) - np.maximum(y1[i], y1[idx]) + 1)
        o = (w * h) / np.minimum(area[i], area[idx])
        order = order[np.where(o <= threshold)]
    return np.asarray(pick, dtype=np.int64)


def batched_nms_min(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's ``batched_nms_numpy(..., 'Min')`` (groups kept apart by offsets)."""
    if boxes.size == 0:
        return np.empty(0, dtype=np.int64)
    offsets = idxs.astype(boxes.dtype) * (boxes.max() + 1)
    return _nms_min(boxes + offsets[:, None], scores, threshold)


def generate_bounding_box(reg: np.ndarray, probs: np.ndarray, scale: float, thresh: float):
    """PNet's score map -> candidate boxes (x1, y1, x2, y2, score, 4 regression offsets), image ids."""
    stride, cellsize = 2, 12
    mask = probs >= thresh
    image_inds, ys, xs = np.nonzero(mask)
    score = probs[mask]
    regs = reg[image_inds, :, ys, xs]  # (k, 4)
    bb = np.stack([xs, ys], axis=1).astype(_F32)
    q1 = np.floor((stride * bb + 1) / _F32(scale))
    q2 = np.floor((stride * bb + cellsize - 1 + 1) / _F32(scale))
    boxes = np.concatenate([q1, q2, score[:, None], regs], axis=1).astype(_F32, copy=False)
    return boxes.reshape(-1, 9), image_inds.astype(np.int64)


def bbreg(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def rerec(boxes: np.ndarray) -> np.ndarray:
    """Make the boxes square (around their centres)."""
    out = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * _F32(0.5) - side * _F32(0.5)
    out[:, 1] = boxes[:, 1] + h * _F32(0.5) - side * _F32(0.5)
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def pad(boxes: np.ndarray, w: int, h: int):
    b = np.trunc(boxes[:, :4]).astype(np.int32)
    x, y, ex, ey = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    x[x < 1] = 1
    y[y < 1] = 1
    ex[ex > w] = w
    ey[ey > h] = h
    return y, ey, x, ex


def _crops(imgs: np.ndarray, image_inds: np.ndarray, boxes: np.ndarray, size: int):
    """Crop every box (clipped to the image, as facenet-pytorch does) and resample it to size x size.

    Returns the crops and the mask of boxes that had any pixels inside the image."""
    h, w = imgs.shape[2:4]
    y, ey, x, ex = pad(boxes, w, h)
    ok = (ey > y - 1) & (ex > x - 1)
    crops = [
        imresample(imgs[image_inds[k] : image_inds[k] + 1, :, y[k] - 1 : ey[k], x[k] - 1 : ex[k]], (size, size))
        for k in np.flatnonzero(ok)
    ]
    if not crops:
        return np.empty((0, 3, size, size), dtype=_F32), ok
    return _normalize(np.concatenate(crops, axis=0)), ok


class OnnxMTCNN:
    """MTCNN on ONNX Runtime (CPU). ``model_dir`` holds mtcnn_pnet/rnet/onet.onnx."""

    def __init__(
        self,
        *,
        min_face_size: int = 20,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        model_dir: Path | None = None,
    ) -> None:
        folder = Path(model_dir) if model_dir is not None else runtime.onnx_dir()
        self.min_face_size = int(min_face_size)
        self.thresholds = [float(t) for t in thresholds]
        self.factor = float(factor)
        self.pnet = runtime.onnx_session(folder / runtime.MTCNN_FILES["pnet"])
        self.rnet = runtime.onnx_session(folder / runtime.MTCNN_FILES["rnet"])
        self.onet = runtime.onnx_session(folder / runtime.MTCNN_FILES["onet"])

    def eval(self) -> OnnxMTCNN:  # the torch MTCNN's API; nothing to switch here
        return self

    @staticmethod
    def _run(session, x: np.ndarray) -> list[np.ndarray]:
        return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x, dtype=_F32)})

    def detect_raw(self, batch: np.ndarray):
        """facenet-pytorch's ``detect_face`` on an (N, H, W, 3) uint8 batch: per-image boxes
        (n, 5: x1, y1, x2, y2, score) and landmarks (n, 5, 2), in facenet-pytorch's order."""
        imgs = np.ascontiguousarray(np.asarray(batch).transpose(0, 3, 1, 2), dtype=_F32)
        n, _, h, w = imgs.shape
        th = self.thresholds
        m = 12.0 / self.min_face_size
        minl = min(h, w) * m
        scales = []
        scale = m
        while minl >= 12:
            scales.append(scale)
            scale *= self.factor
            minl *= self.factor

        # first stage: PNet over the pyramid
        all_boxes, all_inds = [], []
        integral = integral_images(batch) if scales else None  # one table serves every level
        for scale in scales:
            im = _normalize(imresample_integral(integral, (int(h * scale + 1), int(w * scale + 1))))
            reg, probs = self._run(self.pnet, im)
            b, ii = generate_bounding_box(reg, probs[:, 1], scale, th[0])
            pick = batched_nms(b[:, :4], b[:, 4], ii, 0.5)
            all_boxes.append(b[pick])
            all_inds.append(ii[pick])
        boxes = np.concatenate(all_boxes, axis=0) if all_boxes else np.empty((0, 9), _F32)
        inds = np.concatenate(all_inds, axis=0) if all_inds else np.empty(0, np.int64)
        pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
        boxes, inds = boxes[pick], inds[pick]
        regw = boxes[:, 2] - boxes[:, 0]
        regh = boxes[:, 3] - boxes[:, 1]
        boxes = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * regw,
                boxes[:, 1] + boxes[:, 6] * regh,
                boxes[:, 2] + boxes[:, 7] * regw,
                boxes[:, 3] + boxes[:, 8] * regh,
                boxes[:, 4],
            ],
            axis=1,
        )
        boxes = rerec(boxes)

        # second stage: RNet on 24x24 crops
        if len(boxes) > 0:
            crops, ok = _crops(imgs, inds, boxes, 24)
            boxes, inds = boxes[ok], inds[ok]
            reg, prob = self._run(self.rnet, crops) if len(crops) else (np.empty((0, 4), _F32), np.empty((0, 2), _F32))
            score = prob[:, 1]
            ipass = score > th[1]
            boxes = np.concatenate([boxes[ipass, :4], score[ipass, None]], axis=1)
            inds, mv = inds[ipass], reg[ipass]
            pick = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds, mv = boxes[pick], inds[pick], mv[pick]
            boxes = rerec(bbreg(boxes, mv))

        # third stage: ONet on 48x48 crops, landmarks
        points = np.zeros((0, 5, 2), dtype=_F32)
        if len(boxes) > 0:
            crops, ok = _crops(imgs, inds, boxes, 48)
            boxes, inds = boxes[ok], inds[ok]
            if len(crops):
                reg, lms, prob = self._run(self.onet, crops)
            else:
                reg, lms, prob = np.empty((0, 4), _F32), np.empty((0, 10), _F32), np.empty((0, 2), _F32)
            score = prob[:, 1]
            ipass = score > th[2]
            lms = lms[ipass]
            boxes = np.concatenate([boxes[ipass, :4], score[ipass, None]], axis=1)
            inds, mv = inds[ipass], reg[ipass]
            w_i = boxes[:, 2] - boxes[:, 0] + 1
            h_i = boxes[:, 3] - boxes[:, 1] + 1
            px = w_i[:, None] * lms[:, :5] + boxes[:, 0:1] - 1
            py = h_i[:, None] * lms[:, 5:10] + boxes[:, 1:2] - 1
            points = np.stack([px, py], axis=2)
            boxes = bbreg(boxes, mv)
            pick = batched_nms_min(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds, points = boxes[pick], inds[pick], points[pick]

        return [boxes[inds == i] for i in range(n)], [points[inds == i] for i in range(n)]

    def detect(self, batch: np.ndarray, landmarks: bool = True):
        """Like ``facenet_pytorch.MTCNN(keep_all=True, select_largest=True).detect``: lists (one
        entry per image) of boxes (n, 4), scores (n,), landmarks (n, 5, 2); None for no face."""
        batch = np.asarray(batch)
        if batch.ndim == 3:
            batch = batch[None]
        all_boxes, all_points = self.detect_raw(batch)
        boxes_out, probs_out, points_out = [], [], []
        for box, point in zip(all_boxes, all_points, strict=True):
            if len(box) == 0:
                boxes_out.append(None)
                probs_out.append([None])
                points_out.append(None)
                continue
            order = np.argsort((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))[::-1]
            box, point = box[order], point[order]
            boxes_out.append(box[:, :4])
            probs_out.append(box[:, 4])
            points_out.append(point)
        if landmarks:
            return boxes_out, probs_out, points_out
        return boxes_out, probs_out


def square_crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box of an (H, W, 3) uint8 image resampled to ``size`` x ``size`` ("area"), normalized
    for the networks: the pixels MTCNN's stages crop for a box inside the image (columns
    ``trunc(x1) - 1`` up to ``trunc(x2)``, rows likewise), and for a box that leaves the image the
    part outside is grey 128 (facenet-pytorch clips such a box instead, which stretches the face
    along one axis)."""
    h, w = image.shape[:2]
    out = []
    for b in np.asarray(boxes, dtype=np.float64):
        x0, y0 = int(np.trunc(b[0])) - 1, int(np.trunc(b[1])) - 1
        x1, y1 = max(int(np.trunc(b[2])), x0 + 1), max(int(np.trunc(b[3])), y0 + 1)
        patch = np.full((y1 - y0, x1 - x0, 3), 128, np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out.append(imresample(patch.transpose(2, 0, 1)[None].astype(_F32), (size, size)))
    if not out:
        return np.empty((0, 3, size, size), dtype=_F32)
    return _normalize(np.concatenate(out, axis=0))


def refine(run_onet, image: np.ndarray, boxes: np.ndarray, threshold: float):
    """MTCNN's last stage alone, on boxes from elsewhere (a face's box in the previous video
    frame): each box made square, cropped (:func:`square_crops`), scored and regressed by ONet
    exactly as in :meth:`OnnxMTCNN.detect_raw`'s third stage, with its landmarks; boxes scoring
    at most ``threshold`` are dropped, then the 'Min' NMS. ``run_onet(crops)`` -> (regression
    (k, 4), landmarks (k, 10), probabilities (k, 2)), whichever runtime runs the network.

    Returns boxes (m, 5: x1, y1, x2, y2, score) and landmarks (m, 5, 2)."""
    boxes = np.asarray(boxes, dtype=_F32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.empty((0, 5), _F32), np.empty((0, 5, 2), _F32)
    square = rerec(boxes)
    reg, lms, prob = (np.asarray(a, dtype=_F32) for a in run_onet(square_crops(image, square, 48)))
    score = prob[:, 1]
    ipass = score > threshold
    square, reg, lms, score = square[ipass], reg[ipass], lms[ipass], score[ipass]
    w_i = square[:, 2] - square[:, 0] + 1
    h_i = square[:, 3] - square[:, 1] + 1
    px = w_i[:, None] * lms[:, :5] + square[:, 0:1] - 1
    py = h_i[:, None] * lms[:, 5:10] + square[:, 1:2] - 1
    points = np.stack([px, py], axis=2)
    out = bbreg(np.concatenate([square, score[:, None]], axis=1), reg)
    pick = _nms_min(out[:, :4], out[:, 4], 0.7)
    return out[pick], points[pick]

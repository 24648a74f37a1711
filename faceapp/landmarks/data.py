"""The 300-W subset on disk, and the face boxes the landmark network is cropped from.

``$FACEAPP_DATASETS/300w-subset/{train,test}/X.jpg`` (256x256) with ``X.pts`` (68 points).
In the product the box comes from MTCNN, so training and evaluation use MTCNN's box too:
:func:`face_boxes` runs :class:`~faceapp.detect.detector.FaceDetector` once per image, keeps the
detection that overlaps the true landmarks best, and caches the result in the user's cache
folder. Where MTCNN finds no face there (a few profile or occluded faces), the box is derived
from the landmarks' bounding box with the average offsets MTCNN has on the faces it did find,
and the sample is marked ``from_points``; evaluation reports how many.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp.landmarks.points import read_pts

log = logging.getLogger(__name__)

DATASET = "300w-subset"


@dataclass(frozen=True, eq=False)
class Split:
    """One split of the dataset: image paths, true points (N, 68, 2) and face boxes (N, 4)."""

    name: str
    paths: tuple[Path, ...]
    points: np.ndarray  # (N, 68, 2) float64, pixels
    boxes: np.ndarray  # (N, 4) float64 x1, y1, x2, y2 (MTCNN, or derived from the points)
    from_points: np.ndarray  # (N,) bool: True where MTCNN found no matching face

    def __len__(self) -> int:
        return len(self.paths)


def dataset_root(root: str | os.PathLike | None = None) -> Path:
    """The 300w-subset folder: ``root`` if given, else ``$FACEAPP_DATASETS/300w-subset``."""
    from faceapp.errors import ConfigError

    if root is not None:
        path = Path(root)
    else:
        env = os.environ.get("FACEAPP_DATASETS")
        if not env:
            raise ConfigError("set FACEAPP_DATASETS to the folder that holds 300w-subset (or pass --data)")
        path = Path(env) / DATASET
    if not (path / "train").is_dir() or not (path / "test").is_dir():
        raise ConfigError(f"{path} does not look like 300w-subset (needs train/ and test/)")
    return path


def list_split(root: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Image paths (sorted) and their points for ``train`` or ``test``."""
    folder = Path(root) / split
    paths = sorted(p for p in folder.glob("*.jpg") if p.with_suffix(".pts").is_file())
    if not paths:
        raise FileNotFoundError(f"no .jpg/.pts pairs in {folder}")
    points = np.stack([read_pts(p.with_suffix(".pts")) for p in paths])
    return paths, points


def points_box(points: np.ndarray) -> np.ndarray:
    """The bounding box (x1, y1, x2, y2) of landmarks, ``(..., 68, 2)`` -> ``(..., 4)``."""
    p = np.asarray(points, dtype=np.float64)
    return np.concatenate([p.min(axis=-2), p.max(axis=-2)], axis=-1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_offsets(boxes: np.ndarray, pboxes: np.ndarray) -> np.ndarray:
    """MTCNN box edges relative to the landmark box, in units of the landmark box's width/height."""
    w = (pboxes[:, 2] - pboxes[:, 0])[:, None]
    h = (pboxes[:, 3] - pboxes[:, 1])[:, None]
    scale = np.hstack([w, h, w, h])
    return (boxes - pboxes) / scale


def box_from_points(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """An MTCNN-like box from landmarks, given mean ``offsets`` from :func:`box_offsets`."""
    pb = points_box(points)
    w, h = pb[..., 2] - pb[..., 0], pb[..., 3] - pb[..., 1]
    scale = np.stack([w, h, w, h], axis=-1)
    return pb + np.asarray(offsets) * scale


#: MTCNN's box edges relative to the 68 points' box (left, top, right, bottom; in units of that
#: box's width/height), the mean over HELEN test (330 faces): the fallback when a split has none.
MTCNN_OFFSETS = np.array([0.014, -0.315, -0.028, -0.023])


def _cache_file(paths: list[Path]) -> Path:
    from faceapp import paths as app_paths

    key = hashlib.sha1("\n".join(p.name for p in paths).encode()).hexdigest()[:12]
    return app_paths.cache_dir() / "landmarks" / f"mtcnn-boxes-{paths[0].parent.name}-{key}.npz"


def mtcnn_boxes(
    paths: list[Path],
    points: np.ndarray,
    *,
    min_iou: float = 0.3,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN's box of the annotated face in each image: ``(N, 4)`` with NaN rows where no
    detection overlaps the landmark box by IoU >= ``min_iou``, and the scores ``(N,)``.
    Cached per list of files (the cache is disposable)."""
    cache = _cache_file(paths)
    if use_cache and cache.is_file():
        data = np.load(cache)
        if len(data["boxes"]) == len(paths):
            return data["boxes"], data["scores"]
    from faceapp.detect.detector import FaceDetector
    from faceapp.imageio import load_image

    detector = FaceDetector(device="cpu", min_face_size=40)
    boxes = np.full((len(paths), 4), np.nan)
    scores = np.zeros(len(paths))
    pboxes = points_box(points)
    for i, path in enumerate(paths):
        dets = detector.detect(load_image(path))
        best, best_iou = None, min_iou
        for d in dets:
            b = np.array([d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2])
            o = iou(b, pboxes[i])
            if o >= best_iou:
                best, best_iou = (b, d.score), o
        if best is not None:
            boxes[i], scores[i] = best
        if progress:
            progress(i + 1, len(paths))
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, boxes=boxes, scores=scores)
    return boxes, scores


def load_split(
    root: Path, split: str, *, offsets: np.ndarray | None = None, limit: int | None = None, **kw
) -> Split:
    """A split with MTCNN boxes, missing ones filled from the points (see the module docstring).

    ``offsets``: the mean MTCNN-box offsets to fill with; default: this split's own.
    ``limit``: only the first N images (quick checks)."""
    paths, points = list_split(root, split)
    if limit is not None:
        paths, points = paths[:limit], points[:limit]
    boxes, _ = mtcnn_boxes(paths, points, **kw)
    missing = ~np.isfinite(boxes).all(axis=1)
    if offsets is None and (~missing).any():
        offsets = box_offsets(boxes[~missing], points_box(points[~missing])).mean(axis=0)
    boxes = boxes.copy()
    if missing.any():
        if offsets is None or not np.isfinite(offsets).all():
            offsets = MTCNN_OFFSETS
        boxes[missing] = box_from_points(points[missing], offsets)
    if missing.any():
        log.info("%s: MTCNN found no matching face in %d of %d images; boxes derived from the points",
                 split, int(missing.sum()), len(paths))
    return Split(split, tuple(paths), points, boxes, missing)

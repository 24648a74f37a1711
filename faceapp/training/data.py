"""Identity datasets for training: one folder per person, LFW people lists, celeba-subset;
aligned face chips made once by the project's own detector and alignment, cached on disk.

A :class:`ChipSet` is what training reads: ``chips`` (N, S, S, 3) RGB uint8 aligned faces,
``labels`` (N,) identity indices into ``names``, and ``sources`` (the image each chip came
from, relative to the dataset root). On disk it is one ``.npz`` per dataset holding the chips
as JPEG or WebP bytes (``data`` concatenated, ``offsets`` (N+1,)), so ten thousand chips take
tens of megabytes and travel to another machine in one file.

The chip of an image is the face nearest the image centre (LFW's and celeba-subset's
convention: the labelled person is centred), aligned onto the model's 5-point template exactly
as :class:`faceapp.pipeline.FaceEngine` does at inference. When MTCNN finds no face the mean
landmark positions of the images of the same dataset where it did are used (like
``faceapp.evaluation.runner``), and the chip is listed in ``fallback``.

Splits are by identity (no person in two splits) and deterministic for a given seed.

This module imports only numpy at import time: the detector, the image reader and the
engine are imported by :func:`build_chip_set` alone, so training on another machine needs
torch, numpy and an image decoder (OpenCV or Pillow), nothing else of the app.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "Identity",
    "ChipSet",
    "folder_identities",
    "lfw_identities",
    "lfw_fold_identities",
    "lfw_people_identities",
    "view2_training_people",
    "build_chip_set",
    "split_identities",
    "encode_chips",
    "decode_chips",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Identity:
    """One person and their photos (absolute paths, sorted)."""

    name: str
    images: tuple[Path, ...]


# --------------------------------------------------------------------------------------------
# Identity lists
# --------------------------------------------------------------------------------------------


def _cap(images: list[Path], max_images: int | None) -> tuple[Path, ...]:
    images = sorted(images)
    return tuple(images if max_images is None else images[: int(max_images)])


def folder_identities(
    root: Path | str, *, min_images: int = 1, max_images: int | None = None
) -> list[Identity]:
    """People from a folder holding one sub-folder of photos per person (any user's photos too).

    ``root/<name>/*.jpg|png|...``; people with fewer than ``min_images`` photos are left out;
    ``max_images`` keeps the first photos by file name. Sorted by name.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"identity folder not found: {root}")
    out: list[Identity] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        imgs = [f for f in person.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()]
        if len(imgs) >= min_images:
            out.append(Identity(person.name, _cap(imgs, max_images)))
    return out


def _lfw_images_root(lfw_dir: Path) -> Path:
    return lfw_dir / "images" if (lfw_dir / "images").is_dir() else lfw_dir


def _lfw_people_to_identities(
    lfw_dir: Path, people: dict[str, int], min_images: int, max_images: int | None
) -> list[Identity]:
    root = _lfw_images_root(lfw_dir)
    out = []
    for name in sorted(people):
        n = people[name]
        if n < min_images:
            continue
        imgs = [root / name / f"{name}_{i:04d}.jpg" for i in range(1, n + 1)]
        out.append(Identity(name, _cap(imgs, max_images)))
    return out


def lfw_identities(
    lfw_dir: Path | str, which: str = "devtrain", *, min_images: int = 2, max_images: int | None = None
) -> list[Identity]:
    """LFW people of ``peopleDevTrain.txt`` (``"devtrain"``) or ``peopleDevTest.txt`` (``"devtest"``).

    Only people with at least ``min_images`` photos (default 2: a person with one photo makes
    no positive pair); ``max_images`` caps the photos of the few people with hundreds.
    """
    from faceapp.evaluation.protocols import read_lfw_people

    if which not in ("devtrain", "devtest"):
        raise ValueError(f"unknown LFW people set {which!r}; expected devtrain or devtest")
    lfw_dir = Path(lfw_dir)
    return _lfw_people_to_identities(lfw_dir, read_lfw_people(lfw_dir, which), min_images, max_images)


def lfw_fold_identities(
    lfw_dir: Path | str, exclude_fold: int, *, min_images: int = 2, max_images: int | None = None
) -> list[Identity]:
    """LFW View 2 unrestricted training set for fold ``exclude_fold`` (0-9): the people of the
    nine other sets of ``people.txt``."""
    from faceapp.evaluation.protocols import read_lfw_people

    lfw_dir = Path(lfw_dir)
    folds = read_lfw_people(lfw_dir, "10fold")
    if not 0 <= exclude_fold < len(folds):
        raise ValueError(f"fold must be 0..{len(folds) - 1}, got {exclude_fold}")
    people: dict[str, int] = {}
    for i, f in enumerate(folds):
        if i != exclude_fold:
            people.update(f)
    return _lfw_people_to_identities(lfw_dir, people, min_images, max_images)


def view2_training_people(folds: Sequence[dict[str, int]] | Sequence[Sequence[str]], test_fold: int) -> set[str]:
    """The LFW View 2 unrestricted training people for ``test_fold`` (0-based): every person of
    the other sets of ``people.txt``, none of set ``test_fold``. ``folds`` is
    ``read_lfw_people(lfw, "10fold")`` (or any list of name collections)."""
    if not 0 <= int(test_fold) < len(folds):
        raise ValueError(f"fold must be 0..{len(folds) - 1}, got {test_fold}")
    test = set(folds[int(test_fold)])
    train: set[str] = set()
    for i, f in enumerate(folds):
        if i != int(test_fold):
            train.update(f)
    return train - test  # a name listed in two sets (never in LFW's files) counts as a test person


def lfw_people_identities(
    lfw_dir: Path | str, *, min_images: int = 2, max_images: int | None = None
) -> list[Identity]:
    """Every person of LFW View 2's ``people.txt`` (all ten sets; 1,680 people have at least two
    photos). The chip cache of the unrestricted protocol: each fold's training then selects the
    people of the nine other sets (:func:`view2_training_people`)."""
    from faceapp.evaluation.protocols import read_lfw_people

    lfw_dir = Path(lfw_dir)
    people: dict[str, int] = {}
    for f in read_lfw_people(lfw_dir, "10fold"):
        people.update(f)
    return _lfw_people_to_identities(lfw_dir, people, min_images, max_images)


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def encode_chips(chips: np.ndarray, *, fmt: str = "webp", quality: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 chips (N, S, S, 3) -> (concatenated bytes as uint8, offsets (N+1,) int64)."""
    import cv2

    if fmt not in ("webp", "jpg"):
        raise ValueError(f"unknown chip format {fmt!r}; expected webp or jpg")
    flag = cv2.IMWRITE_WEBP_QUALITY if fmt == "webp" else cv2.IMWRITE_JPEG_QUALITY
    blobs = []
    for chip in chips:
        ok, buf = cv2.imencode("." + fmt, np.ascontiguousarray(chip[..., ::-1]), [int(flag), int(quality)])
        if not ok:
            raise RuntimeError(f"OpenCV could not encode a chip as {fmt}")
        blobs.append(buf.reshape(-1))
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
    return data.astype(np.uint8), offsets


def _decode_one(buf: np.ndarray) -> np.ndarray:
    try:
        import cv2

        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError("cv2.imdecode failed")
        return img[..., ::-1]
    except ImportError:  # pragma: no cover - machines without OpenCV
        import io

        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(buf.tobytes())).convert("RGB"))


def decode_chips(data: np.ndarray, offsets: np.ndarray, *, workers: int = 0) -> np.ndarray:
    """Inverse of :func:`encode_chips`: (N, S, S, 3) RGB uint8. ``workers`` > 1 decodes in threads."""
    n = len(offsets) - 1
    parts = [data[offsets[i] : offsets[i + 1]] for i in range(n)]
    if n == 0:
        return np.zeros((0, 0, 0, 3), np.uint8)
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as ex:
            imgs = list(ex.map(_decode_one, parts, chunksize=256))
    else:
        imgs = [_decode_one(p) for p in parts]
    return np.ascontiguousarray(np.stack(imgs))


# --------------------------------------------------------------------------------------------
# Chip sets
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ChipSet:
    """Aligned face chips with identity labels (see the module docstring)."""

    chips: np.ndarray  # (N, S, S, 3) uint8 RGB
    labels: np.ndarray  # (N,) int64, index into names
    names: list[str]
    sources: list[str] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, np.int64)
        if len(self.chips) != len(self.labels):
            raise ValueError(f"{len(self.chips)} chips but {len(self.labels)} labels")
        if not self.sources:
            self.sources = [""] * len(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_identities(self) -> int:
        return len(self.names)

    def subset(self, indices: np.ndarray | Sequence[int]) -> ChipSet:
        """The chips at ``indices``; identities are renumbered 0..k-1 in order of first label."""
        idx = np.asarray(indices, np.int64)
        old = self.labels[idx]
        keep = np.unique(old)
        remap = {int(o): i for i, o in enumerate(keep)}
        srcs = [self.sources[i] for i in idx]
        fb = set(self.fallback)
        return ChipSet(
            self.chips[idx],
            np.array([remap[int(o)] for o in old], np.int64),
            [self.names[int(o)] for o in keep],
            srcs,
            [s for s in srcs if s in fb],
            dict(self.meta),
        )

    @staticmethod
    def concat(sets: Sequence[ChipSet], prefixes: Sequence[str] | None = None) -> ChipSet:
        """One set from several; identity names get ``prefixes`` (e.g. "lfw/", "celeba/") so
        people of different datasets never merge by name."""
        prefixes = list(prefixes or [""] * len(sets))
        chips, labels, names, sources, fallback = [], [], [], [], []
        for s, pre in zip(sets, prefixes, strict=True):
            labels.append(s.labels + len(names))
            names.extend(pre + n for n in s.names)
            chips.append(s.chips)
            sources.extend(pre + x for x in s.sources)
            fallback.extend(pre + x for x in s.fallback)
        return ChipSet(np.concatenate(chips), np.concatenate(labels), names, sources, fallback,
                       dict(sets[0].meta) if sets else {})

    def save(self, path: Path | str, *, fmt: str = "webp", quality: int = 80) -> Path:
        """Write one compressed ``.npz`` (chips as ``fmt`` bytes; no pickles)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data, offsets = encode_chips(self.chips, fmt=fmt, quality=quality)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(
            tmp,
            data=data,
            offsets=offsets,
            labels=self.labels.astype(np.int32),
            names=np.array(self.names, dtype=str),
            sources=np.array(self.sources, dtype=str),
            fallback=np.array(self.fallback, dtype=str),
            meta=np.array(json.dumps({**self.meta, "format": fmt, "quality": quality})),
        )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path | str, *, workers: int = 0) -> ChipSet:
        with np.load(Path(path), allow_pickle=False) as z:
            chips = decode_chips(z["data"], z["offsets"], workers=workers)
            return cls(
                chips,
                z["labels"].astype(np.int64),
                z["names"].tolist(),
                z["sources"].tolist(),
                z["fallback"].tolist(),
                json.loads(str(z["meta"])),
            )


def split_identities(
    labels: np.ndarray, fractions: Sequence[float], *, seed: int = 0
) -> list[np.ndarray]:
    """Identity-disjoint split of sample indices.

    The identities (distinct ``labels``) are shuffled with ``seed`` and dealt into consecutive
    groups of sizes ``round(fraction * identities)``; the last group takes the rest, so
    ``fractions=(0.9, 0.1)`` gives (train, validation). Returns one sorted index array per group.
    Same labels and seed -> same split.
    """
    labels = np.asarray(labels)
    ids = np.unique(labels)
    perm = np.random.default_rng(seed).permutation(ids)
    bounds = np.round(np.cumsum(fractions) / np.sum(fractions) * len(ids)).astype(int)
    groups = np.split(perm, bounds[:-1])
    return [np.sort(np.flatnonzero(np.isin(labels, g))) for g in groups]


# --------------------------------------------------------------------------------------------
# Building: detect + align through the project's own engine
# --------------------------------------------------------------------------------------------


def _det_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"


def build_chip_set(
    identities: Sequence[Identity],
    engine,
    *,
    root: Path | str | None = None,
    detections: dict | None = None,
    save_detections: Callable[[dict], None] | None = None,
    progress: Progress | None = None,
    is_cancelled: Callable[[], bool] = lambda: False,
    checkpoint_every: int = 200,
    batch_size: int = 16,
) -> ChipSet:
    """Detect, align and collect the chips of ``identities`` with ``engine`` (a FaceEngine).

    ``detections`` is a dict in the format of ``faceapp.evaluation.runner.EvalCache.detections``
    (key: path|size|mtime -> [box, score, points] or None); detections found there are reused
    and new ones are added, and ``save_detections(detections)`` is called every
    ``checkpoint_every`` new detections, so an interrupted build resumes where it stopped.
    Images are detected ``batch_size`` at a time (one MTCNN batch when they have equal sizes).
    ``root`` makes ``sources`` relative (default: the common parent of the images).
    Raises InterruptedError when ``is_cancelled()`` turns true.
    """
    from faceapp.detect.edges import redetect_edges
    from faceapp.evaluation.runner import central_face
    from faceapp.imageio import load_image
    from faceapp.types import BBox, Detection, Landmarks

    detections = {} if detections is None else detections
    paths: list[Path] = []
    labels: list[int] = []
    for i, ident in enumerate(identities):
        paths.extend(ident.images)
        labels.extend([i] * len(ident.images))
    keys = [_det_key(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in detections]
    total = len(todo) + len(paths)
    done = 0
    max_side = engine.settings.max_image_side
    since_save = 0
    for start in range(0, len(todo), batch_size):
        if is_cancelled():
            if save_detections:
                save_detections(detections)
            raise InterruptedError("chip building cancelled")
        idx = todo[start : start + batch_size]
        images = [load_image(paths[i], max_side=max_side) for i in idx]
        # equal-sized images (LFW: all 250x250) run through MTCNN as one batch; then the front
        # end's edge rule, as for every still photo (faceapp eval, enrollment): a face at the
        # picture's edge, or a photo with no face found, is detected again in a padded copy
        if hasattr(engine.detector, "detect_batch"):
            found = [redetect_edges(engine.detector.detect, im, dets, still=True)
                     for im, dets in zip(images, engine.detector.detect_batch(images), strict=True)]
        else:
            found = [engine.detect(im, still=True) for im in images]
        for i, img, dets in zip(idx, images, found, strict=True):
            det = central_face(dets, img.shape)
            detections[keys[i]] = (
                None if det is None
                else [[det.bbox.x1, det.bbox.y1, det.bbox.x2, det.bbox.y2], det.score, det.landmarks.points.tolist()]
            )
        done += len(idx)
        since_save += len(idx)
        if save_detections and since_save >= checkpoint_every:
            save_detections(detections)
            since_save = 0
        if progress:
            progress(done, total)
    if save_detections and todo:
        save_detections(detections)
    found = [np.asarray(detections[k][2], np.float32) for k in keys if detections[k] is not None]
    if not found:
        raise RuntimeError("no face was detected in any image")
    mean_pts = np.mean(found, axis=0)
    size = engine.spec.input_size
    chips = np.empty((len(paths), size, size, 3), np.uint8)
    fallback_idx = []
    for i, (p, k) in enumerate(zip(paths, keys, strict=True)):
        img = load_image(p, max_side=max_side)
        rec = detections[k]
        if rec is None:
            det = Detection(BBox(0, 0, img.shape[1], img.shape[0]), 0.0, Landmarks(mean_pts))
            fallback_idx.append(i)
        else:
            det = Detection(BBox(*rec[0]), float(rec[1]), Landmarks(np.asarray(rec[2], np.float32)))
        chips[i] = engine.align(img, det).image
        done += 1
        if progress:
            progress(done, total)
    base = Path(root) if root is not None else Path(os.path.commonpath([str(p) for p in paths])) if paths else Path(".")
    sources = [str(p.relative_to(base)) if p.is_relative_to(base) else str(p) for p in paths]
    meta = {
        "model_template": np.asarray(engine.spec.template, np.float32).round(4).tolist(),
        "input_size": int(size),
        "detector": "MTCNN (facenet-pytorch) via faceapp FaceEngine, central face",
    }
    return ChipSet(chips, np.array(labels, np.int64), [x.name for x in identities], sources,
                   [sources[i] for i in fallback_idx], meta)

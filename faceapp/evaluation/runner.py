"""Run pairs through the full pipeline (detect -> align -> embed) and measure.

Detections and encodings are cached per image (keyed by path, size and mtime; encodings also
by model id), so a second evaluation of the same images is fast, and a new model re-uses the
detections. The face of an image is the detected face nearest the image centre (LFW's
convention: the labelled person is centred); images where MTCNN finds nothing fall back to
the mean landmark positions of the images where it did, and are counted and reported.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp import paths
from faceapp.imageio import load_image
from faceapp.match.gallery import pair_distance
from faceapp.pipeline import FaceEngine
from faceapp.types import BBox, Detection, Landmarks

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# The front end's version in the cache's file names: detections (and so encodings) made by an
# earlier front end are never reused. "edges2": faces at the picture's edge and photos without a
# face detected again in a padded copy (faceapp.detect.edges), the other faces as first found.
FRONT_END = "edges2"


def _key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"


def central_face(detections: Sequence[Detection], shape: tuple[int, ...]) -> Detection | None:
    """The detection whose box centre is nearest the image centre."""
    if not detections:
        return None
    cy, cx = shape[0] / 2, shape[1] / 2

    def off(d: Detection) -> float:
        bx, by = (d.bbox.x1 + d.bbox.x2) / 2, (d.bbox.y1 + d.bbox.y2) / 2
        return (bx - cx) ** 2 + (by - cy) ** 2

    return min(detections, key=off)


@dataclass
class EmbeddingTable:
    paths: list[Path]
    embeddings: np.ndarray  # (N, dim) float32
    fallback: list[Path]  # images where no face was detected

    def index(self) -> dict[Path, int]:
        return {p: i for i, p in enumerate(self.paths)}


_DETECTION_SETTINGS = ("max_image_side", "min_face_size")
_ENCODING_SETTINGS = ("brightness_normalize", "min_brightness", "min_raw_brightness")


class EvalCache:
    """Two JSON/NPZ files under the cache folder: detections (model-free) and encodings per model."""

    def __init__(self, engine: FaceEngine, folder: Path | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.folder = (folder or paths.cache_dir() / "eval")
        # encodings depend on the template, the weights and flip TTA, not only on the model id
        # (a model re-exported under the same id must not reuse its predecessor's encodings)
        spec = engine.spec
        tmpl = hashlib.sha1(np.asarray(spec.template, np.float32).tobytes()
                            + f"{spec.sha256}:{int(getattr(spec, 'flip_tta', False))}".encode()
                            + ("" if getattr(spec, "border", "replicate") == "replicate" else f":{spec.border}").encode()
                            ).hexdigest()[:8]
        # detections also depend on the downscale of big images and on the smallest face looked
        # for, encodings on the brightening of dim faces too: settings other than the defaults
        # get their own files (the default settings keep the names they always had)
        st, default = engine.settings, type(engine.settings)()
        det_knobs = tuple(getattr(st, k) for k in _DETECTION_SETTINGS)
        emb_knobs = tuple(getattr(st, k) for k in _ENCODING_SETTINGS)
        det_tag = "" if det_knobs == tuple(getattr(default, k) for k in _DETECTION_SETTINGS) else \
            "-" + hashlib.sha1(repr(det_knobs).encode()).hexdigest()[:8]
        emb_tag = det_tag + ("" if emb_knobs == tuple(getattr(default, k) for k in _ENCODING_SETTINGS) else
                             "-" + hashlib.sha1(repr(emb_knobs).encode()).hexdigest()[:8])
        self.det_file = self.folder / f"detections-{FRONT_END}{det_tag}.json"
        self.emb_file = self.folder / f"embeddings-{engine.model_id}-{tmpl}-{FRONT_END}{emb_tag}.npz"
        self.detections: dict[str, list | None] = {}
        self.embeddings: dict[str, np.ndarray] = {}
        if enabled:
            self._load()

    def _load(self) -> None:
        try:
            self.detections = json.loads(self.det_file.read_text())
        except (OSError, ValueError):
            self.detections = {}
        try:
            with np.load(self.emb_file, allow_pickle=False) as z:
                self.embeddings = dict(zip(z["keys"].tolist(), z["values"], strict=True))
        except (OSError, ValueError, KeyError):
            self.embeddings = {}

    def save(self) -> None:
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.det_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.detections))
        tmp.replace(self.det_file)
        if self.embeddings:
            keys = np.array(list(self.embeddings))
            values = np.stack(list(self.embeddings.values())).astype(np.float32)
            tmp = self.emb_file.with_name(self.emb_file.stem + ".tmp.npz")
            np.savez(tmp, keys=keys, values=values)
            tmp.replace(self.emb_file)


def _detect_missing(engine: FaceEngine, images: Sequence[Path], keys: Sequence[str], cache: EvalCache,
                    progress: Progress | None = None, total: int | None = None) -> int:
    """Detect the central face of every image whose detection is not cached yet (cached across
    models); returns how many were detected."""
    need = [i for i, k in enumerate(keys) if k not in cache.detections]
    for done, i in enumerate(need, 1):
        img = load_image(images[i], max_side=engine.settings.max_image_side)
        det = central_face(engine.detect(img, still=True), img.shape)
        cache.detections[keys[i]] = (
            None if det is None else [[det.bbox.x1, det.bbox.y1, det.bbox.x2, det.bbox.y2], det.score, det.landmarks.points.tolist()]
        )
        if progress:
            progress(done, total if total is not None else len(need))
    return len(need)


def _mean_landmarks(cache: EvalCache, keys: Sequence[str]) -> np.ndarray | None:
    """The mean landmarks of the detected faces among ``keys`` (the images evaluated, not every
    detection the shared cache holds: those of other datasets and image sizes would make a
    face-less image's encoding depend on what was evaluated before). In pixels: meant for a set
    of images of one size, as every LFW view and variant is."""
    found = [np.asarray(cache.detections[k][2], np.float32) for k in dict.fromkeys(keys)
             if cache.detections.get(k) is not None]
    return np.mean(found, axis=0) if found else None


def _image_face(engine: FaceEngine, path: Path, record, mean_pts: np.ndarray | None) -> tuple[np.ndarray, Detection]:
    """One image and its face from the cached detection; an image without a detected face gets
    the mean landmarks of the cache over the whole picture."""
    img = load_image(path, max_side=engine.settings.max_image_side)
    if record is None:
        if mean_pts is None:
            raise RuntimeError("no face was detected in any image")
        return img, Detection(BBox(0, 0, img.shape[1], img.shape[0]), 0.0, Landmarks(mean_pts))
    return img, Detection(BBox(*record[0]), float(record[1]), Landmarks(np.asarray(record[2], np.float32)))


def _aligned_chip(engine: FaceEngine, path: Path, record, mean_pts: np.ndarray | None) -> np.ndarray:
    """The embedder's chip of one image from its cached detection (:func:`_image_face`)."""
    return engine.align(*_image_face(engine, path, record, mean_pts)).image


def _detected(engine: FaceEngine, images: Sequence[Path], cache: EvalCache):
    """``images`` as paths, their cache keys and the cache's mean landmarks, every image detected
    (the missing ones now, saved to the cache)."""
    images = [Path(p) for p in images]
    keys = [_key(p) for p in images]
    if _detect_missing(engine, images, keys, cache):
        cache.save()
    return images, keys, _mean_landmarks(cache, keys)


def aligned_chips(engine: FaceEngine, images: Sequence[Path], cache: EvalCache) -> tuple[np.ndarray, int]:
    """The aligned chips of ``images`` exactly as :func:`embed_images` makes them (cached
    detections, central face, mean-landmark fallback), for code that runs other networks on
    them; and the number of images without a detected face."""
    images, keys, mean_pts = _detected(engine, images, cache)
    size = engine.spec.input_size
    chips = np.empty((len(images), size, size, 3), np.uint8)
    for i, (p, k) in enumerate(zip(images, keys, strict=True)):
        chips[i] = _aligned_chip(engine, p, cache.detections[k], mean_pts)
    return chips, sum(1 for k in keys if cache.detections[k] is None)


def kept_faces(engine: FaceEngine, images: Sequence[Path], cache: EvalCache) -> tuple[list[bytes], int]:
    """The face a template enrolled from each image keeps (:func:`faceapp.stored_face.keep`: the
    wide crop, JPEG), from the same detections as :func:`aligned_chips`; and the number of
    images without a detected face."""
    from faceapp import stored_face

    images, keys, mean_pts = _detected(engine, images, cache)
    kept = [stored_face.keep(*_image_face(engine, p, cache.detections[k], mean_pts), engine.spec.border)
            for p, k in zip(images, keys, strict=True)]
    return kept, sum(1 for k in keys if cache.detections[k] is None)


def embed_images(
    engine: FaceEngine,
    images: Sequence[Path],
    *,
    cache: EvalCache | None = None,
    progress: Progress | None = None,
    batch: int = 32,
) -> EmbeddingTable:
    """Encode the central face of each image (cached)."""
    cache = cache or EvalCache(engine, enabled=False)
    images = list(dict.fromkeys(Path(p) for p in images))
    keys = [_key(p) for p in images]
    # a face-less image is encoded afresh every time (its fallback depends on the images evaluated
    # with it) and never cached; every other encoding is cached
    todo = [i for i, k in enumerate(keys) if k not in cache.embeddings or cache.detections.get(k, 0) is None]
    # 1) detections (cached across models)
    need_det = sum(1 for i in todo if keys[i] not in cache.detections)
    total = need_det + len(todo)
    done = _detect_missing(engine, [images[i] for i in todo], [keys[i] for i in todo], cache, progress, total)
    mean_pts = _mean_landmarks(cache, keys)
    fresh: dict[str, np.ndarray] = {}
    # 2) alignment + encodings, in batches
    for start in range(0, len(todo), batch):
        idx = todo[start : start + batch]
        chips = [_aligned_chip(engine, images[i], cache.detections[keys[i]], mean_pts) for i in idx]
        for i, e in zip(idx, engine.embedder.embed(chips), strict=True):
            if cache.detections[keys[i]] is None:
                fresh[keys[i]] = e
                cache.embeddings.pop(keys[i], None)  # (one cached by an earlier version)
            else:
                cache.embeddings[keys[i]] = e
        done += len(idx)
        if progress:
            progress(done, total)
    cache.save()
    fallback = [p for p, k in zip(images, keys, strict=True) if cache.detections.get(k) is None]
    emb = np.stack([fresh[k] if k in fresh else cache.embeddings[k] for k in keys]) if keys \
        else np.empty((0, engine.spec.embedding_dim), np.float32)
    return EmbeddingTable(images, emb.astype(np.float32), fallback)


def pair_distances(table: EmbeddingTable, pairs) -> np.ndarray:
    idx = table.index()
    return np.array(
        [pair_distance(table.embeddings[idx[Path(p.path_a)]], table.embeddings[idx[Path(p.path_b)]]) for p in pairs],
        dtype=np.float64,
    )


def cross_validation_folds(same: np.ndarray, k: int = 10) -> np.ndarray | None:
    """Fold labels 0..k-1 dealt round-robin within the same and the different pairs (stratified,
    deterministic). None when either class has fewer than k pairs."""
    same = np.asarray(same, dtype=bool)
    if min(same.sum(), (~same).sum()) < k:
        return None
    folds = np.empty(len(same), dtype=np.int64)
    for cls in (True, False):
        idx = np.flatnonzero(same == cls)
        folds[idx] = np.arange(len(idx)) % k
    return folds


def pair_folds(pairs) -> np.ndarray | None:
    """The folds that cross-validate the threshold of ``pairs``: their own (LFW View 2), or,
    for pairs of one fold only (LFW View 1 DevTest, a CSV without folds), 10 folds dealt
    round-robin within each class, so no accuracy is measured on the pairs that chose its
    threshold. None when a class has fewer than 10 pairs."""
    folds = np.array([p.fold for p in pairs])
    if len(np.unique(folds)) >= 2:
        return folds
    return cross_validation_folds(np.array([p.same for p in pairs], dtype=bool), 10)


def pair_metrics(d: np.ndarray, pairs, *, use_folds: bool = True) -> dict:
    """``faceapp eval``'s metrics of the distances ``d`` of ``pairs``: evaluate_pairs' keys with
    the threshold cross-validated over the pairs' folds (plus each fold's accuracy and
    threshold; :func:`pair_folds`)."""
    from faceapp.match.calibration import evaluate_pairs, kfold_accuracy

    same = np.array([p.same for p in pairs], dtype=bool)
    folds = pair_folds(pairs) if use_folds else None
    result = evaluate_pairs(d, same, folds=folds)
    if folds is not None:
        kf = kfold_accuracy(d, same, folds)
        result["fold_accuracies"] = [float(a) for a in kf.fold_accuracies]
        result["fold_thresholds"] = [float(t) for t in kf.fold_thresholds]
    return result


def evaluate(engine: FaceEngine, pairs, *, cache: EvalCache | None = None, progress: Progress | None = None, use_folds: bool = True) -> tuple[dict, np.ndarray]:
    """Metrics (``faceapp.match.calibration.evaluate_pairs`` keys, plus counts) and the distances."""
    imgs = [p.path_a for p in pairs] + [p.path_b for p in pairs]
    table = embed_images(engine, imgs, cache=cache, progress=progress)
    d = pair_distances(table, pairs)
    same = np.array([p.same for p in pairs], dtype=bool)
    result = pair_metrics(d, pairs, use_folds=use_folds)
    tau = engine.threshold
    accept = d <= tau
    result.update(
        model_id=engine.model_id,
        images=len(table.paths),
        no_face_detected=len(table.fallback),
        threshold_in_force=tau,
        accuracy_at_threshold_in_force=float((accept == same).mean()),
        far_at_threshold_in_force=float(accept[~same].mean()),
        frr_at_threshold_in_force=float((~accept[same]).mean()),
    )
    return result, d


def devtrain_calibration_set(lfw: Path, *, model: str, people: int, per_person: int, device: str = "cpu"):
    """The calibration set of the threshold scripts: the first ``people`` LFW DevTrain people
    (by name), up to ``per_person`` photos each, encoded through faceapp's front end with the
    model ``model`` (cached). Returns the embedding table and the owner of each row."""
    import sys

    import numpy as np

    from faceapp.config import Settings
    from faceapp.evaluation.protocols import read_lfw_people
    from faceapp.pipeline import FaceEngine

    lfw = Path(lfw)
    known = read_lfw_people(lfw, "devtrain")
    images, owner = [], []
    for name in sorted(known)[:people]:
        for i in range(1, min(known[name], per_person) + 1):
            images.append(lfw / "images" / name / f"{name}_{i:04d}.jpg")
            owner.append(name)
    engine = FaceEngine(Settings(device=device, model=model))

    def progress(done, total):
        print(f"\r{done}/{total} images", end="", file=sys.stderr, flush=True)

    table = embed_images(engine, images, cache=EvalCache(engine), progress=progress)
    print(file=sys.stderr)
    return table, np.array(owner)


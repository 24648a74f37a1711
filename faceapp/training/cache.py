"""Named training datasets -> aligned-chip cache files (the part of data preparation that
needs the detector; see :mod:`faceapp.training.data`)."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from faceapp.training.data import (
    ChipSet,
    Identity,
    build_chip_set,
    folder_identities,
    lfw_identities,
    lfw_people_identities,
)

log = logging.getLogger(__name__)

__all__ = ["resolve_identities", "build_dataset_cache"]


def resolve_identities(
    dataset: str, *, min_images: int = 2, max_images: int | None = None
) -> tuple[list[Identity], Path]:
    """``lfw-devtrain``, ``lfw-devtest``, ``lfw-people`` (all ten sets of View 2's
    ``people.txt``, for the unrestricted protocol) and ``celeba`` (under ``$FACEAPP_DATASETS``) or
    ``folder:PATH`` -> (identities, root folder that sources are relative to)."""
    from faceapp.evaluation.protocols import datasets_dir

    if dataset.startswith("folder:"):
        root = Path(dataset[len("folder:"):]).expanduser()
        return folder_identities(root, min_images=min_images, max_images=max_images), root
    base = datasets_dir()
    if base is None:
        raise FileNotFoundError(f"dataset {dataset!r} needs FACEAPP_DATASETS set to the datasets folder")
    if dataset in ("lfw-devtrain", "lfw-devtest"):
        lfw = base / "lfw"
        ids = lfw_identities(lfw, dataset.split("-")[1], min_images=min_images, max_images=max_images)
        return ids, (lfw / "images" if (lfw / "images").is_dir() else lfw)
    if dataset == "lfw-people":
        lfw = base / "lfw"
        ids = lfw_people_identities(lfw, min_images=min_images, max_images=max_images)
        return ids, (lfw / "images" if (lfw / "images").is_dir() else lfw)
    if dataset == "celeba":
        root = base / "celeba-subset" / "images"
        return folder_identities(root, min_images=min_images, max_images=max_images), root
    raise ValueError(f"unknown dataset {dataset!r}; expected lfw-devtrain, lfw-devtest, lfw-people, celeba or folder:PATH")


def build_dataset_cache(
    dataset: str,
    out: Path | str,
    *,
    model: str = "dlib-resnet-v1",
    min_images: int = 2,
    max_images: int | None = None,
    fmt: str = "webp",
    quality: int = 80,
    reuse_detections: list[Path] | tuple[Path, ...] = (),
    device: str = "cpu",
    min_face: int = 48,
    verbose: bool = False,
) -> ChipSet:
    """Detect + align every image of ``dataset`` once and write ``out`` (.npz).

    Detections are checkpointed in ``<out>.detections-<front end>.json`` (resumable); files listed in
    ``reuse_detections`` (e.g. an evaluation cache's ``detections-<front end>.json``) are read for images
    already detected there. ``min_face`` is the smallest face (pixels) MTCNN's pyramid looks
    for: the labelled faces of LFW and celeba-subset are about 100 pixels, and 48 instead of
    the app's 20 halves the detection time with the same landmarks to a tenth of a pixel on
    the faces checked.
    """
    from faceapp.config import Settings
    from faceapp.pipeline import FaceEngine

    out = Path(out)
    identities, root = resolve_identities(dataset, min_images=min_images, max_images=max_images)
    from faceapp.evaluation.runner import FRONT_END

    # the front end's version in the name, as the evaluation cache's: detections made before the
    # edge rule (a plain '.detections.json') are not reused
    det_file = out.with_name(f"{out.stem}.detections-{FRONT_END}.json")
    detections: dict = {}
    for f in [*reuse_detections, det_file]:
        try:
            detections.update(json.loads(Path(f).read_text()))
        except (OSError, ValueError):
            pass

    def save(d: dict) -> None:
        det_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = det_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(d))
        tmp.replace(det_file)

    # FaceEngine's detector looks for faces of at least max(20, min_face_size // 2) pixels
    engine = FaceEngine(Settings(device=device, model=model, min_face_size=2 * int(min_face)))
    t0 = time.time()
    last = [0]

    def progress(done: int, total: int) -> None:
        if verbose and (done - last[0] >= 100 or done == total):
            last[0] = done
            el = time.time() - t0
            print(f"{dataset}: {done}/{total} steps, {el:.0f}s", file=sys.stderr, flush=True)

    cs = build_chip_set(identities, engine, root=root, detections=detections, save_detections=save,
                        progress=progress)
    cs.meta.update(dataset=dataset, model=model, min_images=min_images, max_images=max_images, detector_min_face=min_face)
    cs.save(out, fmt=fmt, quality=quality)
    return cs

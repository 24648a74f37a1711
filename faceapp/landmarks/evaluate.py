"""Landmark accuracy on 300-W: NME (outer-eye-corner normalised), failure rate, the cumulative
error distribution (CED) and the time per face, for our network and (when dlib is importable)
dlib's 68-point shape predictor on the same faces with the same face boxes.

dlib is an evaluation-time reference only, never a runtime dependency: it is imported here
inside a function, and only when asked for.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceapp.landmarks.data import Split, iou, points_box
from faceapp.landmarks.points import nme as nme_of

log = logging.getLogger(__name__)

FAILURE_NME = 0.08  # a face whose NME exceeds this counts as a failure (the usual 300-W convention)


@dataclass(frozen=True, eq=False)
class LandmarkScores:
    """Per-face NMEs of one method on one split, and its mean time per face."""

    name: str
    nmes: np.ndarray  # (N,) fractions
    ms_per_face: float
    note: str = ""

    @property
    def nme(self) -> float:
        return float(np.mean(self.nmes))

    def failure_rate(self, threshold: float = FAILURE_NME) -> float:
        return float(np.mean(self.nmes > threshold))

    def auc(self, threshold: float = FAILURE_NME) -> float:
        """Area under the CED curve up to ``threshold``, divided by ``threshold`` (1 = perfect)."""
        xs = np.linspace(0, threshold, 801)
        ys = (self.nmes[None, :] <= xs[:, None]).mean(axis=1)
        return float(np.trapezoid(ys, xs) / threshold)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "nme": round(self.nme, 5),
            "failure_rate": round(self.failure_rate(), 5),
            "auc_0.08": round(self.auc(), 4),
            "ms_per_face": round(self.ms_per_face, 3),
            "faces": int(len(self.nmes)),
            "note": self.note,
        }


def evaluate_predictor(predictor, split: Split, *, progress: Callable[[int, int], None] | None = None) -> LandmarkScores:
    """Our network, one face at a time (as in the product), timed per face (crop + network + map back)."""
    from faceapp.imageio import load_image

    preds, times = [], []
    for i, (path, box) in enumerate(zip(split.paths, split.boxes, strict=True)):
        image = load_image(path, max_side=None)
        if i == 0:
            for _ in range(3):
                predictor.predict(image, box)  # warm-up
        t0 = time.perf_counter()
        preds.append(predictor.predict(image, box))
        times.append(time.perf_counter() - t0)
        if progress:
            progress(i + 1, len(split))
    nmes = nme_of(np.stack(preds), split.points)
    name = predictor.spec.model_id + (" + mirror" if getattr(predictor, "flip", False) else "")
    return LandmarkScores(name, nmes, 1e3 * float(np.mean(times)), note="MTCNN box")


def find_dlib_predictor(path: str | os.PathLike | None = None) -> Path | None:
    """dlib's ``shape_predictor_68_face_landmarks.dat``: ``path``, else ``$FACEAPP_DLIB_PREDICTOR``,
    else the face_recognition_models package's copy; None when none is found."""
    for candidate in (path, os.environ.get("FACEAPP_DLIB_PREDICTOR")):
        if candidate:
            p = Path(candidate)
            return p if p.is_file() else None
    try:
        import face_recognition_models  # type: ignore[import-not-found]

        p = Path(face_recognition_models.pose_predictor_model_location())
        return p if p.is_file() else None
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return None


def dlib_available() -> bool:
    try:
        import dlib  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def evaluate_dlib(split: Split, predictor_path: Path, *, own_detector: bool = False) -> LandmarkScores:
    """dlib's 68-point shape predictor on ``split``: with our MTCNN boxes (``own_detector=False``,
    the like-for-like comparison), or with the box of dlib's own HOG face detector, the box it was
    trained on (faces HOG misses fall back to the MTCNN box; counted in ``note``)."""
    import dlib  # type: ignore[import-not-found]

    from faceapp.imageio import load_image

    shape_predictor = dlib.shape_predictor(str(predictor_path))
    hog = dlib.get_frontal_face_detector() if own_detector else None
    preds, times, fallback = [], [], 0
    pboxes = points_box(split.points)
    for path, box, pbox in zip(split.paths, split.boxes, pboxes, strict=True):
        image = load_image(path, max_side=None)
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        if hog is not None:
            best, best_iou = None, 0.3
            for r in hog(image, 1):
                o = iou(np.array([r.left(), r.top(), r.right(), r.bottom()], float), pbox)
                if o >= best_iou:
                    best, best_iou = r, o
            if best is None:
                fallback += 1
            else:
                rect = best
        t0 = time.perf_counter()
        shape = shape_predictor(image, rect)
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        times.append(time.perf_counter() - t0)
        preds.append(pts)
    nmes = nme_of(np.stack(preds), split.points)
    if own_detector:
        note = f"dlib HOG box ({fallback} of {len(split)} faces missed by HOG used the MTCNN box)"
        name = "dlib shape predictor (HOG box)"
    else:
        note, name = "MTCNN box", "dlib shape predictor"
    return LandmarkScores(name, nmes, 1e3 * float(np.mean(times)), note=note)


def plot_ced(scores: list[LandmarkScores], path: str | os.PathLike, *, max_nme: float = 0.10, title: str = "") -> Path:
    """The cumulative error distribution: fraction of faces (y) with NME <= x, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.linspace(0, max_nme, 501)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    for s in scores:
        ys = (s.nmes[None, :] <= xs[:, None]).mean(axis=1)
        ax.plot(xs * 100, ys, label=f"{s.name}: NME {s.nme * 100:.2f}%, fail {s.failure_rate() * 100:.1f}%")
    ax.axvline(FAILURE_NME * 100, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("NME (% of outer-eye-corner distance)")
    ax.set_ylabel("fraction of faces")
    ax.set_xlim(0, max_nme * 100)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "Cumulative error distribution")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

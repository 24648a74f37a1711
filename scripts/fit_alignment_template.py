"""Fit the MTCNN 5-point template that reproduces dlib's face chip geometry, and measure it.

dlib's recognition model expects the chips of ``dlib.get_face_chip(img, shape, size=150,
padding=0.25)`` (HOG detector + 5-point shape predictor). faceapp detects with MTCNN instead,
so it needs 5 template positions in the 150x150 chip such that a similarity warp of MTCNN's
points onto them gives (nearly) dlib's chip.

For each LFW image (``<Name>/<Name>_0001.jpg``, people in sorted order, images where dlib finds
exactly one face and MTCNN finds that face):

1. dlib's chip and its exact image<->chip mapping: a coordinate image (x + 1000 and y + 1000 as
   float64) is put through ``dlib.extract_image_chip`` with the chip's details, and an affine
   map is fitted to the sampled coordinates (so whatever dlib does internally is captured);
2. MTCNN's 5 points (left eye, right eye, nose, mouth left, mouth right; image left/right) are
   mapped into chip coordinates.

Images alternate between a fitting half and a held-out half. The template is the mean of the
fitting half's chip-coordinate points. On the held-out half each image is warped
with ``cv2.warpAffine(img, M, (150, 150), flags=INTER_LINEAR, borderMode=BORDER_REPLICATE)``,
``M`` from MTCNN's points to the template by (a) an exact least-squares similarity (Umeyama,
no reflection) and (b) ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)``; both chips and
dlib's chip are embedded with the converted network, and the squared L2 distances between the
unit embeddings are reported.

Needs dlib (conversion-time only), e.g. in the throwaway venv of convert_dlib_model.py::

    /tmp/dlibvenv/bin/python scripts/fit_alignment_template.py \
        --lfw /work/shared/datasets/lfw/images --count 400 --write-spec
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from convert_dlib_model import OUT_PT, OUT_SPEC, SHAPE_5_NAME, find_dat, write_spec  # noqa: E402

from faceapp.embed.dlib_resnet import dlib_resnet, normalize_chips  # noqa: E402

CHIP = 150
PADDING = 0.25
POINT_NAMES = ("left eye", "right eye", "nose", "mouth left", "mouth right")


@dataclass
class Sample:
    name: str
    image: np.ndarray  # RGB uint8
    dlib_chip: np.ndarray  # 150x150x3 uint8
    image_to_chip: np.ndarray  # 2x3, dlib's exact mapping
    mtcnn_points: np.ndarray  # 5x2 image coordinates
    chip_points: np.ndarray  # 5x2 MTCNN points in dlib's chip coordinates


def dlib_chip_mapping(dlib, details, shape_hw: tuple[int, int]) -> np.ndarray:  # noqa: ANN001
    """The 2x3 affine image->chip map of ``dlib.extract_image_chip(img, details)``, measured."""
    h, w = shape_hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = dlib.extract_image_chip(np.ascontiguousarray(xx + 1000.0), details)
    sy = dlib.extract_image_chip(np.ascontiguousarray(yy + 1000.0), details)
    v, u = np.mgrid[0 : sx.shape[0], 0 : sx.shape[1]].astype(np.float64)
    # Pixels sampled fully inside the image (outside, dlib fills 0, which pulls values below 1000).
    ok = (sx >= 1000.0) & (sy >= 1000.0) & (sx <= 999.0 + w) & (sy <= 999.0 + h)
    if ok.sum() < 100:
        raise ValueError("chip lies almost entirely outside the image")
    a = np.stack([u[ok], v[ok], np.ones(ok.sum())], axis=1)
    chip_to_image, *_ = np.linalg.lstsq(a, np.stack([sx[ok] - 1000.0, sy[ok] - 1000.0], axis=1), rcond=None)
    residual = np.abs(a @ chip_to_image - np.stack([sx[ok] - 1000.0, sy[ok] - 1000.0], axis=1)).max()
    if residual > 1e-3:
        raise ValueError(f"dlib's chip mapping is not affine here (residual {residual:.2e} px)")
    full = np.vstack([chip_to_image.T, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) src->dst, 2x3."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    scale = np.trace(np.diag(sig) @ e) / s.var(0).sum()
    return np.hstack([scale * r, (mu_d - scale * r @ mu_s)[:, None]])


def collect(lfw: Path, count: int, shape_dat: Path) -> list[Sample]:
    import dlib  # type: ignore[import-not-found]
    from facenet_pytorch import MTCNN
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(shape_dat))
    mtcnn = MTCNN(keep_all=True, device="cpu")
    samples: list[Sample] = []
    skipped = {"dlib faces != 1": 0, "no matching MTCNN face": 0}
    for person in sorted(p.name for p in lfw.iterdir() if p.is_dir()):
        path = lfw / person / f"{person}_0001.jpg"
        pil = Image.open(path).convert("RGB")
        img = np.asarray(pil)
        dets = detector(img, 1)
        if len(dets) != 1:
            skipped["dlib faces != 1"] += 1
            continue
        rect = dets[0]
        shape = predictor(img, rect)
        details = dlib.get_face_chip_details(shape, size=CHIP, padding=PADDING)
        boxes, _probs, points = mtcnn.detect(pil, landmarks=True)
        match = None
        if boxes is not None:
            boxes = np.asarray(boxes, dtype=np.float32)
            points = np.asarray(points, dtype=np.float32)
            centers = (boxes[:, :2] + boxes[:, 2:]) / 2
            rc = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
            inside = (
                (centers[:, 0] >= rect.left()) & (centers[:, 0] <= rect.right())
                & (centers[:, 1] >= rect.top()) & (centers[:, 1] <= rect.bottom())
            )
            if inside.any():
                dist = np.where(inside, np.linalg.norm(centers - rc, axis=1), np.inf)
                match = points[int(np.argmin(dist))].astype(np.float64)
        if match is None:
            skipped["no matching MTCNN face"] += 1
            continue
        m = dlib_chip_mapping(dlib, details, img.shape[:2])
        samples.append(Sample(path.name, img, dlib.get_face_chip(img, shape, size=CHIP, padding=PADDING),
                              m, match, apply(m, match)))
        if len(samples) == count:
            break
    print(f"collected {len(samples)} images ({samples[0].name} .. {samples[-1].name}); skipped {skipped}")
    return samples


def embed(model, chips: list[np.ndarray]) -> np.ndarray:  # noqa: ANN001
    with torch.inference_mode():
        x = normalize_chips(np.stack(chips))
        return torch.cat([model(x[i : i + 32]) for i in range(0, len(x), 32)]).numpy()


def stats(d: np.ndarray) -> str:
    return (f"mean {d.mean():.4f}  median {np.median(d):.4f}  p95 {np.percentile(d, 95):.4f}  "
            f"max {d.max():.4f}  (n={len(d)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, required=True, help="LFW images folder")
    ap.add_argument("--count", type=int, default=400, help="images used (half fit, half held out)")
    ap.add_argument("--shape-dat", type=Path, help=f"{SHAPE_5_NAME} (default: face_recognition_models)")
    ap.add_argument("--weights", type=Path, default=OUT_PT)
    ap.add_argument("--write-spec", action="store_true", help=f"store the template in {OUT_SPEC.name}")
    args = ap.parse_args(argv)

    cv2.setRNGSeed(0)
    shape_dat = args.shape_dat or find_dat(SHAPE_5_NAME)
    samples = collect(args.lfw, args.count, shape_dat)
    fit, held = samples[0::2], samples[1::2]

    pts = np.stack([s.chip_points for s in fit])
    template = pts.mean(0)
    print(f"template from {len(fit)} images (150x150 chip pixels; per-point spread = std over images):")
    for name, (x, y), (sx, sy) in zip(POINT_NAMES, template, pts.std(0)):
        print(f"  {name:12s} x {x:8.4f}  y {y:8.4f}   spread x {sx:.2f} y {sy:.2f}")

    model = dlib_resnet(weights_path=args.weights)
    reference = embed(model, [s.dlib_chip for s in held])
    results: dict[str, np.ndarray] = {}
    warp = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    chips = [cv2.warpAffine(s.image, s.image_to_chip, (CHIP, CHIP), **warp) for s in held]
    results["dlib's exact mapping, cv2 warp (interpolation/border only)"] = embed(model, chips)

    chips, residuals = [], []
    for s in held:
        m = umeyama_similarity(s.mtcnn_points, template)
        residuals.append(np.linalg.norm(apply(m, s.mtcnn_points) - template, axis=1).mean())
        chips.append(cv2.warpAffine(s.image, m, (CHIP, CHIP), **warp))
    results["MTCNN + template, least-squares similarity (Umeyama)"] = embed(model, chips)

    chips = []
    for s in held:
        m, _ = cv2.estimateAffinePartial2D(s.mtcnn_points.astype(np.float32), template.astype(np.float32),
                                           method=cv2.LMEDS)
        chips.append(cv2.warpAffine(s.image, m, (CHIP, CHIP), **warp))
    results["MTCNN + template, cv2.estimateAffinePartial2D LMEDS"] = embed(model, chips)

    print(f"\nheld-out {len(held)} images: squared L2 between unit embeddings of dlib's chip and ...")
    for label, emb in results.items():
        print(f"  {label}:\n    {stats(((emb - reference) ** 2).sum(1))}")
    print(f"  (mean point residual after the similarity fit: {np.mean(residuals):.2f} px)")
    d = ((reference[:, None] - reference[None]) ** 2).sum(-1)
    off = d[~np.eye(len(d), dtype=bool)]
    print(f"  for scale, dlib chips of different people: {stats(off)}")
    # dlib's rule is Euclidean distance < 0.6 between *raw* descriptors (norm ~1.4, not 1).
    with torch.inference_mode():
        x = normalize_chips(np.stack([s.dlib_chip for s in held]))
        raw = model.forward_head(model.forward_features(x)).numpy()
    raw_d = np.sqrt(((raw[:, None] - raw[None]) ** 2).sum(-1))[~np.eye(len(raw), dtype=bool)]
    norms = np.linalg.norm(raw, axis=1)
    print(f"  raw descriptor norm {norms.mean():.3f} +- {norms.std():.3f}; different-people pairs accepted by "
          f"dlib's raw L2 < 0.6: {np.mean(raw_d < 0.6):.2%}, by unit squared L2 < 0.36: {np.mean(off < 0.36):.2%}, "
          f"< {(0.6 / norms.mean()) ** 2:.3f} (= (0.6/mean norm)^2): {np.mean(off < (0.6 / norms.mean()) ** 2):.2%}")

    if args.write_spec:
        write_spec(OUT_SPEC, template=[[round(float(x), 4), round(float(y), 4)] for x, y in template])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

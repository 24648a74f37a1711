"""How much a template re-encoded from its kept wide crop differs from the direct encoding, by how
the crop is stored (JPEG quality 90, 95, lossless PNG): CelebA-subset photos (never a test set),
every 14th image, at most N; each model's encoding of the photo through its own front end
against its encoding of the chip made from the stored crop (:func:`faceapp.stored_face.model_chip`).

    FACEAPP_DATASETS=/work/shared/datasets .venv/bin/python scripts/eval_kept_jpeg.py \\
        --json docs/accuracy/kept-face-jpeg.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def stored(crop: np.ndarray, how: str) -> bytes:
    from PIL import Image

    from faceapp.imageio import encode_jpeg

    if how != "png":
        return encode_jpeg(crop, quality=int(how[1:]))
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="fused-flip-v1,sface-v1,dlib-resnet-v1")
    ap.add_argument("--images", type=int, default=150)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    from faceapp import stored_face
    from faceapp.config import Settings
    from faceapp.detect.align import align_face
    from faceapp.evaluation.protocols import datasets_dir
    from faceapp.imageio import load_image
    from faceapp.pipeline import FaceEngine

    root = (datasets_dir() or Path()) / "celeba-subset" / "images"
    paths = sorted(root.rglob("*.jpg"))[::14][: args.images]
    if not paths:
        ap.error(f"no CelebA-subset images under {root} (set FACEAPP_DATASETS)")
    report = {"images": len(paths), "command": " ".join(["scripts/eval_kept_jpeg.py", *(argv if argv is not None else sys.argv[1:])]),
              "models": {}}
    for model in args.models.split(","):
        eng = FaceEngine(Settings(device="cpu", model=model))
        direct, again = [], {h: [] for h in ("q90", "q95", "png")}
        for p in paths:
            img = load_image(p)
            dets = eng.relevant(eng.detect(img, still=True))
            if not dets:
                continue
            direct.append(eng.align(img, dets[0]).image)
            crop = align_face(img, dets[0], stored_face.WIDE_TEMPLATE, stored_face.WIDE_SIZE, eng.spec.border).image
            for how, out in again.items():
                blob = stored(crop, how)
                face = load_image(blob, max_side=None)
                out.append((stored_face.model_chip(face, wide=True, old=None, engine=eng).image, len(blob)))
        e0 = eng.embedder.embed(direct)
        rows = {}
        for how, out in again.items():
            d = ((e0 - eng.embedder.embed([c for c, _ in out])) ** 2).sum(1)
            rows[how] = {"median": float(np.median(d)), "p90": float(np.percentile(d, 90)), "max": float(d.max()),
                         "kb": float(np.mean([n for _, n in out]) / 1024)}
        report["models"][model] = {"faces": len(direct), "tau": eng.threshold, "squared_l2_to_direct": rows}
        print(model, len(direct), "faces:", "; ".join(f"{h} median {r['median']:.4f} max {r['max']:.4f} {r['kb']:.0f} KB"
                                                      for h, r in rows.items()), f"(tau {eng.threshold:.3f})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build the aligned-chip caches that training reads (one .npz per dataset).

Faces go through the project's own detector (MTCNN, central face) and 5-point alignment onto
the template of ``--model`` (default dlib-resnet-v1: 150x150 chips), once; detections are
checkpointed in ``<out>.detections-<front end>.json`` so an interrupted build resumes.

    OMP_WAIT_POLICY=PASSIVE nice -n 10 .venv/bin/python scripts/train_build_cache.py \
        --dataset celeba --out artifacts/training/celeba.npz
    ... --dataset lfw-devtrain --max-images 40 --out artifacts/training/lfw-devtrain.npz
    ... --dataset folder:/path/to/people --out my-people.npz
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.training.cache import build_dataset_cache  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="lfw-devtrain | lfw-devtest | celeba | folder:PATH")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--model", default="dlib-resnet-v1", help="whose template and input size to align to")
    ap.add_argument("--min-images", type=int, default=2)
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--format", choices=["webp", "jpg"], default="webp")
    ap.add_argument("--quality", type=int, default=80)
    ap.add_argument("--reuse-detections", type=Path, action="append", default=[],
                    help="detections-<front end>.json of an evaluation cache to reuse (read-only; repeatable)")
    ap.add_argument("--min-face", type=int, default=48, help="smallest face MTCNN looks for (pixels)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.time()
    cs = build_dataset_cache(
        args.dataset, args.out, model=args.model, min_images=args.min_images, max_images=args.max_images,
        fmt=args.format, quality=args.quality, reuse_detections=args.reuse_detections, min_face=args.min_face,
        verbose=True,
    )
    info = {
        "out": str(args.out), "images": len(cs), "identities": cs.num_identities,
        "fallback": len(cs.fallback), "bytes": os.path.getsize(args.out), "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

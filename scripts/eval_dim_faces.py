"""Dim faces: LFW View 1 DevTest same-person pairs with the second photo darkened (every pixel
times --factor), judged with and without the brightness normalisation (setting
``brightness_normalize``). Reports how many darkened faces the quality gate refuses, and the
pair distances (plain vs darkened) of those it accepts.

    OMP_NUM_THREADS=2 .venv/bin/python scripts/eval_dim_faces.py --pairs 100 --factor 0.2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.config import Settings  # noqa: E402
from faceapp.evaluation.protocols import read_lfw_pairs  # noqa: E402
from faceapp.imageio import load_image  # noqa: E402
from faceapp.pipeline import FaceEngine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=os.path.join(os.environ.get("FACEAPP_DATASETS", "../shared/datasets"), "lfw"))
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--factor", type=float, default=0.2)
    ap.add_argument("--json")
    args = ap.parse_args()
    on = FaceEngine(Settings(device="cpu"))
    off = FaceEngine(Settings(device="cpu", brightness_normalize=False))
    off._detector, off._embedder = on.detector, on.embedder  # the same networks

    def observe(engine, img):
        dets = engine.relevant(engine.detect(img))
        return engine.observe(img, dets[:1])[0] if dets else None

    pairs = [p for p in read_lfw_pairs(Path(args.lfw), "devtest") if p.same][: args.pairs]
    rows = {"plain": [], "dark, not normalised": [], "dark, normalised": []}
    refused = {k: 0 for k in rows}
    reasons = {k: {} for k in rows}
    for p in pairs:
        a = observe(on, load_image(p.path_a))
        b_img = load_image(p.path_b)
        dark = (b_img.astype(np.float32) * args.factor).astype(np.uint8)
        for key, engine, img in (("plain", on, b_img), ("dark, not normalised", off, dark), ("dark, normalised", on, dark)):
            b = observe(engine, img)
            if a is None or b is None or not b.quality.ok:
                refused[key] += 1
                for why in ["no face"] if b is None else [i.value for i in b.quality.issues]:
                    reasons[key][why] = reasons[key].get(why, 0) + 1
                continue
            rows[key].append(float(((a.embedding - b.embedding) ** 2).sum()))
    tau = on.threshold
    out = {"pairs": len(pairs), "factor": args.factor, "threshold": tau, "results": {}}
    for key, d in rows.items():
        d = np.asarray(d)
        out["results"][key] = {"refused_by_quality": refused[key], "why": reasons[key], "judged": int(d.size),
                               "mean_distance": float(d.mean()) if d.size else None,
                               "match_at_tau": int((d <= tau).sum())}
        print(f"{key:22s} refused {refused[key]:3d} / {len(pairs)} {reasons[key]}; judged {d.size}: mean d "
              f"{d.mean() if d.size else float('nan'):.3f}, MATCH at tau {int((d <= tau).sum())}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

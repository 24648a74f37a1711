"""Calibrate a model's decision threshold tau on LFW View 1 *training* people, so that the
figures measured on DevTest and View 2 are never measured on the pairs that chose tau.

Genuine pairs: every pair of images of a person (up to --per-person images of each person with
two or more). Impostor pairs: every pair of first images of different people (tens of
thousands, so a FAR of 1e-3 is measured on many errors, not on one or two). tau is the largest
threshold whose FAR on those impostor pairs is <= --far (default 1e-3). The result is written
into the model's spec JSON ("threshold" and a "calibration" record) with --write.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/calibrate_threshold.py --model dlib-resnet-v1 --write
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.embed.weights import load_spec  # noqa: E402
from faceapp.evaluation.runner import devtrain_calibration_set  # noqa: E402
from faceapp.match.calibration import tar_at_far  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dlib-resnet-v1")
    ap.add_argument("--lfw", default=os.path.join(os.environ.get("FACEAPP_DATASETS", "../shared/datasets"), "lfw"))
    ap.add_argument("--far", type=float, default=1e-3)
    ap.add_argument("--per-person", type=int, default=4)
    ap.add_argument("--people", type=int, default=1200, help="how many DevTrain people (first N by name)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--write", action="store_true", help="write tau into the model's spec JSON")
    args = ap.parse_args()

    table, owner = devtrain_calibration_set(Path(args.lfw), model=args.model, people=args.people,
                                            per_person=args.per_person, device=args.device)
    names = sorted(set(owner))
    emb = table.embeddings
    owner = np.array(owner)
    first = {}
    for i, o in enumerate(owner):
        first.setdefault(o, i)
    genuine = [
        (a, b) for name in names for a, b in itertools.combinations(np.flatnonzero(owner == name), 2)
    ]
    firsts = np.array(list(first.values()))
    g = np.array([((emb[a] - emb[b]) ** 2).sum() for a, b in genuine])
    sims = emb[firsts] @ emb[firsts].T
    iu = np.triu_indices(len(firsts), 1)
    imp = np.clip(2 - 2 * sims[iu], 0, 4)
    d = np.concatenate([g, imp])
    same = np.concatenate([np.ones(len(g), bool), np.zeros(len(imp), bool)])
    tar, tau = tar_at_far(d, same, args.far)
    record = {
        "protocol": f"LFW View 1 DevTrain people (first {len(names)} by name, up to {args.per_person} images each); "
        "genuine = all same-person pairs, impostor = all pairs of first images of different people",
        "command": "python scripts/calibrate_threshold.py --model " + args.model + " --write",
        "genuine_pairs": int(len(g)),
        "impostor_pairs": int(len(imp)),
        "far_target": args.far,
        "threshold": round(float(tau), 4),
        "tar_at_threshold": round(float(tar), 4),
        "no_face_detected": len(table.fallback),
    }
    print(json.dumps(record, indent=2))
    if args.write:
        spec = load_spec(args.model)
        spec_path = next(p for p in spec.file.parent.glob("*.json") if json.loads(p.read_text()).get("model_id") == args.model)
        data = json.loads(spec_path.read_text())
        data["threshold"] = record["threshold"]
        data["threshold_note"] = f"tau at FAR {args.far:g} on held-out LFW DevTrain pairs (see calibration)"
        data["calibration"] = record
        spec_path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote threshold {record['threshold']} into {spec_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

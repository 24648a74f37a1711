"""Store a model's calibration curve (FAR and TAR per threshold) in its spec JSON.

The pairs are the ones ``scripts/calibrate_threshold.py`` chose tau on: LFW View 1 *DevTrain*
people (the first --people by name, up to --per-person images each); genuine = every pair of
images of a person, impostor = every pair of first images of different people. Never the test
pairs (DevTest, View 2): the figures the settings page shows for a typed threshold must not come
from the pairs accuracy is reported on.

The curve goes under ``"calibration" -> "curve"`` in the spec, beside whatever else the spec
holds (other keys are read back from the file just before writing and kept)::

    "curve": {"protocol": "...", "genuine_pairs": G, "impostor_pairs": I,
              "threshold": [t0, t1, ...], "far": [...], "tar": [...]}

``far[i]`` / ``tar[i]``: the fractions of impostor / genuine pairs with distance <= threshold[i]
(thresholds increasing, on a grid of --step from --low to --high). Read it with
:func:`faceapp.embed.calibration_curve.CalibrationCurve.from_spec`.

    OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python scripts/calibration_curve.py --model dlib-resnet-v1 --write
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


def rates(distances: np.ndarray, same: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at each threshold: the fractions of impostor / genuine pairs with d <= t."""
    imp = np.sort(distances[~same])
    gen = np.sort(distances[same])
    far = np.searchsorted(imp, thresholds, side="right") / max(1, len(imp))
    tar = np.searchsorted(gen, thresholds, side="right") / max(1, len(gen))
    return far, tar


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dlib-resnet-v1")
    ap.add_argument("--lfw", default=os.path.join(os.environ.get("FACEAPP_DATASETS", "../shared/datasets"), "lfw"))
    ap.add_argument("--per-person", type=int, default=4)
    ap.add_argument("--people", type=int, default=1200, help="how many DevTrain people (first N by name)")
    ap.add_argument("--low", type=float, default=0.01)
    ap.add_argument("--high", type=float, default=1.50)
    ap.add_argument("--step", type=float, default=0.01)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--write", action="store_true", help="write the curve into the model's spec JSON")
    args = ap.parse_args()

    table, owner = devtrain_calibration_set(Path(args.lfw), model=args.model, people=args.people,
                                            per_person=args.per_person, device=args.device)
    names = sorted(set(owner))
    emb = table.embeddings.astype(np.float64)
    first: dict[str, int] = {}
    for i, o in enumerate(owner):
        first.setdefault(o, i)
    genuine = [(a, b) for name in names for a, b in itertools.combinations(np.flatnonzero(owner == name), 2)]
    g = np.array([((emb[a] - emb[b]) ** 2).sum() for a, b in genuine])
    firsts = np.array(list(first.values()))
    sims = emb[firsts] @ emb[firsts].T
    iu = np.triu_indices(len(firsts), 1)
    imp = np.clip(2 - 2 * sims[iu], 0, 4)
    d = np.concatenate([g, imp])
    same = np.concatenate([np.ones(len(g), bool), np.zeros(len(imp), bool)])
    grid = np.round(np.arange(args.low, args.high + args.step / 2, args.step), 4)
    far, tar = rates(d, same, grid)
    curve = {
        "protocol": f"LFW View 1 DevTrain people (first {len(names)} by name, up to {args.per_person} images each); "
        "genuine = all same-person pairs, impostor = all pairs of first images of different people",
        "command": f"python scripts/calibration_curve.py --model {args.model} --write",
        "genuine_pairs": int(len(g)),
        "impostor_pairs": int(len(imp)),
        "threshold": [float(t) for t in grid],
        "far": [float(f"{x:.6g}") for x in far],
        "tar": [float(f"{x:.6g}") for x in tar],
    }
    spec = load_spec(args.model)
    at = np.searchsorted(grid, spec.threshold - 1e-9)
    print(f"{len(g)} genuine, {len(imp)} impostor pairs; at tau {spec.threshold}: "
          f"FAR {far[min(at, len(far) - 1)]:.2e}, TAR {tar[min(at, len(tar) - 1)]:.4f}", file=sys.stderr)
    if not args.write:
        print(json.dumps(curve))
        return 0
    spec_path = next(p for p in spec.file.parent.glob("*.json")
                     if json.loads(p.read_text(encoding="utf-8")).get("model_id") == args.model)
    data = json.loads(spec_path.read_text(encoding="utf-8"))  # read again now: keep what others wrote
    data.setdefault("calibration", {})["curve"] = curve
    spec_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote the calibration curve into {spec_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

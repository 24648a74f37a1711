"""False accepts per attempt against gallery size, on synthetic LFW galleries (1:K, open set).

LFW View 1 *DevTest* people only (the calibration curve that sets the 1:K threshold comes
from DevTrain people, so nothing here chose it). For each gallery size K and each of --draws
random draws: K DevTest people are enrolled from their first image; every other DevTest
person's first image is a stranger's attempt (a false accept when anybody is named); the
second image of each enrolled person who has one is a genuine attempt (a correct accept when
that person is named). One image is one attempt here (the door's frames of one visitor are
strongly correlated, so this is what one attempt at the door amounts to).

Rules compared: the fixed 1:1 tau (nearest person within tau), and the open-set rule of the
settings (``recognize_far``, ``recognize_margin``: t_K from the curve, margin to the second).

    OMP_NUM_THREADS=2 .venv/bin/python scripts/eval_open_set.py --json open-set.json
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
from faceapp.evaluation.protocols import read_lfw_people  # noqa: E402
from faceapp.evaluation.runner import EvalCache, embed_images  # noqa: E402
from faceapp.match.open_set import FarCurve, OpenSetRule, attempt_far  # noqa: E402
from faceapp.pipeline import FaceEngine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", default=os.path.join(os.environ.get("FACEAPP_DATASETS", "../shared/datasets"), "lfw"))
    ap.add_argument("--sizes", default="1,10,50,100,500,1000")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--far", type=float, action="append", help="recognize_far values (default: the setting)")
    ap.add_argument("--margin", type=float, help="recognize_margin (default: the setting)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json")
    args = ap.parse_args()

    lfw = Path(args.lfw)
    settings = Settings(device=args.device)
    engine = FaceEngine(settings)
    people = read_lfw_people(lfw, "devtest")
    names = sorted(people)
    img = lambda n, i: lfw / "images" / n / f"{n}_{i:04d}.jpg"  # noqa: E731
    seconds = [n for n in names if people[n] >= 2]
    table = embed_images(engine, [img(n, 1) for n in names] + [img(n, 2) for n in seconds], cache=EvalCache(engine))
    first = table.embeddings[: len(names)]
    second = dict(zip(seconds, table.embeddings[len(names):], strict=True))
    tau = engine.threshold
    margin = settings.recognize_margin if args.margin is None else args.margin
    rules = {"fixed tau": OpenSetRule(None, 1e-3, 0.0, tau)}
    for far in args.far or [settings.recognize_far]:
        rules[f"open set A={far:g} margin={margin:g}"] = OpenSetRule.from_settings(
            Settings(recognize_far=far, recognize_margin=margin), engine.spec, cap=tau)
    rng = np.random.default_rng(16)
    out = {"protocol": __doc__.strip().splitlines()[0], "people": len(names), "genuine_people": len(seconds),
           "threshold": tau, "draws": args.draws, "rows": []}
    for k in [int(x) for x in args.sizes.split(",")]:
        for label, rule in rules.items():
            fa = n_imp = ca = n_gen = 0
            for _ in range(args.draws):
                idx = rng.permutation(len(names))
                gal, rest = idx[:k], idx[k:]
                G = first[gal]
                gnames = [names[i] for i in gal]

                def read(probe):
                    d = np.clip(2 - 2 * G @ probe, 0, 4)
                    order = np.argsort(d)[:2]
                    cands = [type("C", (), {"name": gnames[j], "distance": float(d[j])}) for j in order]
                    return rule.read(cands, k).name

                for i in rest:
                    fa += read(first[i]) is not None
                    n_imp += 1
                for n in gnames:
                    if n in second:
                        ca += read(second[n]) == n
                        n_gen += 1
            curve = FarCurve.from_spec(engine.spec)
            predicted = rule.expected_attempt_far(k)
            if predicted is None and curve is not None:
                predicted = attempt_far(curve.far_at(rule.threshold(k)), k)
            row = {"gallery": k, "rule": label, "threshold": round(rule.threshold(k), 4),
                   "predicted_far_per_attempt": predicted,
                   "stranger_attempts": n_imp, "false_accepts": fa, "far_per_attempt": fa / max(n_imp, 1),
                   "genuine_attempts": n_gen, "correct_accepts": ca, "tar": ca / max(n_gen, 1)}
            out["rows"].append(row)
            print(f"K={k:5d} {label:32s} t={row['threshold']:.3f} FAR/attempt {fa}/{n_imp} = {row['far_per_attempt']:.4f} "
                  f"(predicted {row['predicted_far_per_attempt'] or float('nan'):.4f}); TAR {ca}/{n_gen} = {row['tar']:.3f}",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

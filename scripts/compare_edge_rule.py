"""The front end with and without its edge rule, on the same pairs (issue 13 item 2).

    python scripts/compare_edge_rule.py --view devtest|10fold [--model dlib-resnet-v1] [--json F]
    python scripts/compare_edge_rule.py --pairs tight-folds1-5.csv [--model ID]

Scores the pairs twice through ``faceapp eval``'s runner: with the front end as shipped
(``FaceEngine.detect``: faces at the edge detected again in a padded copy, stills without a face
retried; :mod:`faceapp.detect.edges`) and with the detector alone (the front end before the rule).
Prints both metrics, how many pairs' distances changed, and the exact McNemar test between them
(:func:`faceapp.match.calibration.paired_comparison`; A = without the rule, B = with it). Each
way has its own detection cache (``runner.FRONT_END``), so a rerun only reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp.config import Settings  # noqa: E402
from faceapp.evaluation import runner  # noqa: E402
from faceapp.evaluation.protocols import datasets_dir, read_lfw_pairs, read_pairs_csv  # noqa: E402
from faceapp.match.calibration import paired_comparison  # noqa: E402
from faceapp.pipeline import FaceEngine  # noqa: E402


def _short(r: dict) -> dict:
    return {k: r[k] for k in ("accuracy", "accuracy_std", "tar_at_far_1e-3", "no_face_detected", "images")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--view", choices=["devtest", "10fold"])
    src.add_argument("--pairs", type=Path, help="a pairs CSV (path_a,path_b,same[,fold])")
    ap.add_argument("--lfw", type=Path, default=None, help="LFW folder (default: $FACEAPP_DATASETS/lfw)")
    ap.add_argument("--model", default="dlib-resnet-v1")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.pairs:
        pairs = read_pairs_csv(args.pairs)
    else:
        lfw = args.lfw or ((datasets_dir() or Path(".")) / "lfw")
        pairs = read_lfw_pairs(lfw, args.view)
    shipped = FaceEngine(Settings(device="cpu", model=args.model))
    with_rule, d_with = runner.evaluate(shipped, pairs, cache=runner.EvalCache(shipped))
    plain = FaceEngine(Settings(device="cpu", model=args.model))
    plain.detect = lambda image, still=False: plain.detector.detect(image)  # the detector alone
    runner.FRONT_END = "plain"  # its own cache files
    without, d_without = runner.evaluate(plain, pairs, cache=runner.EvalCache(plain))
    same = np.array([p.same for p in pairs], dtype=bool)
    folds = runner.pair_folds(pairs)
    report = {
        "pairs": str(args.pairs or args.view), "model": args.model,
        "without_rule": _short(without), "with_rule": _short(with_rule),
        "pairs_changed": int((np.abs(d_with - d_without) > 1e-6).sum()), "pairs_total": len(pairs),
        "comparison": paired_comparison(d_without, d_with, same, folds if folds is not None else 10),
    }
    c = report["comparison"]
    print(f"without the edge rule: {without['accuracy']:.4f} / TAR@1e-3 {without['tar_at_far_1e-3']:.4f} "
          f"({without['no_face_detected']} no face)")
    print(f"with the edge rule:    {with_rule['accuracy']:.4f} / TAR@1e-3 {with_rule['tar_at_far_1e-3']:.4f} "
          f"({with_rule['no_face_detected']} no face)")
    print(f"pairs whose distance changed: {report['pairs_changed']} of {len(pairs)}; only without right "
          f"{c['only_a_correct']}, only with right {c['only_b_correct']}, McNemar p = {c['mcnemar_p']:.3g}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

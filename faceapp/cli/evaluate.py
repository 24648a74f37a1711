"""``faceapp eval lfw|pairs``: verification accuracy through the full pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from faceapp.cli.exit_codes import Exit

_LABELS = [
    ("accuracy", "accuracy", "{:.2%}"),
    ("accuracy_std", "  +/- (std over folds)", "{:.2%}"),
    ("auc", "ROC AUC", "{:.4f}"),
    ("eer", "EER", "{:.2%}"),
    ("tar_at_far_1e-2", "TAR at FAR 1e-2", "{:.2%}"),
    ("tar_at_far_1e-3", "TAR at FAR 1e-3", "{:.2%}"),
    ("threshold", "best threshold (sq. L2)", "{:.4f}"),
    ("threshold_in_force", "threshold in force", "{:.4f}"),
    ("accuracy_at_threshold_in_force", "  accuracy there", "{:.2%}"),
    ("far_at_threshold_in_force", "  FAR there", "{:.2%}"),
    ("frr_at_threshold_in_force", "  FRR there", "{:.2%}"),
    ("threshold_at_far_1e-3", "threshold at FAR 1e-3", "{:.4f}"),
    ("distance_same_mean", "mean distance, same", "{:.4f}"),
    ("distance_different_mean", "mean distance, different", "{:.4f}"),
]


def _progress(desc: str):
    from tqdm import tqdm

    bar = tqdm(total=0, desc=desc, unit="img", file=sys.stderr, disable=not sys.stderr.isatty())

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def cmd_eval(args: argparse.Namespace) -> int:
    from faceapp.cli.main import _settings
    from faceapp.evaluation.protocols import datasets_dir, read_lfw_pairs, read_pairs_csv
    from faceapp.evaluation.runner import EvalCache, evaluate
    from faceapp.pipeline import FaceEngine

    if args.dataset == "lfw":
        lfw = Path(args.lfw) if args.lfw else (datasets_dir() / "lfw" if datasets_dir() else None)
        if lfw is None or not lfw.is_dir():
            print("faceapp: LFW not found: pass --lfw DIR or set FACEAPP_DATASETS", file=sys.stderr)
            return int(Exit.BAD_INPUT)
        pairs = read_lfw_pairs(lfw, args.view)
        what = f"LFW {args.view}"
    else:
        if not args.pairs_file:
            print("faceapp: eval pairs needs a CSV file (path_a,path_b,same[,fold])", file=sys.stderr)
            return int(Exit.USAGE)
        try:
            pairs = read_pairs_csv(args.pairs_file)
        except (OSError, ValueError) as exc:
            print(f"faceapp: {exc}", file=sys.stderr)
            return int(Exit.BAD_INPUT)
        what = f"pairs from {args.pairs_file}"
    if args.limit:
        # keep both classes: take the first N/2 same and N/2 different pairs
        same = [p for p in pairs if p.same][: args.limit // 2]
        diff = [p for p in pairs if not p.same][: args.limit - len(same)]
        pairs = same + diff
    import numpy as np

    if args.compare_to:  # checked before any work: the comparison cross-validates over folds
        from faceapp.evaluation.runner import pair_folds

        folds = pair_folds(pairs)
        if folds is None:
            print("faceapp: --compare-to needs at least 10 same and 10 different pairs", file=sys.stderr)
            return int(Exit.BAD_INPUT)
    engine = FaceEngine(_settings(args))
    cache = EvalCache(engine, enabled=not args.no_cache)
    bar, update = _progress(what)
    try:
        result, distances = evaluate(engine, pairs, cache=cache, progress=update)
    finally:
        bar.close()
    result["dataset"] = what
    if args.compare_to:
        from faceapp.match.calibration import paired_comparison

        other = FaceEngine(_settings(args).replace(model=args.compare_to))
        bar, update = _progress(f"{what}, {other.model_id}")
        try:
            _, base = evaluate(other, pairs, cache=EvalCache(other, enabled=not args.no_cache), progress=update)
        finally:
            bar.close()
        cmp = paired_comparison(base, distances, np.array([p.same for p in pairs]), folds, resamples=args.resamples)
        result["comparison"] = {"a": other.model_id, "b": engine.model_id, **cmp}
    if args.plot:
        from faceapp.match.calibration import plot_distance_histograms, plot_roc, roc_curve

        same = np.array([p.same for p in pairs])
        roc = Path(args.plot)
        plot_roc({engine.model_id: roc_curve(distances, same)}, roc, title=f"ROC, {what}")
        hist = roc.with_name(roc.stem + "-distances" + roc.suffix)
        plot_distance_histograms(distances, same, hist, threshold=engine.threshold)
        result["plots"] = [str(roc), str(hist)]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{what}: {result['pairs']} pairs ({result['same_pairs']} same), model {engine.model_id}")
        print(f"  protocol: {result['accuracy_protocol']}")
        for key, label, fmt in _LABELS:
            if result.get(key) is not None:
                print(f"  {label:28s} {fmt.format(result[key])}")
        if result["no_face_detected"]:
            print(f"  no face detected in {result['no_face_detected']} image(s): used the mean landmark positions")
        if "comparison" in result:
            c = result["comparison"]
            lo, hi = c["accuracy_diff_ci95"]
            tlo, thi = c["tar_at_far_1e-2_diff_ci95"]
            print(f"  against {c['a']} (A; this model is B), on the same {c['pairs']} pairs:")
            print(f"    accuracy                   A {c['accuracy_a']:.2%}  B {c['accuracy_b']:.2%}  B-A {c['accuracy_diff']:+.2%}"
                  f"  (95% interval {lo:+.2%} .. {hi:+.2%})")
            print(f"    pairs only A / only B gets right  {c['only_a_correct']} / {c['only_b_correct']}"
                  f"  (exact McNemar p = {c['mcnemar_p']:.3g})")
            print(f"    TAR at FAR 1e-2            A {c['tar_at_far_1e-2_a']:.2%}  B {c['tar_at_far_1e-2_b']:.2%}"
                  f"  B-A {c['tar_at_far_1e-2_diff']:+.2%}  (95% interval {tlo:+.2%} .. {thi:+.2%})")
    return int(Exit.OK)

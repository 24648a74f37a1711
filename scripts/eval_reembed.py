"""What switching the default model costs the people already enrolled (issue 13 item 5).

When the setting ``model`` changes, faceapp re-encodes every stored template from the face it
keeps (``FaceService.reembed``, :mod:`faceapp.stored_face`), instead of asking everybody to
enroll again. This measures what that costs on LFW pairs: the first photo of each pair plays the
enrolled template and the second the visitor at the door, scored

* **direct**: both photos through the new model's own front end (detect, align, encode), as for
  a person enrolled after the switch;
* **re-embedded**: the face a template enrolled by the old model keeps, JPEG as the store keeps
  it, made into the new model's chip (:func:`faceapp.stored_face.model_chip`) and encoded; the
  second photo direct. ``--kept wide`` (the default): the wide crop enrollment keeps since 4
  December 2026 (``stored_face.keep`` of the old model's detection); ``--kept chip``: the old
  model's own chip, as templates enrolled before then keep.

Both are scored on the same pairs with ``faceapp eval``'s metrics (10-fold accuracy over the
protocol's folds, TAR at FAR 1e-3), compared with the exact McNemar test of
:func:`faceapp.match.calibration.paired_comparison`. Detections and direct encodings come from
(and go to) faceapp eval's cache.

    FACEAPP_DATASETS=../shared/datasets .venv/bin/python scripts/eval_reembed.py --old dlib-resnet-v1 \\
        --new sface-v1 --view devtest --kept chip --json docs/accuracy/reembed-dlib-to-sface-devtest.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", default="dlib-resnet-v1", help="the model the templates were made with")
    ap.add_argument("--new", required=True, help="the model switched to")
    ap.add_argument("--view", choices=("devtest", "10fold"), default="devtest", help="LFW pairs (View 1 DevTest or View 2)")
    ap.add_argument("--lfw", type=Path, default=None, help="LFW folder (default: $FACEAPP_DATASETS/lfw)")
    ap.add_argument("--max-pairs", type=int, default=None,
                    help="only N pairs, the first N/2 same-person and the first N/2 different ones (a quick look)")
    ap.add_argument("--kept", choices=("wide", "chip"), default="wide",
                    help="what the enrolled templates keep: the wide crop (enrolled since 4 December 2026) or the old model's chip")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    from faceapp.config import Settings
    from faceapp.evaluation.protocols import datasets_dir, read_lfw_pairs
    from faceapp.evaluation.runner import EvalCache, aligned_chips, embed_images, kept_faces, pair_folds, pair_metrics
    from faceapp.imageio import decode_jpeg, encode_jpeg
    from faceapp.match.calibration import paired_comparison
    from faceapp.pipeline import FaceEngine
    from faceapp.stored_face import is_wide, model_chip

    lfw = args.lfw or ((datasets_dir() or Path()) / "lfw")
    if not lfw.is_dir():
        ap.error(f"no LFW at {lfw} (set FACEAPP_DATASETS or --lfw)")
    pairs = read_lfw_pairs(lfw, args.view)
    if args.max_pairs:
        half = max(1, args.max_pairs // 2)
        pairs = [p for p in pairs if p.same][:half] + [p for p in pairs if not p.same][:half]
    old = FaceEngine(Settings(device="cpu", model=args.old))
    new = FaceEngine(Settings(device="cpu", model=args.new))
    t0 = time.perf_counter()
    direct = embed_images(new, [p.path_a for p in pairs] + [p.path_b for p in pairs], cache=EvalCache(new))
    index = direct.index()
    enrolled = list(dict.fromkeys(Path(p.path_a) for p in pairs))
    if args.kept == "wide":  # what FaceService.enroll keeps now
        kept, no_face = kept_faces(old, enrolled, EvalCache(old))
        assert all(is_wide(j) for j in kept)
    else:  # the old model's chip, as templates enrolled before 4 December 2026 keep
        chips, no_face = aligned_chips(old, enrolled, EvalCache(old))
        kept = [encode_jpeg(c) for c in chips]
    wide = args.kept == "wide"
    again = new.embedder.embed([model_chip(decode_jpeg(j), wide=wide, old=old.spec, engine=new).image for j in kept])
    re_index = {p: i for i, p in enumerate(enrolled)}
    probe = np.stack([direct.embeddings[index[Path(p.path_b)]] for p in pairs])
    d_direct = np.array([((direct.embeddings[index[Path(p.path_a)]] - e) ** 2).sum() for p, e in zip(pairs, probe, strict=True)])
    d_re = np.array([((again[re_index[Path(p.path_a)]] - e) ** 2).sum() for p, e in zip(pairs, probe, strict=True)])
    same = np.array([p.same for p in pairs], dtype=bool)
    folds = pair_folds(pairs)
    m_direct, m_re = pair_metrics(d_direct, pairs), pair_metrics(d_re, pairs)
    cmp = paired_comparison(d_direct, d_re, same, folds if folds is not None else 10)
    keys = ("accuracy", "accuracy_std", "tar_at_far_1e-3", "tar_at_far_1e-2", "eer", "auc")
    shift = (d_re - d_direct)[same]
    # the enrolled photo itself, direct against re-embedded: what the kept face loses
    self_d = np.array([((direct.embeddings[index[p]] - again[re_index[p]]) ** 2).sum() for p in enrolled])
    tau = new.threshold
    flips = int(((d_direct <= tau) != (d_re <= tau)).sum())
    report = {
        "old": args.old, "new": args.new, "view": args.view, "kept": args.kept, "pairs": len(pairs),
        "enrolled_images": len(enrolled), "enrolled_no_face": no_face,
        "direct": {k: m_direct.get(k) for k in keys},
        "reembedded": {k: m_re.get(k) for k in keys},
        "mcnemar": {k: cmp[k] for k in ("only_a_correct", "only_b_correct", "mcnemar_p", "accuracy_diff", "accuracy_diff_ci95")},
        "same_person_distance_shift": {"median": float(np.median(shift)), "p90": float(np.percentile(shift, 90))},
        "same_image_distance": {"median": float(np.median(self_d)), "p90": float(np.percentile(self_d, 90)),
                                "max": float(self_d.max()),
                                "note": "squared L2 between the enrolled photo's direct encoding and its re-embedded one"},
        "decisions_changed_at_tau": flips,
        "tau_new": new.threshold,
        "at_tau": {name: {"frr": float((d[same] > new.threshold).mean()), "far": float((d[~same] <= new.threshold).mean())}
                   for name, d in (("direct", d_direct), ("reembedded", d_re))},
        "seconds": round(time.perf_counter() - t0, 1),
        "command": " ".join(["scripts/eval_reembed.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    print(f"{args.old} -> {args.new} (kept: {args.kept}), LFW {args.view}, {len(pairs)} pairs: direct accuracy {m_direct['accuracy']:.4f}, "
          f"TAR@1e-3 {m_direct['tar_at_far_1e-3']:.4f}; re-embedded {m_re['accuracy']:.4f}, TAR@1e-3 "
          f"{m_re['tar_at_far_1e-3']:.4f}; only direct right {cmp['only_a_correct']}, only re-embedded right "
          f"{cmp['only_b_correct']}, McNemar p {cmp['mcnemar_p']:.3g}; same-person distance +{np.median(shift):.4f} (median); "
          f"FRR at tau {(d_direct[same] > new.threshold).mean():.4f} direct, {(d_re[same] > new.threshold).mean():.4f} re-embedded; "
          f"the enrolled photo re-embedded against direct: median {np.median(self_d):.4f}, max {self_d.max():.4f}; "
          f"{flips} pair decisions at tau changed")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

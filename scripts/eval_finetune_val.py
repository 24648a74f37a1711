"""A fine-tuning run on its own validation identities only: the starting weights against the
run's best checkpoint, each with and without flip test-time augmentation, so that the choice
(export the run or not, with ``--flip-tta`` or not) is made without a test pair.

Reads the run folder of ``faceapp train fit`` (``split.json``: the caches and the
identity-disjoint split, or the ``--val-data`` caches; ``history.json``: the network's
configuration; ``best_model.pt``) and scores every same-person and every different-person pair
of the held-out identities (:func:`faceapp.training.evaluate.verification_metrics`). Flip TTA is
``normalise(e(chip) + e(mirrored chip))``, as ``faceapp train export --flip-tta`` embeds.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/eval_finetune_val.py --run artifacts/training/sface-ft \\
        --json docs/training/sface-ft-validation.json      # the start: the run's own --init
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def embed(model, chips: np.ndarray, mean, scale, flip: bool) -> np.ndarray:
    from faceapp.training.evaluate import embed_chips
    from faceapp.training.head import flip_tta_embed

    e = embed_chips(model, chips, mean=mean, scale=scale)
    if not flip:
        return e
    return flip_tta_embed(e, embed_chips(model, np.ascontiguousarray(chips[:, :, ::-1]), mean=mean, scale=scale))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a `faceapp train fit` output folder")
    ap.add_argument("--init", help="the weights to compare with (default: those the run started from)")
    ap.add_argument("--checkpoint", default="best_model.pt", help="in --run")
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args(argv)

    import torch

    from faceapp.cli.train import run_validation_set
    from faceapp.training.evaluate import verification_metrics
    from faceapp.training.trainer import TrainConfig, build_model

    run = Path(a.run)
    split = json.loads((run / "split.json").read_text())
    cfg = TrainConfig.from_dict(json.loads((run / "history.json").read_text())["config"])
    init = a.init or cfg.init
    if not init:
        print(f"{a.run} was trained from scratch: give --init, the weights to compare with", file=sys.stderr)
        return 2
    val = run_validation_set(split)
    if val is None or sorted(val.names) != sorted(split["val_identities"]):
        print(f"{a.run}: the caches no longer give the run's validation identities", file=sys.stderr)
        return 2
    rows = {}
    for name, weights in (("start", Path(init)), ("fine-tuned", run / a.checkpoint)):
        model = build_model(TrainConfig.from_dict({**cfg.to_dict(), "init": None, "freeze_stages": -1}))
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in state.items()})
        for flip in (False, True):
            key = f"{name}{' + flip' if flip else ''}"
            rows[key] = verification_metrics(embed(model, val.chips, cfg.mean, cfg.scale, flip), val.labels)
            m = rows[key]
            print(f"{key:18s} accuracy {m['accuracy']:.4f}  TAR@1e-2 {m['tar_at_far_1e-2']:.4f}  "
                  f"TAR@1e-3 {m['tar_at_far_1e-3']:.4f}  EER {m['eer']:.4f}", flush=True)
    out = {"run": str(run), "checkpoint": a.checkpoint, "init": str(init), "arch": cfg.arch,
           "validation_identities": len(split["val_identities"]), "validation_images": int(len(val)),
           "genuine_pairs": next(iter(rows.values()))["genuine_pairs"],
           "impostor_pairs": next(iter(rows.values()))["impostor_pairs"], "figures": rows}
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

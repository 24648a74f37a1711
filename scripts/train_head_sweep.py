"""Hyper-parameter sweep of the head-only trainer (`faceapp train head`) on cached features,
scored on the identity-disjoint validation split only (never on LFW DevTest).

    python scripts/train_head_sweep.py artifacts/training/head/features-aug2.npz sweep.json \
        '{"miner": ["batch-hard", "semi-hard"], "margin": [0.02, 0.05, 0.1, 0.2], "lr": [3e-5, 1e-4, 3e-4], "monitor": ["acc+tar2"]}'

The features file is the one `faceapp train head --features F` writes (train/val views and
labels of the seed-0 split); the grid is a JSON object of HeadConfig fields -> lists of values.
One line of JSON per configuration goes to stdout, and the list to the output file.
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import numpy as np
import torch

from faceapp.training.head import HeadConfig, HeadTrainer


def main(argv: list[str]) -> int:
    feat_path, out_path, grid = argv[0], argv[1], json.loads(argv[2])
    base = argv[3] if len(argv) > 3 else "resources/models/dlib_resnet_v1.pt"
    torch.set_num_threads(1)  # deterministic: the same numbers as `faceapp train head`
    z = np.load(feat_path)
    trf, vaf, ytr, yva = z["train"], z["val"], z["train_labels"], z["val_labels"]
    w0 = torch.load(base, weights_only=True)["fc.weight"].float()
    keys = sorted(grid)
    results = []
    for vals in itertools.product(*[grid[k] for k in keys]):
        kw = dict(zip(keys, vals, strict=True))
        t = time.time()
        trainer = HeadTrainer(HeadConfig(**kw), w0)
        h = trainer.fit(trf, ytr, vaf, yva)
        ep = {e["epoch"]: e for e in h["epochs"]}
        b = ep[h["best_epoch"]]
        r = {"cfg": kw, "best_epoch": h["best_epoch"], "epochs_run": len(h["epochs"]) - 1, "sec": round(time.time() - t, 1),
             "acc": round(b["val_accuracy"], 5), "tar2": round(b["val_tar_at_far_1e-2"], 5),
             "tar3": round(b["val_tar_at_far_1e-3"], 5), "acc0": round(ep[0]["val_accuracy"], 5),
             "tar2_0": round(ep[0]["val_tar_at_far_1e-2"], 5), "tar3_0": round(ep[0]["val_tar_at_far_1e-3"], 5),
             "weight_change": round(b.get("weight_change", 0.0), 4)}
        print(json.dumps(r), flush=True)
        results.append(r)
        with open(out_path, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

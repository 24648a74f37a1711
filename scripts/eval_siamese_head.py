"""The course's Siamese binary head as a verifier on dlib's frozen embeddings (CPU, minutes).

``faceapp.training.losses.PairClassifierHead``: p(same) = sigmoid(sum_k w_k |f_i,k - f_j,k| + b),
a learnt weighted L1 distance, trained with ``pair_bce_loss`` on every pair of P x K batches of
dlib-resnet-v1's unit embeddings (its backbone and head frozen), each sample one of its cached
views (chip, mirror, 2 augmented copies: the ``faceapp train head`` features file). The question:
does a learnt pair score separate same and different people better than dlib's own L2 distance?

    python scripts/eval_siamese_head.py --features artifacts/training/head/features-aug2.npz \\
        --out artifacts/siamese --lr 1e-3 --lr 1e-2 --lr 1e-1
    python scripts/eval_siamese_head.py --features artifacts/training/head/features-aug2.npz \\
        --out artifacts/siamese --lr BEST --test

Validation: the features file's held-out identities (all their pairs, figures as the trainers'
``verification_metrics``: accuracy on class-balanced pairs, TAR@FAR over all), the L2 distance
of the same embeddings as the reference. The chosen learning rate and epoch come from validation only;
``--test`` then scores LFW DevTest and View 2 once with that head (pairs' embeddings from
``faceapp eval``'s cache: same detections and alignment), paired against L2 (exact McNemar).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def head_scores(w: np.ndarray, b: float, ea: np.ndarray, eb: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Logits of "same" for embedding pairs (rows of ea, eb)."""
    out = np.empty(len(ea), np.float64)
    for s in range(0, len(ea), chunk):
        out[s : s + chunk] = np.abs(ea[s : s + chunk] - eb[s : s + chunk]) @ w + b
    return out


def metrics(score_distance: np.ndarray, same: np.ndarray) -> dict:
    """The training code's validation figures (balanced k-fold accuracy, TAR@FAR over all pairs)."""
    from faceapp.training.evaluate import genuine_impostor_metrics

    r = genuine_impostor_metrics(score_distance[same], score_distance[~same])
    return {k: r[k] for k in ("accuracy", "tar_at_far_1e-2", "tar_at_far_1e-3", "eer")}


def train(a, lr: float, emb_train: np.ndarray, y_train: np.ndarray, emb_val: np.ndarray, y_val: np.ndarray) -> dict:
    import torch

    from faceapp.training.losses import PairClassifierHead, pair_bce_loss
    from faceapp.training.sampler import PKSampler

    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    vi, vj = np.triu_indices(len(y_val), k=1)
    vsame = y_val[vi] == y_val[vj]
    ea, eb = emb_val[vi], emb_val[vj]
    # start as dlib's own verifier: logit = s * (t - L1), t the L1 distance separating best on training pairs
    l1_val = np.abs(ea - eb).sum(1)
    from faceapp.match.calibration import best_threshold

    sub = np.random.default_rng(a.seed).choice(len(y_train), min(3000, len(y_train)), replace=False)
    ti, tj = np.triu_indices(len(sub), k=1)
    l1_tr = np.abs(emb_train[sub][ti, 0] - emb_train[sub][tj, 0]).sum(1)
    t0_thr, _ = best_threshold(l1_tr, y_train[sub][ti] == y_train[sub][tj])
    head = PairClassifierHead(emb_train.shape[-1], init_scale=a.init_scale, init_distance=float(t0_thr))
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    feats = torch.as_tensor(emb_train)
    labels = torch.as_tensor(y_train)
    sampler = PKSampler(y_train, a.p, a.k, seed=a.seed)
    steps = len(sampler)
    history = []

    def validate() -> dict:
        w = head.weight.detach().double().numpy()
        b = float(head.bias.detach())
        return metrics(-head_scores(w, b, ea, eb), vsame)

    best = {"epoch": 0, **validate()}
    best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    history.append(dict(best))
    bad = 0
    t_start = time.time()
    for epoch in range(1, a.epochs + 1):
        total = 0.0
        for idx in sampler.epoch_batches(epoch, steps):
            idx_t = torch.as_tensor(idx)
            view = torch.randint(0, feats.shape[1], (len(idx),), generator=gen)
            loss = pair_bce_loss(head, feats[idx_t, view], labels[idx_t])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        m = {"epoch": epoch, "loss": total / steps, **validate()}
        history.append(m)
        score = 0.5 * (m["accuracy"] + m["tar_at_far_1e-2"])
        if score > 0.5 * (best["accuracy"] + best["tar_at_far_1e-2"]):
            best, bad = m, 0
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
        else:
            bad += 1
        print(f"lr {lr:g} epoch {epoch}: loss {m['loss']:.4f} val acc {m['accuracy']:.4f} "
              f"TAR@1e-2 {m['tar_at_far_1e-2']:.4f} TAR@1e-3 {m['tar_at_far_1e-3']:.4f}", flush=True)
        if bad >= a.patience:
            break
    return {"lr": lr, "init_l1_threshold": float(t0_thr), "best": best, "history": history,
            "seconds": round(time.time() - t_start, 1),
            "weight": best_state["weight"].double().tolist(), "bias": float(best_state["bias"]),
            "l2_reference": metrics(((ea - eb) ** 2).sum(1), vsame), "l1_reference": metrics(l1_val, vsame)}


def test(a, run: dict) -> dict:
    from faceapp.config import Settings
    from faceapp.evaluation.protocols import read_lfw_pairs
    from faceapp.evaluation.runner import EvalCache, embed_images, pair_folds, pair_metrics
    from faceapp.match.calibration import paired_comparison
    from faceapp.pipeline import FaceEngine

    engine = FaceEngine(Settings(model="dlib-resnet-v1"))
    w, b = np.asarray(run["weight"]), run["bias"]
    out = {}
    for view in ("devtest", "10fold"):
        pairs = read_lfw_pairs(Path(os.environ["FACEAPP_DATASETS"]) / "lfw", view)
        table = embed_images(engine, [p.path_a for p in pairs] + [p.path_b for p in pairs], cache=EvalCache(engine))
        idx = table.index()
        ea = np.stack([table.embeddings[idx[Path(p.path_a)]] for p in pairs]).astype(np.float64)
        eb = np.stack([table.embeddings[idx[Path(p.path_b)]] for p in pairs]).astype(np.float64)
        same = np.array([p.same for p in pairs])
        d_l2 = ((ea - eb) ** 2).sum(1)
        d_head = -head_scores(w, b, ea, eb)
        keep = ("accuracy", "accuracy_std", "tar_at_far_1e-2", "tar_at_far_1e-3", "eer", "auc")
        out[view] = {
            "l2": {k: pair_metrics(d_l2, pairs)[k] for k in keep},
            "siamese": {k: pair_metrics(d_head, pairs)[k] for k in keep},
            "siamese_vs_l2": paired_comparison(d_l2, d_head, same, pair_folds(pairs)),
        }
        s, l2, c = out[view]["siamese"], out[view]["l2"], out[view]["siamese_vs_l2"]
        print(f"{view}: L2 {l2['accuracy']:.4f} / {l2['tar_at_far_1e-2']:.4f} / {l2['tar_at_far_1e-3']:.4f}; "
              f"Siamese {s['accuracy']:.4f} / {s['tar_at_far_1e-2']:.4f} / {s['tar_at_far_1e-3']:.4f}; "
              f"only L2 / only Siamese right {c['only_a_correct']} / {c['only_b_correct']}, McNemar p {c['mcnemar_p']:.3g}")
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", type=Path, required=True, help="a `faceapp train head --features` file")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--lr", type=float, action="append", required=True)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--p", type=int, default=64)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--init-scale", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test", action="store_true", help="score DevTest and View 2 with the head of the (single) --lr")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # reproducible
    from faceapp.embed.weights import load_spec

    spec = load_spec("dlib-resnet-v1")
    w_fc = spec.load_state_dict()["fc.weight"].double().numpy()
    z = np.load(a.features)

    def embed(f: np.ndarray) -> np.ndarray:
        e = f.astype(np.float64) @ w_fc.T
        return (e / np.linalg.norm(e, axis=-1, keepdims=True)).astype(np.float32)

    emb_train, emb_val = embed(z["train"]), embed(z["val"][:, 0])
    y_train, y_val = z["train_labels"], z["val_labels"]
    a.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for lr in a.lr:
        run = train(a, lr, emb_train, y_train, emb_val, y_val)
        runs.append(run)
        (a.out / f"run-lr{lr:g}.json").write_text(json.dumps(run, indent=1))
    summary = {"features": str(a.features), "train_images": int(len(y_train)), "val_images": int(len(y_val)),
               "val_pairs": int(math.comb(len(y_val), 2)), "runs": [{"lr": r["lr"], "best": r["best"], "seconds": r["seconds"]}
                                                                     for r in runs],
               "l2_reference": runs[0]["l2_reference"], "l1_reference": runs[0]["l1_reference"]}
    if a.test:
        if len(runs) != 1:
            raise SystemExit("--test takes the one head of a single --lr (chosen on validation)")
        summary["test"] = test(a, runs[0])
    (a.out / ("test.json" if a.test else "validation.json")).write_text(json.dumps(summary, indent=1))
    ref = summary["l2_reference"]
    print(f"validation L2 reference: acc {ref['accuracy']:.4f} TAR@1e-2 {ref['tar_at_far_1e-2']:.4f} TAR@1e-3 {ref['tar_at_far_1e-3']:.4f}")
    for r in summary["runs"]:
        b = r["best"]
        print(f"lr {r['lr']:g}: best epoch {b['epoch']}: acc {b['accuracy']:.4f} TAR@1e-2 {b['tar_at_far_1e-2']:.4f} "
              f"TAR@1e-3 {b['tar_at_far_1e-3']:.4f} ({r['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

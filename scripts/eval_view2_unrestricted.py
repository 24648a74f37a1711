"""LFW View 2 (pairs.txt, 10 folds) for the head-only transfer-learning recipe under the
UNRESTRICTED protocol, beside dlib-resnet-v1 / dlib-resnet-flip-v1 and a head trained on
celeba-subset only, all on the same chips and the same frozen backbone features.

    FACEAPP_DATASETS=/work/shared/datasets .venv/bin/python scripts/eval_view2_unrestricted.py \
        --lfw-cache artifacts/training/lfw-people.npz --celeba-cache artifacts/training/celeba.npz \
        --out artifacts/view2/unrestricted

Prerequisites: ``faceapp train cache lfw-people --max-images 40 --out artifacts/training/lfw-people.npz``
(every person of people.txt with >= 2 photos) and the celeba chip cache. The pair images are
aligned from the detections of ``faceapp eval``'s cache (the same detections and alignment as
``faceapp eval lfw --view 10fold``; images missing there are detected the same way).

What it does:
1. Backbone features (``forward_features`` of dlib-resnet-v1) are computed once and cached
   (OUT/features.npz): every LFW-people and celeba chip with its mirror and ``--augmented``
   random copies, every pair image with its mirror.
2. For each fold i = 0..9 a head is trained with exactly the recipe of dlib-resnet-head-v1
   (batch-hard, margin 0.05, lr 1e-4, P 64 x K 4, 200 epochs, patience 20, monitor acc+tar2,
   flip TTA at validation; its early-stopping validation split = 10% of the training identities,
   split seed 0) on the LFW people NOT in set i of people.txt plus all of celeba-subset; all 6000
   pairs are then scored by that head (flip TTA).
3. Figures (faceapp.training.view2.unrestricted_kfold): the threshold of fold i is chosen on
   the other nine folds' pairs scored by fold i's model, the accuracy measured on fold i; AUC /
   TAR@FAR pooled over the pairs, each scored by its own fold's model. The models that never saw
   LFW go through the same function (ten identical rows).

Writes OUT/view2.json (also printed), OUT/distances.npz and OUT/roc.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np


def sq_dist(emb: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    diff = emb[ia].astype(np.float64) - emb[ib].astype(np.float64)
    return (diff * diff).sum(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw-cache", default="artifacts/training/lfw-people.npz")
    ap.add_argument("--celeba-cache", default="artifacts/training/celeba.npz")
    ap.add_argument("--out", default="artifacts/view2/unrestricted")
    ap.add_argument("--features", help="features cache (default OUT/features.npz; reused when it matches)")
    ap.add_argument("--base-model", default="dlib-resnet-v1")
    ap.add_argument("--augmented", type=int, default=2)
    ap.add_argument("--feature-seed", type=int, default=0)
    ap.add_argument("--miner", default="batch-hard")
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--p", type=int, default=64)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=20)
    ap.add_argument("--monitor", default="acc+tar2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.1)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--folds", help="comma-separated 0-based folds to train (quick checks; figures need all 10)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the features (heads train on one)")
    ap.add_argument("--no-celeba-only", action="store_true", help="skip the celeba-only head")
    ap.add_argument("--rescore", action="store_true",
                    help="only recompute the figures from OUT/distances.npz of an earlier run (no features, no training)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if a.rescore:
        return rescore(Path(a.out))

    import torch
    from tqdm import tqdm

    from faceapp.config import Settings
    from faceapp.embed import network
    from faceapp.embed.weights import load_spec
    from faceapp.evaluation.protocols import datasets_dir, read_lfw_pairs, read_lfw_people
    from faceapp.evaluation.runner import EvalCache, aligned_chips
    from faceapp.match.calibration import plot_roc, roc_curve
    from faceapp.pipeline import FaceEngine
    from faceapp.training.data import ChipSet, split_identities, view2_training_people
    from faceapp.training.head import HeadConfig, HeadTrainer, backbone_features, head_embeddings
    from faceapp.training.view2 import fold_training_mask, pooled_distances, unrestricted_kfold

    t_start = time.time()
    torch.set_num_threads(a.threads)
    base = datasets_dir()
    if base is None:
        print("set FACEAPP_DATASETS to the datasets folder", file=sys.stderr)
        return 2
    lfw = base / "lfw"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    people_folds = read_lfw_people(lfw, "10fold")
    pairs = read_lfw_pairs(lfw, "10fold")
    same = np.array([p.same for p in pairs], bool)
    pfold = np.array([p.fold for p in pairs], np.int64)
    images = list(dict.fromkeys([Path(p.path_a) for p in pairs] + [Path(p.path_b) for p in pairs]))
    pos = {p: i for i, p in enumerate(images)}
    ia = np.array([pos[Path(p.path_a)] for p in pairs])
    ib = np.array([pos[Path(p.path_b)] for p in pairs])

    spec = load_spec(a.base_model)
    state = {k: v.float() for k, v in spec.load_state_dict().items()}
    w0 = state["fc.weight"].clone()
    model = network.build(spec.architecture)
    model.load_state_dict(state)
    model.eval()

    # 1. features, computed once
    feats_path = Path(a.features) if a.features else out / "features.npz"
    key = json.dumps({"base_model": spec.model_id, "sha256": spec.sha256, "augmented": a.augmented,
                      "feature_seed": a.feature_seed, "pair_images": len(images),
                      "lfw_cache": [Path(a.lfw_cache).name, Path(a.lfw_cache).stat().st_size],
                      "celeba_cache": [Path(a.celeba_cache).name, Path(a.celeba_cache).stat().st_size]},
                     sort_keys=True)
    lfw_cs = ChipSet.load(a.lfw_cache, workers=2)
    cel_cs = ChipSet.load(a.celeba_cache, workers=2)
    if feats_path.is_file() and str(np.load(feats_path)["key"]) == key:
        z = np.load(feats_path)
        f_lfw, f_cel, f_pairs = z["lfw"], z["celeba"], z["pairs"]
        feat_info = json.loads(str(z["info"]))
        no_face = int(feat_info.get("pair_images_no_face", -1))
    else:
        t0 = time.time()
        engine = FaceEngine(Settings(device="cpu", model=spec.model_id))
        cache = EvalCache(engine)
        chips, no_face = aligned_chips(engine, images, cache)  # exactly as faceapp eval aligns them
        t_align = time.time() - t0
        total = (len(lfw_cs) + len(cel_cs)) * (2 + a.augmented) + 2 * len(images)
        bar = tqdm(total=total, desc="backbone features", unit="fwd", file=sys.stderr)

        def run(ch, aug, views):
            last = [0]

            def prog(done, n):
                bar.update((done - last[0]) * views)
                last[0] = done

            return backbone_features(model, ch, mean=spec.mean, scale=spec.scale, augmented=aug,
                                     seed=a.feature_seed, progress=prog)

        t1 = time.time()
        f_pairs = run(chips, 0, 2)
        f_lfw = run(lfw_cs.chips, a.augmented, 2 + a.augmented)
        f_cel = run(cel_cs.chips, a.augmented, 2 + a.augmented)
        bar.close()
        sec = time.time() - t1
        feat_info = {"align_seconds": round(t_align, 1), "feature_seconds": round(sec, 1),
                     "backbone_forwards": total, "backbone_images_per_s": round(total / max(sec, 1e-9), 1),
                     "threads": torch.get_num_threads(), "pair_images_no_face": no_face}
        np.savez(feats_path, key=key, lfw=f_lfw, celeba=f_cel, pairs=f_pairs, info=json.dumps(feat_info))

    def scores(weight, flip: bool) -> np.ndarray:
        return sq_dist(head_embeddings(weight, f_pairs, flip_tta=flip), ia, ib)

    cfg = HeadConfig(epochs=a.epochs, p=a.p, k=a.k, lr=a.lr, miner=a.miner, margin=a.margin,
                     monitor=a.monitor, flip_tta=True, patience=a.patience, seed=a.seed)

    def train_head(feats: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, dict]:
        tr, va = split_identities(labels, (1.0 - a.val_fraction, a.val_fraction), seed=a.split_seed)
        torch.set_num_threads(1)  # as faceapp train head: deterministic
        trainer = HeadTrainer(cfg, w0)
        h = trainer.fit(feats[tr], labels[tr], feats[va][:, :2], labels[va])
        ep = {e["epoch"]: e for e in h["epochs"]}
        summ = {"train_images": int(len(tr)), "train_identities": int(len(np.unique(labels[tr]))),
                "val_identities": int(len(np.unique(labels[va]))), "best_epoch": h["best_epoch"],
                "epochs_run": len(h["epochs"]) - 1, "seconds": round(h["seconds"], 1),
                "val_initial": {k[4:]: round(v, 5) for k, v in ep[0].items() if k.startswith("val_")},
                "val_best": {k[4:]: round(v, 5) for k, v in ep[h["best_epoch"]].items() if k.startswith("val_")}}
        return trainer.best_weight, summ

    n_folds = len(people_folds)
    results: dict = {}
    dists: dict[str, np.ndarray] = {}
    d0 = scores(w0, False)
    dists["dlib-resnet-v1"] = np.tile(d0, (n_folds, 1))
    dists["dlib-resnet-flip-v1"] = np.tile(scores(w0, True), (n_folds, 1))
    training: dict = {}
    cel_labels = cel_cs.labels
    if not a.no_celeba_only:
        w, summ = train_head(f_cel, cel_labels)
        dists["head-celeba-only"] = np.tile(scores(w, True), (n_folds, 1))
        training["head-celeba-only"] = summ

    lfw_names = [lfw_cs.names[int(i)] for i in lfw_cs.labels]  # LFW person of each row
    folds = range(n_folds) if not a.folds else [int(x) for x in a.folds.split(",")]
    dl = np.full((n_folds, len(pairs)), np.nan)
    fold_train = []
    for i in tqdm(list(folds), desc="unrestricted folds", unit="fold", file=sys.stderr):
        mask = fold_training_mask(lfw_names, people_folds, i)
        trained_people = {lfw_names[r] for r in np.flatnonzero(mask)}
        assert not trained_people & set(people_folds[i]), "a test-fold person in training"
        assert trained_people <= view2_training_people(people_folds, i)
        feats = np.concatenate([f_lfw[mask], f_cel])
        lab_l = lfw_cs.labels[mask]
        labels = np.concatenate([lab_l, cel_labels + lfw_cs.num_identities])
        w, summ = train_head(feats, labels)
        dl[i] = scores(w, True)
        summ.update(fold=i + 1, lfw_people=len(trained_people), lfw_images=int(mask.sum()),
                    test_fold_people_in_training=len(trained_people & set(people_folds[i])))
        fold_train.append(summ)
        torch.set_num_threads(a.threads)
    training["head-lfw-unrestricted"] = fold_train
    if not np.isnan(dl).any():
        dists["head-lfw-unrestricted"] = dl
    else:
        print(f"only folds {list(folds)} trained: no unrestricted figures", file=sys.stderr)

    curves = {}
    for name, d in dists.items():
        r = unrestricted_kfold(d, same, pfold)
        results[name] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
        curves[name] = roc_curve(pooled_distances(d, pfold), same)
    roc = plot_roc(curves, out / "roc.png", title="LFW View 2 (10 folds, unrestricted for the LFW-trained head)")
    np.savez(out / "distances.npz", same=same, folds=pfold, **{k.replace("-", "_"): v for k, v in dists.items()})
    record = {
        "protocol": ("LFW View 2 pairs.txt, 10 folds of 600 pairs. Fold i's threshold: best accuracy on the other "
                     "nine folds' pairs scored by fold i's model; accuracy on fold i; std = population std over "
                     "folds. AUC / TAR@FAR pooled over the 6000 pairs, each scored by its own fold's model. "
                     "head-lfw-unrestricted: for fold i trained on the people.txt people of the other nine sets "
                     "(>= 2 photos, <= 40 each) + celeba-subset, never on a person of set i."),
        "command": "python scripts/eval_view2_unrestricted.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "recipe": cfg.to_dict() | {"augmented": a.augmented, "val_fraction": a.val_fraction,
                                   "split_seed": a.split_seed},
        "pairs": len(pairs), "pair_images": len(images), "pair_images_no_face": no_face,
        "features": feat_info, "models": results, "training": training, "roc": str(roc),
        "seconds": round(time.time() - t_start, 1),
    }
    (out / "view2.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))
    return 0


def rescore(out: Path) -> int:
    """The figures of ``OUT/view2.json`` again from ``OUT/distances.npz`` (e.g. after the metrics
    gained the calibrated pooling), keeping that file's training record."""
    from faceapp.training.view2 import unrestricted_kfold

    with np.load(out / "distances.npz") as z:
        same, folds = z["same"], z["folds"]
        dists = {k: z[k] for k in z.files if k not in ("same", "folds")}
    record = json.loads((out / "view2.json").read_text())
    names = {k.replace("-", "_"): k for k in record["models"]}
    for key, d in dists.items():
        r = unrestricted_kfold(d, same, folds)
        record["models"][names.get(key, key)] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
    record["rescored"] = "python scripts/eval_view2_unrestricted.py --rescore --out " + str(out)
    (out / "view2.json").write_text(json.dumps(record, indent=1))
    for name, r in record["models"].items():
        c = r["calibrated"]
        print(f"{name:24s} accuracy {r['accuracy']:.4f}  pooled TAR@1e-3 {r['tar_at_far_1e-3']:.4f}  "
              f"calibrated: TAR@1e-2 {c['tar_at_far_1e-2']:.4f} TAR@1e-3 {c['tar_at_far_1e-3']:.4f} "
              f"EER {c['eer']:.4f} AUC {c['auc']:.5f}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    raise SystemExit(main())

"""``faceapp train ACTION ...``: build chip caches, train, export and calibrate embedding models.

Actions (``faceapp train ACTION --help`` for each):

- ``cache``: detect + align a dataset once into an aligned-chip cache (.npz).
- ``fit``: train a network on one or more chip caches (identity-disjoint train/validation split).
- ``head``: head-only transfer learning: a shipped model's backbone frozen, its pooled features
  computed once (chip, mirror image, augmented copies), only the final linear layer trained.
- ``export``: turn trained weights into a shipped model: weights file + spec JSON (sha256,
  architecture, input size, normalisation, template, threshold) in resources/models.
- ``calibrate``: pick a model's threshold tau at a target FAR on the validation identities of a
  chip cache (held out from training) and optionally write it into the spec.
- ``shard`` / ``merge``: split a state dict into files under a size limit and join them again.

This module also runs as ``python -m faceapp.cli.train ACTION ...`` on a machine that has only
torch, numpy and OpenCV (``fit`` and ``shard`` need nothing else of the app).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("faceapp.cli.train")

ACTIONS = ("cache", "fit", "head", "export", "calibrate", "shard", "merge")


def _load_sets(paths: Sequence[str], workers: int = 4):
    from faceapp.training.data import ChipSet

    sets = [ChipSet.load(p, workers=workers) for p in paths]
    prefixes = [Path(p).stem + "/" for p in paths]
    return ChipSet.concat(sets, prefixes)


def _split(cs, val_fraction: float, seed: int):
    from faceapp.training.data import split_identities

    if val_fraction <= 0:
        return cs, None
    train_idx, val_idx = split_identities(cs.labels, (1.0 - val_fraction, val_fraction), seed=seed)
    return cs.subset(train_idx), cs.subset(val_idx)


def _validation_sets(data: Sequence[str], val_data: Sequence[str], size: int | None):
    """``fit --val-data``: the validation caches as one set, or None (said on stderr) when one is
    also a training cache or holds chips of another size. Identities are told apart by cache
    (``stem/name``): a person in two datasets under two names cannot be told apart, so give
    datasets whose people are known to differ."""
    same = {str(Path(p).resolve()) for p in data} & {str(Path(p).resolve()) for p in val_data}
    stems = {Path(p).stem for p in data} & {Path(p).stem for p in val_data}
    if same or stems:
        print(f"faceapp train fit: {', '.join(sorted(same or stems))} is both training and validation data; "
              "--val-data takes caches of other people (or use --val-fraction)", file=sys.stderr)
        return None
    val = _load_sets(val_data)
    if len(val) and val.chips.shape[1] != size:
        print(f"faceapp train fit: --val-data holds {val.chips.shape[1]}x{val.chips.shape[1]} chips, --data "
              f"{size}x{size}: build both caches for the same model", file=sys.stderr)
        return None
    return val


def run_validation_set(split: dict):
    """The validation chips of a ``fit`` run as it had them, from its ``split.json``: the
    ``--val-data`` caches, or the held-out fraction of ``--data`` (None when it had none)."""
    if split.get("val_data"):
        return _load_sets(split["val_data"])
    return _split(_load_sets(split["data"]), split["val_fraction"], split["split_seed"])[1]


# -- actions ------------------------------------------------------------------------------------
def _fit(a: argparse.Namespace) -> int:
    from faceapp.training.augment import AugmentConfig
    from faceapp.training.trainer import TrainConfig, Trainer

    cs = _load_sets(a.data)
    size = cs.chips.shape[1] if len(cs) else None
    if a.arch == "sface" and size != 112:
        print(f"faceapp train fit: sface takes 112x112 chips aligned onto its template, but {', '.join(a.data)} "
              f"holds {size}x{size} chips; build the cache with `faceapp train cache DATASET --model sface-v1`",
              file=sys.stderr)
        return 2
    if a.val_data:
        train, val = cs, _validation_sets(a.data, a.val_data, size)
        if val is None:
            return 2
    else:
        train, val = _split(cs, a.val_fraction, a.split_seed)
    aug = AugmentConfig() if not a.no_augment else AugmentConfig.none()
    cfg = TrainConfig(
        arch=a.arch, init=a.init, freeze_stages=a.freeze_stages, width=a.width, epochs=a.epochs, p=a.p, k=a.k,
        optimizer=a.optimizer, lr=a.lr, backbone_lr_mult=a.backbone_lr_mult, weight_decay=a.weight_decay,
        warmup_epochs=a.warmup_epochs, miner=a.miner, loss=a.loss, margin=a.margin, monitor=a.monitor,
        patience=a.patience, seed=a.seed, device=a.device or "auto", amp=not a.no_amp,
        time_budget_s=a.time_budget, steps_per_epoch=a.steps_per_epoch, augment=aug, bn=a.bn,
    )
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    split = {"data": list(a.data), "val_fraction": 0.0 if a.val_data else a.val_fraction,
             "split_seed": a.split_seed, "val_data": list(a.val_data),
             "train_identities": train.names, "val_identities": val.names if val is not None else []}
    (out / "split.json").write_text(json.dumps(split, indent=1))
    trainer = Trainer(cfg, out, progress=not a.quiet)
    if a.resume:
        trainer.resume(a.resume)
    hist = trainer.fit(train, val)
    ep = hist["epochs"]
    best = next((e for e in ep if e["epoch"] == hist.get("best_epoch")), ep[-1] if ep else {})
    trained = [e for e in ep if e["epoch"] > 0]
    summary = {"out": str(out), "best_epoch": hist.get("best_epoch"), "epochs_run": len(trained),
               "seconds": round(hist["seconds"], 1), "device": hist["device"],
               "images_per_s": round(sum(e["images_per_s"] for e in trained) / max(1, len(trained)), 1),
               "best": {k: v for k, v in best.items() if k.startswith("val_")}}
    print(json.dumps(summary, indent=2))
    return 0


def _head(a: argparse.Namespace) -> int:
    import time

    import numpy as np
    import torch

    from faceapp.embed import network
    from faceapp.embed.weights import load_spec
    from faceapp.training.data import split_identities
    from faceapp.training.head import HeadConfig, HeadTrainer, backbone_features

    if a.threads:
        torch.set_num_threads(a.threads)
    spec = load_spec(a.base_model)
    state = {k: v.float() for k, v in spec.load_state_dict().items()}
    if "fc.weight" not in state or "fc.bias" in state:
        print(f"faceapp train head: {spec.architecture} has no bias-free linear head 'fc'", file=sys.stderr)
        return 2
    model = network.build(spec.architecture)
    model.load_state_dict(state)
    model.eval()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cs = _load_sets(a.data)
    train_idx, val_idx = split_identities(cs.labels, (1.0 - a.val_fraction, a.val_fraction), seed=a.split_seed)
    feats_path = Path(a.features) if a.features else out / "features.npz"
    key = json.dumps({"base_model": spec.model_id, "sha256": spec.sha256, "data": [Path(p).name for p in a.data],
                      "images": len(cs), "val_fraction": a.val_fraction, "split_seed": a.split_seed,
                      "augmented": a.augmented, "feature_seed": a.feature_seed}, sort_keys=True)
    feat_info: dict = {}
    if feats_path.is_file() and str(np.load(feats_path)["key"]) == key:
        z = np.load(feats_path)
        train_f, val_f = z["train"], z["val"]
        feat_info = json.loads(str(z["info"]))
        log.info("features from %s", feats_path)
    else:
        t0 = time.time()
        train_f = backbone_features(model, cs.chips[train_idx], mean=spec.mean, scale=spec.scale,
                                    augmented=a.augmented, seed=a.feature_seed, batch_size=a.batch_size)
        val_f = backbone_features(model, cs.chips[val_idx], mean=spec.mean, scale=spec.scale, batch_size=a.batch_size)
        sec = time.time() - t0
        n_fwd = train_f.shape[0] * train_f.shape[1] + val_f.shape[0] * val_f.shape[1]
        feat_info = {"seconds": round(sec, 1), "backbone_forwards": int(n_fwd),
                     "backbone_images_per_s": round(n_fwd / max(sec, 1e-9), 1),
                     "threads": torch.get_num_threads()}
        np.savez(feats_path, key=key, train=train_f, val=val_f, info=json.dumps(feat_info),
                 train_labels=cs.labels[train_idx], val_labels=cs.labels[val_idx])
    cfg = HeadConfig(epochs=a.epochs, p=a.p, k=a.k, steps_per_epoch=a.steps_per_epoch, lr=a.lr,
                     weight_decay=a.weight_decay, pull=a.pull, warmup_epochs=a.warmup_epochs, miner=a.miner,
                     loss=a.loss, margin=a.margin, views=a.views, monitor=a.monitor, flip_tta=not a.no_flip_tta,
                     patience=a.patience, seed=a.seed)
    trainer = HeadTrainer(cfg, state["fc.weight"])
    # one thread: with two, float sums differ from run to run, the miners' choices follow and
    # the runs drift apart; the head is small enough that one thread costs little
    torch.set_num_threads(1)
    hist = trainer.fit(train_f, cs.labels[train_idx], val_f, cs.labels[val_idx])
    state["fc.weight"] = trainer.best_weight.contiguous()
    torch.save(state, out / "best_model.pt")
    trained = [e for e in hist["epochs"] if e["epoch"] > 0]
    hist.update(base_model=spec.model_id, features=feat_info, train_identities=len(np.unique(cs.labels[train_idx])),
                val_identities=len(np.unique(cs.labels[val_idx])), val_images=len(val_idx), device="cpu",
                command="faceapp train " + " ".join(shlex.quote(x) for x in a.argv),
                head_images_per_s=round(float(np.mean([e["images_per_s"] for e in trained])), 1) if trained else None)
    (out / "history.json").write_text(json.dumps(hist, indent=1))
    ep = {e["epoch"]: e for e in hist["epochs"]}
    summary = {"out": str(out), "best_epoch": hist["best_epoch"], "epochs_run": len(trained),
               "seconds": round(hist["seconds"], 1), "features": feat_info,
               "head_images_per_s": hist["head_images_per_s"],
               "initial": {k: round(v, 5) for k, v in ep[0].items() if k.startswith("val_") and isinstance(v, float)},
               "best": {k: round(v, 5) for k, v in ep[hist["best_epoch"]].items() if k.startswith("val_") and isinstance(v, float)}}
    print(json.dumps(summary, indent=2))
    return 0


def _cache(a: argparse.Namespace) -> int:
    from faceapp.training.cache import build_dataset_cache

    cs = build_dataset_cache(a.dataset, a.out, model=a.model or "dlib-resnet-v1", min_images=a.min_images,
                             max_images=a.max_images, fmt=a.format, quality=a.quality,
                             reuse_detections=a.reuse_detections, min_face=a.min_face, verbose=not a.quiet)
    print(json.dumps({"out": a.out, "images": len(cs), "identities": cs.num_identities, "fallback": len(cs.fallback)}))
    return 0


def _export(a: argparse.Namespace) -> int:
    import shutil

    import numpy as np
    import torch

    from faceapp.embed.weights import load_spec, sha256_of
    from faceapp.training.checkpoints import load_shards

    models = Path(a.models_dir) if a.models_dir else None
    from faceapp.training.trainer import NORMALISATION

    base = load_spec(a.template_from, models)
    folder = models or base.file.parent
    mean, scale = NORMALISATION[a.arch]
    if (tuple(base.mean), base.scale) != (tuple(mean), scale) or (a.arch == "sface" and base.input_size != 112):
        print(f"faceapp train export: {a.arch} is trained on {'112x112 ' if a.arch == 'sface' else ''}chips "
              f"normalised with mean {list(mean)} and scale {scale}, but --template-from {a.template_from} has "
              f"{base.input_size}x{base.input_size}, mean {list(base.mean)}, scale {base.scale}: pick the model "
              "whose cache it was trained on", file=sys.stderr)
        return 2
    if a.shards:
        state = load_shards(Path(a.shards).parent, Path(a.shards).name)
    else:
        state = torch.load(a.weights, map_location="cpu", weights_only=True)
    state = {k: v.float().contiguous() for k, v in state.items()}
    from faceapp.embed import network

    model = network.build(a.arch)
    model.load_state_dict(state)  # the weights must fit the architecture they are shipped as
    weights_file = folder / f"{a.file_stem}.pt"
    torch.save(state, weights_file)
    spec = {
        "model_id": a.model_id,
        "file": weights_file.name,
        "sha256": sha256_of(weights_file),
        "architecture": a.arch,
        "embedding_dim": 128,
        "input_size": base.input_size,
        "normalization": {"mean": list(base.mean), "scale": base.scale, "channel_order": "RGB"},
        "template": np.round(base.template, 4).tolist(),
        "threshold": a.threshold,
        "threshold_note": "placeholder until `faceapp train calibrate --write`",
        "card": f"{a.file_stem}.md",
    }
    if base.border != "replicate":  # the chips it was trained on were filled so (the cache's front end)
        spec["border"] = base.border
    if a.flip_tta:
        spec["flip_tta"] = True
    if a.history:
        hist = json.loads(Path(a.history).read_text())
        spec["training"] = {"config": hist.get("config"), "best_epoch": hist.get("best_epoch"),
                            "best_score": hist.get("best_score"), "device": hist.get("device"),
                            "train_images": hist.get("train_images"), "train_identities": hist.get("train_identities"),
                            "val_identities": hist.get("val_identities")}
    if a.command_line:
        spec.setdefault("training", {})["command"] = a.command_line
    spec_path = folder / f"{a.file_stem}.json"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    if a.history and Path(a.history).with_name("curves.png").is_file() and a.plots_dir:
        Path(a.plots_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(a.history).with_name("curves.png"), Path(a.plots_dir) / f"{a.file_stem}-curves.png")
    print(json.dumps({"spec": str(spec_path), "weights": str(weights_file), "sha256": spec["sha256"]}, indent=2))
    return 0


def _calibrate(a: argparse.Namespace) -> int:
    from faceapp.embed.embedder import Embedder
    from faceapp.embed.weights import load_spec
    from faceapp.training.evaluate import calibrate_threshold, verification_metrics

    spec = load_spec(a.model)
    cs = _load_sets(a.data)
    held = cs
    if a.val_fraction > 0:
        _, held = _split(cs, a.val_fraction, a.split_seed)
    emb = Embedder(spec, device=a.device or "cpu", batch_size=64).embed(list(held.chips))
    cal = calibrate_threshold(emb, held.labels, a.far)
    metrics = verification_metrics(emb, held.labels)
    record = {
        "protocol": (f"validation identities of {', '.join(Path(p).name for p in a.data)} "
                     f"(split seed {a.split_seed}, fraction {a.val_fraction}; held out from training); "
                     "genuine = all same-person pairs, impostor = all different-person pairs"),
        "command": f"faceapp train calibrate --model {a.model} " + " ".join(f"--data {p}" for p in a.data)
        + f" --val-fraction {a.val_fraction} --split-seed {a.split_seed} --far {a.far:g}" + (" --write" if a.write else ""),
        "identities": held.num_identities,
        "images": len(held),
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in cal.items()},
        "validation_metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()},
    }
    print(json.dumps(record, indent=2))
    if a.write:
        spec_path = next(p for p in spec.file.parent.glob("*.json")
                         if json.loads(p.read_text()).get("model_id") == a.model)
        data = json.loads(spec_path.read_text())
        data["threshold"] = record["threshold"]
        data["threshold_note"] = f"tau at FAR {a.far:g} on held-out validation identities (see calibration)"
        data["calibration"] = record
        spec_path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote threshold {record['threshold']} into {spec_path}", file=sys.stderr)
    return 0


def _shard(a: argparse.Namespace) -> int:
    import torch

    from faceapp.training.checkpoints import save_shards

    state = torch.load(a.weights, map_location="cpu", weights_only=True)
    paths = save_shards(state, a.out, a.prefix, max_bytes=a.max_mb * 1e6)
    print(json.dumps([str(p) for p in paths]))
    return 0


def _merge(a: argparse.Namespace) -> int:
    import torch

    from faceapp.training.checkpoints import load_shards

    torch.save(load_shards(a.folder, a.prefix), a.out)
    print(a.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="faceapp train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    s = sub.add_parser("cache", help="detect + align a dataset into an aligned-chip cache")
    s.add_argument("dataset", help="lfw-devtrain | lfw-devtest | lfw-people (all of View 2's people.txt) | celeba | folder:PATH (one sub-folder per person)")
    s.add_argument("--out", required=True)
    s.add_argument("--model", help="align onto this model's template (default dlib-resnet-v1)")
    s.add_argument("--min-images", type=int, default=2)
    s.add_argument("--max-images", type=int)
    s.add_argument("--format", choices=["webp", "jpg"], default="webp")
    s.add_argument("--quality", type=int, default=80)
    s.add_argument("--min-face", type=int, default=48, help="smallest face MTCNN looks for (pixels)")
    s.add_argument("--reuse-detections", type=Path, action="append", default=[])
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(run=_cache)

    s = sub.add_parser("fit", help="train an embedding network on chip caches")
    s.add_argument("--data", action="append", required=True, help="a chip cache .npz (repeatable)")
    s.add_argument("--out", required=True, help="folder for checkpoints, history and plots")
    s.add_argument("--arch", choices=["dlib_resnet", "compact_cnn", "sface"], default="compact_cnn")
    s.add_argument("--init", help="state dict to start from (transfer learning), e.g. resources/models/sface_v1.pt")
    s.add_argument("--freeze-stages", type=int, default=-1,
                   help="dlib_resnet, sface: freeze the stem + the first N stages (-1: nothing)")
    s.add_argument("--bn", choices=["train", "frozen"],
                   help="batch norms while training (default: frozen with --init, the pretrained statistics kept; "
                        "train from scratch)")
    s.add_argument("--width", type=int, default=32, help="compact_cnn base width")
    s.add_argument("--epochs", type=int, default=30)
    s.add_argument("--p", type=int, default=32, help="identities per batch")
    s.add_argument("--k", type=int, default=4, help="photos per identity")
    s.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--backbone-lr-mult", type=float, default=1.0)
    s.add_argument("--weight-decay", type=float, default=5e-4)
    s.add_argument("--warmup-epochs", type=float, default=1.0)
    s.add_argument("--miner", choices=["batch-hard", "semi-hard", "batch-all"], default="batch-hard")
    s.add_argument("--loss", choices=["triplet", "soft-triplet", "siamese"], default="triplet")
    s.add_argument("--margin", type=float, default=0.2)
    s.add_argument("--monitor", choices=["accuracy", "tar_at_far_1e-2", "tar_at_far_1e-3"], default="accuracy")
    s.add_argument("--patience", type=int, default=6)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--val-fraction", type=float, default=0.1)
    s.add_argument("--val-data", action="append", default=[],
                   help="validate (and pick the best epoch) on this cache's people instead of a held-out "
                        "--val-fraction of --data, e.g. LFW DevTrain for a celeba-only run (repeatable)")
    s.add_argument("--split-seed", type=int, default=0)
    s.add_argument("--device", choices=["auto", "cpu", "cuda"])
    s.add_argument("--no-amp", action="store_true")
    s.add_argument("--no-augment", action="store_true")
    s.add_argument("--time-budget", type=float, help="seconds; fixes the epoch count after the second epoch")
    s.add_argument("--steps-per-epoch", type=int)
    s.add_argument("--resume", help="a last.pt to continue from")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(run=_fit)

    s = sub.add_parser("head", help="train only the final linear layer on a frozen backbone's cached features")
    s.add_argument("--data", action="append", required=True, help="a chip cache .npz (repeatable)")
    s.add_argument("--out", required=True, help="folder for features.npz, best_model.pt and history.json")
    s.add_argument("--base-model", default="dlib-resnet-v1", help="model id whose backbone is frozen and head trained")
    s.add_argument("--features", help="features cache (default OUT/features.npz; reused when it matches)")
    s.add_argument("--augmented", type=int, default=2, help="augmented copies per training chip besides chip + mirror")
    s.add_argument("--feature-seed", type=int, default=0, help="seed of the augmented copies")
    s.add_argument("--views", type=int, help="training views used (default all; 1 = chips only, 2 = + mirror)")
    s.add_argument("--epochs", type=int, default=200)
    s.add_argument("--p", type=int, default=64)
    s.add_argument("--k", type=int, default=4)
    s.add_argument("--steps-per-epoch", type=int)
    s.add_argument("--lr", type=float, default=1e-4)
    s.add_argument("--weight-decay", type=float, default=0.0, help="AdamW decay towards 0")
    s.add_argument("--pull", type=float, default=0.0, help="L2 pull towards the initial head: + pull * ||W - W0||^2")
    s.add_argument("--warmup-epochs", type=float, default=1.0)
    s.add_argument("--miner", choices=["batch-hard", "semi-hard", "batch-all"], default="batch-hard")
    s.add_argument("--loss", choices=["triplet", "soft-triplet"], default="triplet")
    s.add_argument("--margin", type=float, default=0.05)
    s.add_argument("--monitor", choices=["accuracy", "tar_at_far_1e-2", "tar_at_far_1e-3", "acc+tar2"], default="accuracy")
    s.add_argument("--no-flip-tta", action="store_true", help="validate without flip test-time augmentation")
    s.add_argument("--patience", type=int, default=20)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--val-fraction", type=float, default=0.1)
    s.add_argument("--split-seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=64, help="backbone batch for the features")
    s.add_argument("--threads", type=int, help="torch CPU threads for the features (the head trains on one)")
    s.set_defaults(run=_head)

    s = sub.add_parser("export", help="ship trained weights as a model (weights + spec JSON)")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--weights", help="a state dict (.pt)")
    g.add_argument("--shards", help="FOLDER/PREFIX of shards written by 'shard'")
    s.add_argument("--arch", required=True, choices=["dlib_resnet", "compact_cnn", "sface"])
    s.add_argument("--model-id", required=True)
    s.add_argument("--file-stem", required=True, help="file names in resources/models (e.g. dlib_resnet_ft_v1)")
    s.add_argument("--template-from", default="dlib-resnet-v1", help="model whose input size, normalisation and template to copy")
    s.add_argument("--threshold", type=float, default=0.15)
    s.add_argument("--history", help="history.json of the run (recorded in the spec)")
    s.add_argument("--command-line", help="the exact training command, recorded in the spec")
    s.add_argument("--flip-tta", action="store_true",
                   help="embed with flip test-time augmentation: normalise(e(chip) + e(mirrored chip))")
    s.add_argument("--models-dir")
    s.add_argument("--plots-dir")
    s.set_defaults(run=_export)

    s = sub.add_parser("calibrate", help="tau at a target FAR on held-out validation identities")
    s.add_argument("--model", help="model id (a spec in resources/models)")
    s.add_argument("--data", action="append", required=True)
    s.add_argument("--val-fraction", type=float, default=0.1, help="as in fit (0: use every identity of --data)")
    s.add_argument("--split-seed", type=int, default=0)
    s.add_argument("--far", type=float, default=1e-3)
    s.add_argument("--device", choices=["auto", "cpu", "cuda"])
    s.add_argument("--write", action="store_true")
    s.set_defaults(run=_calibrate)

    s = sub.add_parser("shard", help="split a state dict into files below a size")
    s.add_argument("weights")
    s.add_argument("--out", required=True)
    s.add_argument("--prefix", default="model")
    s.add_argument("--max-mb", type=float, default=15.0)
    s.set_defaults(run=_shard)

    s = sub.add_parser("merge", help="join shards into one state dict")
    s.add_argument("folder")
    s.add_argument("--prefix", default="model")
    s.add_argument("--out", required=True)
    s.set_defaults(run=_merge)
    return p


def main(argv: Sequence[str] | None = None, *, model: str | None = None, device: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in what a run writes (the exact command)
    if model is not None and getattr(args, "model", None) is None:
        args.model = model
    if device is not None and getattr(args, "device", None) is None:
        args.device = device
    if args.action == "calibrate" and not getattr(args, "model", None):
        print("faceapp train calibrate: --model ID is required", file=sys.stderr)
        return 2
    return int(args.run(args))


def cmd_train(args: argparse.Namespace) -> int:
    """Entry from ``faceapp train``: the main parser leaves ACTION and its arguments to us."""
    return main([args.action, *args.rest], model=getattr(args, "model", None), device=getattr(args, "device", None))


if __name__ == "__main__":  # python -m faceapp.cli.train (e.g. on a GPU machine)
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())

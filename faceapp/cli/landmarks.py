"""``faceapp landmarks train|eval``: train the 68-point landmark CNN on 300-W and measure it.

``eval`` reports NME (outer-eye-corner normalised), the failure rate (NME > 8%), the time per
face on this machine and, when dlib is importable (an evaluation-only reference, e.g. run
``python -m faceapp landmarks eval`` from a venv that has dlib), dlib's 68-point shape predictor
on the same faces with the same MTCNN boxes. ``--json`` prints ``nme``, ``failure_rate``,
``ms_per_face`` and the details.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from faceapp.cli.exit_codes import Exit

log = logging.getLogger("faceapp.cli")


def add_arguments(sp: argparse.ArgumentParser) -> None:
    """The options of ``faceapp landmarks`` (called by :func:`faceapp.cli.main.build_parser`)."""
    sp.add_argument("action", choices=["train", "eval"], help="train the network, or measure it on the test split")
    sp.add_argument("--data", metavar="DIR", help="the 300w-subset folder (default: $FACEAPP_DATASETS/300w-subset)")
    sp.add_argument("--landmark-model", default="landmarks-v1", metavar="ID", help="landmark model id (default landmarks-v1)")
    sp.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    t = sp.add_argument_group("train")
    t.add_argument("--out", metavar="DIR", help="where train writes the weights + spec (default: resources/models)")
    t.add_argument("--epochs", type=int, default=None, help="epochs in all (default 240)")
    t.add_argument("--freeze-epochs", type=int, default=None, help="first epochs with the backbone frozen (default 10)")
    t.add_argument("--batch-size", type=int, default=None, help="default 32")
    t.add_argument("--lr", type=float, default=None, help="head learning rate (default 2e-3)")
    t.add_argument("--val-fraction", type=float, default=None, help="hold out this share of train/ to watch (default 0)")
    t.add_argument("--seed", type=int, default=None)
    sp.add_argument("--limit", type=int, help="use the first N images of the split only (quick checks)")
    t.add_argument("--scratch", action="store_true", help="ablation: start the backbone from random weights, not the face ResNet")
    e = sp.add_argument_group("eval")
    e.add_argument("--split", choices=["test", "train"], default="test", help="which split to measure (default test)")
    e.add_argument("--plot", metavar="PNG", help="write the cumulative error curve here")
    e.add_argument("--dlib-predictor", metavar="DAT", help="dlib's shape_predictor_68_face_landmarks.dat (default: "
                   "$FACEAPP_DLIB_PREDICTOR or the face_recognition_models package)")
    e.add_argument("--no-dlib", action="store_true", help="do not measure dlib even when it is importable")
    e.add_argument("--write-spec", action="store_true", help="store the measured figures in the model's spec")
    e.add_argument("--flip", action="store_true", help="also measure test-time mirroring (mean of the face and its mirror image)")


def _progress(args, label: str):
    if args.json or not sys.stderr.isatty():
        return None

    def show(i: int, n: int) -> None:
        if i == n or i % 25 == 0:
            print(f"\r{label} {i}/{n}", end="\n" if i == n else "", file=sys.stderr, flush=True)

    return show


def cmd_landmarks(args: argparse.Namespace) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return _train(args) if args.action == "train" else _eval(args)


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    from faceapp import paths
    from faceapp.device import resolve_device
    from faceapp.embed.weights import load_spec
    from faceapp.landmarks.data import dataset_root, load_split
    from faceapp.landmarks.train import LandmarkTrainer, TrainConfig, save_model

    root = dataset_root(args.data)
    split = load_split(root, "train", limit=args.limit, progress=_progress(args, "MTCNN boxes (cached afterwards)"))
    overrides = {
        "epochs": args.epochs, "freeze_epochs": args.freeze_epochs, "batch_size": args.batch_size, "lr": args.lr,
        "val_fraction": args.val_fraction, "seed": args.seed,
    }
    config = dataclasses.replace(TrainConfig(), **{k: v for k, v in overrides.items() if v is not None})
    device = resolve_device(args.device or "auto")
    backbone = None if args.scratch else load_spec("dlib-resnet-v1").load_state_dict()
    trainer = LandmarkTrainer(split, config, device=device, backbone_state=backbone)
    if args.scratch:
        print("ablation: backbone from random weights", file=sys.stderr)
    print(f"training on {len(trainer.train_idx)} faces ({len(trainer.val_idx)} held out) on {device}", file=sys.stderr)
    for r in trainer.run():
        line = f"epoch {r.epoch:3d}/{r.epochs} {r.phase:4s} loss {r.loss:.4f} train NME {r.train_nme * 100:.2f}%"
        if r.val_nme is not None:
            line += f" val NME {r.val_nme * 100:.2f}%"
        print(line + f" ({r.seconds:.1f} s)", file=sys.stderr, flush=True)
    out = Path(args.out) if args.out else paths.models_dir()
    spec = save_model(trainer.model, out, model_id=args.landmark_model, config=config,
                      extra={"data": {"train": "$FACEAPP_DATASETS/300w-subset/train", "faces": len(split),
                                      "boxes": "MTCNN (facenet-pytorch), the detection overlapping the true points best",
                                      "boxes_from_points": int(split.from_points.sum())},
                             "pretrained": "none (scratch)" if args.scratch else "dlib-resnet-v1 stem + stages 1-3"})
    payload = {"spec": str(spec), "epochs": config.epochs,
               "final_train_nme": trainer.history[-1].train_nme if trainer.history else None,
               "final_val_nme": trainer.history[-1].val_nme if trainer.history else None}
    print(json.dumps(payload, indent=2) if args.json else f"wrote {spec}")
    return int(Exit.OK)


def _eval(args: argparse.Namespace) -> int:
    from faceapp.landmarks.data import dataset_root, load_split
    from faceapp.landmarks.evaluate import (
        dlib_available, evaluate_dlib, evaluate_predictor, find_dlib_predictor, plot_ced,
    )
    from faceapp.landmarks.predict import LandmarkPredictor
    from faceapp.landmarks.spec import spec_path

    root = dataset_root(args.data)
    split = load_split(root, args.split, limit=args.limit, progress=_progress(args, "MTCNN boxes (cached afterwards)"))
    predictor = LandmarkPredictor(model=args.landmark_model, device=args.device or "cpu")
    ours = evaluate_predictor(predictor, split, progress=_progress(args, "landmarks"))
    results = [ours]
    if args.flip:
        mirrored = LandmarkPredictor(model=args.landmark_model, device=args.device or "cpu", flip=True)
        results.append(evaluate_predictor(mirrored, split))
    dlib_note = None
    dlib_rows = []
    if not args.no_dlib:
        if not dlib_available():
            dlib_note = "dlib is not importable here; run this command from a venv with dlib to compare"
        else:
            dat = find_dlib_predictor(args.dlib_predictor)
            if dat is None:
                dlib_note = "dlib's shape_predictor_68_face_landmarks.dat not found (--dlib-predictor)"
            else:
                dlib_rows = [evaluate_dlib(split, dat), evaluate_dlib(split, dat, own_detector=True)]
                results += dlib_rows
    if args.plot:
        plot_ced(results, args.plot, title=f"300-W {split.name} ({'HELEN test' if split.name == 'test' else 'AFW+HELEN train'}), {len(split)} faces")
    payload = {
        "nme": round(ours.nme, 5),
        "failure_rate": round(ours.failure_rate(), 5),
        "ms_per_face": round(ours.ms_per_face, 3),
        "faces": len(split),
        "split": split.name,
        "boxes_from_points": int(split.from_points.sum()),
        "device": str(predictor.device),
        "threads": __import__("torch").get_num_threads(),
        "methods": [r.as_dict() for r in results],
        "dlib": dlib_rows[0].as_dict() if dlib_rows else None,
        "dlib_own_box": dlib_rows[1].as_dict() if dlib_rows else None,
        "dlib_note": dlib_note,
        "plot": args.plot,
    }
    if args.write_spec:
        from faceapp.landmarks.spec import LandmarkSpec

        path = spec_path(args.landmark_model)
        spec = LandmarkSpec.from_toml(path)
        extra = dict(spec.extra)
        extra[f"metrics_{split.name}"] = {
            "nme": payload["nme"], "failure_rate": payload["failure_rate"], "ms_per_face": payload["ms_per_face"],
            "faces": len(split), "threads": payload["threads"],
            **({"dlib_nme": round(dlib_rows[0].nme, 5), "dlib_failure_rate": round(dlib_rows[0].failure_rate(), 5),
                "dlib_ms_per_face": round(dlib_rows[0].ms_per_face, 3),
                "dlib_own_box_nme": round(dlib_rows[1].nme, 5)} if dlib_rows else {}),
            **({"mirror_nme": round(results[1].nme, 5)} if args.flip else {}),
        }
        path.write_text(LandmarkSpec(**{**spec.__dict__, "extra": extra}).to_toml(), encoding="utf-8")
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        lines = [f"300-W {split.name}: {len(split)} faces ({payload['boxes_from_points']} boxes derived from the points)"]
        for r in results:
            lines.append(f"  {r.name:32s} NME {r.nme * 100:5.2f}%  failures(>8%) {r.failure_rate() * 100:5.1f}%  "
                         f"AUC@8% {r.auc():.3f}  {r.ms_per_face:6.2f} ms/face  [{r.note}]")
        if dlib_note:
            lines.append(f"  ({dlib_note})")
        if args.plot:
            lines.append(f"  cumulative error curve: {args.plot}")
        print("\n".join(lines))
    return int(Exit.OK)

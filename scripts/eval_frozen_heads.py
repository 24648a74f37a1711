"""How much can a projection of the frozen backbones' features still give? (issue 13, validation only)

``scripts/train_fused.py`` trains the fused model's head (a 256 -> 128 linear map on dlib's and
SFace's unit encodings, started from their principal directions) with triplet loss; in every
run so far the best head on the validation identities was the one of epoch 0 to 3, i.e. the
principal directions themselves. This script asks, on validation data alone (the held-out
identities of each View 2 fold head's training set, exactly as ``train_fused.py`` splits them;
no View 2 or variant pair is scored), whether another projection of the same frozen backbones
does better:

* ``concat`` / ``pca``: the 256-d concatenation and its 128 principal directions (the fused
  head's start);
* ``lda-R``: Fisher's linear discriminant to 128 dimensions on the training identities
  (within-class scatter regularised by R times its mean eigenvalue), chip and mirror views;
* ``pool`` / ``pool+sface``: dlib's 256-d pooled features (before its last linear layer, which
  the 128-d encoding is a projection of), centred, alone and beside SFace's encoding;
* ``head384``: a triplet-trained (batch-hard, as the fused heads) linear head on dlib's pooled
  features and SFace's encoding, started from the map that equals the ``pca`` head (so it can
  only improve on it by moving in the 128 directions the pooled features add).

Every figure is TAR at FAR 1e-3 on all pairs of a fold's validation identities, with flip TTA
(``normalise(e(chip) + e(mirror))``) where the name ends in ``+flip``, averaged over the folds.

    FACEAPP_DATASETS=/work/shared/datasets OMP_NUM_THREADS=1 .venv/bin/python scripts/eval_frozen_heads.py \\
        --work ~/.cache/faceapp/fused-flip-black --json docs/fused/frozen-heads-validation.json

``--work`` is a ``train_fused.py --flip`` feature cache; dlib's pooled features are computed from
its detections on the same canvases (about 4 minutes of one core) and cached beside it as
``dlibpool-*.npy``; their projection by dlib's last layer must reproduce the cache's dlib
encodings (checked, 1e-4).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import train_fused as T  # noqa: E402  (the same images, splits and helpers as the fused model's training)

LDA_REGS = (1e-3, 1e-1)
HEAD_CONFIGS = ((2e-3, 0.0), (5e-4, 0.0), (5e-4, 1e-3))  # (lr, pull towards the start)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def dlib_pooled(dataset: str, work: Path, feats: dict, dlib_fc: np.ndarray) -> np.ndarray:
    """(N, 2, 256) dlib pooled features of the chip and its mirror, on the canvases of ``work``'s
    detections (cached as ``dlibpool-<dataset>.npy``)."""
    import torch

    from faceapp.config import Settings
    from faceapp.embed.fused import FusedNet
    from faceapp.imageio import load_image
    from faceapp.pipeline import FaceEngine
    from faceapp.training.data import _det_key
    from faceapp.types import BBox, Detection, Landmarks

    out = work / f"dlibpool-{dataset}.npy"
    if out.is_file():
        pooled = np.load(out)
    else:
        paths, _, root = T._images(dataset)
        if [str(p.relative_to(root)) for p in paths] != feats["paths"].tolist():
            raise SystemExit(f"{work}: its {dataset} features are of other images than the datasets hold now")
        # keyed path|size without the mtime, as train_fused's eval cache (a copy keeps bytes, not mtimes)
        dets = {k.rsplit("|", 1)[0]: v for k, v in json.loads((work / f"detections-{dataset}.json").read_text()).items()}
        keys = [_det_key(p).rsplit("|", 1)[0] for p in paths]
        mean_pts = np.mean([np.asarray(dets[k][2], np.float32) for k in keys if dets[k] is not None], axis=0)
        engine = FaceEngine(Settings(device="cpu"), spec=T._fused_spec(str(feats["border"])))
        net = FusedNet().eval()
        pooled = np.empty((len(paths), 2, 256), np.float32)
        t0 = time.time()
        for s in range(0, len(paths), 32):
            chips = []
            for i in range(s, min(len(paths), s + 32)):
                img = load_image(paths[i], max_side=engine.settings.max_image_side)
                rec = dets[keys[i]]
                det = (Detection(BBox(0, 0, img.shape[1], img.shape[0]), 0.0, Landmarks(mean_pts)) if rec is None
                       else Detection(BBox(*rec[0]), float(rec[1]), Landmarks(np.asarray(rec[2], np.float32))))
                chips.append(engine.align(img, det).image)
            x = torch.as_tensor(np.stack(chips)).permute(0, 3, 1, 2).float()
            with torch.inference_mode():
                xd, _ = net.branch_chips(x)
                p = net.dlib.forward_features((torch.cat([xd, xd.flip(3)]) - net.mean_dlib) / net.scale_dlib)
            pooled[s:s + len(chips)] = p.reshape(2, len(chips), -1).transpose(0, 1).numpy()
            if (s // 32) % 50 == 0:
                T._log(f"{dataset}: dlib pooled features {s + len(chips)}/{len(paths)} ({time.time() - t0:.0f} s)")
        np.save(out, pooled)
    err = float(np.abs(_unit(pooled @ dlib_fc.T) - feats["feats"][..., :128]).max())
    if err > 1e-4:
        raise SystemExit(f"{out}: dlib's last layer on these pooled features is {err:.2e} from the cached encodings")
    return pooled


def lda(f: np.ndarray, lab: np.ndarray, dim: int, reg: float) -> np.ndarray:
    """(dim, D) Fisher discriminant directions of (N, V, D) features (every view a sample)."""
    x = f.reshape(-1, f.shape[-1]).astype(np.float64)
    y = np.repeat(lab[:, None], f.shape[1], 1).ravel()
    x = x - x.mean(0)
    _, inv = np.unique(y, return_inverse=True)
    cnt = np.bincount(inv)
    means = np.zeros((len(cnt), x.shape[1]))
    np.add.at(means, inv, x)
    means /= cnt[:, None]
    xw = x - means[inv]
    sw = xw.T @ xw / len(x)
    sw += reg * np.trace(sw) / len(sw) * np.eye(len(sw))
    sb = (means * cnt[:, None]).T @ means / len(x)
    li = np.linalg.inv(np.linalg.cholesky(sw))  # sw = L L^T: solve sb v = l sw v as a symmetric problem
    _, u = np.linalg.eigh(li @ sb @ li.T)
    return (li.T @ u)[:, ::-1][:, :dim].T.astype(np.float32)


def tar(e: np.ndarray, lab: np.ndarray) -> float:
    from faceapp.match.calibration import tar_at_far

    d, same = T._all_pairs(e, lab)
    return float(tar_at_far(d, same, 1e-3)[0])


def fold_figures(trf, trl, vaf, val, dlib_fc: np.ndarray, epochs: int) -> dict:
    """Every projection's validation TAR at FAR 1e-3 for one fold (features: (N, 2, 512) = dlib's
    encoding, SFace's, dlib's pooled)."""
    from faceapp.training.head import HeadConfig, HeadTrainer

    out: dict = {}

    def both(name, fn):
        e0, e1 = fn(vaf[:, 0]), fn(vaf[:, 1])
        out[name] = tar(e0, val)
        out[name + "+flip"] = tar(_unit(e0 + e1), val)

    w_pca = T._pca_head(trf[:, :1, :256])
    mu = trf[:, 0, 256:].mean(0)
    both("dlib", lambda f: _unit(f[:, :128]))
    both("sface", lambda f: _unit(f[:, 128:256]))
    both("concat", lambda f: _unit(f[:, :256]))
    both("pca", lambda f: _unit(f[:, :256] @ w_pca.T))
    for reg in LDA_REGS:
        w = lda(trf[:, :, :256], trl, 128, reg)
        both(f"lda-{reg:g}", lambda f, w=w: _unit(f[:, :256] @ w.T))
    both("pool", lambda f: _unit(f[:, 256:] - mu))
    both("pool+sface", lambda f: _unit(np.concatenate([0.7 * _unit(f[:, 256:] - mu), f[:, 128:256]], 1)))
    # head384 input: dlib's pooled features scaled as its unit encoding (p / |fc p|), then SFace's;
    # its start W0 = [W_pca[:, :128] fc, W_pca[:, 128:]] is exactly the pca head on that input
    def x384(f):
        p = f[..., 256:]
        return np.concatenate([p / np.linalg.norm(p @ dlib_fc.T, axis=-1, keepdims=True), f[..., 128:256]], -1).astype(np.float32)

    w0 = np.concatenate([w_pca[:, :128] @ dlib_fc, w_pca[:, 128:]], 1).astype(np.float32)
    xtr, xva = x384(trf[:, :1]), x384(vaf)
    for lr, pull in HEAD_CONFIGS:
        cfg = HeadConfig(epochs=epochs, p=64, k=4, lr=lr, miner="batch-hard", loss="triplet", margin=0.2, views=1,
                         monitor="tar_at_far_1e-3", flip_tta=True, patience=8, seed=T.SEED, pull=pull)
        tr = HeadTrainer(cfg, w0)
        h = tr.fit(xtr, trl, xva, val)
        name = f"head384-lr{lr:g}-pull{pull:g}+flip"
        out[name] = float(h["best_score"])
        out[name + ":best_epoch"] = int(h["best_epoch"])
        out[name + ":epoch0"] = float(h["epochs"][0]["val_tar_at_far_1e-3"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--work", type=Path, required=True, help="a train_fused.py --flip feature cache")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--folds", default="1-10", help="View 2 fold heads to measure (e.g. 1-10, or 1,4)")
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args(argv)
    import torch

    from faceapp.embed.fused import FusedNet
    from faceapp.evaluation.protocols import read_lfw_people
    from faceapp.training.data import view2_training_people

    torch.set_num_threads(1)
    lo, _, hi = args.folds.partition("-")
    folds_wanted = list(range(int(lo), int(hi) + 1)) if hi else [int(v) for v in args.folds.split(",")]
    dlib_fc = FusedNet().dlib.fc.weight.detach().numpy().astype(np.float64)
    data = {}
    for ds in ("lfw", "celeba"):
        z = np.load(args.work / f"features-{ds}.npz", allow_pickle=False)
        f = {k: z[k] for k in z.files}
        if tuple(f["views"].tolist()) != ("chip", "flip"):
            raise SystemExit(f"{args.work} is not a --flip feature cache (views {f['views'].tolist()})")
        pooled = dlib_pooled(ds, args.work, f, dlib_fc)
        f["feats"] = np.concatenate([f["feats"], pooled], axis=2)
        data[ds] = f
    folds = read_lfw_people(Path(os.environ["FACEAPP_DATASETS"]) / "lfw", "10fold")
    per_fold = {}
    for k in folds_wanted:
        t0 = time.time()
        trf, trl, vaf, val = T._training_set(data["lfw"], data["celeba"], view2_training_people(folds, k - 1))
        per_fold[k] = fold_figures(trf, trl, vaf, val, dlib_fc, args.epochs)
        per_fold[k]["validation_images"] = int(len(val))
        T._log(f"fold {k} ({time.time() - t0:.0f} s): " + json.dumps({m: round(v, 4) for m, v in per_fold[k].items()
                                                                     if not m.endswith(("epoch", "epoch0"))}))
    names = [m for m in per_fold[folds_wanted[0]] if ":" not in m and m != "validation_images"]
    mean = {m: float(np.mean([per_fold[k][m] for k in per_fold])) for m in names}
    report = {"what": "validation TAR at FAR 1e-3 (held-out identities of each View 2 fold head's training set), "
                      "mean over folds; no test pair scored", "work": str(args.work), "border": str(data["lfw"]["border"]),
              "folds": folds_wanted, "mean": mean, "per_fold": per_fold}
    print(json.dumps(mean, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

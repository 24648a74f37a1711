"""Train and measure ``fused-v1``: dlib's ResNet + SFace, joined by a triplet-trained head.

    FACEAPP_DATASETS=/work/shared/datasets python scripts/train_fused.py --work ~/.cache/faceapp/fused \
        [--reuse-detections FILE ...] [--write]

Stages (each cached under ``--work``; a second run reuses what is there):

1. **Features.** Every LFW image and every celeba-subset image is detected (detections are
   reused from the given JSON files, e.g. the evaluation cache's ``detections-<front end>.json`` (``faceapp.evaluation.runner.FRONT_END``); the image's
   central face, as ``faceapp eval``), aligned onto the fused model's 184x184 canvas through
   faceapp's own front end (``FaceEngine.align``: the same warp and brightness rule as the app),
   and encoded by both frozen backbones (:meth:`faceapp.embed.fused.FusedNet.forward_features`,
   256-d) in two views: the chip, and one photometric variant chosen at random per image among the benchmark's transforms applied to the chip (``lowres``: down to 64/250 of
   its size and back; ``jpeg``: quality 15; ``dark``: gamma 2.5, then the app's brightness rule;
   ``blur``: Gaussian, sigma 1.2).
2. **Heads.** A linear 256 -> 128 head, initialised with the training features' 128 principal
   directions, trained with :class:`faceapp.training.head.HeadTrainer` (P x K sampler, batch-hard
   mining, triplet loss, AdamW, cosine schedule; early stopping on held-out identities; no flip TTA: it would double the time per face).
   Training sets: celeba-subset plus LFW people with at least two images --
   - ``devtest`` head: LFW View 1 DevTrain people only (so DevTest's people are unseen); 15% of
     the training identities (by a seeded draw) are held out for validation and calibration;
   - ``fold1..fold10`` heads (LFW's unrestricted protocol): for fold i, LFW people of the other
     nine sets of ``people.txt`` only.
3. **Measurements.** DevTest pairs under the devtest head; View 2 under the unrestricted protocol
   (:func:`faceapp.training.view2.unrestricted_kfold`: fold i's pairs scored by fold i's head);
   the same pairs under each backbone alone (the features' two halves) and under their plain
   concatenation (no training) beside it, with paired exact McNemar tests of the head against
   each. Images with no face found get the mean landmarks, as in ``faceapp eval``.
4. ``--write``: the devtest head becomes ``resources/models/fused_v1.pt`` (head only) and its
   spec ``fused_v1.json`` with tau at FAR 1e-3 and a calibration curve, both measured on the
   held-out validation identities (never trained on), and the figures in ``--json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

VIEWS = ("chip",)  # a second, photometric-variant view: ("chip", "variant")
BACKBONE_IDS = ("dlib-resnet-v1", "sface-v1")
VARIANTS = ("lowres", "jpeg", "dark", "blur")
SEED = 13


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# chip-level variant transforms (the benchmark's, applied to an aligned chip)
# ------------------------------------------------------------------------------------------

def variant_chip(chip: np.ndarray, name: str, limits) -> np.ndarray:
    import cv2

    from faceapp.detect.quality import normalize_brightness
    from faceapp.evaluation import variants

    h, w = chip.shape[:2]
    if name == "lowres":  # the benchmark takes 250 -> 64; the same ratio of the chip
        s = max(8, round(w * 64 / 250))
        small = cv2.resize(chip, (s, s), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if name == "jpeg":
        return variants.jpeg(chip)
    if name == "dark":
        return normalize_brightness(variants.dark(chip), limits)
    if name == "blur":
        return cv2.GaussianBlur(chip, (0, 0), 1.2)
    raise ValueError(name)


# ------------------------------------------------------------------------------------------
# stage 1: features
# ------------------------------------------------------------------------------------------

def _fused_spec():
    """An in-memory spec of the fused canvas (the head does not matter for alignment)."""
    from faceapp.embed.fused import CANVAS_SIZE, canvas_template
    from faceapp.embed.weights import WeightsSpec, load_spec

    s = load_spec("sface-v1")
    return WeightsSpec(model_id="fused-canvas", file=Path("/nonexistent"), sha256="", architecture="fused_dlib_sface",
                       embedding_dim=128, input_size=CANVAS_SIZE, mean=(0.0, 0.0, 0.0), scale=1.0,
                       template=canvas_template(s.template).astype(np.float32), threshold=0.0)


CELEBA_MAX_IMAGES = 10


def _images(dataset: str) -> tuple[list[Path], list[str], Path]:
    """The images of ``dataset`` with their person's name. lfw: every image of a person with at
    least two (the training candidates) and every image of a View 2 or DevTest pair; celeba: the
    first :data:`CELEBA_MAX_IMAGES` images (by name) of each identity (CPU time)."""
    base = Path(os.environ["FACEAPP_DATASETS"])
    root = base / ("lfw/images" if dataset == "lfw" else "celeba-subset/images")
    wanted: set[str] | None = None
    if dataset == "lfw":
        wanted = set()
        for view in ("10fold", "devtest"):
            a, b, _, _ = _pairs(_views_dir() / f"{view}.csv")
            wanted.update(a)
            wanted.update(b)
    paths, names = [], []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        imgs = sorted(person.glob("*.jpg"))
        if dataset == "celeba":
            imgs = imgs[:CELEBA_MAX_IMAGES]
        elif len(imgs) < 2:
            imgs = [i for i in imgs if str(i.relative_to(root)) in wanted]
        for img in imgs:
            paths.append(img)
            names.append(person.name)
    return paths, names, root


def _views_dir() -> Path:
    """The View 2 / DevTest pair CSVs that ``faceapp eval lfw`` writes (path_a,path_b,same,fold)."""
    return Path.home() / ".cache/faceapp/lfw-views"


def _eval_cache(spec, folder: Path) -> dict:
    """key -> encoding from ``faceapp eval``'s embedding cache of ``spec`` in ``folder`` (the
    newest file of that model; empty when there is none)."""
    files = sorted(folder.glob(f"embeddings-{spec.model_id}-*.npz"), key=lambda p: p.stat().st_mtime)
    if not files:
        return {}
    z = np.load(files[-1])
    # keyed path|size without the mtime: a copy of the datasets keeps the bytes, not the mtimes
    return {k.rsplit("|", 1)[0]: v for k, v in zip(z["keys"].tolist(), z["values"], strict=True)}


def features(dataset: str, work: Path, reuse: list[Path], eval_cache: Path | None = None) -> dict:
    import torch

    from faceapp.config import Settings
    from faceapp.embed.fused import FusedNet
    from faceapp.embed.weights import load_spec
    from faceapp.evaluation.runner import central_face
    from faceapp.imageio import load_image
    from faceapp.pipeline import FaceEngine
    from faceapp.training.data import _det_key
    from faceapp.types import BBox, Detection, Landmarks

    out = work / f"features-{dataset}.npz"
    if out.is_file():
        z = np.load(out, allow_pickle=False)
        return {k: z[k] for k in z.files}
    paths, names, root = _images(dataset)
    dets: dict = {}
    for f in reuse:
        try:
            dets.update(json.loads(Path(f).read_text()))
        except (OSError, ValueError):
            _log(f"cannot read detections {f}; skipped")
    det_file = work / f"detections-{dataset}.json"
    if det_file.is_file():
        dets.update(json.loads(det_file.read_text()))
    spec = _fused_spec()
    engine = FaceEngine(Settings(device="cpu"), spec=spec)
    keys = [_det_key(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in dets]
    _log(f"{dataset}: {len(paths)} images, {len(todo)} to detect")
    for start in range(0, len(todo), 16):
        idx = todo[start:start + 16]
        ims = [load_image(paths[i], max_side=engine.settings.max_image_side) for i in idx]
        found = engine.detector.detect_batch(ims) if hasattr(engine.detector, "detect_batch") else [engine.detect(im) for im in ims]
        for i, im, ds in zip(idx, ims, found, strict=True):
            d = central_face(engine.relevant(ds), im.shape)
            dets[keys[i]] = None if d is None else [[d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2], d.score, d.landmarks.points.tolist()]
        if start % 800 == 0:
            _log(f"{dataset}: detected {start + len(idx)}/{len(todo)}")
    det_file.write_text(json.dumps({k: dets[k] for k in keys}))
    found_pts = [np.asarray(dets[k][2], np.float32) for k in keys if dets[k] is not None]
    mean_pts = np.mean(found_pts, axis=0)
    torch.set_num_threads(max(1, int(os.environ.get("FUSED_THREADS", "1"))))
    net = FusedNet().eval()
    rng = np.random.default_rng(SEED)
    choice = rng.integers(0, len(VARIANTS), len(paths))
    feats = np.empty((len(paths), len(VIEWS), 256), np.float32)
    no_face = np.array([dets[k] is None for k in keys])
    # the backbones' own encodings of the same detections, where `faceapp eval` has cached them
    # (each on its own template: what forward_features computes up to the canvas resampling,
    # within 0.01 squared L2, tests/test_fused.py); the rest are computed on the canvas
    cached = [_eval_cache(load_spec(m), eval_cache) for m in BACKBONE_IDS] if eval_cache else [{}, {}]
    todo = []
    for i, k in enumerate(keys):
        pk = k.rsplit("|", 1)[0]
        if len(VIEWS) == 1 and pk in cached[0] and pk in cached[1]:
            feats[i, 0] = np.concatenate([cached[0][pk], cached[1][pk]])
        else:
            todo.append(i)
    _log(f"{dataset}: {len(paths) - len(todo)} from the evaluation caches, {len(todo)} to encode")
    t0 = time.time()
    batch = 32
    for done in range(0, len(todo), batch):
        rows = todo[done:done + batch]
        chips, var = [], []
        for i in rows:
            img = load_image(paths[i], max_side=engine.settings.max_image_side)
            rec = dets[keys[i]]
            if rec is None:
                det = Detection(BBox(0, 0, img.shape[1], img.shape[0]), 0.0, Landmarks(mean_pts))
            else:
                det = Detection(BBox(*rec[0]), float(rec[1]), Landmarks(np.asarray(rec[2], np.float32)))
            chip = engine.align(img, det).image
            chips.append(chip)
            if len(VIEWS) > 1:
                var.append(variant_chip(chip, VARIANTS[choice[i]], engine.limits))
        views = [torch.as_tensor(np.stack(c)).permute(0, 3, 1, 2).float() for c in (chips, var) if c]
        with torch.inference_mode():
            f = net.forward_features(torch.cat(views)).numpy()
        feats[rows] = f.reshape(len(views), len(rows), -1).transpose(1, 0, 2)
        if (done // batch) % 25 == 0:
            el = time.time() - t0
            n = done + len(rows)
            _log(f"{dataset}: encoded {n}/{len(todo)}, {el:.0f}s ({1000 * el / n:.0f} ms/image)")
    rel = np.array([str(p.relative_to(root)) for p in paths])
    res = {"paths": rel, "names": np.array(names), "feats": feats, "no_face": no_face,
           "variant": np.array([VARIANTS[c] for c in choice])}
    np.savez(out, **res)
    return res


# ------------------------------------------------------------------------------------------
# stage 2: heads
# ------------------------------------------------------------------------------------------

def _pca_head(feats: np.ndarray) -> np.ndarray:
    f = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
    f = f - f.mean(0)
    _, _, vt = np.linalg.svd(f[:: max(1, len(f) // 20000)], full_matrices=False)
    return vt[:128].astype(np.float32)


def train_head(train_f: np.ndarray, train_lab: np.ndarray, val_f: np.ndarray, val_lab: np.ndarray, *, epochs: int) -> tuple[np.ndarray, dict]:
    from faceapp.training.head import HeadConfig, HeadTrainer

    w0 = _pca_head(train_f)
    cfg = HeadConfig(epochs=epochs, p=64, k=4, lr=2e-3, miner="batch-hard", loss="triplet", margin=0.2,
                     monitor="tar_at_far_1e-3", flip_tta=False, patience=8, seed=SEED, weight_decay=0.0)
    tr = HeadTrainer(cfg, w0)
    hist = tr.fit(train_f, train_lab, val_f, val_lab)
    return tr.best_weight.numpy(), {"best_epoch": hist.get("best_epoch"), "best_score": hist.get("best_score"),
                                    "seconds": hist.get("seconds"), "epochs_run": len(hist["epochs"]) - 1,
                                    "epoch0": hist["epochs"][0], "config": cfg.to_dict()}


def _select(names: np.ndarray, keep: set[str], min_images: int = 2) -> np.ndarray:
    u, inv, cnt = np.unique(names, return_inverse=True, return_counts=True)
    ok = np.isin(u, list(keep)) & (cnt >= min_images)
    return ok[inv]


def _training_set(lfw: dict, celeba: dict, lfw_people: set[str]):
    """celeba (all, >= 2 images) + the given LFW people (>= 2 images); labels, and a 15%
    identity hold-out for validation."""
    m_l = _select(lfw["names"], lfw_people)
    m_c = _select(celeba["names"], set(celeba["names"].tolist()))
    names = np.concatenate([np.char.add("lfw:", lfw["names"][m_l]), np.char.add("celeba:", celeba["names"][m_c])])
    feats = np.concatenate([lfw["feats"][m_l], celeba["feats"][m_c]])
    ok = ~np.concatenate([lfw["no_face"][m_l], celeba["no_face"][m_c]])
    names, feats = names[ok], feats[ok]
    u, lab = np.unique(names, return_inverse=True)
    rng = np.random.default_rng(SEED)
    val_ids = rng.permutation(len(u))[: int(0.15 * len(u))]
    is_val = np.isin(lab, val_ids)
    return feats[~is_val], lab[~is_val], feats[is_val], lab[is_val]


# ------------------------------------------------------------------------------------------
# stage 3: measurements
# ------------------------------------------------------------------------------------------

def _pairs(csv: Path):
    import csv as _csv

    rows = list(_csv.DictReader(csv.open()))
    base = Path(os.environ["FACEAPP_DATASETS"]) / "lfw" / "images"
    rel = lambda p: str(Path(p).relative_to(base))  # noqa: E731
    return [rel(r["path_a"]) for r in rows], [rel(r["path_b"]) for r in rows], \
        np.array([int(r["same"]) for r in rows], bool), np.array([int(r["fold"]) for r in rows])


def _embed(feats: np.ndarray, part: str, w: np.ndarray | None = None) -> np.ndarray:
    """(N, V, 256) -> (N, D) unit embeddings of view 0 (the chip itself) under ``part``."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    f = feats[:, 0]
    if part == "dlib":
        return unit(f[:, :128])
    if part == "sface":
        return unit(f[:, 128:])
    if part == "concat":
        return unit(f)
    return unit(f @ w.T)


def _dist(emb: np.ndarray, index: dict, a: list[str], b: list[str]) -> np.ndarray:
    ia = np.array([index[p] for p in a])
    ib = np.array([index[p] for p in b])
    return ((emb[ia] - emb[ib]) ** 2).sum(1)


def _summary(m: dict) -> dict:
    keep = ("accuracy", "accuracy_std", "tar_at_far_1e-3", "tar_at_far_1e-2", "auc", "eer", "fold_auc_mean")
    return {k: m[k] for k in keep if k in m}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--reuse-detections", type=Path, action="append", default=[])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--eval-cache", type=Path, help="faceapp eval's cache folder: reuse its dlib-resnet-v1 and sface-v1 encodings")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--write", action="store_true", help="ship the devtest head as resources/models/fused_v1.*")
    ap.add_argument("--skip-view2", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from faceapp.match.calibration import evaluate_pairs, kfold_correct, mcnemar_exact, threshold_at_far, tar_at_far
    from faceapp.evaluation.protocols import read_lfw_people
    from faceapp.training.data import view2_training_people
    from faceapp.training.view2 import unrestricted_kfold

    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    lfw = features("lfw", args.work, args.reuse_detections, args.eval_cache)
    celeba = features("celeba", args.work, args.reuse_detections, args.eval_cache)
    index = {p: i for i, p in enumerate(lfw["paths"].tolist())}
    lfw_dir = Path(os.environ["FACEAPP_DATASETS"]) / "lfw"
    report: dict = {"features": {"lfw_images": int(len(lfw["paths"])), "lfw_no_face": int(lfw["no_face"].sum()),
                                 "celeba_images": int(len(celeba["paths"])), "celeba_no_face": int(celeba["no_face"].sum())}}

    # DevTest head: DevTrain people + celeba
    dev_people = set(read_lfw_people(lfw_dir, "devtrain"))
    tr_f, tr_l, va_f, va_l = _training_set(lfw, celeba, dev_people)
    _log(f"devtest head: {len(tr_l)} train images / {len(np.unique(tr_l))} ids, {len(va_l)} val images")
    w_dev, info = train_head(tr_f, tr_l, va_f, va_l, epochs=args.epochs)
    report["devtest_head"] = info
    views = _views_dir()
    a, b, same, _ = _pairs(views / "devtest.csv")
    dev = {}
    for part in ("dlib", "sface", "concat", "head"):
        d = _dist(_embed(lfw["feats"], part, w_dev), index, a, b)
        dev[part] = {**_summary(evaluate_pairs(d, same)), "kfold10": float(kfold_correct(d, same, 10).mean())}
        dev[part]["_d"] = d
    for part in ("dlib", "sface", "concat"):
        ch, cb = kfold_correct(dev["head"]["_d"], same, 10), kfold_correct(dev[part]["_d"], same, 10)
        dev["head"][f"mcnemar_vs_{part}"] = {"only_head": int((ch & ~cb).sum()), "only_other": int((cb & ~ch).sum()),
                                            "p": mcnemar_exact(int((ch & ~cb).sum()), int((cb & ~ch).sum()))}
    for part in dev:
        dev[part].pop("_d")
    report["devtest"] = dev
    _log("devtest: " + json.dumps({k: (v["accuracy"], v["tar_at_far_1e-3"]) for k, v in dev.items()}))

    # calibration on the held-out validation identities
    e_val = _embed(va_f, "head", w_dev)
    i, j = np.triu_indices(len(va_l), 1)
    d_all = ((e_val[i] - e_val[j]) ** 2).sum(1)
    s_all = va_l[i] == va_l[j]
    tau = float(threshold_at_far(d_all, s_all, 1e-3))
    tar, _ = tar_at_far(d_all, s_all, 1e-3)
    grid = np.round(np.arange(0.01, 2.0001, 0.01), 2)
    imp = np.sort(d_all[~s_all])
    gen = np.sort(d_all[s_all])
    curve = {"threshold": grid.tolist(),
             "far": [float(np.searchsorted(imp, t, side="right") / len(imp)) for t in grid],
             "tar": [float(np.searchsorted(gen, t, side="right") / len(gen)) for t in grid],
             "genuine_pairs": int(s_all.sum()), "impostor_pairs": int((~s_all).sum())}
    report["calibration"] = {"tau": tau, "tar_at_tau": float(tar), "genuine_pairs": int(s_all.sum()),
                             "impostor_pairs": int((~s_all).sum()),
                             "protocol": "all pairs of the devtest head's held-out validation identities (15% of celeba + DevTrain people, seed 13; never trained on)"}
    _log(f"tau {tau:.4f}, TAR {tar:.4f} on {int(s_all.sum())} genuine / {int((~s_all).sum())} impostor pairs")

    if not args.skip_view2:
        folds = read_lfw_people(lfw_dir, "10fold")
        a, b, same, fold = _pairs(views / "10fold.csv")
        dists = {p: [] for p in ("dlib", "sface", "concat", "head")}
        fold_info = []
        for k in range(10):
            keep = view2_training_people(folds, k)
            tr_f, tr_l, va_f, va_l = _training_set(lfw, celeba, keep)
            w_k, info = train_head(tr_f, tr_l, va_f, va_l, epochs=args.epochs)
            fold_info.append(info)
            for part in dists:
                dists[part].append(_dist(_embed(lfw["feats"], part, w_k), index, a, b))
            _log(f"fold {k + 1}: trained ({info['best_epoch']} epochs best, {info['seconds']:.0f}s)")
        v2 = {p: unrestricted_kfold(np.stack(d), same, fold) for p, d in dists.items()}
        out = {p: _summary(m) for p, m in v2.items()}

        def correct(m, d):  # per pair, fold i's pairs judged by fold i's model at its threshold
            pooled = np.stack(d)[fold, np.arange(len(fold))]
            thr = np.asarray(m["fold_thresholds"])[fold]
            return (pooled <= thr) == same

        ch = correct(v2["head"], dists["head"])
        for part in ("dlib", "sface", "concat"):
            cb = correct(v2[part], dists[part])
            out["head"][f"mcnemar_vs_{part}"] = {"only_head": int((ch & ~cb).sum()), "only_other": int((cb & ~ch).sum()),
                                                 "p": mcnemar_exact(int((ch & ~cb).sum()), int((cb & ~ch).sum()))}
        out["fold_heads"] = fold_info
        report["view2_unrestricted"] = out
        _log("view2: " + json.dumps({k: (v["accuracy"], v["tar_at_far_1e-3"]) for k, v in out.items() if k != "fold_heads"}))

    if args.write:
        write_model(w_dev, report, curve)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


def write_model(weight: np.ndarray, report: dict, curve: dict) -> None:
    import torch

    from faceapp.embed.fused import CANVAS_SIZE, FusedNet, canvas_template
    from faceapp.embed.weights import load_spec

    net = FusedNet(load_backbones=False)
    pt = REPO / "resources/models/fused_v1.pt"
    torch.save({"head.weight": torch.as_tensor(weight)}, pt)
    sha = hashlib.sha256(pt.read_bytes()).hexdigest()
    cal = report["calibration"]
    spec = {
        "model_id": "fused-v1", "file": pt.name, "sha256": sha, "architecture": "fused_dlib_sface",
        "embedding_dim": 128, "input_size": CANVAS_SIZE,
        "normalization": {"mean": [0.0, 0.0, 0.0], "scale": 1.0, "channel_order": "RGB"},
        "template": canvas_template(load_spec("sface-v1").template).round(4).tolist(),
        "template_note": "SFace's ArcFace template at 1.5x plus (8, 1): a 184x184 canvas holding SFace's 112 crop and dlib's 150 chip (faceapp/embed/fused.py)",
        "threshold": round(cal["tau"], 4),
        "threshold_note": "tau at FAR 0.001 on held-out validation identities (scripts/train_fused.py)",
        "backbones": net.backbone_sha256,
        "card": "fused_v1.md",
        "summary": "faceapp's own: dlib's ResNet + SFace joined by a triplet-trained head (see its card)",
        "license": "head: faceapp's; backbones: dlib-resnet-v1 (CC0) and sface-v1 (Apache-2.0, see sface_v1_LICENSE.md)",
        "calibration": {**cal, "command": "FACEAPP_DATASETS=... python scripts/train_fused.py --work DIR --write",
                        "far_target": 0.001, "threshold": round(cal["tau"], 4),
                        "curve": {**curve, "protocol": cal["protocol"], "command": "python scripts/train_fused.py --work DIR --write"}},
    }
    (REPO / "resources/models/fused_v1.json").write_text(json.dumps(spec, indent=2) + "\n")
    _log(f"wrote {pt} ({sha[:12]}) and fused_v1.json")


if __name__ == "__main__":
    raise SystemExit(main())

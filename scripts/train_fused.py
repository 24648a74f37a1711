"""Train and measure ``fused-v1``: dlib's ResNet + SFace, joined by a triplet-trained head.

    FACEAPP_DATASETS=/work/shared/datasets python scripts/train_fused.py --work ~/.cache/faceapp/fused \
        [--reuse-detections FILE ...] [--write]
    ... --work ~/.cache/faceapp/fused-flip --flip [--partial] [--json FILE]   # flip TTA (docs/fused/flip.md)
    ... --time-only [--json FILE]                                           # time per face only

Stages (each cached under ``--work``; a second run reuses what is there):

1. **Features.** Every LFW image and every celeba-subset image is detected (detections are
   reused from the given JSON files, e.g. the evaluation cache's ``detections-<front end>.json`` (``faceapp.evaluation.runner.FRONT_END``); the image's
   central face, as ``faceapp eval``), aligned onto the fused model's 184x184 canvas through
   faceapp's own front end (``FaceEngine.align``: the same warp and brightness rule as the app),
   and encoded by both frozen backbones (:meth:`faceapp.embed.fused.FusedNet.forward_features`,
   256-d) in two views: the chip, and one photometric variant chosen at random per image among the benchmark's transforms applied to the chip (``lowres``: down to 64/250 of
   its size and back; ``jpeg``: quality 15; ``dark``: gamma 2.5, then the app's brightness rule;
   ``blur``: Gaussian, sigma 1.2).
   ``--flip``: instead a second view of each image's mirror: each backbone's own chip (dlib's
   150x150, SFace's 112x112, both cut from the canvas) flipped left-right and encoded
   (:func:`forward_views`), so that flip TTA is ``Embedder``'s ``flip_tta`` on each backbone;
   cached in another ``--work`` (a cache of other views is refused). Images are detected and
   encoded View 2's pair images first, then DevTest's, then the rest, with checkpoints
   (``detections-*.json``, ``features-*.partial.npz``) a killed run resumes from; ``--partial``
   measures the training-free models on the views already complete, from those checkpoints.
2. **Heads.** A linear 256 -> 128 head, initialised with the training features' 128 principal
   directions, trained with :class:`faceapp.training.head.HeadTrainer` (P x K sampler, batch-hard
   mining, triplet loss, AdamW, cosine schedule; early stopping on held-out identities; no flip TTA: it would double the time per face).
   With ``--flip`` also ``head-flipaug``: the same, the mirrors as a second view of each training
   image (one of the two drawn per step), validated with flip TTA.
   Training sets: celeba-subset plus LFW people with at least two images --
   - ``devtest`` head: LFW View 1 DevTrain people only (so DevTest's people are unseen); 15% of
     the training identities (by a seeded draw) are held out for validation and calibration;
   - ``fold1..fold10`` heads (LFW's unrestricted protocol): for fold i, LFW people of the other
     nine sets of ``people.txt`` only.
3. **Measurements.** DevTest pairs under the devtest head; View 2 under the unrestricted protocol
   (:func:`faceapp.training.view2.unrestricted_kfold`: fold i's pairs scored by fold i's head);
   the same pairs under each backbone alone (the features' two halves) and under their plain
   concatenation (no training) beside it, with paired exact McNemar tests of the head against
   each. Images with no face found get the mean landmarks, as in ``faceapp eval``. With
   ``--flip`` every model also with flip TTA (``+flip``: normalise(e(chip) + e(mirror)), e each
   model's unit encoding), every head variant tested against every other model, and the shipping
   rule (:func:`faceapp.evaluation.shipping.decide`, View 2 as the gate) for the candidate
   against dlib-resnet-v1 and sface-v1. The candidate is chosen before any test pair is looked
   at (:func:`choose_candidate`): the head variant (with or without flip TTA) with the best
   mean TAR at FAR 1e-3 on the held-out validation identities of the ten View 2 fold heads
   (``validation`` in the JSON has every model on every fold's and the devtest head's
   validation pairs). ``--time-faces``: time per face (one face per call) of the fused network
   without and with flip TTA, and of SFace alone.
   ``--variant CSV`` (repeatable; e.g. ``tight-folds1-5.csv`` of ``scripts/make_lfw_variants.py``):
   that framing variant's images through the product's front end for stills (the edge rule,
   :meth:`FaceEngine.detect` with ``still=True``; the face nearest the centre; no face: the
   mean landmarks, as ``faceapp eval pairs``), every model scored under the same unrestricted
   protocol as View 2 (the variant's pairs of LFW fold i by fold i's heads, trained without fold
   i's people), McNemar tests, and each variant in the shipping rule (``tight`` a gate, the
   others guards).
4. ``--write``: the candidate's devtest head becomes ``resources/models/fused_v1.pt`` (head
   only; ``fused_flip_v1.*``, model ``fused-flip-v1`` with ``flip_tta``, when the candidate uses
   flip TTA) and its spec with tau at FAR 1e-3 and a calibration curve, both measured on the
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

VIEWS = ("chip",)  # with --flip ("chip", "flip"); a photometric-variant view: ("chip", "variant")
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

def _fused_spec(border: str = "replicate"):
    """An in-memory spec of the fused canvas (the head does not matter for alignment); ``border``:
    how canvas pixels outside the photo are filled (``WeightsSpec.border``)."""
    from faceapp.embed.fused import CANVAS_SIZE, canvas_template
    from faceapp.embed.weights import WeightsSpec, load_spec

    s = load_spec("sface-v1")
    return WeightsSpec(model_id="fused-canvas", file=Path("/nonexistent"), sha256="", architecture="fused_dlib_sface",
                       embedding_dim=128, input_size=CANVAS_SIZE, mean=(0.0, 0.0, 0.0), scale=1.0,
                       template=canvas_template(s.template).astype(np.float32), threshold=0.0, border=border)


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


def _priority(dataset: str, paths: list[Path], root: Path) -> np.ndarray:
    """The order images are detected and encoded in (a killed run's checkpoint then holds whole
    views first): LFW's View 2 pair images (0), DevTest's (1), the rest (2)."""
    pri = np.full(len(paths), 2)
    if dataset == "lfw":
        rel = [str(p.relative_to(root)) for p in paths]
        for rank, view in ((1, "devtest"), (0, "10fold")):
            a, b, _, _ = _pairs(_views_dir() / f"{view}.csv")
            want = set(a) | set(b)
            pri[[i for i, r in enumerate(rel) if r in want]] = rank
    return pri


def _views_dir() -> Path:
    """The View 2 / DevTest pair CSVs that ``faceapp eval lfw`` writes (path_a,path_b,same,fold);
    written here from LFW's protocol files where they are missing (a fresh machine)."""
    import csv

    from faceapp.evaluation.protocols import read_lfw_pairs

    folder = Path.home() / ".cache/faceapp/lfw-views"
    for view in ("10fold", "devtest"):
        out = folder / f"{view}.csv"
        if out.is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["path_a", "path_b", "same", "fold"])
            for pr in read_lfw_pairs(Path(os.environ["FACEAPP_DATASETS"]) / "lfw", view):
                w.writerow([str(Path(pr.path_a).absolute()), str(Path(pr.path_b).absolute()), int(pr.same), pr.fold])
        tmp.replace(out)
    return folder


def _eval_cache(spec, folder: Path) -> dict:
    """key -> encoding from ``faceapp eval``'s embedding cache of ``spec`` in ``folder`` (the
    newest file of that model; empty when there is none)."""
    files = sorted(folder.glob(f"embeddings-{spec.model_id}-*.npz"), key=lambda p: p.stat().st_mtime)
    if not files:
        return {}
    z = np.load(files[-1])
    # keyed path|size without the mtime: a copy of the datasets keeps the bytes, not the mtimes
    return {k.rsplit("|", 1)[0]: v for k, v in zip(z["keys"].tolist(), z["values"], strict=True)}


def forward_views(net, x, flip: bool):
    """(N, 3, 184, 184) canvases -> (N, 1, 256) :meth:`FusedNet.forward_features`, or with
    ``flip`` (N, 2, 256): view 1 = the same features of each backbone's mirrored chip (each
    branch's 150x150 / 112x112 chip flipped left-right, as ``Embedder``'s ``flip_tta`` mirrors a
    backbone's chip; mirroring the canvas instead would shift SFace's crop by 1/3 pixel and
    reflect dlib's SFace-fitted placement)."""
    import torch

    if not flip:
        return net.forward_features(x)[:, None]
    xd, xs = net.branch_chips(x)
    f = net.chip_features(torch.cat([xd, xd.flip(3)]), torch.cat([xs, xs.flip(3)]))
    return f.reshape(2, len(x), -1).transpose(0, 1)


def _check_cache(z, path: Path, views: tuple[str, ...], border: str) -> None:
    """Refuse a feature cache of other views or another canvas border (a cache from before the
    border was recorded is a replicate-border one)."""
    have = tuple(z["views"].tolist()) if "views" in z.files else VIEWS
    if have != tuple(views):
        raise SystemExit(f"{path} holds the views {have}, not {tuple(views)}: use another --work")
    have_border = str(z["border"]) if "border" in z.files else "replicate"
    if have_border != border:
        raise SystemExit(f"{path} holds canvases with a {have_border} border, not {border}: use another --work")


def features(dataset: str, work: Path, reuse: list[Path], eval_cache: Path | None = None, views: tuple[str, ...] = VIEWS,
             border: str = "replicate") -> dict:
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
        _check_cache(z, out, views, border)
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
    spec = _fused_spec(border)
    engine = FaceEngine(Settings(device="cpu"), spec=spec)
    keys = [_det_key(p) for p in paths]
    pri = _priority(dataset, paths, root)

    def detect(todo: list[int]) -> None:
        _log(f"{dataset}: {len(todo)} to detect")
        for start in range(0, len(todo), 16):
            idx = todo[start:start + 16]
            ims = [load_image(paths[i], max_side=engine.settings.max_image_side) for i in idx]
            found = engine.detector.detect_batch(ims) if hasattr(engine.detector, "detect_batch") else [engine.detect(im) for im in ims]
            for i, im, ds in zip(idx, ims, found, strict=True):
                d = central_face(engine.relevant(ds), im.shape)
                dets[keys[i]] = None if d is None else [[d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2], d.score, d.landmarks.points.tolist()]
            if start % 800 == 0:
                _log(f"{dataset}: detected {start + len(idx)}/{len(todo)}")
                det_file.write_text(json.dumps({k: dets[k] for k in keys if k in dets}))  # a killed run resumes here
        det_file.write_text(json.dumps({k: dets[k] for k in keys if k in dets}))

    torch.set_num_threads(max(1, int(os.environ.get("FUSED_THREADS", "1"))))
    net = FusedNet().eval()
    rng = np.random.default_rng(SEED)
    choice = rng.integers(0, len(VARIANTS), len(paths))
    feats = np.empty((len(paths), len(views), 256), np.float32)
    # the backbones' own encodings of the same detections, where `faceapp eval` has cached them
    # (each on its own template: what forward_features computes up to the canvas resampling,
    # within 0.01 squared L2, tests/test_fused.py); the rest are computed on the canvas
    cached = [_eval_cache(load_spec(m), eval_cache) for m in BACKBONE_IDS] if eval_cache else [{}, {}]
    enc_todo = []
    partial = work / f"features-{dataset}.partial.npz"  # a killed run resumes from here
    done_mask = np.zeros(len(paths), bool)
    if partial.is_file():
        z = np.load(partial, allow_pickle=False)
        if z["paths"].tolist() == [str(p) for p in paths] and z["feats"].shape == feats.shape \
                and (str(z["border"]) if "border" in z.files else "replicate") == border:
            done_mask, feats[:] = z["done"], z["feats"]
    for i, k in enumerate(keys):
        pk = k.rsplit("|", 1)[0]
        if done_mask[i]:
            continue
        if len(views) == 1 and pk in cached[0] and pk in cached[1]:
            feats[i, 0] = np.concatenate([cached[0][pk], cached[1][pk]])
        else:
            enc_todo.append(i)
    _log(f"{dataset}: {len(paths)} images, {len(paths) - len(enc_todo)} from the evaluation caches or a killed run, {len(enc_todo)} to encode")
    n_done, t_enc = 0, 0.0
    mean_pts = None

    def encode(todo: list[int]) -> None:
        nonlocal n_done, t_enc
        batch = 32
        for done in range(0, len(todo), batch):
            t0 = time.time()
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
                if "variant" in views:
                    var.append(variant_chip(chip, VARIANTS[choice[i]], engine.limits))
            x = [torch.as_tensor(np.stack(c)).permute(0, 3, 1, 2).float() for c in (chips, var) if c]
            with torch.inference_mode():
                f = [forward_views(net, x[0], "flip" in views)] + [net.forward_features(v)[:, None] for v in x[1:]]
            feats[rows] = torch.cat(f, dim=1).numpy()
            done_mask[rows] = True
            n_done += len(rows)
            t_enc += time.time() - t0
            if (done // batch) % 25 == 0 or done + batch >= len(todo):
                np.savez(partial, paths=np.array([str(p) for p in paths]), feats=feats, done=done_mask, border=np.array(border))
                _log(f"{dataset}: encoded {n_done}/{len(enc_todo)}, {t_enc:.0f}s ({1000 * t_enc / n_done:.0f} ms/image)")

    # priority group by group (View 2's images, DevTest's, the rest): detect, then encode those
    # with a face; the faces not found last, on the mean landmarks of all found
    for group in np.unique(pri):
        detect([i for i, k in enumerate(keys) if pri[i] == group and k not in dets])
        encode([i for i in enc_todo if pri[i] == group and dets[keys[i]] is not None])
    found_pts = [np.asarray(dets[k][2], np.float32) for k in keys if dets[k] is not None]
    mean_pts = np.mean(found_pts, axis=0)
    encode([i for i in enc_todo if dets[keys[i]] is None])
    no_face = np.array([dets[k] is None for k in keys])
    rel = np.array([str(p.relative_to(root)) for p in paths])
    res = {"paths": rel, "names": np.array(names), "feats": feats, "no_face": no_face,
           "variant": np.array([VARIANTS[c] for c in choice]), "views": np.array(views), "border": np.array(border)}
    np.savez(out, **res)
    partial.unlink(missing_ok=True)
    return res


def _variant_pairs(csv_path: Path):
    """A variant's pairs: image paths (absolute), labels, folds 0-based (the CSV holds LFW's 1..10)."""
    import csv as _csv

    rows = list(_csv.DictReader(csv_path.open()))
    base = csv_path.parent
    a = [str((base / r["path_a"]).resolve()) for r in rows]
    b = [str((base / r["path_b"]).resolve()) for r in rows]
    return a, b, np.array([int(r["same"]) for r in rows], bool), np.array([int(r["fold"]) - 1 for r in rows])


def variant_features(csv_path: Path, work: Path, views: tuple[str, ...], border: str = "replicate") -> dict:
    """Features of a variant CSV's images (cached in ``work``) on exactly the chips ``faceapp eval
    pairs`` makes (:func:`faceapp.evaluation.runner.aligned_chips`: a still photo's detection
    with the edge rule, the face nearest the centre; an image with no face gets the mean
    landmarks of the others and is counted in ``no_face``)."""
    import torch

    from faceapp.config import Settings
    from faceapp.embed.fused import FusedNet
    from faceapp.evaluation.runner import EvalCache, _key, aligned_chips
    from faceapp.pipeline import FaceEngine

    out = work / f"features-variant-{csv_path.stem}.npz"
    if out.is_file():
        z = np.load(out, allow_pickle=False)
        _check_cache(z, out, views, border)
        return {k: z[k] for k in z.files}
    a, b, _, _ = _variant_pairs(csv_path)
    paths = sorted(set(a) | set(b))
    engine = FaceEngine(Settings(device="cpu"), spec=_fused_spec(border))
    # exactly faceapp eval pairs' chips (its own detection cache for this variant, so that the
    # mean-landmark fallback is this variant's mean)
    _log(f"{csv_path.stem}: detecting {len(paths)} images")
    cache = EvalCache(engine, work / f"eval-{csv_path.stem}")
    chips, no_face = aligned_chips(engine, [Path(p) for p in paths], cache)
    torch.set_num_threads(max(1, int(os.environ.get("FUSED_THREADS", "1"))))
    net = FusedNet().eval()
    feats = np.empty((len(paths), len(views), 256), np.float32)
    t0 = time.time()
    for start in range(0, len(paths), 32):
        x = torch.as_tensor(chips[start:start + 32]).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            feats[start:start + len(x)] = forward_views(net, x, "flip" in views).numpy()
        if start % 800 == 0:
            _log(f"{csv_path.stem}: encoded {start + len(x)}/{len(paths)}, {time.time() - t0:.0f}s")
    missing = np.array([cache.detections.get(_key(Path(p))) is None for p in paths])
    assert int(missing.sum()) == no_face
    res = {"paths": np.array(paths), "feats": feats, "no_face": missing, "views": np.array(views), "border": np.array(border)}
    np.savez(out, **res)
    return res


def score_variant(csv_path: Path, feats: dict, variants, fold_weights: list[dict]) -> tuple[dict, dict]:
    """Every model on a variant's pairs, unrestricted: a pair of LFW fold i scored by fold i's
    heads; the threshold of fold i chosen on the variant's other folds' pairs (as View 2)."""
    from faceapp.training.view2 import unrestricted_kfold

    a, b, same, fold = _variant_pairs(csv_path)
    index = {p: i for i, p in enumerate(feats["paths"].tolist())}
    present = np.unique(fold)
    f_local = np.searchsorted(present, fold)  # the folds present, renumbered 0..k-1
    res, correct = {}, {}
    for name, part, tta in variants:
        d = np.stack([_dist(_embed(feats["feats"], part, fold_weights[k].get(part), tta), index, a, b) for k in present])
        m = unrestricted_kfold(d, same, f_local)
        res[name] = {**_summary(m), "fold_accuracies": m["fold_accuracies"]}
        pooled = d[f_local, np.arange(len(f_local))]
        correct[name] = (pooled <= np.asarray(m["fold_thresholds"])[f_local]) == same
    _head_tests(res, correct)
    res["no_face"] = int(feats["no_face"].sum())
    res["folds"] = [int(k) + 1 for k in present]
    return res, correct


# ------------------------------------------------------------------------------------------
# stage 2: heads
# ------------------------------------------------------------------------------------------

def _pca_head(feats: np.ndarray) -> np.ndarray:
    f = feats.reshape(-1, feats.shape[-1]).astype(np.float64)
    f = f - f.mean(0)
    _, _, vt = np.linalg.svd(f[:: max(1, len(f) // 20000)], full_matrices=False)
    return vt[:128].astype(np.float32)


#: the heads trained: name -> (training views, validated with flip TTA). "head": on the chips
#: alone (as without --flip); "head-flipaug" (--flip): each image's chip and mirror are two
#: views of one sample (HeadTrainer draws one at random per step), validated with flip TTA.
HEADS = {"head": (1, False), "head-flipaug": (2, True)}


def train_head(train_f: np.ndarray, train_lab: np.ndarray, val_f: np.ndarray, val_lab: np.ndarray, *, epochs: int,
               views: int = 1, flip_tta: bool = False) -> tuple[np.ndarray, dict]:
    from faceapp.training.head import HeadConfig, HeadTrainer

    train_f = train_f[:, :views]
    w0 = _pca_head(train_f)
    cfg = HeadConfig(epochs=epochs, p=64, k=4, lr=2e-3, miner="batch-hard", loss="triplet", margin=0.2, views=views,
                     monitor="tar_at_far_1e-3", flip_tta=flip_tta, patience=8, seed=SEED, weight_decay=0.0)
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


def _embed(feats: np.ndarray, part: str, w: np.ndarray | None = None, tta: bool = False) -> np.ndarray:
    """(N, V, 256) -> (N, D) unit embeddings of view 0 (the chip itself) under ``part`` (dlib,
    sface, concat, or a head ``w``); with ``tta`` flip test-time augmentation as ``Embedder``'s
    ``flip_tta``: normalise(e(chip) + e(mirror)), e = the unit encoding of view 0 and view 1."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    def one(f):
        if part == "dlib":
            return unit(f[:, :128])
        if part == "sface":
            return unit(f[:, 128:])
        if part == "concat":
            return unit(f)
        return unit(f @ w.T)

    e = one(feats[:, 0])
    return unit(e + one(feats[:, 1])) if tta else e


def _all_pairs(e: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared L2 distances of all pairs of unit encodings ``e`` (from their Gram matrix, not
    (pairs x dim) differences: a million pairs of 256-d vectors would be 1 GB) and whether each
    pair is one identity."""
    e = np.asarray(e, np.float64)
    i, j = np.triu_indices(len(labels), 1)
    return np.maximum(2.0 - 2.0 * (e @ e.T)[i, j], 0.0), labels[i] == labels[j]


def validation_metrics(val_f: np.ndarray, val_lab: np.ndarray, variants, weights: dict) -> dict:
    """Every model of ``variants`` on all pairs of the held-out validation identities (images
    never trained on): TAR at FAR 1e-3 (the heads' early-stopping monitor), EER and the pair
    counts. ``weights``: the head weights by part."""
    from faceapp.match.calibration import eer, tar_at_far

    out, same = {}, None
    for name, part, tta in variants:
        d, same = _all_pairs(_embed(val_f, part, weights.get(part), tta), val_lab)
        tar, _ = tar_at_far(d, same, 1e-3)
        out[name] = {"tar_at_far_1e-3": float(tar), "eer": eer(d, same)[0]}
    return {"models": out, "genuine_pairs": int(same.sum()), "impostor_pairs": int((~same).sum())}


def choose_candidate(fold_validation: list[dict]) -> dict:
    """The head variant to test and ship, from validation data alone: the best mean TAR at FAR
    1e-3 over the fold heads' validation identities; a tie (within 1e-4) goes to the cheaper
    model (without flip TTA, which doubles the time per face), then to the plain head."""
    heads = [m for m in fold_validation[0]["models"] if m.startswith("head")]
    mean = {m: float(np.mean([v["models"][m]["tar_at_far_1e-3"] for v in fold_validation])) for m in heads}
    cost = lambda m: (m.endswith("+flip"), "flipaug" in m)  # noqa: E731
    top = max(mean.values())
    best = min((m for m in heads if mean[m] >= top - 1e-4), key=cost)
    return {"candidate": best, "mean_val_tar_at_far_1e-3": mean,
            "rule": "best mean validation TAR@FAR1e-3 over the View 2 fold heads' held-out identities; "
                    "ties within 1e-4 to the model without flip TTA, then the plain head"}


def _variants(flip: bool) -> list[tuple[str, str, bool]]:
    """(name, part, tta) of every measured model: each backbone alone, their concatenation, the
    heads; with ``flip`` each also with flip TTA (name + "+flip") and the flip-trained head."""
    parts = ("dlib", "sface", "concat", "head") + (("head-flipaug",) if flip else ())
    return [(p + ("+flip" if t else ""), p, t) for p in parts for t in ((False, True) if flip else (False,))]


def _mcnemar(ch: np.ndarray, cb: np.ndarray) -> dict:
    from faceapp.match.calibration import mcnemar_exact

    a, b = int((ch & ~cb).sum()), int((cb & ~ch).sum())
    return {"only_head": a, "only_other": b, "p": mcnemar_exact(a, b)}


def _head_tests(out: dict, correct: dict, candidates: tuple[str, ...] = ("head",)) -> None:
    """Each head variant of ``out`` (each name starting with one of ``candidates``) against every
    other variant (paired exact McNemar; ``only_head``: pairs only the row's model gets right)."""
    for h in out:
        if h.startswith(candidates):
            for o in out:
                if o != h:
                    out[h][f"mcnemar_vs_{o}"] = _mcnemar(correct[h], correct[o])


def partial_report(work: Path, flip: bool) -> dict:
    """``--partial``: the training-free variants (each backbone, their concatenation; with and
    without flip TTA) on each view whose pair images are all encoded, from the finished features
    or a killed (or running) run's checkpoint; the same distances, folds and tests as the full run."""
    from faceapp.match.calibration import evaluate_pairs, kfold_correct
    from faceapp.training.view2 import unrestricted_kfold

    part = work / "features-lfw.partial.npz"
    if (work / "features-lfw.npz").is_file():
        z = np.load(work / "features-lfw.npz")
        rel, feats, done = z["paths"].tolist(), z["feats"], np.ones(len(z["paths"]), bool)
    else:
        z = np.load(part)
        base = Path(os.environ["FACEAPP_DATASETS"]) / "lfw/images"
        rel, feats, done = [str(Path(q).relative_to(base)) for q in z["paths"].tolist()], z["feats"], z["done"]
    index = {q: i for i, q in enumerate(rel)}
    variants = [v for v in _variants(flip) if not v[1].startswith("head")]
    report: dict = {"partial": True, "lfw_images_encoded": int(done.sum()), "lfw_images": len(rel)}
    cands = ("concat", "sface+flip", "dlib+flip")
    for view, key in (("devtest", "devtest"), ("10fold", "view2_unrestricted")):
        a, b, same, fold = _pairs(_views_dir() / f"{view}.csv")
        missing = len({q for q in a + b if q not in index or not done[index[q]]})
        if missing:
            report[key] = f"not measured: {missing} of its pair images not encoded yet"
            continue
        out, corr = {}, {}
        for name, p, tta in variants:
            d = _dist(_embed(feats, p, None, tta), index, a, b)
            if view == "devtest":
                corr[name] = kfold_correct(d, same, 10)
                out[name] = {**_summary(evaluate_pairs(d, same)), "kfold10": float(corr[name].mean())}
            else:
                m = unrestricted_kfold(np.stack([d] * 10), same, fold)
                corr[name] = (d <= np.asarray(m["fold_thresholds"])[fold]) == same
                out[name] = _summary(m)
        _head_tests(out, corr, cands)
        report[key] = out
    return report


def time_per_face(n: int = 30, warmup: int = 5) -> dict:
    """Median milliseconds of one face per call on this CPU (torch, the threads set by the
    caller): the fused network on one 184x184 canvas without and with flip TTA (head weights
    random: the time does not depend on them), and SFace's branch alone on its 112x112 chip."""
    import torch
    import torch.nn.functional as F

    from faceapp.embed.fused import CANVAS_SIZE, FusedNet

    net = FusedNet().eval()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        net.head.weight.copy_(torch.randn(net.head.weight.shape, generator=g))
    x = torch.rand(1, 3, CANVAS_SIZE, CANVAS_SIZE, generator=g) * 255
    xs = ((net.branch_chips(x)[1] - net.mean_sface) / net.scale_sface).contiguous()

    def fused_flip():
        e = F.normalize(net.forward_head(forward_views(net, x, True)[0]), dim=1)
        return F.normalize(e.sum(0, keepdim=True), dim=1)

    def sface_flip():
        e = net.sface(torch.cat([xs, xs.flip(3)]))
        return F.normalize(e[:1] + e[1:], dim=1)

    runs = {"fused": lambda: net(x), "fused+flip": fused_flip, "sface": lambda: net.sface(xs), "sface+flip": sface_flip}
    wall: dict = {k: [] for k in runs}
    cpu: dict = {k: [] for k in runs}
    with torch.inference_mode():
        for r in range(warmup + n):  # the models in turn, call by call: each sees the same load
            for name, fn in runs.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                if r >= warmup:
                    wall[name].append(1000 * (time.perf_counter() - t0))
                    cpu[name].append(1000 * (time.process_time() - c0))
    out = {k: {"median_ms": float(np.median(wall[k])), "min_ms": float(np.min(wall[k])), "max_ms": float(np.max(wall[k])),
               "cpu_median_ms": float(np.median(cpu[k]))} for k in runs}
    out["protocol"] = (f"one face per call, median of {n} after {warmup} warm-up calls, the models called in turn, torch "
                       f"{torch.__version__}, {torch.get_num_threads()} thread(s), CPU: {_cpu_name()}; the network only "
                       "(no detection/alignment); cpu_median_ms: the process's CPU time per call (what a shared, "
                       "loaded machine's wall time hides)")
    out["load_average_at_end"] = os.getloadavg()
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _dist(emb: np.ndarray, index: dict, a: list[str], b: list[str]) -> np.ndarray:
    ia = np.array([index[p] for p in a])
    ib = np.array([index[p] for p in b])
    return ((emb[ia] - emb[ib]) ** 2).sum(1)


def _summary(m: dict) -> dict:
    keep = ("accuracy", "accuracy_std", "tar_at_far_1e-3", "tar_at_far_1e-2", "auc", "eer", "fold_auc_mean")
    return {k: m[k] for k in keep if k in m}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, help="the cache folder (required but with --time-only)")
    ap.add_argument("--reuse-detections", type=Path, action="append", default=[])
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--eval-cache", type=Path, help="faceapp eval's cache folder: reuse its dlib-resnet-v1 and sface-v1 encodings")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--write", action="store_true", help="ship the devtest head as resources/models/fused_v1.*")
    ap.add_argument("--skip-view2", action="store_true")
    ap.add_argument("--variant", type=Path, action="append", default=[], metavar="CSV",
                    help="also score every model on this framing variant's pairs (make_lfw_variants.py), unrestricted")
    ap.add_argument("--flip", action="store_true",
                    help="also encode each backbone's mirrored chip (a second feature view; use another --work): "
                         "measures flip TTA and heads trained with the mirrors as extra samples")
    ap.add_argument("--border", choices=("replicate", "black"), default="replicate",
                    help="how canvas pixels outside the photo are filled (the written spec's border; use another --work)")
    ap.add_argument("--model-id", help="the written model's id (default fused-v1, with --flip fused-flip-v1); "
                                       "its files are the id with '-' as '_' in resources/models")
    ap.add_argument("--time-faces", type=int, default=30, metavar="N",
                    help="time per face (median of N single-face calls; 0: not measured)")
    ap.add_argument("--time-only", action="store_true", help="only measure the time per face (into --json)")
    ap.add_argument("--partial", action="store_true",
                    help="no training: the backbones and their concatenation (with --flip also with flip TTA) on the "
                         "views whose images --work's features (or a running run's checkpoint) hold (into --json)")
    args = ap.parse_args(argv)
    if args.work is None and not args.time_only:
        ap.error("--work is required")
    import torch

    from faceapp.match.calibration import evaluate_pairs, kfold_correct
    from faceapp.evaluation.protocols import read_lfw_people
    from faceapp.training.data import view2_training_people
    from faceapp.training.view2 import unrestricted_kfold

    torch.set_num_threads(1)
    if args.time_only:
        t = time_per_face(args.time_faces or 30)
        print(json.dumps(t, indent=1))
        if args.json:
            args.json.write_text(json.dumps({"time_per_face": t}, indent=1, default=float))
        return 0
    if args.partial:
        rep = partial_report(args.work, args.flip)
        if args.time_faces:
            rep["time_per_face"] = time_per_face(args.time_faces)
        print(json.dumps(rep, indent=1, default=float))
        if args.json:
            args.json.write_text(json.dumps(rep, indent=1, default=float))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    feat_views = ("chip", "flip") if args.flip else VIEWS
    lfw = features("lfw", args.work, args.reuse_detections, args.eval_cache, feat_views, args.border)
    celeba = features("celeba", args.work, args.reuse_detections, args.eval_cache, feat_views, args.border)
    index = {p: i for i, p in enumerate(lfw["paths"].tolist())}
    lfw_dir = Path(os.environ["FACEAPP_DATASETS"]) / "lfw"
    report: dict = {"features": {"lfw_images": int(len(lfw["paths"])), "lfw_no_face": int(lfw["no_face"].sum()),
                                 "celeba_images": int(len(celeba["paths"])), "celeba_no_face": int(celeba["no_face"].sum())}}

    variants = _variants(args.flip)
    heads = {h: HEADS[h] for h in dict.fromkeys(v[1] for v in variants) if h in HEADS}

    # DevTest heads: DevTrain people + celeba
    dev_people = set(read_lfw_people(lfw_dir, "devtrain"))
    tr_f, tr_l, va_f, va_l = _training_set(lfw, celeba, dev_people)
    _log(f"devtest head: {len(tr_l)} train images / {len(np.unique(tr_l))} ids, {len(va_l)} val images")
    w_dev = {}
    for h, (nv, tta) in heads.items():
        w_dev[h], report[f"devtest_{h}"] = train_head(tr_f, tr_l, va_f, va_l, epochs=args.epochs, views=nv, flip_tta=tta)
    report["validation"] = {"devtest_head": validation_metrics(va_f, va_l, variants, w_dev)}
    dev_val = (va_f, va_l)
    views = _views_dir()
    a, b, same, _ = _pairs(views / "devtest.csv")
    dev, dev_correct = {}, {}
    for name, part, tta in variants:
        d = _dist(_embed(lfw["feats"], part, w_dev.get(part), tta), index, a, b)
        dev_correct[name] = kfold_correct(d, same, 10)
        dev[name] = {**_summary(evaluate_pairs(d, same)), "kfold10": float(dev_correct[name].mean())}
    _head_tests(dev, dev_correct)
    report["devtest"] = dev
    _log("devtest: " + json.dumps({k: (v["accuracy"], v["tar_at_far_1e-3"]) for k, v in dev.items()}))

    if not args.skip_view2:
        folds = read_lfw_people(lfw_dir, "10fold")
        a, b, same, fold = _pairs(views / "10fold.csv")
        dists = {v[0]: [] for v in variants}
        fold_info = {h: [] for h in heads}
        fold_val: list[dict] = []
        fold_w: list[dict] = []
        for k in range(10):
            keep = view2_training_people(folds, k)
            tr_f, tr_l, va_f, va_l = _training_set(lfw, celeba, keep)
            w_k = {}
            for h, (nv, tta) in heads.items():
                w_k[h], info = train_head(tr_f, tr_l, va_f, va_l, epochs=args.epochs, views=nv, flip_tta=tta)
                fold_info[h].append(info)
                _log(f"fold {k + 1} {h}: trained ({info['best_epoch']} epochs best, {info['seconds']:.0f}s)")
            fold_val.append(validation_metrics(va_f, va_l, variants, w_k))
            fold_w.append(w_k)
            for name, part, tta in variants:
                dists[name].append(_dist(_embed(lfw["feats"], part, w_k.get(part), tta), index, a, b))
        v2 = {p: unrestricted_kfold(np.stack(d), same, fold) for p, d in dists.items()}
        out = {p: _summary(m) for p, m in v2.items()}

        def correct(m, d):  # per pair, fold i's pairs judged by fold i's model at its threshold
            pooled = np.stack(d)[fold, np.arange(len(fold))]
            thr = np.asarray(m["fold_thresholds"])[fold]
            return (pooled <= thr) == same

        _head_tests(out, {p: correct(v2[p], dists[p]) for p in v2})
        report["view2_unrestricted"] = out
        for h, info in fold_info.items():
            report["view2_unrestricted"]["fold_heads" if h == "head" else f"fold_heads_{h}"] = info
        _log("view2: " + json.dumps({k: (v["accuracy"], v["tar_at_far_1e-3"]) for k, v in out.items() if not k.startswith("fold_heads")}))
        report["validation"]["view2_fold_heads"] = fold_val
        report["candidate"] = choose_candidate(fold_val)
        _log(f"candidate (validation only): {report['candidate']['candidate']} "
             f"{json.dumps(report['candidate']['mean_val_tar_at_far_1e-3'])}")
        var_res = {}
        for csv_path in args.variant:
            vf = variant_features(csv_path.resolve(), args.work, feat_views, args.border)
            var_res[csv_path.stem], _ = score_variant(csv_path.resolve(), vf, variants, fold_w)
            _log(f"{csv_path.stem}: " + json.dumps({k: (v["accuracy"], v["tar_at_far_1e-3"]) for k, v in var_res[csv_path.stem].items() if isinstance(v, dict)}))
        if var_res:
            report["variants"] = var_res
        report["shipping_rule"] = _shipping(out, dev, report["candidate"]["candidate"], var_res)

    if args.time_faces:
        report["time_per_face"] = time_per_face(args.time_faces)
        _log("time per face: " + json.dumps({k: v for k, v in report["time_per_face"].items() if isinstance(v, dict)}))

    if args.write and "candidate" not in report:
        ap.error("--write needs the View 2 fold heads to choose the candidate: run it without --skip-view2")
    if "candidate" in report:  # the candidate's devtest head: tau at FAR 1e-3 on its validation identities
        name = report["candidate"]["candidate"]
        part, tta = name.removesuffix("+flip"), name.endswith("+flip")
        report["calibration"], curve = calibrate(dev_val[0], dev_val[1], part, w_dev[part], tta)
        report["calibration"]["model"] = name
        _log(f"{name}: tau {report['calibration']['tau']:.4f}, TAR {report['calibration']['tar_at_tau']:.4f}")
        if args.write:
            write_model(w_dev[part], report, curve, flip_tta=tta, head=part, border=args.border, model_id=args.model_id)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


def calibrate(val_f: np.ndarray, val_lab: np.ndarray, part: str, w: np.ndarray, tta: bool) -> tuple[dict, dict]:
    """tau at FAR 1e-3 and the FAR / TAR curve of a head on all pairs of the devtest head's
    held-out validation identities (never trained on)."""
    from faceapp.match.calibration import tar_at_far, threshold_at_far

    d_all, s_all = _all_pairs(_embed(val_f, part, w, tta), val_lab)
    tau = float(threshold_at_far(d_all, s_all, 1e-3))
    tar, _ = tar_at_far(d_all, s_all, 1e-3)
    grid = np.round(np.arange(0.01, 2.0001, 0.01), 2)
    imp, gen = np.sort(d_all[~s_all]), np.sort(d_all[s_all])
    curve = {"threshold": grid.tolist(),
             "far": [float(np.searchsorted(imp, t, side="right") / len(imp)) for t in grid],
             "tar": [float(np.searchsorted(gen, t, side="right") / len(gen)) for t in grid],
             "genuine_pairs": int(s_all.sum()), "impostor_pairs": int((~s_all).sum())}
    cal = {"tau": tau, "tar_at_tau": float(tar), "genuine_pairs": int(s_all.sum()), "impostor_pairs": int((~s_all).sum()),
           "protocol": "all pairs of the devtest head's held-out validation identities (15% of celeba + DevTrain people, seed 13; never trained on)"}
    return cal, curve


def _shipping(view2: dict, dev: dict, best: str, variants: dict | None = None) -> dict:
    """The shipping rule (:func:`faceapp.evaluation.shipping.decide`) for the candidate chosen
    on validation data (:func:`choose_candidate`), against the current default (dlib-resnet-v1)
    and each backbone alone (no flip): View 2 and the ``tight`` variant (a CSV whose name starts
    with ``tight``) are gates, DevTest and every other variant guards."""
    from faceapp.evaluation.shipping import decide


    def cmp(res, acc_key):
        return {o: {"accuracy_a": res[o][acc_key], "accuracy_b": res[best][acc_key],
                    "only_a_correct": res[best][f"mcnemar_vs_{o}"]["only_other"],
                    "only_b_correct": res[best][f"mcnemar_vs_{o}"]["only_head"]} for o in ("dlib", "sface")}

    comparisons = {"lfw-view2": cmp(view2, "accuracy"), "devtest": cmp(dev, "kfold10")}
    tight = None
    for stem, res in (variants or {}).items():
        bench = stem.split("-")[0]  # tight-folds1-5 -> tight
        comparisons[bench] = cmp(res, "accuracy")
        tight = stem if bench == "tight" else tight
    d = decide(comparisons, gates=("lfw-view2", "tight"))
    return {"candidate": best, **d.to_dict(),
            "note": "gates: LFW View 2 and " + (f"tight ({tight})" if tight else "tight (not run: no --variant tight CSV, so it cannot ship)")
                    + "; guards: DevTest and the other variants given"}


def write_model(weight: np.ndarray, report: dict, curve: dict, *, flip_tta: bool = False, head: str = "head",
                border: str = "replicate", model_id: str | None = None) -> None:
    """The head as a shipped model: ``fused_v1.{pt,json}`` (model ``fused-v1``), or with
    ``flip_tta`` ``fused_flip_v1.{pt,json}`` (``fused-flip-v1``: each backbone also encodes its
    mirrored chip, :meth:`faceapp.embed.fused.FusedNet.forward`)."""
    import torch

    from faceapp.embed.fused import CANVAS_SIZE, FusedNet, canvas_template
    from faceapp.embed.weights import load_spec

    model_id = model_id or ("fused-flip-v1" if flip_tta else "fused-v1")
    stem = model_id.replace("-", "_")
    net = FusedNet(load_backbones=False)
    pt = REPO / f"resources/models/{stem}.pt"
    torch.save({"head.weight": torch.as_tensor(weight)}, pt)
    sha = hashlib.sha256(pt.read_bytes()).hexdigest()
    cal = report["calibration"]
    command = ("FACEAPP_DATASETS=... python scripts/train_fused.py --work DIR" + (" --flip" if flip_tta else "")
               + (f" --border {border}" if border != "replicate" else "") + f" --model-id {model_id} --write")
    spec = {
        "model_id": model_id, "file": pt.name, "sha256": sha, "architecture": "fused_dlib_sface",
        "embedding_dim": 128, "input_size": CANVAS_SIZE,
        "normalization": {"mean": [0.0, 0.0, 0.0], "scale": 1.0, "channel_order": "RGB"},
        "template": canvas_template(load_spec("sface-v1").template).round(4).tolist(),
        "template_note": "SFace's ArcFace template at 1.5x plus (8, 1): a 184x184 canvas holding SFace's 112 crop and dlib's 150 chip (faceapp/embed/fused.py)",
        **({"border": border} if border != "replicate" else {}),
        "threshold": round(cal["tau"], 4),
        "threshold_note": "tau at FAR 0.001 on held-out validation identities (scripts/train_fused.py)",
        **({"flip_tta": True, "note": "each backbone also encodes its own chip mirrored: normalise(e(chips) + e(mirrored chips)), "
                                      "e = normalise(head(features)); the head was trained "
                                      + ("with the mirrors as extra views" if head == "head-flipaug" else "on the chips alone")}
           if flip_tta else {}),
        "head": {"variant": head, "candidate": report.get("candidate", {}).get("candidate"),
                 "training": report.get(f"devtest_{head}", {}).get("config")},
        "backbones": net.backbone_sha256,
        "card": f"{stem}.md",
        "summary": "faceapp's own: dlib's ResNet + SFace joined by a triplet-trained head"
                   + (", with flip TTA" if flip_tta else "") + " (see its card)",
        "license": "head: faceapp's; backbones: dlib-resnet-v1 (CC0) and sface-v1 (Apache-2.0, see sface_v1_LICENSE.md)",
        "calibration": {**cal, "command": command, "far_target": 0.001, "threshold": round(cal["tau"], 4),
                        "curve": {**curve, "protocol": cal["protocol"], "command": command}},
    }
    (REPO / f"resources/models/{stem}.json").write_text(json.dumps(spec, indent=2) + "\n")
    _log(f"wrote {pt} ({sha[:12]}) and {stem}.json")


if __name__ == "__main__":
    raise SystemExit(main())

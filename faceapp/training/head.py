"""Head-only transfer learning: a frozen backbone, features computed once, only the final
linear layer trained (CPU-friendly).

The embedding networks of this package end in ``forward_head``, a linear layer on the pooled
features of ``forward_features`` (dlib's ResNet: 256 -> 128, no bias), then unit length. With
the backbone frozen the features of every training chip never change, so they are computed
once (:func:`backbone_features`), for the chip itself, its mirror image and optionally a few
randomly augmented copies ("views"), and training the head is then a few matrix products per
step: thousands of steps a minute on a laptop CPU instead of a dozen images a second.

:class:`HeadTrainer` trains the head with the package's P x K sampler, online miners and
triplet losses. Each sample of a batch takes one of its views at random (the views are the
augmentation). The head starts from the network's own weights; ``pull`` adds
``pull * ||W - W0||^2`` to the loss (an L2 pull towards the initial weights, the MAP form of
"do not move far from a good start"), and ``weight_decay`` is AdamW's decay towards zero.
After every epoch the head is validated on held-out identities (epoch 0 = the initial head, so
a run that never beats its start says so), with or without flip test-time augmentation
(``flip_tta``: the embedding of a chip is ``normalise(e(chip) + e(mirrored chip))``, both
unit embeddings), and the best head by ``monitor`` is kept; early stopping after ``patience``
epochs without a better one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from faceapp.training.augment import AugmentConfig, BatchAugmenter, rgb_pca
from faceapp.training.evaluate import verification_metrics
from faceapp.training.losses import triplet_loss, triplet_stats
from faceapp.training.mining import MINERS, mine
from faceapp.training.sampler import PKSampler

log = logging.getLogger(__name__)

__all__ = ["HeadConfig", "HeadTrainer", "backbone_features", "head_embeddings", "flip_tta_embed", "HEAD_MONITORS"]

HEAD_MONITORS = ("accuracy", "tar_at_far_1e-2", "tar_at_far_1e-3", "acc+tar2")


@torch.no_grad()
def backbone_features(
    model: torch.nn.Module,
    chips: np.ndarray,
    *,
    mean: tuple[float, float, float],
    scale: float,
    augmented: int = 0,
    augment: AugmentConfig | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``forward_features`` of (N, S, S, 3) uint8 chips for ``2 + augmented`` views ->
    (N, V, D) float32: view 0 = the chip, view 1 = its mirror image, views 2.. = random
    augmentations (``augment``, seeded; default :class:`AugmentConfig`)."""
    device = torch.device(device)
    was = model.training
    model.eval()
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    aug = None
    if augmented > 0:
        aug = BatchAugmenter(augment or AugmentConfig(), pca=rgb_pca(chips, seed=seed), seed=seed, device=device)
    n = len(chips)
    views = 2 + int(augmented)
    out: np.ndarray | None = None
    for start in range(0, n, batch_size):
        x = torch.as_tensor(np.asarray(chips[start : start + batch_size])).to(device).permute(0, 3, 1, 2).float()
        batch = [x, x.flip(3)] + [aug(x) for _ in range(int(augmented))]
        feats = model.forward_features((torch.cat(batch) - m) / scale).float().cpu().numpy()
        if out is None:
            out = np.empty((n, views, feats.shape[1]), np.float32)
        out[start : start + len(x)] = feats.reshape(views, len(x), -1).transpose(1, 0, 2)
        if progress is not None:
            progress(min(n, start + batch_size), n)
    model.train(was)
    return out if out is not None else np.zeros((0, views, 0), np.float32)


def flip_tta_embed(emb: torch.Tensor | np.ndarray, emb_flipped: torch.Tensor | np.ndarray):
    """Flip test-time augmentation: ``normalise(e + e_mirror)`` of two (N, D) unit embeddings."""
    if isinstance(emb, np.ndarray):
        s = np.asarray(emb, np.float32) + np.asarray(emb_flipped, np.float32)
        return (s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return F.normalize(emb + emb_flipped, dim=1)


@torch.no_grad()
def head_embeddings(weight: torch.Tensor | np.ndarray, features: np.ndarray, *, flip_tta: bool) -> np.ndarray:
    """Unit embeddings of (N, V, D) features (views 0 and 1 = chip and mirror) under a linear
    head ``weight`` (out, D): view 0 alone, or with ``flip_tta`` both views."""
    w = torch.as_tensor(weight, dtype=torch.float32)
    f = torch.as_tensor(features, dtype=torch.float32)
    e0 = F.normalize(f[:, 0] @ w.T, dim=1)
    if not flip_tta:
        return e0.numpy()
    e1 = F.normalize(f[:, 1] @ w.T, dim=1)
    return flip_tta_embed(e0, e1).numpy()


@dataclass(frozen=True)
class HeadConfig:
    epochs: int = 200
    p: int = 64
    k: int = 4
    steps_per_epoch: int | None = None  # default: one pass over the identities
    lr: float = 1e-4
    weight_decay: float = 0.0  # AdamW, towards 0
    pull: float = 0.0  # L2 pull towards the initial weights
    warmup_epochs: float = 1.0
    miner: str = "batch-hard"
    loss: str = "triplet"
    margin: float = 0.05
    views: int | None = None  # training views used (default: all); 1 = the chips alone
    monitor: str = "accuracy"
    flip_tta: bool = True  # validate (and ship) with flip test-time augmentation
    patience: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.miner not in MINERS:
            raise ValueError(f"unknown miner {self.miner!r} (allowed: {', '.join(MINERS)})")
        if self.loss not in ("triplet", "soft-triplet"):
            raise ValueError(f"unknown head loss {self.loss!r} (allowed: triplet, soft-triplet)")
        if self.monitor not in HEAD_MONITORS:
            raise ValueError(f"unknown monitor {self.monitor!r} (allowed: {', '.join(HEAD_MONITORS)})")

    def to_dict(self) -> dict:
        return asdict(self)


def _score(m: dict, monitor: str) -> float:
    if monitor == "acc+tar2":
        return 0.5 * (m["accuracy"] + m["tar_at_far_1e-2"])
    return m[monitor]


class HeadTrainer:
    """Trains a linear head on precomputed features (see the module docstring)."""

    def __init__(self, cfg: HeadConfig, init_weight: torch.Tensor | np.ndarray) -> None:
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.w0 = torch.as_tensor(init_weight, dtype=torch.float32).clone()
        self.weight = torch.nn.Parameter(self.w0.clone())
        self.opt = torch.optim.AdamW([self.weight], lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.history: dict = {"config": cfg.to_dict(), "epochs": []}
        self.best_weight = self.w0.clone()
        self.best_score = -math.inf

    def loss(self, feats: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        emb = F.normalize(feats @ self.weight.T, dim=1)
        triplets = mine(cfg.miner, emb.detach(), labels, margin=cfg.margin)
        loss = triplet_loss(emb, triplets, margin=cfg.margin, soft=cfg.loss == "soft-triplet")
        st = triplet_stats(emb.detach(), labels, triplets, margin=cfg.margin)
        st["loss"] = float(loss.detach())
        if cfg.pull > 0:
            loss = loss + cfg.pull * ((self.weight - self.w0) ** 2).sum()
        return loss, st

    def validate(self, feats: np.ndarray, labels: np.ndarray) -> dict:
        emb = head_embeddings(self.weight.detach(), feats, flip_tta=self.cfg.flip_tta)
        return verification_metrics(emb, labels, seed=self.cfg.seed)

    def fit(self, train_feats: np.ndarray, train_labels: np.ndarray,
            val_feats: np.ndarray | None = None, val_labels: np.ndarray | None = None) -> dict:
        cfg = self.cfg
        feats = torch.as_tensor(train_feats, dtype=torch.float32)
        labels = torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
        n_views = feats.shape[1] if cfg.views is None else min(int(cfg.views), feats.shape[1])
        sampler = PKSampler(np.asarray(train_labels), cfg.p, cfg.k, seed=cfg.seed)
        steps = cfg.steps_per_epoch or len(sampler)
        warm = max(1, int(cfg.warmup_epochs * steps))
        total = max(warm + 1, cfg.epochs * steps)
        gen = torch.Generator().manual_seed(cfg.seed)
        self.history.update(train_images=len(labels), views=n_views, steps_per_epoch=steps, batch_size=sampler.batch_size)
        t0 = time.time()
        bad = 0
        if val_feats is not None:
            m = self.validate(val_feats, val_labels)
            self.best_score = _score(m, cfg.monitor)
            self.history["epochs"].append({"epoch": 0, **{f"val_{k}": v for k, v in m.items()}})
            self.history["best_epoch"] = 0
        step = 0
        for epoch in range(1, cfg.epochs + 1):
            te = time.time()
            sums = {"loss": 0.0, "active": 0.0, "d_pos": 0.0, "d_neg": 0.0}
            n_img = 0
            for idx in sampler.epoch_batches(epoch, steps):
                idx_t = torch.as_tensor(idx)
                view = torch.randint(0, n_views, (len(idx),), generator=gen)
                x = feats[idx_t, view]
                lr_f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / (total - warm))))
                for g in self.opt.param_groups:
                    g["lr"] = cfg.lr * lr_f
                loss, st = self.loss(x, labels[idx_t])
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                for k in sums:
                    sums[k] += st[k]
                step += 1
                n_img += len(idx)
            rec = {"epoch": epoch, **{k: v / steps for k, v in sums.items()}, "lr": self.opt.param_groups[0]["lr"],
                   "images_per_s": n_img / max(time.time() - te, 1e-9),
                   "weight_change": float((self.weight.detach() - self.w0).norm() / self.w0.norm())}
            if val_feats is not None:
                m = self.validate(val_feats, val_labels)
                rec.update({f"val_{k}": v for k, v in m.items()})
                score = _score(m, cfg.monitor)
                if score > self.best_score:
                    self.best_score, bad = score, 0
                    self.best_weight = self.weight.detach().clone()
                    self.history["best_epoch"] = epoch
                else:
                    bad += 1
            else:
                self.best_weight = self.weight.detach().clone()
                self.history["best_epoch"] = epoch
            self.history["epochs"].append(rec)
            log.info("epoch %d: %s", epoch, json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in rec.items()}))
            if cfg.patience and bad >= cfg.patience:
                self.history["stopped_early"] = epoch
                break
        self.history["best_score"] = self.best_score
        self.history["seconds"] = time.time() - t0
        return self.history

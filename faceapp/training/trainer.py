"""The training loop: P x K batches, on-device augmentation, online mining, triplet (or
Siamese pair) loss, LR warm-up + cosine schedule, validation on held-out identities each epoch,
early stopping, checkpoints and resume. CPU and CUDA (bf16 autocast on CUDA).

Typical use (what ``faceapp train fit`` does)::

    cfg = TrainConfig(arch="dlib_resnet", init="resources/models/dlib_resnet_v1.pt", freeze_stages=2,
                      lr=5e-5, epochs=40)
    history = Trainer(cfg, out_dir).fit(train_set, val_set)

Files written to ``out_dir``: ``last.pt`` (everything needed to resume, after every epoch),
``best_model.pt`` (the model state dict at the best validation score; float32, what a weights
spec ships), ``history.json`` (config, per-step and per-epoch logs) and ``curves.png``.

With ``time_budget_s`` the number of epochs is fixed after the second one to what fits the
budget (at most ``epochs``) and recorded in the history (``planned_epochs``), so the LR
schedule still runs to its end; a rerun with ``epochs=planned_epochs`` and no budget repeats it.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceapp.training.augment import AugmentConfig, BatchAugmenter, rgb_pca
from faceapp.training.data import ChipSet
from faceapp.training.evaluate import embed_chips, plot_history, verification_metrics
from faceapp.training.losses import LOSSES, PairClassifierHead, pair_bce_loss, triplet_loss, triplet_stats
from faceapp.training.mining import MINERS, count_valid_triplets, mine
from faceapp.training.networks import freeze_dlib_stages, freeze_sface_stages, param_groups
from faceapp.training.sampler import PKSampler

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "Trainer", "build_model", "resolve_device", "seed_everything"]

ARCHITECTURES = ("dlib_resnet", "compact_cnn", "sface")
BN_MODES = ("train", "frozen")
MONITORS = ("accuracy", "tar_at_far_1e-2", "tar_at_far_1e-3")
DLIB_MEAN = (122.782, 117.001, 104.298)
DLIB_SCALE = 256.0
SFACE_MEAN = (127.5, 127.5, 127.5)
SFACE_SCALE = 128.0
#: each architecture's input normalisation ((pixel - mean) / scale, RGB), the one its spec ships
NORMALISATION = {"dlib_resnet": (DLIB_MEAN, DLIB_SCALE), "compact_cnn": (DLIB_MEAN, DLIB_SCALE),
                 "sface": (SFACE_MEAN, SFACE_SCALE)}


@dataclass
class TrainConfig:
    arch: str = "compact_cnn"
    init: str | None = None  # a state dict to start from (transfer learning), e.g. dlib_resnet_v1.pt
    freeze_stages: int = -1  # dlib_resnet / sface: freeze the stem and the first N stages (-1: none)
    width: int = 32  # compact_cnn width
    epochs: int = 30
    p: int = 32  # identities per batch
    k: int = 4  # photos per identity
    optimizer: str = "adamw"
    lr: float = 1e-3  # head LR (and backbone LR x backbone_lr_mult)
    backbone_lr_mult: float = 1.0
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    miner: str = "batch-hard"
    loss: str = "triplet"  # triplet | soft-triplet | siamese
    margin: float = 0.2
    monitor: str = "accuracy"  # validation metric for early stopping and best_model.pt
    patience: int = 6  # epochs without improvement before stopping (0: never stop early)
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    time_budget_s: float | None = None
    steps_per_epoch: int | None = None  # default: one pass over the identities
    mean: tuple[float, float, float] | None = None  # None: the architecture's own (NORMALISATION)
    scale: float | None = None
    # BatchNorm layers while training: "train" (batch statistics, running averages recomputed
    # before each validation) or "frozen" (eval mode throughout: the pretrained statistics kept,
    # as fine-tuning a pretrained network on a small set should). None: "frozen" for a network
    # started from pretrained weights (init), "train" for one trained from scratch.
    bn: str | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    eval_before: bool = True  # validate the initial weights as epoch 0

    def __post_init__(self) -> None:
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.augment.items()})
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; allowed: {', '.join(ARCHITECTURES)}")
        own_mean, own_scale = NORMALISATION[self.arch]
        self.mean = tuple(float(v) for v in (own_mean if self.mean is None else self.mean))
        self.scale = float(own_scale if self.scale is None else self.scale)
        if self.bn is None:
            self.bn = "frozen" if self.init else "train"
        if self.bn not in BN_MODES:
            raise ValueError(f"unknown batch-norm mode {self.bn!r}; allowed: {', '.join(BN_MODES)}")
        if self.miner not in MINERS:
            raise ValueError(f"unknown mining strategy {self.miner!r}; allowed: {', '.join(MINERS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; allowed: {', '.join(LOSSES)}")
        if self.monitor not in MONITORS:
            raise ValueError(f"unknown monitor {self.monitor!r}; allowed: {', '.join(MONITORS)}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; allowed: adamw, sgd")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = self.augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def build_model(cfg: TrainConfig) -> torch.nn.Module:
    """The network of ``cfg`` with ``cfg.init`` loaded and ``cfg.freeze_stages`` frozen."""
    if cfg.arch == "dlib_resnet":
        from faceapp.embed.dlib_resnet import DlibResNet

        model = DlibResNet()
    elif cfg.arch == "sface":
        from faceapp.embed.sface import SFaceNet

        model = SFaceNet()
    else:
        from faceapp.training.networks import CompactFaceNet

        model = CompactFaceNet(width=cfg.width)
    if cfg.init:
        state = torch.load(cfg.init, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in state.items()})
    if cfg.arch == "dlib_resnet":
        freeze_dlib_stages(model, cfg.freeze_stages)
    elif cfg.arch == "sface":
        freeze_sface_stages(model, cfg.freeze_stages)
    return model


def _batch_norms(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def _py(v):
    return float(v) if isinstance(v, (np.floating, float)) else v


class Trainer:
    """Trains one model (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, out_dir: Path | str, *, progress: bool = True,
                 is_cancelled: Callable[[], bool] = lambda: False) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.device = resolve_device(cfg.device)
        self.progress = progress
        self.is_cancelled = is_cancelled
        seed_everything(cfg.seed)
        self.model = build_model(cfg).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True
        self.head = PairClassifierHead(128).to(self.device) if cfg.loss == "siamese" else None
        groups = param_groups(self.model, cfg.lr, backbone_lr_mult=cfg.backbone_lr_mult, weight_decay=cfg.weight_decay)
        if self.head is not None:
            groups.append({"params": list(self.head.parameters()), "lr": cfg.lr, "weight_decay": 0.0, "name": "pair_head"})
        if cfg.optimizer == "adamw":
            self.opt = torch.optim.AdamW(groups, lr=cfg.lr)
        else:
            self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
        self.base_lrs = [g["lr"] for g in self.opt.param_groups]
        self.history: dict = {"config": cfg.to_dict(), "epochs": [], "steps": [], "device": str(self.device)}
        self.best_score = -math.inf
        self.bad_epochs = 0
        self.start_epoch = 1
        self.step = 0
        self.planned_epochs = cfg.epochs
        self.augmenter: BatchAugmenter | None = None

    # -- schedule --------------------------------------------------------------------------------
    def _lr_factor(self, step: int, steps_per_epoch: int) -> float:
        warm = max(1, int(self.cfg.warmup_epochs * steps_per_epoch))
        total = max(warm + 1, self.planned_epochs * steps_per_epoch)
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / (total - warm))
        return 0.5 * (1.0 + math.cos(math.pi * t))

    def _set_lr(self, factor: float) -> None:
        for g, base in zip(self.opt.param_groups, self.base_lrs, strict=True):
            g["lr"] = base * factor

    # -- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self, path: Path, epoch: int) -> None:
        state = {
            "model": self.model.state_dict(),
            "head": self.head.state_dict() if self.head is not None else {},
            "optimizer": self.opt.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "planned_epochs": self.planned_epochs,
            "best_score": self.best_score,
            "bad_epochs": self.bad_epochs,
            "history": json.dumps(self.history),
            "augment_rng": self.augmenter.generator.get_state() if self.augmenter else torch.zeros(0, dtype=torch.uint8),
            "torch_rng": torch.get_rng_state(),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def resume(self, path: Path | str) -> None:
        """Continue from a ``last.pt`` written by :meth:`save_checkpoint` (same config)."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        if self.head is not None and state["head"]:
            self.head.load_state_dict(state["head"])
        self.opt.load_state_dict(state["optimizer"])
        self.start_epoch = int(state["epoch"]) + 1
        self.step = int(state["step"])
        self.planned_epochs = int(state["planned_epochs"])
        self.best_score = float(state["best_score"])
        self.bad_epochs = int(state["bad_epochs"])
        self.history = json.loads(state["history"])
        self._resume_rng = state["augment_rng"]
        torch.set_rng_state(state["torch_rng"].cpu())

    # -- batch-norm statistics ---------------------------------------------------------------------
    @torch.no_grad()
    def recalibrate_bn(self, chips: torch.Tensor, *, max_images: int = 2048, batch_size: int = 256) -> bool:
        """Recompute every BatchNorm's running mean/variance for the current weights, as an exact
        average over (at most ``max_images``, seeded) un-augmented training chips. The running
        averages kept during training lag behind fast-changing weights, and evaluation-mode
        embeddings then differ from training-mode ones; this is done before each validation and
        so before ``best_model.pt`` is saved. Returns False when the model has no BatchNorm or
        its statistics are frozen (``bn="frozen"``: they are the pretrained ones, never changed)."""
        bns = _batch_norms(self.model)
        if not bns or self.cfg.bn == "frozen":
            return False
        g = torch.Generator().manual_seed(self.cfg.seed)
        idx = torch.randperm(len(chips), generator=g)[:max_images].to(chips.device)
        moms = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        was = self.model.training
        self.model.train()
        mean = torch.tensor(self.cfg.mean, device=chips.device).view(1, 3, 1, 1)
        amp = self.cfg.amp and self.device.type == "cuda"
        for start in range(0, len(idx), batch_size):
            x = (chips[idx[start : start + batch_size]].permute(0, 3, 1, 2).float() - mean) / self.cfg.scale
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=amp):
                self.model.forward_features(x)
        for m, mom in zip(bns, moms, strict=True):
            m.momentum = mom
        self.model.train(was)
        return True

    def _train_mode(self) -> None:
        """The model in training mode, its batch norms in eval mode when they are frozen."""
        self.model.train()
        if self.cfg.bn == "frozen":
            for m in _batch_norms(self.model):
                m.eval()

    # -- validation --------------------------------------------------------------------------------
    def validate(self, val: ChipSet) -> dict[str, float]:
        emb = embed_chips(self.model, val.chips, mean=self.cfg.mean, scale=self.cfg.scale, device=self.device,
                          amp=self.cfg.amp)
        m = verification_metrics(emb, val.labels, seed=self.cfg.seed)
        if self.head is not None:  # accuracy of the Siamese head at p >= 0.5 on balanced pairs
            m["pair_head_accuracy"] = self._head_accuracy(emb, val.labels)
        return m

    @torch.no_grad()
    def _head_accuracy(self, emb: np.ndarray, labels: np.ndarray) -> float:
        rng = np.random.default_rng(self.cfg.seed)
        iu, ju = np.triu_indices(len(labels), 1)
        same = labels[iu] == labels[ju]
        n = int(min(same.sum(), (~same).sum(), 20000))
        pos = rng.choice(np.flatnonzero(same), n, replace=False)
        neg = rng.choice(np.flatnonzero(~same), n, replace=False)
        idx = np.r_[pos, neg]
        e = torch.as_tensor(emb, device=self.device)
        p = self.head.predict_proba(e[iu[idx]], e[ju[idx]]).cpu().numpy()
        return float(((p >= 0.5) == same[idx]).mean())

    # -- the loop ----------------------------------------------------------------------------------
    def fit(self, train: ChipSet, val: ChipSet | None = None) -> dict:
        cfg, dev = self.cfg, self.device
        self.out_dir.mkdir(parents=True, exist_ok=True)
        sampler = PKSampler(train.labels, cfg.p, cfg.k, seed=cfg.seed)
        steps_per_epoch = cfg.steps_per_epoch or len(sampler)
        chips = torch.as_tensor(train.chips).to(dev)  # uint8 (N, S, S, 3), gathered per batch
        labels = torch.as_tensor(train.labels).to(dev)
        self.augmenter = BatchAugmenter(cfg.augment, pca=rgb_pca(train.chips, seed=cfg.seed), seed=cfg.seed, device=dev)
        if getattr(self, "_resume_rng", None) is not None and self._resume_rng.numel():
            self.augmenter.generator.set_state(self._resume_rng.cpu() if dev.type == "cpu" else self._resume_rng)
        mean = torch.tensor(cfg.mean, device=dev).view(1, 3, 1, 1)
        amp = cfg.amp and dev.type == "cuda"
        self.history.update(train_images=len(train), train_identities=train.num_identities,
                            val_images=len(val) if val is not None else 0,
                            val_identities=val.num_identities if val is not None else 0,
                            steps_per_epoch=steps_per_epoch, batch_size=sampler.batch_size)
        t_start = time.time()
        if val is not None and cfg.eval_before and self.start_epoch == 1:
            m = self.validate(val)
            self.history["epochs"].append({"epoch": 0, "loss": float("nan"), "active": float("nan"),
                                           **{f"val_{k}": _py(v) for k, v in m.items()}})
            self.best_score = m[cfg.monitor]
            torch.save(self.model.state_dict(), self.out_dir / "best_model.pt")
            self.history["best_epoch"] = 0
            log.info("epoch 0 (initial weights): val %s", json.dumps({k: round(v, 4) for k, v in m.items()}))
        epoch = self.start_epoch
        while epoch <= self.planned_epochs:
            if self.is_cancelled():
                break
            self._train_mode()  # validation (embed_chips) leaves every layer in training mode
            t_epoch = time.time()
            bar = None
            if self.progress:
                from tqdm import tqdm

                bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{self.planned_epochs}", unit="batch",
                           file=sys.stderr, mininterval=2.0, leave=False)
            sums = {"loss": 0.0, "active": 0.0, "d_pos": 0.0, "d_neg": 0.0, "triplets": 0.0}
            n_img = 0
            for idx in sampler.epoch_batches(epoch, steps_per_epoch):
                idx_t = torch.as_tensor(idx, device=dev)
                x = chips[idx_t].permute(0, 3, 1, 2).float()
                x = (self.augmenter(x) - mean) / cfg.scale
                if dev.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                y = labels[idx_t]
                self._set_lr(self._lr_factor(self.step, steps_per_epoch))
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    raw = self.model.forward_head(self.model.forward_features(x))
                emb = F.normalize(raw.float(), dim=1)
                if cfg.loss == "siamese":
                    loss = pair_bce_loss(self.head, emb, y)
                    triplets = mine("batch-hard", emb.detach(), y, margin=cfg.margin)
                else:
                    triplets = mine(cfg.miner, emb.detach(), y, margin=cfg.margin)
                    loss = triplet_loss(emb, triplets, margin=cfg.margin, soft=cfg.loss == "soft-triplet")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                st = triplet_stats(emb.detach(), y, triplets, margin=cfg.margin)
                if cfg.loss != "siamese" and cfg.miner == "batch-all":
                    # batch-all mines only the active triplets: report them as a fraction of all valid ones
                    st["active"] = st["triplets"] / max(1, count_valid_triplets(y))
                st["loss"] = float(loss.detach())
                for key in sums:
                    sums[key] += st[key]
                self.history["steps"].append({"step": self.step, "epoch": epoch, **{k: round(v, 5) for k, v in st.items()},
                                              "lr": self.opt.param_groups[-1]["lr"]})
                self.step += 1
                n_img += len(idx)
                if bar is not None:
                    bar.set_postfix(loss=f"{st['loss']:.4f}", active=f"{st['active']:.2f}",
                                    d_pos=f"{st['d_pos']:.3f}", d_neg=f"{st['d_neg']:.3f}", refresh=False)
                    bar.update(1)
            if bar is not None:
                bar.close()
            train_s = time.time() - t_epoch
            self.recalibrate_bn(chips)
            rec = {"epoch": epoch, **{k: v / steps_per_epoch for k, v in sums.items()},
                   "images_per_s": n_img / max(train_s, 1e-9), "train_seconds": train_s,
                   "lr": self.opt.param_groups[-1]["lr"]}
            if val is not None:
                m = self.validate(val)
                rec.update({f"val_{k}": _py(v) for k, v in m.items()})
                score = m[cfg.monitor]
                if score > self.best_score:
                    self.best_score, self.bad_epochs = score, 0
                    torch.save(self.model.state_dict(), self.out_dir / "best_model.pt")
                    if self.head is not None:
                        torch.save(self.head.state_dict(), self.out_dir / "best_pair_head.pt")
                    self.history["best_epoch"] = epoch
                else:
                    self.bad_epochs += 1
            else:
                torch.save(self.model.state_dict(), self.out_dir / "best_model.pt")
                self.history["best_epoch"] = epoch
            rec["seconds"] = time.time() - t_epoch
            self.history["epochs"].append(rec)
            log.info("epoch %d: %s", epoch, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()}))
            # the second epoch's time sets the plan: the first includes start-up (cuDNN autotuning)
            if cfg.time_budget_s and epoch == min(self.start_epoch + 1, self.planned_epochs):
                fit = int((cfg.time_budget_s - (time.time() - t_start)) // max(rec["seconds"], 1e-6)) + epoch
                self.planned_epochs = max(epoch, min(cfg.epochs, fit))
                self.history["planned_epochs"] = self.planned_epochs
            self.save_checkpoint(self.out_dir / "last.pt", epoch)
            if cfg.patience and self.bad_epochs >= cfg.patience:
                self.history["stopped_early"] = epoch
                log.info("early stop after epoch %d (no better %s for %d epochs)", epoch, cfg.monitor, cfg.patience)
                break
            epoch += 1
        self.history["best_score"] = self.best_score
        self.history["seconds"] = time.time() - t_start
        self.history.setdefault("planned_epochs", self.planned_epochs)
        (self.out_dir / "history.json").write_text(json.dumps(self.history, indent=1))
        try:
            plot_history(self.history, self.out_dir / "curves.png", title=f"{cfg.arch}, {cfg.loss}, {cfg.miner}")
        except ImportError:  # matplotlib missing on a bare machine
            pass
        return self.history

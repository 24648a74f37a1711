"""Training the landmark network on the 300-W subset (transfer learning from the face ResNet).

Recipe (the defaults of :class:`TrainConfig`):

1. **freeze** the backbone (the face ResNet's stem and stages 1-3) and train only the new head
   for ``freeze_epochs`` epochs, so the random decoder does not wreck the pretrained filters;
2. **fine-tune** everything for the remaining epochs, the backbone at ``backbone_lr_factor`` x the
   head's learning rate; AdamW, one-cycle cosine schedule per phase.

The loss is the NME itself (mean point error over the true outer-eye distance, in crop pixels)
plus a small term that keeps each heatmap's spread near one grid cell (as in DSNT, Nibali et al.
2018), so the soft-argmax reads a peak rather than a broad blob. Each sample is a random crop
around its MTCNN box (:mod:`faceapp.landmarks.augment`), drawn fresh every epoch.

``LandmarkTrainer.run(is_cancelled)`` yields one :class:`EpochReport` per epoch; the CLI prints
them and a GUI could wrap the generator in a worker.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceapp.landmarks.augment import AugmentConfig, crop_matrix, photometric, random_matrices, warp_batch, warp_points
from faceapp.landmarks.data import Split
from faceapp.landmarks.model import LandmarkNet, landmark_net
from faceapp.landmarks.points import LEFT_EYE_OUTER, RIGHT_EYE_OUTER

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    input_size: int = 160  # crop side (pixels)
    width: int = 64  # decoder channels
    epochs: int = 240  # in all, the frozen ones included
    freeze_epochs: int = 10  # head only
    batch_size: int = 32
    lr: float = 2e-3  # head learning rate (AdamW)
    backbone_lr_factor: float = 0.25  # backbone lr = lr x this, in the fine-tuning phase
    weight_decay: float = 1e-4
    heatmap_spread: float = 1e-3  # weight of the heatmap-spread term
    val_fraction: float = 0.0  # hold out this much of the training split to watch (0 = none)
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class EpochReport:
    epoch: int  # 1-based
    epochs: int
    phase: str  # "head" (backbone frozen) or "all"
    loss: float  # mean training loss
    train_nme: float  # mean NME of the augmented training crops
    val_nme: float | None  # mean NME on the held-out part (None without one)
    seconds: float


def normalise(crops: torch.Tensor, mean, scale: float) -> torch.Tensor:
    """0..255 RGB ``(N, 3, S, S)`` -> the network's input, ``(x - mean) / scale``."""
    m = torch.as_tensor(mean, dtype=crops.dtype, device=crops.device).view(1, 3, 1, 1)
    return (crops - m) / scale


def batch_nme(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-sample NME of ``(N, 68, 2)`` tensors (outer-eye normalised)."""
    iod = (truth[:, RIGHT_EYE_OUTER] - truth[:, LEFT_EYE_OUTER]).norm(dim=-1).clamp_min(1e-3)
    return (pred - truth).norm(dim=-1).mean(dim=-1) / iod


def spread_penalty(prob: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """Mean |variance - target| (grid cells^2) of the heatmap distributions along x and y."""
    _, _, h, w = prob.shape
    xs = torch.arange(w, dtype=prob.dtype, device=prob.device)
    ys = torch.arange(h, dtype=prob.dtype, device=prob.device)
    px, py = prob.sum(dim=2), prob.sum(dim=3)
    mx, my = (px * xs).sum(-1, keepdim=True), (py * ys).sum(-1, keepdim=True)
    vx = (px * (xs - mx) ** 2).sum(-1)
    vy = (py * (ys - my) ** 2).sum(-1)
    return ((vx - target).abs() + (vy - target).abs()).mean() / 2


def load_images(paths) -> torch.Tensor:
    """Images as one uint8 ``(N, 3, H, W)`` tensor (smaller ones padded with black at the bottom right)."""
    from faceapp.imageio import load_image

    ims = [load_image(p, max_side=None) for p in paths]
    h = max(im.shape[0] for im in ims)
    w = max(im.shape[1] for im in ims)
    out = np.zeros((len(ims), h, w, 3), np.uint8)
    for i, im in enumerate(ims):
        out[i, : im.shape[0], : im.shape[1]] = im
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


class LandmarkTrainer:
    """Trains a :class:`LandmarkNet` on one split (see the module docstring)."""

    MEAN = (122.782, 117.001, 104.298)
    SCALE = 256.0

    def __init__(self, split: Split, config: TrainConfig, *, device, backbone_state: dict | None) -> None:
        self.config = config
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed batch shapes
        self.generator = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)
        n = len(split)
        order = torch.randperm(n, generator=self.generator).numpy()
        n_val = int(round(config.val_fraction * n))
        self.val_idx, self.train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        self.images = load_images(split.paths).to(self.device)
        self.points = torch.as_tensor(split.points, dtype=torch.float32, device=self.device)
        base = np.stack([crop_matrix(b, config.input_size) for b in split.boxes])
        self.base = torch.as_tensor(base, dtype=torch.float32, device=self.device)
        self.model: LandmarkNet = landmark_net(backbone_state=backbone_state, width=config.width).to(self.device)
        self.history: list[EpochReport] = []

    def _batch(self, idx: np.ndarray, *, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        c, s = self.config, self.config.input_size
        i = torch.as_tensor(idx, device=self.device)
        images = self.images[i].float()
        if augment:
            m, flip = random_matrices(self.base[i], s, c.augment, self.generator)
        else:
            m, flip = self.base[i], None
        crops = warp_batch(images, m, s)
        if augment:
            crops = photometric(crops, c.augment, self.generator)
        pts = warp_points(self.points[i], m, flip)
        return normalise(crops, self.MEAN, self.SCALE), pts

    def _optimizer(self, phase: str) -> torch.optim.Optimizer:
        c = self.config
        head = [p for m in self.model.head for p in m.parameters()]
        backbone = [p for m in self.model.backbone for p in m.parameters()]
        for p in backbone:
            p.requires_grad_(phase == "all")
        groups = [{"params": head, "lr": c.lr}]
        if phase == "all":
            groups.append({"params": backbone, "lr": c.lr * c.backbone_lr_factor})
        return torch.optim.AdamW(groups, weight_decay=c.weight_decay)

    @torch.no_grad()
    def evaluate_crops(self, idx: np.ndarray) -> float:
        """Mean NME (crop coordinates, no augmentation) of the given samples."""
        self.model.eval()
        errs = []
        for start in range(0, len(idx), 64):
            x, pts = self._batch(idx[start : start + 64], augment=False)
            errs.append(batch_nme(self.model(x), pts))
        return float(torch.cat(errs).mean()) if errs else float("nan")

    def run(self, is_cancelled: Callable[[], bool] = lambda: False) -> Iterator[EpochReport]:
        c = self.config
        steps_per_epoch = max(1, len(self.train_idx) // c.batch_size)
        frozen = min(c.freeze_epochs, c.epochs)
        phases = [("head", frozen), ("all", c.epochs - frozen)]
        epoch = 0
        for phase, n_epochs in phases:
            if n_epochs <= 0:
                continue
            opt = self._optimizer(phase)
            total = n_epochs * steps_per_epoch
            warm = min(steps_per_epoch * 2, total // 10)
            base_lrs = [g["lr"] for g in opt.param_groups]
            step = 0
            for _ in range(n_epochs):
                if is_cancelled():
                    return
                t0 = time.perf_counter()
                self.model.train()
                perm = self.train_idx[torch.randperm(len(self.train_idx), generator=self.generator).numpy()]
                losses, nmes = [], []
                for b in range(steps_per_epoch):
                    f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
                    for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                        g["lr"] = lr * f
                    x, pts = self._batch(perm[b * c.batch_size : (b + 1) * c.batch_size], augment=True)
                    pred, prob = self.model.forward_points(x)
                    err = batch_nme(pred, pts).mean()
                    loss = err + c.heatmap_spread * spread_penalty(prob)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    losses.append(loss.detach())
                    nmes.append(err.detach())
                    step += 1
                epoch += 1
                val = self.evaluate_crops(self.val_idx) if len(self.val_idx) else None
                report = EpochReport(epoch, c.epochs, phase, float(torch.stack(losses).mean()), float(torch.stack(nmes).mean()), val,
                                     time.perf_counter() - t0)
                self.history.append(report)
                log.info("epoch %d/%d (%s): loss %.4f, train NME %.4f%s, %.1f s", epoch, c.epochs, phase,
                         report.loss, report.train_nme, "" if val is None else f", val NME {val:.4f}", report.seconds)
                yield report
        for p in self.model.parameters():
            p.requires_grad_(True)
        self.model.eval()


def save_model(
    model: LandmarkNet, out_dir: Path, *, model_id: str, config: TrainConfig, extra: dict | None = None
) -> Path:
    """Write ``<model_id>.pt`` (float16 weights: half the size, no measurable loss) and its TOML
    spec into ``out_dir``; returns the spec's path. An existing card file name is kept."""
    from faceapp.embed.weights import sha256_of
    from faceapp.landmarks.augment import CROP_MARGIN, CROP_SHIFT_Y
    from faceapp.landmarks.spec import LandmarkSpec

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = model_id.replace("-", "_")
    weights = out_dir / f"{stem}.pt"
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    torch.save(state, weights)
    recipe = {k: v for k, v in asdict(config).items() if k != "augment"}
    spec = LandmarkSpec(
        model_id=model_id,
        file=weights,
        sha256=sha256_of(weights),
        input_size=config.input_size,
        width=config.width,
        crop_margin=CROP_MARGIN,
        crop_shift_y=CROP_SHIFT_Y,
        card=out_dir / f"{stem}.md",
        extra={"training": recipe, "augment": asdict(config.augment), **(extra or {})},
    )
    path = out_dir / f"{stem}.toml"
    path.write_text(spec.to_toml(), encoding="utf-8")
    return path

"""Evaluation during and after training, on aligned chips (no detector needed).

- :func:`embed_chips`: a model's unit embeddings of uint8 chips, in batches.
- :func:`verification_metrics`: pair metrics on a labelled chip set: every same-person pair
  and every different-person pair (i < j). ``accuracy`` is measured on a balanced set (all
  genuine pairs + as many seeded random impostor pairs) with a 10-fold cross-validated
  threshold, as ``faceapp eval`` does; TAR at FAR 1e-2 / 1e-3 and the EER use all pairs.
- :func:`calibrate_threshold`: tau at a target FAR on held-out identities.
- :func:`plot_history`: training curves (loss, active-triplet fraction, validation accuracy).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from faceapp.match.calibration import best_threshold, eer, kfold_accuracy, tar_at_far

__all__ = ["embed_chips", "pair_distances_by_label", "verification_metrics", "calibrate_threshold", "plot_history"]


@torch.no_grad()
def embed_chips(
    model: torch.nn.Module,
    chips: np.ndarray | torch.Tensor,
    *,
    mean: tuple[float, float, float],
    scale: float,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    amp: bool = False,
) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB chips -> (N, D) float32 unit embeddings (model in eval mode)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    out = []
    for start in range(0, len(chips), batch_size):
        b = chips[start : start + batch_size]
        x = (torch.as_tensor(b) if not isinstance(b, torch.Tensor) else b).to(device)
        x = (x.permute(0, 3, 1, 2).float() - m) / scale
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            raw = model.forward_head(model.forward_features(x))
        out.append(torch.nn.functional.normalize(raw.float(), dim=1).cpu())
    model.train(was_training)
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy()


def pair_distances_by_label(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared distances of all pairs i < j: (genuine distances, impostor distances, (i, j) of
    the impostor pairs)."""
    e = np.asarray(embeddings, np.float64)
    labels = np.asarray(labels)
    d = np.clip(2.0 - 2.0 * (e @ e.T), 0.0, 4.0)
    iu, ju = np.triu_indices(len(labels), 1)
    same = labels[iu] == labels[ju]
    return d[iu[same], ju[same]], d[iu[~same], ju[~same]], np.stack([iu[~same], ju[~same]], 1)


def verification_metrics(embeddings: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """Pair metrics of embeddings with identity labels (see the module docstring)."""
    g, imp, _ = pair_distances_by_label(embeddings, labels)
    return genuine_impostor_metrics(g, imp, seed=seed)


def genuine_impostor_metrics(g: np.ndarray, imp: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """:func:`verification_metrics` of given same-person (``g``) and different-person (``imp``)
    pair distances (any score where smaller means "more alike")."""
    g, imp = np.asarray(g, np.float64), np.asarray(imp, np.float64)
    if len(g) == 0 or len(imp) == 0:
        raise ValueError("need both same-person and different-person pairs")
    rng = np.random.default_rng(seed)
    n = min(len(g), len(imp))
    gb = g if len(g) == n else rng.choice(g, n, replace=False)
    ib = imp if len(imp) == n else rng.choice(imp, n, replace=False)
    d_bal = np.concatenate([gb, ib])
    s_bal = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    folds = np.r_[np.arange(n) % 10, np.arange(n) % 10]
    acc = kfold_accuracy(d_bal, s_bal, folds).mean_accuracy if n >= 10 else best_threshold(d_bal, s_bal)[1]
    d_all = np.concatenate([g, imp])
    s_all = np.r_[np.ones(len(g), bool), np.zeros(len(imp), bool)]
    return {
        "accuracy": float(acc),
        "tar_at_far_1e-2": tar_at_far(d_all, s_all, 1e-2)[0],
        "tar_at_far_1e-3": tar_at_far(d_all, s_all, 1e-3)[0],
        "eer": eer(d_all, s_all)[0],
        "distance_same_mean": float(g.mean()),
        "distance_different_mean": float(imp.mean()),
        "genuine_pairs": int(len(g)),
        "impostor_pairs": int(len(imp)),
    }


def calibrate_threshold(embeddings: np.ndarray, labels: np.ndarray, far: float = 1e-3) -> dict[str, float]:
    """tau (squared L2) = the largest threshold whose FAR over all impostor pairs is <= ``far``."""
    g, imp, _ = pair_distances_by_label(embeddings, labels)
    d = np.concatenate([g, imp])
    s = np.r_[np.ones(len(g), bool), np.zeros(len(imp), bool)]
    tar, tau = tar_at_far(d, s, far)
    return {"threshold": float(tau), "tar_at_threshold": float(tar), "far_target": float(far),
            "genuine_pairs": int(len(g)), "impostor_pairs": int(len(imp))}


def plot_history(history: dict, path: Path | str, title: str = "training") -> Path:
    """One PNG with three panels per epoch: training loss, active-triplet fraction (or pair
    accuracy for the Siamese objective) and validation accuracy / TAR@FAR."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = history.get("epochs", [])
    x = [e["epoch"] for e in epochs]
    fig = Figure(figsize=(12, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 3, 1)
    ax.plot(x, [e["loss"] for e in epochs], marker="o")
    ax.set_xlabel("epoch"), ax.set_ylabel("training loss"), ax.grid(alpha=0.3)
    ax = fig.add_subplot(1, 3, 2)
    ax.plot(x, [e.get("active", float("nan")) for e in epochs], marker="o", label="active triplets")
    ax.set_xlabel("epoch"), ax.set_ylabel("fraction of mined triplets active"), ax.grid(alpha=0.3)
    ax = fig.add_subplot(1, 3, 3)
    for key, label in (("val_accuracy", "val accuracy"), ("val_tar_at_far_1e-3", "val TAR@FAR1e-3")):
        ax.plot(x, [e.get(key, float("nan")) for e in epochs], marker="o", label=label)
    ax.set_xlabel("epoch"), ax.set_ylabel("validation (held-out identities)"), ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path

"""Losses for embedding training.

- :func:`triplet_loss`: FaceNet's ``max(||f(a)-f(p)||^2 - ||f(a)-f(n)||^2 + alpha, 0)`` averaged
  over the mined triplets (alpha = ``margin``, default 0.2), or with ``soft=True`` the
  soft-margin variant ``log(1 + exp(d_ap - d_an))`` (Hermans et al. 2017), which has no margin
  to tune and keeps pulling on triplets that already satisfy one. An empty triplet set gives a
  zero loss that is still connected to the graph (``backward`` works, gradients are zero).
- :class:`PairClassifierHead` + :func:`pair_bce_loss`: the Siamese binary-classification head
  of the course, ``p(same) = sigmoid(sum_k w_k |f(x_i)_k - f(x_j)_k| + b)``, trained with
  binary cross-entropy on pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LOSSES", "triplet_loss", "triplet_stats", "PairClassifierHead", "pair_bce_loss"]

LOSSES = ("triplet", "soft-triplet", "siamese")

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _check_loss(name: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}")
    return name


def _triplet_distances(embeddings: torch.Tensor, triplets: Triplets) -> tuple[torch.Tensor, torch.Tensor]:
    a, p, n = triplets
    e = embeddings.float()
    d_ap = (e[a] - e[p]).pow(2).sum(1)
    d_an = (e[a] - e[n]).pow(2).sum(1)
    return d_ap, d_an


def triplet_loss(
    embeddings: torch.Tensor, triplets: Triplets, *, margin: float = 0.2, soft: bool = False
) -> torch.Tensor:
    """Mean triplet loss over ``triplets`` = (anchor, positive, negative) index tensors."""
    if triplets[0].numel() == 0:
        return embeddings.sum() * 0.0
    d_ap, d_an = _triplet_distances(embeddings, triplets)
    if soft:
        return F.softplus(d_ap - d_an).mean()
    return F.relu(d_ap - d_an + margin).mean()


@torch.no_grad()
def triplet_stats(embeddings: torch.Tensor, labels: torch.Tensor, triplets: Triplets, *, margin: float = 0.2) -> dict[str, float]:
    """What to log per step: the number of mined triplets, the fraction of them that are active
    (violate the margin: ``d_ap - d_an + margin > 0``), and the mean squared distance over all
    same-person and all different-person pairs of the batch."""
    from faceapp.training.mining import pairwise_sq_distances

    d = pairwise_sq_distances(embeddings)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    out = {
        "triplets": float(triplets[0].numel()),
        "d_pos": float(d[pos].mean()) if pos.any() else float("nan"),
        "d_neg": float(d[neg].mean()) if neg.any() else float("nan"),
    }
    if triplets[0].numel():
        d_ap, d_an = _triplet_distances(embeddings, triplets)
        out["active"] = float(((d_ap - d_an + margin) > 0).float().mean())
    else:
        out["active"] = 0.0
    return out


class PairClassifierHead(nn.Module):
    """Siamese binary classifier on two embeddings: ``logit = sum_k w_k |f_i,k - f_j,k| + b``.

    Initialised with ``w_k = -init_scale`` and ``b = init_scale * init_distance``: it starts as
    "same person when the L1 distance is below ``init_distance``" and learns from there.
    """

    def __init__(self, dim: int = 128, *, init_scale: float = 1.0, init_distance: float = 4.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((dim,), -float(init_scale)))
        self.bias = nn.Parameter(torch.tensor(float(init_scale) * float(init_distance)))

    def forward(self, f_i: torch.Tensor, f_j: torch.Tensor) -> torch.Tensor:
        """Logits of "same person", shape (N,)."""
        return (f_i.float() - f_j.float()).abs() @ self.weight + self.bias

    @torch.no_grad()
    def predict_proba(self, f_i: torch.Tensor, f_j: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(f_i, f_j))


def pair_bce_loss(head: PairClassifierHead, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``head`` over every pair (i < j) of the batch, the two classes
    weighted equally (a P x K batch holds far more different-person pairs)."""
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    target = (labels[i] == labels[j]).float()
    n_pos = target.sum().clamp_min(1.0)
    n_neg = (1 - target).sum().clamp_min(1.0)
    weight = torch.where(target > 0, 0.5 / n_pos, 0.5 / n_neg)
    logits = head(embeddings[i], embeddings[j])
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="sum")

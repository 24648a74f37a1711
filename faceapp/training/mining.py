"""Online triplet mining inside a batch. A miner proposes (anchor, positive, negative) index
tensors under ``no_grad``; a loss (:mod:`faceapp.training.losses`) consumes them.

Distances are squared L2 between the rows of ``embeddings`` (unit vectors in training, so in
[0, 4]). Strategies:

- ``batch-hard`` (Hermans et al. 2017): for every anchor that has a positive and a negative,
  its farthest positive and its nearest negative -- one triplet per anchor.
- ``semi-hard`` (FaceNet, Schroff et al. 2015): for every positive pair (a, p), the nearest
  negative that is still farther than the positive but within the margin,
  ``d(a,p) < d(a,n) < d(a,p) + margin``; pairs without such a negative give no triplet.
- ``batch-all``: every valid triplet; with ``margin`` given, only those that violate it
  (``d(a,p) - d(a,n) + margin > 0``, the "active" ones), so a mean over them is not diluted by
  the many easy triplets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["MINERS", "pairwise_sq_distances", "batch_hard", "semi_hard", "batch_all", "mine", "count_valid_triplets"]

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def pairwise_sq_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, D) -> (B, B) squared L2 distances, exact zeros on the diagonal, never negative."""
    e = embeddings.float()
    sq = (e * e).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * (e @ e.T)
    d = d.clamp_min(0.0)
    return d.fill_diagonal_(0.0)


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    labels = labels.view(-1)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _empty(device) -> Triplets:
    e = torch.empty(0, dtype=torch.long, device=device)
    return e, e.clone(), e.clone()


@torch.no_grad()
def batch_hard(embeddings: torch.Tensor, labels: torch.Tensor, margin: float | None = None) -> Triplets:
    """Hardest positive and hardest negative of every anchor that has both (``margin`` unused)."""
    d = pairwise_sq_distances(embeddings)
    pos, neg = _masks(labels)
    ok = pos.any(1) & neg.any(1)
    if not ok.any():
        return _empty(embeddings.device)
    hardest_p = d.masked_fill(~pos, -1.0).argmax(1)
    hardest_n = d.masked_fill(~neg, float("inf")).argmin(1)
    a = torch.nonzero(ok).view(-1)
    return a, hardest_p[a], hardest_n[a]


@torch.no_grad()
def semi_hard(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2) -> Triplets:
    """For each positive pair (a, p): the nearest n with d(a,p) < d(a,n) < d(a,p) + margin."""
    if margin is None or margin <= 0:
        raise ValueError("semi-hard mining needs a positive margin")
    d = pairwise_sq_distances(embeddings)
    pos, neg = _masks(labels)
    a, p = torch.nonzero(pos, as_tuple=True)
    if a.numel() == 0:
        return _empty(embeddings.device)
    d_ap = d[a, p][:, None]  # (M, 1)
    d_an = d[a]  # (M, B)
    cand = neg[a] & (d_an > d_ap) & (d_an < d_ap + margin)
    has = cand.any(1)
    n = d_an.masked_fill(~cand, float("inf")).argmin(1)
    return a[has], p[has], n[has]


@torch.no_grad()
def batch_all(embeddings: torch.Tensor, labels: torch.Tensor, margin: float | None = None) -> Triplets:
    """Every valid triplet, or with ``margin`` only the active ones (positive hinge loss)."""
    pos, neg = _masks(labels)
    valid = pos[:, :, None] & neg[:, None, :]  # (a, p, n)
    if margin is not None:
        d = pairwise_sq_distances(embeddings)
        valid &= (d[:, :, None] - d[:, None, :] + margin) > 0
    a, p, n = torch.nonzero(valid, as_tuple=True)
    return a, p, n


def count_valid_triplets(labels: torch.Tensor) -> int:
    """The number of valid (anchor, positive, negative) triplets of a batch."""
    pos, neg = _masks(labels)
    return int((pos.sum(1) * neg.sum(1)).sum())


MINERS: dict[str, Callable[..., Triplets]] = {
    "batch-hard": batch_hard,
    "semi-hard": semi_hard,
    "batch-all": batch_all,
}


def mine(strategy: str, embeddings: torch.Tensor, labels: torch.Tensor, *, margin: float = 0.2) -> Triplets:
    """Dispatch to a miner by name; an unknown name is a ValueError naming the allowed ones."""
    try:
        miner = MINERS[strategy]
    except KeyError:
        raise ValueError(
            f"unknown mining strategy {strategy!r}; allowed: {', '.join(MINERS)}"
        ) from None
    return miner(embeddings, labels, margin=margin)

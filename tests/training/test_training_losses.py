"""Triplet losses and the Siamese pair head on the hand-made embeddings of test_mining."""

from __future__ import annotations

import math

import pytest
import torch

from faceapp.training.losses import PairClassifierHead, pair_bce_loss, triplet_loss, triplet_stats
from faceapp.training.mining import batch_hard

X = [0.0, 0.1, 0.5, 0.32, 1.05, 2.0]
LABELS = torch.tensor([0, 0, 0, 1, 1, 2])


def emb(grad: bool = False) -> torch.Tensor:
    return torch.tensor([[x, 0.0] for x in X], dtype=torch.float64, requires_grad=grad)


def t(a, p, n):
    return torch.tensor(a), torch.tensor(p), torch.tensor(n)


def test_hinge_triplet_loss_of_one_triplet():
    # d(0,2) = .25, d(0,3) = .1024: .25 - .1024 + .2
    assert float(triplet_loss(emb(), t([0], [2], [3]), margin=0.2)) == pytest.approx(0.3476)


def test_satisfied_triplet_costs_nothing():
    # d(0,1) = .01, d(0,5) = 4.0
    assert float(triplet_loss(emb(), t([0], [1], [5]), margin=0.2)) == 0.0


def test_soft_margin_triplet_loss():
    got = float(triplet_loss(emb(), t([0], [2], [3]), soft=True))
    assert got == pytest.approx(math.log1p(math.exp(0.25 - 0.1024)))


def test_loss_over_batch_hard_triplets_is_their_mean():
    # anchors 0..4: .25-.1024, .16-.0484, .25-.0324, .5329-.0324, .5329-.3025, each + .2
    expected = (0.3476 + 0.3116 + 0.4176 + 0.7005 + 0.4304) / 5
    assert float(triplet_loss(emb(), batch_hard(emb(), LABELS), margin=0.2)) == pytest.approx(expected)


@pytest.mark.parametrize("soft", [False, True])
def test_empty_triplet_set_gives_zero_loss_with_grad(soft):
    e = emb(grad=True)
    empty = t([], [], [])
    loss = triplet_loss(e, (empty[0].long(), empty[1].long(), empty[2].long()), soft=soft)
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert e.grad is not None and torch.all(e.grad == 0)


def test_loss_gradient_pulls_positive_in_and_pushes_negative_out():
    e = emb(grad=True)
    triplet_loss(e, t([0], [2], [3]), margin=0.2).backward()
    # anchor 0 at x=0, positive 2 at x=.5, negative 3 at x=.32: gradient descent moves
    # the positive towards the anchor (-x) and the negative away from it (+x)
    assert e.grad[2, 0] > 0  # descent: x_2 decreases
    assert e.grad[3, 0] < 0  # descent: x_3 increases


def test_triplet_stats_active_fraction_and_mean_distances():
    st = triplet_stats(emb(), LABELS, t([0, 0], [2, 1], [3, 5]), margin=0.2)
    assert st["active"] == pytest.approx(0.5)  # (0,2,3) violates the margin, (0,1,5) does not
    # same-person pairs: .01 .25 .16 (label 0) and .5329 (label 1), each counted twice
    assert st["d_pos"] == pytest.approx((0.01 + 0.25 + 0.16 + 0.5329) / 4)
    assert st["triplets"] == 2


def test_pair_head_is_sigmoid_of_weighted_l1():
    head = PairClassifierHead(2, init_scale=1.0, init_distance=0.3)
    a = torch.tensor([[0.0, 0.0]])
    b = torch.tensor([[0.1, -0.1]])
    # logit = -1 * (.1 + .1) + .3 = .1
    assert float(head(a, b).detach()) == pytest.approx(0.1)
    assert float(head.predict_proba(a, b)) == pytest.approx(1 / (1 + math.exp(-0.1)))


def test_pair_bce_loss_learns_to_separate():
    # three identities, two photos each, 0.05 apart; different identities >= 0.95 apart
    e = torch.tensor([[0.0, 0.0], [0.05, 0.0], [1.0, 0.0], [1.05, 0.0], [0.0, 1.0], [0.0, 1.05]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    head = PairClassifierHead(2, init_scale=0.0, init_distance=0.0)
    first = float(pair_bce_loss(head, e, labels).detach())
    assert first == pytest.approx(math.log(2))  # p = 0.5 everywhere
    opt = torch.optim.SGD(head.parameters(), lr=5.0)
    for _ in range(300):
        opt.zero_grad()
        loss = pair_bce_loss(head, e, labels)
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.2 * first
    i, j = torch.triu_indices(6, 6, offset=1)
    same = labels[i] == labels[j]
    assert torch.all((head.predict_proba(e[i], e[j]) >= 0.5) == same)

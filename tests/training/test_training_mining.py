"""Miners on hand-made embeddings whose hardest positives and negatives are known.

Six points on a line (x, 0), labels 0 0 0 1 1 2:

    index   0     1     2     3     4     5
    x       0.0   0.1   0.5   0.32  1.05  2.0
    label   0     0     0     1     1     2

Squared distances used below: d(0,1)=.01 d(0,2)=.25 d(1,2)=.16 d(3,4)=.5329; to negatives:
d(0,3)=.1024 d(1,3)=.0484 d(2,3)=.0324 d(2,4)=.3025 d(0,4)=1.1025 d(1,4)=.9025 d(4,5)=.9025.
Identity 2 has a single photo, so index 5 is never an anchor.
"""

from __future__ import annotations

import pytest
import torch

from faceapp.training.mining import MINERS, batch_all, batch_hard, mine, pairwise_sq_distances, semi_hard

X = [0.0, 0.1, 0.5, 0.32, 1.05, 2.0]
LABELS = torch.tensor([0, 0, 0, 1, 1, 2])


def emb() -> torch.Tensor:
    return torch.tensor([[x, 0.0] for x in X], dtype=torch.float64)


def as_set(triplets) -> set[tuple[int, int, int]]:
    return set(zip(*(t.tolist() for t in triplets), strict=True))


def test_pairwise_distances_match_hand_values():
    d = pairwise_sq_distances(emb())
    assert d[0, 2] == pytest.approx(0.25)
    assert d[3, 4] == pytest.approx(0.5329)
    assert torch.all(torch.diagonal(d) == 0)


def test_batch_hard_takes_farthest_positive_and_nearest_negative():
    a, p, n = batch_hard(emb(), LABELS)
    assert a.tolist() == [0, 1, 2, 3, 4]
    assert p.tolist() == [2, 2, 0, 4, 3]
    assert n.tolist() == [3, 3, 3, 2, 2]


def test_semi_hard_keeps_negatives_beyond_the_positive_within_the_margin():
    # (0,1): .01 < d(0,3)=.1024 < .21 -> 3;  (0,2): nothing in (.25, .45) -> no triplet
    # (1,0): -> 3;  (1,2): nothing in (.16, .36);  (2,0) and (2,1): d(2,4)=.3025 -> 4
    # (3,4) and (4,3): nothing in (.5329, .7329)
    assert as_set(semi_hard(emb(), LABELS, margin=0.2)) == {(0, 1, 3), (1, 0, 3), (2, 0, 4), (2, 1, 4)}


def test_batch_all_gives_every_valid_triplet():
    # anchors 0, 1, 2: 2 positives x 3 negatives; anchors 3, 4: 1 positive x 4 negatives
    assert len(batch_all(emb(), LABELS)[0]) == 3 * 6 + 2 * 4


def test_batch_all_with_margin_keeps_only_active_triplets():
    expected = {
        (0, 1, 3), (0, 2, 3),
        (1, 0, 3), (1, 2, 3),
        (2, 0, 3), (2, 0, 4), (2, 1, 3), (2, 1, 4),
        (3, 4, 0), (3, 4, 1), (3, 4, 2),
        (4, 3, 2),
    }
    assert as_set(batch_all(emb(), LABELS, margin=0.2)) == expected


@pytest.mark.parametrize("name", list(MINERS))
def test_miners_run_without_grad_and_return_long_indices(name):
    e = emb().requires_grad_(True)
    a, p, n = mine(name, e, LABELS, margin=0.2)
    assert a.dtype == p.dtype == n.dtype == torch.long
    assert not a.requires_grad
    assert torch.all(LABELS[a] == LABELS[p]) and torch.all(LABELS[a] != LABELS[n]) and torch.all(a != p)


@pytest.mark.parametrize("name", list(MINERS))
def test_batch_without_positives_gives_no_triplets(name):
    a, _, _ = mine(name, emb()[:3], torch.tensor([0, 1, 2]), margin=0.2)
    assert a.numel() == 0


def test_unknown_strategy_names_the_allowed_ones():
    with pytest.raises(ValueError, match="batch-hard, semi-hard, batch-all"):
        mine("hardest", emb(), LABELS)


def test_count_valid_triplets():
    from faceapp.training.mining import count_valid_triplets

    assert count_valid_triplets(LABELS) == 26

from __future__ import annotations

import numpy as np
import pytest

from faceapp.training.sampler import PKSampler

# identity sizes 5, 3, 1, 4, 2 -> identity 2 (one photo) is never sampled
LABELS = np.repeat([0, 1, 2, 3, 4], [5, 3, 1, 4, 2])


def test_batches_hold_p_identities_with_k_photos_each():
    s = PKSampler(LABELS, p=2, k=3, seed=0)
    batches = list(s)
    assert len(s) == 2 and len(batches) == 2  # 4 usable identities // p
    seen = []
    for b in batches:
        assert len(b) == 6
        ids = LABELS[b].reshape(2, 3)
        assert np.all(ids == ids[:, :1])  # 3 photos of one identity, then 3 of another
        seen.extend(ids[:, 0].tolist())
    assert sorted(seen) == [0, 1, 3, 4]  # every usable identity once per epoch, never identity 2


def test_photos_are_distinct_when_an_identity_has_enough():
    s = PKSampler(LABELS, p=4, k=3, seed=1)
    (b,) = list(s)
    for ident in (0, 1, 3):
        idx = b[LABELS[b] == ident]
        assert len(set(idx.tolist())) == 3
    assert len(b[LABELS[b] == 4]) == 3  # identity 4 has 2 photos: drawn with replacement


def test_same_epoch_same_batches_other_epoch_other_order():
    s = PKSampler(LABELS, p=2, k=2, seed=3)
    s.set_epoch(1)
    a = [b.tolist() for b in s]
    assert a == [b.tolist() for b in s]
    outs = set()
    for e in range(2, 8):
        s.set_epoch(e)
        outs.add(tuple(tuple(b.tolist()) for b in s))
    assert len(outs) > 1


def test_too_few_identities_is_an_error():
    with pytest.raises(ValueError, match="identities"):
        PKSampler(LABELS, p=5, k=2)

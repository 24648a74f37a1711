"""scripts/eval_frozen_heads.py: Fisher's discriminant on hand-made classes."""

from __future__ import annotations

import numpy as np
import pytest

from script_module import load_script


@pytest.fixture(scope="module")
def frozen():
    return load_script("eval_frozen_heads")


def test_lda_finds_the_direction_that_separates_identities_not_the_one_that_varies_most(frozen):
    """Identities differ along axis 0 by 1; within each, axis 1 varies 10 times more (pose, light):
    PCA's first direction would be axis 1, Fisher's is axis 0."""
    rng = np.random.default_rng(0)
    lab = np.repeat(np.arange(40), 10)
    f = np.zeros((len(lab), 2, 4))
    f[:, :, 0] = lab[:, None] % 2 + 0.05 * rng.standard_normal((len(lab), 2))
    f[:, :, 1] = 1.0 * rng.standard_normal((len(lab), 2))
    f[:, :, 2:] = 0.1 * rng.standard_normal((len(lab), 2, 2))
    w = frozen.lda(f, lab, 1, 1e-3)
    assert w.shape == (1, 4)
    d = w[0] / np.linalg.norm(w[0])
    assert abs(d[0]) > 0.99

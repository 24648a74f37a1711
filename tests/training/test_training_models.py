"""Every shipped model spec loads (checksum, architecture) and embeds a chip to unit length,
so `faceapp eval --model ID` and the app can use any of them."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.embed.weights import available_specs

SPECS = available_specs()


@pytest.mark.parametrize("model_id", sorted(SPECS))
def test_shipped_model_embeds_a_chip(model_id):
    from faceapp.embed.embedder import Embedder

    spec = SPECS[model_id]
    assert spec.card is not None and spec.card.is_file(), "every shipped model has a card"
    emb = Embedder(spec, device="cpu").embed([np.full((spec.input_size, spec.input_size, 3), 128, np.uint8)])
    assert emb.shape == (1, spec.embedding_dim)
    assert np.linalg.norm(emb[0]) == pytest.approx(1.0, abs=1e-4)
    assert 0.0 < spec.threshold < 4.0

"""Fixtures for the faceapp.cnn tests: seeded generators and course <-> torch layout converters.

Everything runs on the CPU with tiny tensors; the NumPy operations are compared with
``torch.nn.functional`` in float64, where both agree to rounding (about 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def one_torch_thread():
    """Run a small training loop on one thread (faster than two for tiny convolutions), then restore."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Layout:
    """Converts between the course's channels-last NumPy arrays and torch's channels-first tensors."""

    @staticmethod
    def to_torch(x: np.ndarray):
        """(m, *spatial, n_C) NumPy -> (m, n_C, *spatial) float64 tensor."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))).double()

    @staticmethod
    def to_numpy(t) -> np.ndarray:
        """(m, n_C, *spatial) tensor -> (m, *spatial, n_C) NumPy."""
        return np.moveaxis(t.detach().numpy(), 1, -1)

    @staticmethod
    def weight(W: np.ndarray):
        """Course filters (*f, n_C_prev, n_C) -> torch conv weight (n_C, n_C_prev, *f)."""
        import torch

        nd = W.ndim - 2
        return torch.from_numpy(np.ascontiguousarray(W.transpose(nd + 1, nd, *range(nd)))).double()

    @staticmethod
    def weight_to_numpy(t) -> np.ndarray:
        """torch conv weight gradient (n_C, n_C_prev, *f) -> course layout (*f, n_C_prev, n_C)."""
        w = t.detach().numpy()
        nd = w.ndim - 2
        return w.transpose(*range(2, nd + 2), 1, 0)


@pytest.fixture
def layout() -> type[Layout]:
    return Layout

"""Max and average pooling from scratch in NumPy, forward and backward.

``hparameters = {"f": f, "stride": s}``: an f x f window moved by s, applied to each channel
separately; no padding and nothing to learn. Output size floor((n - f) / s) + 1.

Max pooling's gradient goes to the one input that was the maximum of its window. With ties
(several equal maxima) it goes to the first in row-major order, as in PyTorch; the course's
``create_mask_from_window`` marks every tied maximum instead, which only differs on ties.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from faceapp.cnn.ops._shapes import check_hparameters, output_size

__all__ = ["POOL_MODES", "pool_forward", "pool_backward", "create_mask_from_window", "distribute_value"]

#: The pooling modes, as the course spells them.
POOL_MODES = ("max", "average")

PoolCache = tuple[np.ndarray, Mapping[str, object]]


def _check_mode(mode: str) -> None:
    if mode not in POOL_MODES:
        raise ValueError(f"unknown pooling mode {mode!r}; use one of {POOL_MODES}")


def _pool_params(A_prev: np.ndarray, hparameters: Mapping[str, object]) -> tuple[int, int, int, int]:
    if A_prev.ndim != 4:
        raise ValueError(f"pooling expects (m, n_H, n_W, n_C), got shape {A_prev.shape}")
    check_hparameters(hparameters, ("f", "stride"))
    if "f" not in hparameters:
        raise ValueError("pooling needs hparameters['f'], the window size")
    f = int(hparameters["f"])  # type: ignore[arg-type]
    s = int(hparameters.get("stride", f))  # type: ignore[arg-type]
    return f, s, output_size(A_prev.shape[1], f, 0, s), output_size(A_prev.shape[2], f, 0, s)


def _windows(A_prev: np.ndarray, f: int, s: int) -> np.ndarray:
    """View (m, n_H, n_W, n_C, f, f) of the pooling windows."""
    return sliding_window_view(A_prev, (f, f), axis=(1, 2))[:, ::s, ::s]


def pool_forward(
    A_prev: np.ndarray, hparameters: Mapping[str, object], mode: str = "max"
) -> tuple[np.ndarray, PoolCache]:
    """Pool a batch (m, n_H_prev, n_W_prev, n_C) with ``{"f": f, "stride": s}``.

    ``mode`` is "max" or "average". Returns ``(A, cache)`` with A of shape
    (m, floor((n_H_prev - f) / s) + 1, floor((n_W_prev - f) / s) + 1, n_C) and
    ``cache = (A_prev, hparameters)``. The stride defaults to f.
    """
    _check_mode(mode)
    A_prev = np.asarray(A_prev)
    f, s, _, _ = _pool_params(A_prev, hparameters)
    windows = _windows(A_prev, f, s)
    A = windows.max(axis=(4, 5)) if mode == "max" else windows.mean(axis=(4, 5))
    return A, (A_prev, hparameters)


def pool_backward(dA: np.ndarray, cache: PoolCache, mode: str = "max") -> np.ndarray:
    """Gradient of :func:`pool_forward` with respect to its input, same shape as A_prev.

    Max: each dA value goes to the position of its window's maximum. Average: each dA value
    is spread equally over its f x f window. Overlapping windows (s < f) add up.
    """
    _check_mode(mode)
    A_prev, hparameters = cache
    f, s, n_H, n_W = _pool_params(A_prev, hparameters)
    dA = np.asarray(dA)
    if dA.shape != (A_prev.shape[0], n_H, n_W, A_prev.shape[3]):
        raise ValueError(
            f"dA has shape {dA.shape}, the forward output was {(A_prev.shape[0], n_H, n_W, A_prev.shape[3])}"
        )
    dtype = np.result_type(dA, A_prev)
    dA_prev = np.zeros(A_prev.shape, dtype=dtype if dtype.kind == "f" else np.float64)
    if mode == "max":
        windows = _windows(A_prev, f, s)
        argmax = windows.reshape(*windows.shape[:4], f * f).argmax(axis=-1)  # first maximum
    for i, j in itertools.product(range(f), range(f)):
        target = (slice(None), slice(i, i + s * (n_H - 1) + 1, s), slice(j, j + s * (n_W - 1) + 1, s))
        if mode == "max":
            dA_prev[target] += np.where(argmax == i * f + j, dA, 0)
        else:
            dA_prev[target] += dA / (f * f)
    return dA_prev


def create_mask_from_window(x: np.ndarray) -> np.ndarray:
    """The course's helper: a boolean mask that is True where ``x`` holds its maximum."""
    x = np.asarray(x)
    return x == np.max(x)


def distribute_value(dz: float, shape: tuple[int, int]) -> np.ndarray:
    """The course's helper: spread ``dz`` evenly over a window of ``shape`` (average pooling)."""
    n_H, n_W = shape
    return np.full(shape, dz / (n_H * n_W), dtype=np.float64)

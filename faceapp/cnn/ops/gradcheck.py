"""Numerical gradient checking (course 2, "gradient checking"), for the from-scratch operations.

The two-sided difference (J(x + eps) - J(x - eps)) / (2 eps) approximates dJ/dx with an
error of order eps^2. Comparing it with an analytic gradient through the relative difference

    ||grad_approx - grad|| / (||grad_approx|| + ||grad||)

tells whether a backward pass is right: about 1e-7 or less is right, 1e-5 is suspicious,
1e-3 or more is a bug (use float64; in float32 the differences drown in rounding).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_gradient", "relative_difference", "gradient_check"]


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Two-sided difference estimate of the gradient of the scalar ``f`` at ``x``.

    ``x`` is changed in place one element at a time and restored; ``f`` is called 2 * x.size
    times, so keep ``x`` small. Returns an array of ``x``'s shape.
    """
    if x.dtype.kind != "f":
        raise ValueError(f"x must be a float array to be perturbed, got dtype {x.dtype}")
    grad = np.zeros_like(x, dtype=np.float64)
    flat_x = x.reshape(-1)  # a view: x must be contiguous for the perturbation to reach f
    if not np.shares_memory(flat_x, x):
        raise ValueError("x must be contiguous")
    flat_grad = grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        plus = float(f(x))
        flat_x[i] = original - eps
        minus = float(f(x))
        flat_x[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_difference(grad_approx: np.ndarray, grad: np.ndarray) -> float:
    """||grad_approx - grad|| / (||grad_approx|| + ||grad||); 0 when both are zero."""
    grad_approx, grad = np.asarray(grad_approx, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    if grad_approx.shape != grad.shape:
        raise ValueError(f"shapes differ: {grad_approx.shape} and {grad.shape}")
    denominator = np.linalg.norm(grad_approx) + np.linalg.norm(grad)
    if denominator == 0:
        return 0.0
    return float(np.linalg.norm(grad_approx - grad) / denominator)


def gradient_check(f: Callable[[np.ndarray], float], x: np.ndarray, grad: np.ndarray, eps: float = 1e-6) -> float:
    """Relative difference between the analytic ``grad`` of ``f`` at ``x`` and a numerical estimate."""
    return relative_difference(numerical_gradient(f, x, eps), grad)

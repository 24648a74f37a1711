"""Transposed convolution from scratch in NumPy (U-Net's up-sampling step), forward and backward.

Where a normal convolution places the filter on the input and writes one number to the
output, a transposed convolution places the filter *on the output*: every input value
multiplies the whole f x f filter, and the product is added into the output at
(s * h, s * w). Overlaps add up. Then ``pad`` rows and columns are cut from every border
("the padding area is neglected"), and ``output_padding`` extra rows and columns are kept
at the bottom and right. Output size: (n - 1) * s - 2p + f + output_padding.

The course's example (f = 3, p = 1, s = 2, a 2x2 input giving 4x4) keeps one extra row and
column at the bottom and right, i.e. ``output_padding = 1``; PyTorch's
``conv_transpose2d(..., stride=2, padding=1, output_padding=1)`` gives the same numbers.

Layout is the course's: A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f, f, n_C_prev, n_C),
b (1, 1, 1, n_C). A transposed convolution with W is the gradient (adjoint) of a normal
convolution with the same filters, input and output channels swapped.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from faceapp.cnn.ops._shapes import check_hparameters

__all__ = ["conv_transpose_output_size", "conv_transpose_forward", "conv_transpose_backward"]

TransposeCache = tuple[np.ndarray, np.ndarray, np.ndarray, Mapping[str, object]]


def conv_transpose_output_size(n: int, f: int, pad: int = 0, stride: int = 1, output_padding: int = 0) -> int:
    """Output length of a transposed convolution: (n - 1) * s - 2p + f + output_padding."""
    size = (n - 1) * stride - 2 * pad + f + output_padding
    if size < 1:
        raise ValueError(f"n={n}, f={f}, pad={pad}, stride={stride} leave no output")
    return size


def _params(A_prev: np.ndarray, W: np.ndarray, hparameters: Mapping[str, object]) -> tuple[int, int, int, int]:
    if A_prev.ndim != 4 or W.ndim != 4:
        raise ValueError(
            f"need A_prev (m, n_H, n_W, n_C_prev) and W (f, f, n_C_prev, n_C); got {A_prev.shape}, {W.shape}"
        )
    if W.shape[0] != W.shape[1]:
        raise ValueError(f"filters must be square, got {W.shape[:2]}")
    if W.shape[2] != A_prev.shape[3]:
        raise ValueError(f"the filters' depth ({W.shape[2]}) must match the input's channels ({A_prev.shape[3]})")
    check_hparameters(hparameters, ("stride", "pad", "output_padding"))
    f = W.shape[0]
    s = int(hparameters.get("stride", 1))  # type: ignore[arg-type]
    p = int(hparameters.get("pad", 0))  # type: ignore[arg-type]
    op = int(hparameters.get("output_padding", 0))  # type: ignore[arg-type]
    if s < 1 or p < 0 or op < 0 or op >= s:
        raise ValueError(f"need stride >= 1, pad >= 0 and 0 <= output_padding < stride; got s={s}, p={p}, op={op}")
    return f, s, p, op


def conv_transpose_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: Mapping[str, object]
) -> tuple[np.ndarray, TransposeCache]:
    """Transposed convolution of a batch.

    Args:
        A_prev: (m, n_H_prev, n_W_prev, n_C_prev).
        W: (f, f, n_C_prev, n_C).
        b: (1, 1, 1, n_C).
        hparameters: ``{"stride": s, "pad": p, "output_padding": op}`` (op optional, < s).

    Returns:
        ``(Z, cache)`` with Z of shape (m, (n_H_prev - 1) s - 2p + f + op, ..., n_C).
    """
    A_prev, W, b = np.asarray(A_prev), np.asarray(W), np.asarray(b)
    f, s, p, op = _params(A_prev, W, hparameters)
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    n_H = conv_transpose_output_size(n_H_prev, f, p, s, op)
    n_W = conv_transpose_output_size(n_W_prev, f, p, s, op)
    # Every input value times the whole filter: (m, n_H_prev, n_W_prev, f, f, n_C).
    contributions = np.tensordot(A_prev, W, axes=([3], [2]))
    canvas = np.zeros(
        (m, (n_H_prev - 1) * s + f + op, (n_W_prev - 1) * s + f + op, W.shape[3]), dtype=contributions.dtype
    )
    for i, j in itertools.product(range(f), range(f)):
        canvas[:, i : i + s * (n_H_prev - 1) + 1 : s, j : j + s * (n_W_prev - 1) + 1 : s] += contributions[
            :, :, :, i, j
        ]
    Z = canvas[:, p : p + n_H, p : p + n_W] + b.reshape(-1)
    return Z, (A_prev, W, b, hparameters)


def conv_transpose_backward(dZ: np.ndarray, cache: TransposeCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_transpose_forward`: ``(dA_prev, dW, db)``."""
    A_prev, W, b, hparameters = cache
    f, s, p, op = _params(A_prev, W, hparameters)
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    n_H = conv_transpose_output_size(n_H_prev, f, p, s, op)
    n_W = conv_transpose_output_size(n_W_prev, f, p, s, op)
    dZ = np.asarray(dZ)
    if dZ.shape != (m, n_H, n_W, W.shape[3]):
        raise ValueError(f"dZ has shape {dZ.shape}, the forward output was {(m, n_H, n_W, W.shape[3])}")
    canvas = np.zeros((m, (n_H_prev - 1) * s + f + op, (n_W_prev - 1) * s + f + op, W.shape[3]), dtype=dZ.dtype)
    canvas[:, p : p + n_H, p : p + n_W] = dZ
    dcontributions = np.empty((m, n_H_prev, n_W_prev, f, f, W.shape[3]), dtype=dZ.dtype)
    for i, j in itertools.product(range(f), range(f)):
        dcontributions[:, :, :, i, j] = canvas[
            :, i : i + s * (n_H_prev - 1) + 1 : s, j : j + s * (n_W_prev - 1) + 1 : s
        ]
    dA_prev = np.tensordot(dcontributions, W, axes=([3, 4, 5], [0, 1, 3]))
    dW = np.tensordot(A_prev, dcontributions, axes=([0, 1, 2], [0, 1, 2])).transpose(1, 2, 0, 3)
    db = dZ.sum(axis=(0, 1, 2)).reshape(b.shape)
    return dA_prev, dW, db

"""Convolution from scratch in NumPy: forward and backward, in 1, 2 and 3 spatial dimensions.

Conventions are the course's (week 1 programming assignment):

* activations are channels-last: ``A_prev`` is (m, n_H_prev, n_W_prev, n_C_prev);
* weights are ``W`` (f, f, n_C_prev, n_C): one f x f x n_C_prev filter per output channel;
* biases are ``b`` (1, 1, 1, n_C), one per filter;
* ``hparameters = {"stride": s, "pad": p}`` where p is an int, "valid" or "same".

The output size along each axis is floor((n + 2p - f) / s) + 1.

What deep learning calls convolution is cross-correlation: the filter is not mirrored.
:func:`conv_single_step` is the course's one-position step; :func:`conv_forward` does the
same arithmetic for every position, filter and example at once: NumPy's stride tricks give a
windowed view of the padded input, copied once into an im2col matrix (one row per output
position), and one matrix product with the reshaped filters does all the steps.
:func:`conv_backward` is its exact gradient: two matrix products for the weights and the
windows, and a col2im scatter (one vectorised add per filter offset) for the input.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from faceapp.cnn.ops._shapes import check_hparameters, output_size, resolve_padding, zero_pad_nd

__all__ = [
    "conv_single_step",
    "conv_forward",
    "conv_backward",
    "conv1d_forward",
    "conv1d_backward",
    "conv3d_forward",
    "conv3d_backward",
    "conv_nd_forward",
    "conv_nd_backward",
    "conv1x1_forward",
    "depthwise_conv_forward",
    "depthwise_separable_conv_forward",
]

ConvCache = tuple[np.ndarray, np.ndarray, np.ndarray, Mapping[str, object]]

_CONV_KEYS = ("stride", "pad")


def conv_single_step(a_slice_prev: np.ndarray, W: np.ndarray, b: np.ndarray | float) -> float:
    """One filter at one position: sum(a_slice_prev * W) + b.

    ``a_slice_prev`` and ``W`` have the same shape (f, f, n_C_prev); ``b`` holds one number.
    This is the "3x1 + 1x1 + 2x1 + ... = -5" step of the notes' edge-detection slide.
    """
    a_slice_prev = np.asarray(a_slice_prev)
    W = np.asarray(W)
    if a_slice_prev.shape != W.shape:
        raise ValueError(f"slice {a_slice_prev.shape} and filter {W.shape} must have the same shape")
    return float(np.sum(a_slice_prev * W) + np.asarray(b).item())


def _stride_tuple(stride: object, nd: int) -> tuple[int, ...]:
    if isinstance(stride, (int, np.integer)):
        strides = (int(stride),) * nd
    else:
        strides = tuple(int(s) for s in stride)  # type: ignore[union-attr]
        if len(strides) != nd:
            raise ValueError(f"stride {stride} has {len(strides)} entries for {nd} spatial dimensions")
    if any(s < 1 for s in strides):
        raise ValueError(f"stride must be >= 1, got {strides}")
    return strides


def _windows(A_pad: np.ndarray, filter_shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """Read-only view (m, *out, n_C_prev, *filter_shape) of every window the filter visits."""
    nd = len(filter_shape)
    view = sliding_window_view(A_pad, filter_shape, axis=tuple(range(1, nd + 1)))
    return view[(slice(None),) + tuple(slice(None, None, s) for s in strides)]


def _im2col(
    A_pad: np.ndarray, filter_shape: tuple[int, ...], strides: tuple[int, ...]
) -> tuple[np.ndarray, tuple[int, ...]]:
    """The windows as rows of a matrix (m * prod(out), prod(f) * n_C_prev), filter-major like W.

    Returns the matrix and the output's spatial shape. Multiplying it by W reshaped to
    (prod(f) * n_C_prev, n_C) computes every conv_single_step of the layer at once.
    """
    nd = len(filter_shape)
    windows = _windows(A_pad, filter_shape, strides)  # (m, *out, C, *f)
    out_shape = windows.shape[1 : nd + 1]
    order = (*range(nd + 1), *range(nd + 2, 2 * nd + 2), nd + 1)  # -> (m, *out, *f, C)
    cols = np.ascontiguousarray(windows.transpose(order)).reshape(-1, int(np.prod(filter_shape)) * A_pad.shape[-1])
    return cols, out_shape


def _check_conv_inputs(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, nd: int) -> None:
    if A_prev.ndim != nd + 2:
        raise ValueError(f"A_prev must have {nd + 2} axes (m, {nd} spatial, n_C_prev), got shape {A_prev.shape}")
    if W.ndim != nd + 2:
        raise ValueError(f"W must have {nd + 2} axes ({nd} filter, n_C_prev, n_C), got shape {W.shape}")
    if A_prev.shape[-1] != W.shape[-2]:
        raise ValueError(f"the filters' depth ({W.shape[-2]}) must match the input's channels ({A_prev.shape[-1]})")
    if b.size != W.shape[-1]:
        raise ValueError(f"b must hold one bias per filter ({W.shape[-1]}), got shape {b.shape}")


def conv_nd_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: Mapping[str, object]
) -> tuple[np.ndarray, ConvCache]:
    """Convolution (cross-correlation) with any number of spatial dimensions, channels-last.

    ``A_prev`` is (m, *spatial, n_C_prev), ``W`` is (*filter, n_C_prev, n_C) and ``b`` holds
    n_C biases. The number of spatial dimensions is ``W.ndim - 2``. Returns ``(Z, cache)``
    with ``Z`` of shape (m, *out, n_C) and ``cache = (A_prev, W, b, hparameters)``.
    """
    A_prev, W, b = np.asarray(A_prev), np.asarray(W), np.asarray(b)
    nd = W.ndim - 2
    _check_conv_inputs(A_prev, W, b, nd)
    check_hparameters(hparameters, _CONV_KEYS)
    filter_shape = W.shape[:nd]
    pads = resolve_padding(hparameters.get("pad", 0), filter_shape)  # type: ignore[arg-type]
    strides = _stride_tuple(hparameters.get("stride", 1), nd)
    for n, f, p, s in zip(A_prev.shape[1:-1], filter_shape, pads, strides):
        output_size(n, f, p, s)  # raises when the filter does not fit

    cols, out_shape = _im2col(zero_pad_nd(A_prev, pads), filter_shape, strides)
    Z = (cols @ W.reshape(-1, W.shape[-1])).reshape(A_prev.shape[0], *out_shape, W.shape[-1]) + b.reshape(-1)
    return Z, (A_prev, W, b, hparameters)


def conv_nd_backward(dZ: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_nd_forward`: ``(dA_prev, dW, db)`` from dZ = dCost/dZ.

    dW[f..., c, n] = sum over examples and positions of window * dZ; db = sum of dZ; and
    dA_prev receives every dZ value times its filter at the window it came from (col2im).
    """
    A_prev, W, b, hparameters = cache
    nd = W.ndim - 2
    filter_shape = W.shape[:nd]
    pads = resolve_padding(hparameters.get("pad", 0), filter_shape)  # type: ignore[arg-type]
    strides = _stride_tuple(hparameters.get("stride", 1), nd)
    A_pad = zero_pad_nd(A_prev, pads)
    cols, out_shape = _im2col(A_pad, filter_shape, strides)
    n_C = W.shape[-1]
    dZ = np.asarray(dZ)
    if dZ.shape != (A_prev.shape[0], *out_shape, n_C):
        raise ValueError(f"dZ has shape {dZ.shape}, the forward output was {(A_prev.shape[0], *out_shape, n_C)}")

    dZ_rows = dZ.reshape(-1, n_C)
    db = dZ_rows.sum(axis=0).reshape(b.shape)
    dW = (cols.T @ dZ_rows).reshape(W.shape)
    # col2im: every output position sends dZ . W back to the window it came from. One matrix
    # product and one strided add per filter offset (faster than materialising all windows).
    dA_pad = np.zeros(A_pad.shape, dtype=np.result_type(dZ, W, np.float32))
    for offset in itertools.product(*(range(f) for f in filter_shape)):
        target = (slice(None),) + tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, strides, out_shape))
        dA_pad[target] += dZ @ W[offset].T
    crop = (slice(None),) + tuple(slice(p, p + n) for p, n in zip(pads, A_prev.shape[1:-1]))
    return dA_pad[crop], dW, db


def conv_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: Mapping[str, object]
) -> tuple[np.ndarray, ConvCache]:
    """2-D convolution of a batch: the course's ``conv_forward``.

    Args:
        A_prev: activations of the previous layer, (m, n_H_prev, n_W_prev, n_C_prev).
        W: filters, (f, f, n_C_prev, n_C).
        b: biases, (1, 1, 1, n_C).
        hparameters: ``{"stride": s, "pad": p}``; p is an int, "valid" or "same".

    Returns:
        ``(Z, cache)``: Z is (m, n_H, n_W, n_C) with n_H = floor((n_H_prev + 2p - f) / s) + 1,
        and ``cache = (A_prev, W, b, hparameters)`` for :func:`conv_backward`.
    """
    if np.ndim(W) != 4:
        raise ValueError(f"conv_forward is 2-D: W must be (f, f, n_C_prev, n_C), got shape {np.shape(W)}")
    return conv_nd_forward(A_prev, W, b, hparameters)


def conv_backward(dZ: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward`: ``(dA_prev, dW, db)`` with the shapes of A_prev, W, b."""
    return conv_nd_backward(dZ, cache)


def conv1d_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: Mapping[str, object]
) -> tuple[np.ndarray, ConvCache]:
    """1-D convolution, e.g. of an EKG signal: A_prev (m, n_W_prev, n_C_prev), W (f, n_C_prev, n_C), b (1, 1, n_C).

    The notes' example: a 14-sample signal and 16 filters of length 5 give 10 x 16.
    """
    if np.ndim(W) != 3:
        raise ValueError(f"conv1d_forward: W must be (f, n_C_prev, n_C), got shape {np.shape(W)}")
    return conv_nd_forward(A_prev, W, b, hparameters)


def conv1d_backward(dZ: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv1d_forward`."""
    return conv_nd_backward(dZ, cache)


def conv3d_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: Mapping[str, object]
) -> tuple[np.ndarray, ConvCache]:
    """3-D convolution, e.g. of a CT volume or a video: A_prev (m, n_D, n_H, n_W, n_C_prev),
    W (f, f, f, n_C_prev, n_C), b (1, 1, 1, 1, n_C).

    The notes' example: 14 x 14 x 14 x 1 and 16 filters of 5 x 5 x 5 x 1 give 10 x 10 x 10 x 16.
    """
    if np.ndim(W) != 5:
        raise ValueError(f"conv3d_forward: W must be (f, f, f, n_C_prev, n_C), got shape {np.shape(W)}")
    return conv_nd_forward(A_prev, W, b, hparameters)


def conv3d_backward(dZ: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv3d_forward`."""
    return conv_nd_backward(dZ, cache)


def conv1x1_forward(A_prev: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 x 1 convolution ("network in network"): a fully connected layer applied at every pixel.

    ``W`` is (1, 1, n_C_prev, n_C) or (n_C_prev, n_C), ``b`` holds n_C biases. Height and
    width are kept; only the number of channels changes, e.g. 28x28x192 -> 28x28x32. The
    result equals :func:`conv_forward` with f = 1, stride 1, no padding.
    """
    A_prev, W, b = np.asarray(A_prev), np.asarray(W), np.asarray(b)
    if W.ndim == 4:
        if W.shape[:2] != (1, 1):
            raise ValueError(f"a 1x1 convolution needs W of shape (1, 1, n_C_prev, n_C), got {W.shape}")
        W = W[0, 0]
    if W.ndim != 2 or W.shape[0] != A_prev.shape[-1]:
        raise ValueError(f"W {W.shape} does not map the input's {A_prev.shape[-1]} channels")
    return A_prev @ W + b.reshape(-1)


def depthwise_conv_forward(
    A_prev: np.ndarray, W: np.ndarray, b: np.ndarray, hparameters: Mapping[str, object]
) -> np.ndarray:
    """Depthwise convolution (MobileNet): one f x f filter per input channel, channels kept apart.

    ``A_prev`` (m, n_H_prev, n_W_prev, n_C), ``W`` (f, f, n_C), ``b`` n_C biases; returns
    (m, n_H, n_W, n_C). Equals ``torch.nn.functional.conv2d(..., groups=n_C)``.
    """
    A_prev, W, b = np.asarray(A_prev), np.asarray(W), np.asarray(b)
    if A_prev.ndim != 4 or W.ndim != 3 or W.shape[2] != A_prev.shape[3]:
        raise ValueError(f"need A_prev (m, n_H, n_W, n_C) and W (f, f, n_C); got {A_prev.shape} and {W.shape}")
    check_hparameters(hparameters, _CONV_KEYS)
    pads = resolve_padding(hparameters.get("pad", 0), W.shape[:2])  # type: ignore[arg-type]
    strides = _stride_tuple(hparameters.get("stride", 1), 2)
    for n, f, p, s in zip(A_prev.shape[1:3], W.shape[:2], pads, strides):
        output_size(n, f, p, s)
    windows = _windows(zero_pad_nd(A_prev, pads), W.shape[:2], strides)  # (m, h, w, c, f, f)
    return np.einsum("mhwcij,ijc->mhwc", windows, W, optimize=True) + b.reshape(-1)


def depthwise_separable_conv_forward(
    A_prev: np.ndarray,
    W_depthwise: np.ndarray,
    b_depthwise: np.ndarray,
    W_pointwise: np.ndarray,
    b_pointwise: np.ndarray,
    hparameters: Mapping[str, object],
) -> np.ndarray:
    """Depthwise convolution followed by a pointwise (1 x 1) convolution, without activation.

    The notes' example: 6x6x3 -> depthwise 3x3 -> 4x4x3 -> pointwise 5 filters -> 4x4x5, at
    432 + 240 = 672 multiplications instead of 2,160 for a normal 3x3x3 convolution with 5
    filters (see :func:`faceapp.cnn.nets.cost.depthwise_separable_cost`).
    """
    depthwise = depthwise_conv_forward(A_prev, W_depthwise, b_depthwise, hparameters)
    return conv1x1_forward(depthwise, W_pointwise, b_pointwise)

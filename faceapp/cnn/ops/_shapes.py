"""Sizes and padding shared by the from-scratch operations.

All operations use the course's channels-last layout: a batch of activations is
``(m, n_H, n_W, n_C)`` (``(m, n_W, n_C)`` in 1-D, ``(m, n_D, n_H, n_W, n_C)`` in 3-D).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["output_size", "resolve_padding", "zero_pad", "zero_pad_nd"]

#: What ``hparameters["pad"]`` may hold: a number of zeros per side, one number per spatial
#: dimension, or the names "valid" (no padding) and "same" (p = (f - 1) / 2, odd f only).
PadSpec = int | str | Sequence[int]


def output_size(n: int, f: int, pad: int = 0, stride: int = 1) -> int:
    """Output length of a convolution or pooling along one dimension: floor((n + 2p - f) / s) + 1.

    ``n`` is the input length, ``f`` the filter (window) length, ``pad`` the zeros added on
    each side and ``stride`` the step. Raises ``ValueError`` when the window does not fit.
    """
    if f < 1 or stride < 1 or pad < 0:
        raise ValueError(f"need f >= 1, stride >= 1 and pad >= 0; got f={f}, stride={stride}, pad={pad}")
    if n + 2 * pad < f:
        raise ValueError(f"a window of {f} does not fit in {n} positions padded by {pad} on each side")
    return (n + 2 * pad - f) // stride + 1


def resolve_padding(pad: PadSpec, filter_shape: Sequence[int]) -> tuple[int, ...]:
    """Zeros per side for each spatial dimension.

    ``"valid"`` means no padding; ``"same"`` means p = (f - 1) / 2, the course's "same"
    convolution, which keeps the size when the stride is 1 (and gives ceil(n / s) otherwise).
    "same" needs odd filter sizes, as the course recommends; an even size is a ``ValueError``.
    """
    nd = len(filter_shape)
    if isinstance(pad, str):
        if pad == "valid":
            return (0,) * nd
        if pad == "same":
            even = [f for f in filter_shape if f % 2 == 0]
            if even:
                raise ValueError(f"'same' padding needs odd filter sizes, got {tuple(filter_shape)}")
            return tuple((f - 1) // 2 for f in filter_shape)
        raise ValueError(f"unknown padding {pad!r}; use an int, 'valid' or 'same'")
    if isinstance(pad, (int, np.integer)):
        pads = (int(pad),) * nd
    else:
        pads = tuple(int(p) for p in pad)
        if len(pads) != nd:
            raise ValueError(f"padding {tuple(pad)} has {len(pads)} entries for {nd} spatial dimensions")
    if any(p < 0 for p in pads):
        raise ValueError(f"padding must not be negative, got {pads}")
    return pads


def zero_pad(X: np.ndarray, pad: int) -> np.ndarray:
    """Pad the height and width of a batch ``X`` of shape (m, n_H, n_W, n_C) with ``pad`` zeros.

    Returns an array of shape (m, n_H + 2 pad, n_W + 2 pad, n_C); batch and channels are untouched.
    """
    if X.ndim != 4:
        raise ValueError(f"zero_pad expects (m, n_H, n_W, n_C), got shape {X.shape}")
    return zero_pad_nd(X, (pad, pad))


def zero_pad_nd(X: np.ndarray, pads: Sequence[int]) -> np.ndarray:
    """Pad every spatial axis of a channels-last batch (m, *spatial, n_C) with zeros on both sides."""
    if len(pads) != X.ndim - 2:
        raise ValueError(f"{len(pads)} paddings for an array with {X.ndim - 2} spatial axes")
    if not any(pads):
        return X
    widths = [(0, 0)] + [(int(p), int(p)) for p in pads] + [(0, 0)]
    return np.pad(X, widths, mode="constant", constant_values=0)


def check_hparameters(hparameters: Mapping[str, object], allowed: Sequence[str]) -> None:
    """Reject hyperparameter names an operation does not know (a typo would be silently ignored)."""
    unknown = set(hparameters) - set(allowed)
    if unknown:
        raise ValueError(f"unknown hyperparameters {sorted(unknown)}; allowed: {list(allowed)}")

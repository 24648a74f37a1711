"""Computational cost of convolutions, counted as the course does: multiplications.

    cost = #filter params x #filter positions x #filters

The notes' MobileNet example: a 6x6x3 input, 5 filters of 3x3x3, output 4x4x5.

* normal convolution: (3 x 3 x 3) x (4 x 4) x 5 = 2,160;
* depthwise separable: depthwise (3 x 3) x (4 x 4) x 3 = 432, plus
  pointwise (1 x 1 x 3) x (4 x 4) x 5 = 240, total 672;
* ratio 672 / 2160 = 0.31 = 1/n_c' + 1/f^2 = 1/5 + 1/9.

And the Inception bottleneck example: 28x28x192 -> 5x5 same, 32 filters costs 120M; a 1x1
bottleneck to 16 channels first costs 2.4M + 10.0M = 12.4M.
"""

from __future__ import annotations

from dataclasses import dataclass

from faceapp.cnn.ops._shapes import output_size, resolve_padding

__all__ = ["SeparableCost", "conv_output_shape", "conv_cost", "depthwise_separable_cost", "separable_cost_ratio"]


def conv_output_shape(
    input_shape: tuple[int, int, int], f: int, n_filters: int, *, stride: int = 1, pad: int | str = 0
) -> tuple[int, int, int]:
    """(n_H, n_W, n_C) after a convolution of ``input_shape`` = (n_H_prev, n_W_prev, n_C_prev)."""
    n_H, n_W, _ = input_shape
    p = resolve_padding(pad, (f, f))[0]
    return output_size(n_H, f, p, stride), output_size(n_W, f, p, stride), n_filters


def conv_cost(input_shape: tuple[int, int, int], f: int, n_filters: int, *, stride: int = 1, pad: int | str = 0) -> int:
    """Multiplications of a normal convolution: (f x f x n_C_prev) x (n_H x n_W) x n_filters."""
    n_H, n_W, _ = conv_output_shape(input_shape, f, n_filters, stride=stride, pad=pad)
    return f * f * input_shape[2] * n_H * n_W * n_filters


@dataclass(frozen=True)
class SeparableCost:
    """Multiplications of a depthwise separable convolution, step by step."""

    depthwise: int
    pointwise: int

    @property
    def total(self) -> int:
        return self.depthwise + self.pointwise


def depthwise_separable_cost(
    input_shape: tuple[int, int, int], f: int, n_filters: int, *, stride: int = 1, pad: int | str = 0
) -> SeparableCost:
    """Depthwise (f x f per channel) then pointwise (1 x 1 x n_C_prev, ``n_filters`` of them)."""
    n_H, n_W, _ = conv_output_shape(input_shape, f, n_filters, stride=stride, pad=pad)
    n_C_prev = input_shape[2]
    return SeparableCost(depthwise=f * f * n_H * n_W * n_C_prev, pointwise=n_C_prev * n_H * n_W * n_filters)


def separable_cost_ratio(f: int, n_filters: int) -> float:
    """Depthwise separable cost over normal cost: 1/n_filters + 1/f^2 (independent of the input)."""
    return 1 / n_filters + 1 / f**2

"""faceapp.cnn.ops transposed convolution: the lecture's example, PyTorch agreement, adjointness."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceapp.cnn.ops import (
    conv_backward,
    conv_forward,
    conv_transpose_backward,
    conv_transpose_forward,
    conv_transpose_output_size,
)


def test_lecture_example_2x2_to_4x4_f3_p1_s2() -> None:
    # The lecture's example: a 2x2 input, a 3x3 filter, padding 1, stride 2. Each input value
    # multiplies the whole filter, the products are written 2 apart and overlaps add up; the
    # padding row and column at the top and left are dropped, giving 4x4 (output_padding 1
    # keeps the last row and column, as on the slide).
    x = np.array([[2, 1], [3, 2]], dtype=np.float64)
    kernel = np.array([[1, 2, 1], [2, 0, 1], [0, 2, 1]], dtype=np.float64)
    Z, _ = conv_transpose_forward(
        x[None, :, :, None],
        kernel[:, :, None, None],
        np.zeros((1, 1, 1, 1)),
        {"stride": 2, "pad": 1, "output_padding": 1},
    )
    expected = [[0, 4, 0, 1], [10, 7, 6, 3], [0, 7, 0, 2], [6, 3, 4, 2]]
    np.testing.assert_array_equal(Z[0, :, :, 0], expected)


@pytest.mark.parametrize(
    ("n", "f", "pad", "stride", "output_padding", "expected"),
    [(2, 3, 1, 2, 1, 4), (2, 3, 1, 2, 0, 3), (4, 2, 0, 2, 0, 8), (5, 3, 0, 1, 0, 7), (3, 4, 1, 2, 0, 6)],
)
def test_output_size(n: int, f: int, pad: int, stride: int, output_padding: int, expected: int) -> None:
    assert conv_transpose_output_size(n, f, pad, stride, output_padding) == expected


CASES = [
    (f, s, p, op)
    for f, s, p, op in itertools.product([1, 2, 3, 4], [1, 2, 3], [0, 1], [0, 1, 2])
    if op < s and (f > 2 * p or s > 1)
]


@pytest.mark.parametrize(("f", "stride", "pad", "output_padding"), CASES)
def test_agrees_with_torch_conv_transpose2d(
    f: int, stride: int, pad: int, output_padding: int, rng: np.random.Generator, layout
) -> None:
    A = rng.standard_normal((2, 3, 4, 3))
    W = rng.standard_normal((f, f, 3, 2))
    b = rng.standard_normal((1, 1, 1, 2))
    hp = {"stride": stride, "pad": pad, "output_padding": output_padding}
    Z, cache = conv_transpose_forward(A, W, b, hp)
    dZ = rng.standard_normal(Z.shape)
    dA, dW, db = conv_transpose_backward(dZ, cache)

    At = layout.to_torch(A).requires_grad_()
    # torch's transposed weight is (n_C_prev, n_C, f, f)
    Wt = torch.from_numpy(np.ascontiguousarray(W.transpose(2, 3, 0, 1))).requires_grad_()
    bt = torch.from_numpy(b.reshape(-1)).requires_grad_()
    Zt = F.conv_transpose2d(At, Wt, bt, stride=stride, padding=pad, output_padding=output_padding)
    Zt.backward(layout.to_torch(dZ))
    np.testing.assert_allclose(Z, layout.to_numpy(Zt), atol=1e-10)
    np.testing.assert_allclose(dA, layout.to_numpy(At.grad), atol=1e-10)
    np.testing.assert_allclose(dW, Wt.grad.numpy().transpose(2, 3, 0, 1), atol=1e-10)
    np.testing.assert_allclose(db.reshape(-1), bt.grad.numpy(), atol=1e-10)


def test_transposed_convolution_is_the_gradient_of_convolution(rng: np.random.Generator) -> None:
    # conv: (1, 7, 7, 3) -> (1, 3, 3, 4) with f=3, s=2, p=0; its input gradient is the
    # transposed convolution of dZ with the same filters, input and output channels swapped.
    A = rng.standard_normal((1, 7, 7, 3))
    W = rng.standard_normal((3, 3, 3, 4))
    Z, cache = conv_forward(A, W, np.zeros((1, 1, 1, 4)), {"stride": 2, "pad": 0})
    dZ = rng.standard_normal(Z.shape)
    dA, _, _ = conv_backward(dZ, cache)
    up, _ = conv_transpose_forward(dZ, W.transpose(0, 1, 3, 2), np.zeros((1, 1, 1, 3)), {"stride": 2, "pad": 0})
    np.testing.assert_allclose(up, dA, atol=1e-10)


def test_output_padding_must_be_smaller_than_the_stride() -> None:
    with pytest.raises(ValueError, match="output_padding"):
        conv_transpose_forward(
            np.zeros((1, 2, 2, 1)), np.zeros((3, 3, 1, 1)), np.zeros(1), {"stride": 1, "output_padding": 1}
        )

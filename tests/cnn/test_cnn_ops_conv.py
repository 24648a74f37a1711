"""faceapp.cnn.ops convolution: the notes' worked examples, sizes, and agreement with PyTorch."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceapp.cnn.ops import (
    conv1d_backward,
    conv1d_forward,
    conv1x1_forward,
    conv3d_backward,
    conv3d_forward,
    conv_backward,
    conv_forward,
    conv_single_step,
    depthwise_conv_forward,
    depthwise_separable_conv_forward,
    output_size,
    zero_pad,
)

VERTICAL = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=np.float64)
HORIZONTAL = VERTICAL.T.copy()  # [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]

# The 6x6 image of the notes' first edge-detection slide.
IMAGE_6X6 = np.array(
    [
        [3, 0, 1, 2, 7, 4],
        [1, 5, 8, 9, 3, 1],
        [2, 7, 2, 5, 1, 3],
        [0, 1, 3, 1, 7, 8],
        [4, 2, 1, 6, 2, 8],
        [2, 4, 5, 2, 3, 9],
    ],
    dtype=np.float64,
)


def conv2d_single(image: np.ndarray, kernel: np.ndarray, stride: int = 1, pad: int | str = 0) -> np.ndarray:
    """One grey image and one filter through conv_forward, as 2-D arrays."""
    Z, _ = conv_forward(
        image[None, :, :, None], kernel[:, :, None, None], np.zeros((1, 1, 1, 1)), {"stride": stride, "pad": pad}
    )
    return Z[0, :, :, 0]


def test_conv_single_step_is_the_slides_first_product() -> None:
    # 3x1 + 1x1 + 2x1 + 0x0 + 5x0 + 7x0 + 1x-1 + 8x-1 + 2x-1 = -5
    assert conv_single_step(IMAGE_6X6[:3, :3], VERTICAL, 0.0) == -5.0
    assert conv_single_step(IMAGE_6X6[:3, :3], VERTICAL, np.array([[[2.5]]])) == -2.5


def test_vertical_edge_example_6x6() -> None:
    expected = [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]]
    np.testing.assert_array_equal(conv2d_single(IMAGE_6X6, VERTICAL), expected)


def test_vertical_edge_bright_to_dark_and_dark_to_bright() -> None:
    bright_left = np.tile([10, 10, 10, 0, 0, 0], (6, 1)).astype(np.float64)
    np.testing.assert_array_equal(conv2d_single(bright_left, VERTICAL), np.tile([0, 30, 30, 0], (4, 1)))
    np.testing.assert_array_equal(conv2d_single(bright_left[:, ::-1], VERTICAL), np.tile([0, -30, -30, 0], (4, 1)))


def test_horizontal_edge_example() -> None:
    image = np.array([[10, 10, 10, 0, 0, 0]] * 3 + [[0, 0, 0, 10, 10, 10]] * 3, dtype=np.float64)
    expected = [[0, 0, 0, 0], [30, 10, -10, -30], [30, 10, -10, -30], [0, 0, 0, 0]]
    np.testing.assert_array_equal(conv2d_single(image, HORIZONTAL), expected)


def test_strided_convolution_example_with_the_courses_correction() -> None:
    image = np.array(
        [
            [2, 3, 7, 4, 6, 2, 9],
            [6, 6, 9, 8, 7, 4, 3],
            [3, 4, 8, 3, 8, 9, 7],
            [7, 8, 3, 6, 6, 3, 4],
            [4, 2, 1, 8, 3, 4, 6],
            [3, 2, 4, 1, 9, 8, 3],
            [0, 1, 3, 9, 2, 1, 4],
        ],
        dtype=np.float64,
    )
    kernel = np.array([[3, 4, 4], [1, 0, 2], [-1, 0, 3]], dtype=np.float64)
    # The slide shows 83 (row 1, column 3) and 127 (row 2, column 3). Those two are wrong: the
    # course's "strided convolution correction" and the arithmetic give 88 and 117. Row 1,
    # column 3 is the window at rows 0-2, columns 4-6:
    # 6*3 + 2*4 + 9*4 + 7*1 + 4*0 + 3*2 + 8*-1 + 9*0 + 7*3 = 88.
    expected = [[91, 100, 88], [69, 91, 117], [44, 72, 74]]
    result = conv2d_single(image, kernel, stride=2)
    assert result.shape == (3, 3)  # floor((7 + 0 - 3) / 2) + 1 = 3
    np.testing.assert_array_equal(result, expected)


def test_ten_3x3x3_filters_have_280_parameters() -> None:
    W = np.zeros((3, 3, 3, 10))
    b = np.zeros((1, 1, 1, 10))
    assert W.size + b.size == 280  # (3*3*3 + 1) * 10
    Z, _ = conv_forward(np.zeros((1, 6, 6, 3)), W, b, {"stride": 1, "pad": 0})
    assert Z.shape == (1, 4, 4, 10)  # 6x6x3 * ten 3x3x3 filters -> 4x4x10


def test_each_filter_sums_over_all_input_channels(rng: np.random.Generator) -> None:
    A = rng.standard_normal((2, 6, 6, 3))
    W = rng.standard_normal((3, 3, 3, 2))
    b = rng.standard_normal((1, 1, 1, 2))
    Z, _ = conv_forward(A, W, b, {"stride": 1, "pad": 0})
    for m, h, w, c in itertools.product(range(2), range(4), range(4), range(2)):
        assert Z[m, h, w, c] == pytest.approx(conv_single_step(A[m, h : h + 3, w : w + 3], W[..., c], b[0, 0, 0, c]))


@pytest.mark.parametrize(
    ("n", "f", "pad", "stride", "expected"),
    [
        (6, 3, 0, 1, 4),
        (7, 3, 0, 2, 3),
        (6, 3, 1, 1, 6),
        (32, 5, 0, 1, 28),
        (5, 5, 2, 1, 5),
        (8, 3, 0, 2, 3),
        (227, 11, 0, 4, 55),
    ],
)
def test_output_size_is_floor_of_n_plus_2p_minus_f_over_s_plus_1(
    n: int, f: int, pad: int, stride: int, expected: int
) -> None:
    assert output_size(n, f, pad, stride) == expected


def test_output_size_rejects_a_filter_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        output_size(2, 3)


def test_zero_pad_pads_only_height_and_width(rng: np.random.Generator) -> None:
    X = rng.standard_normal((4, 3, 3, 2))
    X_pad = zero_pad(X, 2)
    assert X_pad.shape == (4, 7, 7, 2)
    np.testing.assert_array_equal(X_pad[:, 2:5, 2:5], X)
    assert not X_pad[:, :2].any() and not X_pad[:, :, 5:].any()


# Every filter size x stride x padding combination ("same" only with odd filters).
CONV_CASES = [
    (f, s, p)
    for f, s, p in itertools.product([1, 2, 3, 5], [1, 2, 3], [0, 1, 2, "valid", "same"])
    if not (p == "same" and f % 2 == 0)
]


@pytest.mark.parametrize(("f", "stride", "pad"), CONV_CASES)
def test_conv_forward_and_backward_agree_with_torch(f: int, stride: int, pad, rng: np.random.Generator, layout) -> None:
    A = rng.standard_normal((2, 7, 8, 3))
    W = rng.standard_normal((f, f, 3, 4))
    b = rng.standard_normal((1, 1, 1, 4))
    Z, cache = conv_forward(A, W, b, {"stride": stride, "pad": pad})
    dZ = rng.standard_normal(Z.shape)
    dA, dW, db = conv_backward(dZ, cache)

    At = layout.to_torch(A).requires_grad_()
    Wt = layout.weight(W).requires_grad_()
    bt = torch.from_numpy(b.reshape(-1)).requires_grad_()
    torch_pad = pad if isinstance(pad, int) else {"valid": 0, "same": (f - 1) // 2}[pad]
    Zt = F.conv2d(At, Wt, bt, stride=stride, padding=torch_pad)
    Zt.backward(layout.to_torch(dZ))

    np.testing.assert_allclose(Z, layout.to_numpy(Zt), atol=1e-10)
    np.testing.assert_allclose(dA, layout.to_numpy(At.grad), atol=1e-10)
    np.testing.assert_allclose(dW, layout.weight_to_numpy(Wt.grad), atol=1e-10)
    np.testing.assert_allclose(db.reshape(-1), bt.grad.numpy(), atol=1e-10)


def test_same_padding_keeps_the_size_at_stride_1(rng: np.random.Generator) -> None:
    Z, _ = conv_forward(
        rng.standard_normal((1, 9, 6, 2)),
        rng.standard_normal((5, 5, 2, 3)),
        np.zeros((1, 1, 1, 3)),
        {"stride": 1, "pad": "same"},
    )
    assert Z.shape == (1, 9, 6, 3)


def test_same_padding_with_an_even_filter_is_an_error() -> None:
    with pytest.raises(ValueError, match="odd"):
        conv_forward(
            np.zeros((1, 6, 6, 1)), np.zeros((2, 2, 1, 1)), np.zeros((1, 1, 1, 1)), {"stride": 1, "pad": "same"}
        )


def test_mismatched_channels_and_unknown_hyperparameters_are_errors() -> None:
    with pytest.raises(ValueError, match="channels"):
        conv_forward(np.zeros((1, 6, 6, 3)), np.zeros((3, 3, 2, 1)), np.zeros((1, 1, 1, 1)), {"stride": 1, "pad": 0})
    with pytest.raises(ValueError, match="unknown hyperparameters"):
        conv_forward(np.zeros((1, 6, 6, 1)), np.zeros((3, 3, 1, 1)), np.zeros((1, 1, 1, 1)), {"strides": 1})
    with pytest.raises(ValueError, match="padding"):
        conv_forward(np.zeros((1, 6, 6, 1)), np.zeros((3, 3, 1, 1)), np.zeros((1, 1, 1, 1)), {"pad": "full"})


def test_a_batch_of_64_32x32x16_runs_well_under_a_second(rng: np.random.Generator) -> None:
    A = rng.standard_normal((64, 32, 32, 16))
    W = rng.standard_normal((3, 3, 16, 16))
    b = rng.standard_normal((1, 1, 1, 16))
    best = float("inf")
    for _ in range(3):  # the best of three, so that a busy machine does not fail the test
        start = time.perf_counter()
        Z, cache = conv_forward(A, W, b, {"stride": 1, "pad": 1})
        conv_backward(Z, cache)
        best = min(best, time.perf_counter() - start)
    assert best < 1.0, f"forward + backward took {best:.2f} s"


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (2, 1), (3, "same")])
def test_conv1d_agrees_with_torch(stride: int, pad, rng: np.random.Generator, layout) -> None:
    A = rng.standard_normal((2, 14, 3))
    W = rng.standard_normal((5, 3, 4))
    b = rng.standard_normal((1, 1, 4))
    Z, cache = conv1d_forward(A, W, b, {"stride": stride, "pad": pad})
    dZ = rng.standard_normal(Z.shape)
    dA, dW, _ = conv1d_backward(dZ, cache)
    At = layout.to_torch(A).requires_grad_()
    Wt = layout.weight(W).requires_grad_()
    Zt = F.conv1d(At, Wt, torch.from_numpy(b.reshape(-1)), stride=stride, padding=2 if pad == "same" else pad)
    Zt.backward(layout.to_torch(dZ))
    np.testing.assert_allclose(Z, layout.to_numpy(Zt), atol=1e-10)
    np.testing.assert_allclose(dA, layout.to_numpy(At.grad), atol=1e-10)
    np.testing.assert_allclose(dW, layout.weight_to_numpy(Wt.grad), atol=1e-10)


def test_conv1d_notes_example_sizes() -> None:
    # An EKG of 14 samples * 16 filters of 5 -> 10 x 16; * 32 filters of 5 x 16 -> 6 x 32.
    Z1, _ = conv1d_forward(np.zeros((1, 14, 1)), np.zeros((5, 1, 16)), np.zeros((1, 1, 16)), {"stride": 1, "pad": 0})
    Z2, _ = conv1d_forward(Z1, np.zeros((5, 16, 32)), np.zeros((1, 1, 32)), {"stride": 1, "pad": 0})
    assert Z1.shape == (1, 10, 16) and Z2.shape == (1, 6, 32)


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (2, 1)])
def test_conv3d_agrees_with_torch(stride: int, pad: int, rng: np.random.Generator, layout) -> None:
    A = rng.standard_normal((2, 5, 6, 4, 2))
    W = rng.standard_normal((3, 3, 3, 2, 3))
    b = rng.standard_normal((1, 1, 1, 1, 3))
    Z, cache = conv3d_forward(A, W, b, {"stride": stride, "pad": pad})
    dZ = rng.standard_normal(Z.shape)
    dA, dW, _ = conv3d_backward(dZ, cache)
    At = layout.to_torch(A).requires_grad_()
    Wt = layout.weight(W).requires_grad_()
    Zt = F.conv3d(At, Wt, torch.from_numpy(b.reshape(-1)), stride=stride, padding=pad)
    Zt.backward(layout.to_torch(dZ))
    np.testing.assert_allclose(Z, layout.to_numpy(Zt), atol=1e-10)
    np.testing.assert_allclose(dA, layout.to_numpy(At.grad), atol=1e-10)
    np.testing.assert_allclose(dW, layout.weight_to_numpy(Wt.grad), atol=1e-10)


def test_conv3d_notes_example_sizes() -> None:
    # A 14x14x14x1 volume * 16 filters of 5x5x5x1 -> 10x10x10x16; * 32 of 5x5x5x16 -> 6x6x6x32.
    Z1, _ = conv3d_forward(
        np.zeros((1, 14, 14, 14, 1)), np.zeros((5, 5, 5, 1, 16)), np.zeros(16), {"stride": 1, "pad": 0}
    )
    Z2, _ = conv3d_forward(Z1, np.zeros((5, 5, 5, 16, 32)), np.zeros(32), {"stride": 1, "pad": 0})
    assert Z1.shape == (1, 10, 10, 10, 16) and Z2.shape == (1, 6, 6, 6, 32)


def test_1x1_convolution_shrinks_channels_and_equals_conv_forward(rng: np.random.Generator) -> None:
    A = rng.standard_normal((1, 28, 28, 192))
    W = rng.standard_normal((1, 1, 192, 32))
    b = rng.standard_normal((1, 1, 1, 32))
    Z = conv1x1_forward(A, W, b)
    assert Z.shape == (1, 28, 28, 32)  # height and width kept, 192 channels -> 32
    Z_conv, _ = conv_forward(A, W, b, {"stride": 1, "pad": 0})
    np.testing.assert_allclose(Z, Z_conv, atol=1e-10)
    # At one pixel it is a fully connected layer over the channels.
    np.testing.assert_allclose(Z[0, 5, 7], A[0, 5, 7] @ W[0, 0] + b.reshape(-1), atol=1e-10)


@pytest.mark.parametrize(("stride", "pad"), [(1, 0), (2, 1), (1, "same")])
def test_depthwise_convolution_agrees_with_grouped_torch_conv(
    stride: int, pad, rng: np.random.Generator, layout
) -> None:
    A = rng.standard_normal((2, 6, 6, 3))
    W = rng.standard_normal((3, 3, 3))
    b = rng.standard_normal(3)
    Z = depthwise_conv_forward(A, W, b, {"stride": stride, "pad": pad})
    Wt = torch.from_numpy(np.ascontiguousarray(W.transpose(2, 0, 1)[:, None]))  # (n_C, 1, f, f)
    Zt = F.conv2d(
        layout.to_torch(A), Wt, torch.from_numpy(b), stride=stride, padding=1 if pad == "same" else pad, groups=3
    )
    np.testing.assert_allclose(Z, layout.to_numpy(Zt), atol=1e-10)


def test_depthwise_separable_notes_example_shapes(rng: np.random.Generator) -> None:
    # 6x6x3 -> depthwise 3x3 -> 4x4x3 -> pointwise, 5 filters of 1x1x3 -> 4x4x5.
    A = rng.standard_normal((1, 6, 6, 3))
    Z = depthwise_separable_conv_forward(
        A,
        rng.standard_normal((3, 3, 3)),
        np.zeros(3),
        rng.standard_normal((1, 1, 3, 5)),
        np.zeros(5),
        {"stride": 1, "pad": 0},
    )
    assert Z.shape == (1, 4, 4, 5)

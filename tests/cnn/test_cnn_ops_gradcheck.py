"""faceapp.cnn.ops gradient checking, and every from-scratch backward pass checked with it."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.cnn.ops import (
    conv3d_backward,
    conv3d_forward,
    conv_backward,
    conv_forward,
    conv_transpose_backward,
    conv_transpose_forward,
    gradient_check,
    numerical_gradient,
    pool_backward,
    pool_forward,
    relative_difference,
)

# A backward pass is right when the relative difference is below about 1e-7 (course 2).
TOLERANCE = 1e-7


def test_numerical_gradient_of_a_quadratic_is_2x() -> None:
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(numerical_gradient(lambda v: float(np.sum(v**2)), x), 2 * x, atol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # restored


def test_relative_difference_values() -> None:
    assert relative_difference(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_difference(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert relative_difference(np.array([3.0, 0.0]), np.array([0.0, 4.0])) == pytest.approx(5.0 / 7.0)


def test_a_wrong_gradient_is_caught() -> None:
    x = np.array([1.0, 2.0, 3.0])
    assert gradient_check(lambda v: float(np.sum(v**2)), x, 2 * x + np.array([0, 0, 0.1])) > 1e-3


@pytest.mark.parametrize(("stride", "pad"), [(1, 1), (2, 0), (2, "same")])
def test_conv_backward_passes_gradient_check(stride: int, pad, rng: np.random.Generator) -> None:
    A = rng.standard_normal((2, 5, 5, 2))
    W = rng.standard_normal((3, 3, 2, 3))
    b = rng.standard_normal((1, 1, 1, 3))
    hp = {"stride": stride, "pad": pad}
    Z, cache = conv_forward(A, W, b, hp)
    R = rng.standard_normal(Z.shape)  # cost = sum(Z * R), so dZ = R
    dA, dW, db = conv_backward(R, cache)
    assert gradient_check(lambda a: float(np.sum(conv_forward(a, W, b, hp)[0] * R)), A, dA) < TOLERANCE
    assert gradient_check(lambda w: float(np.sum(conv_forward(A, w, b, hp)[0] * R)), W, dW) < TOLERANCE
    assert gradient_check(lambda c: float(np.sum(conv_forward(A, W, c, hp)[0] * R)), b, db) < TOLERANCE


def test_conv3d_backward_passes_gradient_check(rng: np.random.Generator) -> None:
    A = rng.standard_normal((1, 4, 4, 4, 1))
    W = rng.standard_normal((2, 2, 2, 1, 2))
    b = rng.standard_normal((1, 1, 1, 1, 2))
    hp = {"stride": 2, "pad": 1}
    Z, cache = conv3d_forward(A, W, b, hp)
    R = rng.standard_normal(Z.shape)
    dA, dW, _ = conv3d_backward(R, cache)
    assert gradient_check(lambda a: float(np.sum(conv3d_forward(a, W, b, hp)[0] * R)), A, dA) < TOLERANCE
    assert gradient_check(lambda w: float(np.sum(conv3d_forward(A, w, b, hp)[0] * R)), W, dW) < TOLERANCE


@pytest.mark.parametrize(("mode", "f", "stride"), [("max", 2, 2), ("max", 3, 1), ("average", 2, 2), ("average", 3, 2)])
def test_pool_backward_passes_gradient_check(mode: str, f: int, stride: int, rng: np.random.Generator) -> None:
    A = rng.standard_normal((2, 5, 5, 2))
    hp = {"f": f, "stride": stride}
    P, cache = pool_forward(A, hp, mode)
    R = rng.standard_normal(P.shape)
    dA = pool_backward(R, cache, mode)
    assert gradient_check(lambda a: float(np.sum(pool_forward(a, hp, mode)[0] * R)), A, dA) < TOLERANCE


def test_conv_transpose_backward_passes_gradient_check(rng: np.random.Generator) -> None:
    A = rng.standard_normal((2, 3, 3, 2))
    W = rng.standard_normal((3, 3, 2, 2))
    b = rng.standard_normal((1, 1, 1, 2))
    hp = {"stride": 2, "pad": 1, "output_padding": 1}
    Z, cache = conv_transpose_forward(A, W, b, hp)
    R = rng.standard_normal(Z.shape)
    dA, dW, db = conv_transpose_backward(R, cache)
    assert gradient_check(lambda a: float(np.sum(conv_transpose_forward(a, W, b, hp)[0] * R)), A, dA) < TOLERANCE
    assert gradient_check(lambda w: float(np.sum(conv_transpose_forward(A, w, b, hp)[0] * R)), W, dW) < TOLERANCE
    assert gradient_check(lambda c: float(np.sum(conv_transpose_forward(A, W, c, hp)[0] * R)), b, db) < TOLERANCE

"""faceapp.cnn.ops pooling: the lecture's examples, the backward pass, agreement with PyTorch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceapp.cnn.ops import create_mask_from_window, distribute_value, pool_backward, pool_forward


def pool2d(image: np.ndarray, f: int, stride: int, mode: str) -> np.ndarray:
    A, _ = pool_forward(np.asarray(image, dtype=np.float64)[None, :, :, None], {"f": f, "stride": stride}, mode)
    return A[0, :, :, 0]


def test_max_pooling_example_4x4_f2_s2() -> None:
    image = [[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]]
    np.testing.assert_array_equal(pool2d(image, 2, 2, "max"), [[9, 2], [6, 3]])


def test_max_pooling_example_5x5_f3_s1() -> None:
    image = [[1, 3, 2, 1, 3], [2, 9, 1, 1, 5], [1, 3, 2, 3, 2], [8, 3, 5, 1, 0], [5, 6, 1, 2, 9]]
    np.testing.assert_array_equal(pool2d(image, 3, 1, "max"), [[9, 9, 5], [9, 9, 5], [8, 6, 9]])


def test_average_pooling_example_4x4_f2_s2() -> None:
    image = [[1, 3, 2, 1], [2, 9, 1, 1], [1, 4, 2, 3], [5, 6, 1, 2]]
    np.testing.assert_array_equal(pool2d(image, 2, 2, "average"), [[3.75, 1.25], [4, 2]])


def test_pooling_keeps_channels_apart(rng: np.random.Generator) -> None:
    A = rng.standard_normal((2, 4, 4, 3))
    P, _ = pool_forward(A, {"f": 2, "stride": 2}, "max")
    assert P.shape == (2, 2, 2, 3)
    for c in range(3):
        np.testing.assert_array_equal(P[..., c], pool_forward(A[..., c : c + 1], {"f": 2, "stride": 2})[0][..., 0])


def test_max_pool_backward_routes_the_gradient_to_the_maximum() -> None:
    image = np.array([[1, 3], [2, 9]], dtype=np.float64)[None, :, :, None]
    _, cache = pool_forward(image, {"f": 2, "stride": 2}, "max")
    dA_prev = pool_backward(np.full((1, 1, 1, 1), 5.0), cache, "max")
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], [[0, 0], [0, 5]])


def test_average_pool_backward_spreads_the_gradient_evenly() -> None:
    _, cache = pool_forward(np.zeros((1, 2, 2, 1)), {"f": 2, "stride": 2}, "average")
    dA_prev = pool_backward(np.full((1, 1, 1, 1), 2.0), cache, "average")
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], [[0.5, 0.5], [0.5, 0.5]])


def test_course_helpers_mask_and_distribute() -> None:
    np.testing.assert_array_equal(create_mask_from_window(np.array([[1, 3], [4, 2]])), [[False, False], [True, False]])
    np.testing.assert_array_equal(distribute_value(2.0, (2, 2)), [[0.5, 0.5], [0.5, 0.5]])


def test_unknown_mode_is_an_error_naming_the_modes() -> None:
    with pytest.raises(ValueError, match="'max', 'average'"):
        pool_forward(np.zeros((1, 4, 4, 1)), {"f": 2, "stride": 2}, mode="min")


@pytest.mark.parametrize(("f", "stride", "mode"), list(itertools.product([1, 2, 3], [1, 2, 3], ["max", "average"])))
def test_pool_forward_and_backward_agree_with_torch(
    f: int, stride: int, mode: str, rng: np.random.Generator, layout
) -> None:
    A = rng.standard_normal((2, 7, 8, 3))
    P, cache = pool_forward(A, {"f": f, "stride": stride}, mode)
    dP = rng.standard_normal(P.shape)
    dA = pool_backward(dP, cache, mode)

    At = layout.to_torch(A).requires_grad_()
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    Pt = pool(At, kernel_size=f, stride=stride)
    Pt.backward(layout.to_torch(dP))
    np.testing.assert_allclose(P, layout.to_numpy(Pt), atol=1e-12)
    np.testing.assert_allclose(dA, layout.to_numpy(At.grad), atol=1e-12)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum_like_torch(layout) -> None:
    A = np.ones((1, 2, 2, 1))
    _, cache = pool_forward(A, {"f": 2, "stride": 2}, "max")
    dA = pool_backward(np.ones((1, 1, 1, 1)), cache, "max")
    At = layout.to_torch(A).requires_grad_()
    F.max_pool2d(At, 2).backward(torch.ones(1, 1, 1, 1, dtype=torch.float64))
    np.testing.assert_array_equal(dA, layout.to_numpy(At.grad))
    assert dA.sum() == 1.0

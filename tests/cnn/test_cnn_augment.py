"""faceapp.cnn.augment: hand-computed transforms, and keypoints that follow the image content."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.cnn.augment import (
    FIVE_POINT_FLIP,
    Augmenter,
    affine,
    color_shift,
    flip_map_from_pairs,
    local_warp,
    mirror,
    pca_color,
    random_crop,
    rgb_pca,
    rotate,
    shear,
    visible,
)


def blob_image(x: float, y: float, shape: tuple[int, int] = (31, 41), sigma: float = 1.5) -> np.ndarray:
    """A float image (H, W, 3) with a Gaussian blob centred at pixel (x, y)."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    blob = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.repeat(blob[..., None], 3, axis=2)


def blob_centre(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) of the blob around the brightest pixel."""
    grey = image[..., 0].astype(np.float64)
    r, c = np.unravel_index(np.argmax(grey), grey.shape)
    window = grey[max(r - 5, 0) : r + 6, max(c - 5, 0) : c + 6]
    ys, xs = np.mgrid[max(r - 5, 0) : r + 6, max(c - 5, 0) : c + 6][:, : window.shape[0], : window.shape[1]]
    return np.array([(xs * window).sum(), (ys * window).sum()]) / window.sum()


KEYPOINT = np.array([[14.0, 11.0]])


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda im, kp: mirror(im, kp), id="mirror"),
        pytest.param(lambda im, kp: rotate(im, 25.0, kp), id="rotate"),
        pytest.param(lambda im, kp: rotate(im, -40.0, kp, center=(10.0, 20.0)), id="rotate-about-a-point"),
        pytest.param(lambda im, kp: shear(im, 0.3, -0.2, kp), id="shear"),
        pytest.param(lambda im, kp: affine(im, np.array([[0.9, 0.1, 2.0], [-0.05, 1.1, -1.5]]), kp), id="affine"),
        pytest.param(lambda im, kp: local_warp(im, kp, rng=np.random.default_rng(3), strength=0.3), id="local-warp"),
        pytest.param(lambda im, kp: random_crop(im, (25, 35), kp, rng=np.random.default_rng(4)), id="crop"),
    ],
)
def test_keypoints_follow_the_content(transform) -> None:
    image = blob_image(*KEYPOINT[0])
    out = transform(image, KEYPOINT)
    assert out.image.dtype == image.dtype
    np.testing.assert_allclose(blob_centre(out.image), out.keypoints[0], atol=0.35)


def test_mirror_hand_case_and_landmark_swap() -> None:
    image = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    out = mirror(image, np.array([[0.0, 0.0], [2.0, 1.0]]))
    np.testing.assert_array_equal(out.image, [[3, 2, 1], [6, 5, 4]])
    np.testing.assert_array_equal(out.keypoints, [[2.0, 0.0], [0.0, 1.0]])
    # Five landmarks: left eye (10, 5), right eye (20, 5), nose, left and right mouth corners.
    face = np.array([[10.0, 5.0], [20.0, 5.0], [15.0, 10.0], [11.0, 15.0], [19.0, 15.0]])
    flipped = mirror(np.zeros((30, 31, 3), np.uint8), face, flip_indices=FIVE_POINT_FLIP).keypoints
    # In the mirrored image the left eye is the old right eye, mirrored: x = 30 - 20 = 10.
    np.testing.assert_array_equal(flipped, [[10.0, 5.0], [20.0, 5.0], [15.0, 10.0], [11.0, 15.0], [19.0, 15.0]])


def test_flip_map_from_pairs() -> None:
    assert flip_map_from_pairs(5, [(0, 1), (3, 4)]) == FIVE_POINT_FLIP
    with pytest.raises(ValueError, match="permutation"):
        mirror(np.zeros((4, 4)), np.zeros((2, 2)), flip_indices=(0, 0))


def test_rotate_by_90_degrees_is_rot90() -> None:
    image = np.arange(25, dtype=np.float64).reshape(5, 5)
    out = rotate(image, 90.0, np.array([[3.0, 2.0]]))
    np.testing.assert_allclose(out.image, np.rot90(image), atol=1e-9)  # counter-clockwise
    np.testing.assert_allclose(out.keypoints, [[2.0, 1.0]], atol=1e-12)  # right of the centre -> above it


def test_shear_moves_rows_in_proportion_to_their_height() -> None:
    kp = np.array([[10.0, 17.0], [10.0, 11.0]])  # 2 rows below the centre row (y = 15) and 4 above
    out = shear(np.zeros((31, 41)), 0.5, 0.0, kp)
    np.testing.assert_allclose(out.keypoints, [[11.0, 17.0], [8.0, 11.0]])


def test_affine_fills_outside_and_keeps_uint8() -> None:
    image = np.full((4, 4, 3), 100, dtype=np.uint8)
    out = affine(image, np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]]), fill=7)  # move 2 pixels right
    assert out.image.dtype == np.uint8
    assert (out.image[:, :2] == 7).all() and (out.image[:, 2:] == 100).all()
    assert out.keypoints.shape == (0, 2)


def test_local_warp_with_zero_strength_is_the_identity() -> None:
    image = (np.random.default_rng(0).random((10, 12, 3)) * 255).astype(np.uint8)
    out = local_warp(image, KEYPOINT, rng=np.random.default_rng(1), strength=0.0)
    np.testing.assert_array_equal(out.image, image)
    np.testing.assert_array_equal(out.keypoints, KEYPOINT)
    with pytest.raises(ValueError, match="invertible"):
        local_warp(image, rng=np.random.default_rng(1), strength=0.6)


def test_random_crop_is_a_window_of_the_image() -> None:
    image = np.arange(10 * 12, dtype=np.float64).reshape(10, 12)
    out = random_crop(image, (4, 5), np.array([[6.0, 5.0]]), rng=np.random.default_rng(7))
    top, left = divmod(int(out.image[0, 0]), 12)
    np.testing.assert_array_equal(out.image, image[top : top + 4, left : left + 5])
    np.testing.assert_array_equal(out.keypoints, [[6.0 - left, 5.0 - top]])
    with pytest.raises(ValueError, match="does not fit"):
        random_crop(image, (11, 5), rng=np.random.default_rng(0))


def test_visible_keypoints() -> None:
    points = np.array([[0.0, 0.0], [-1.0, 3.0], [4.4, 2.0], [4.6, 2.0]])
    np.testing.assert_array_equal(visible(points, (3, 5)), [True, False, True, False])


def test_color_shift_hand_case_with_clipping() -> None:
    image = np.array([[[10, 250, 100]]], dtype=np.uint8)
    out = color_shift(image, (20, -20, 20))
    np.testing.assert_array_equal(out.image, [[[30, 230, 120]]])
    np.testing.assert_array_equal(color_shift(image, (250, 10, -200)).image, [[[255, 255, 0]]])
    np.testing.assert_allclose(color_shift(np.full((1, 1, 3), 0.5), (0.1, -0.6, 0.0)).image, [[[0.6, 0.0, 0.5]]])


def red_blue_image() -> np.ndarray:
    """Colours that vary along red + blue only; green is constant."""
    t = np.linspace(0.1, 0.9, 64).reshape(8, 8)
    return np.stack([t, np.full_like(t, 0.5), t], axis=2)


def test_rgb_pca_finds_the_red_blue_axis() -> None:
    eigenvalues, eigenvectors = rgb_pca(red_blue_image())
    assert eigenvalues[0] > 0 and eigenvalues[1:] == pytest.approx([0, 0], abs=1e-12)
    np.testing.assert_allclose(np.abs(eigenvectors[:, 0]), [2**-0.5, 0, 2**-0.5], atol=1e-12)


def test_pca_color_shifts_red_and_blue_but_not_green() -> None:
    image = red_blue_image()
    out = pca_color(image, rng=np.random.default_rng(0), std=0.5)
    shift = out.image - image
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0], shift.shape), atol=1e-12)  # same for every pixel
    assert abs(shift[0, 0, 0]) > 1e-3
    assert shift[0, 0, 0] == pytest.approx(shift[0, 0, 2]) and shift[0, 0, 1] == pytest.approx(0, abs=1e-12)


def test_augmenter_is_reproducible_and_keeps_keypoints_on_the_content() -> None:
    image = (blob_image(20.0, 15.0) * 255).astype(np.uint8)
    augment = Augmenter(
        mirror_probability=1.0,
        max_rotation=15,
        max_shear=0.1,
        warp_probability=1.0,
        crop_size=(27, 37),
        max_color_shift=0.0,
        pca_std=0.0,
    )
    first = augment(image, np.array([[20.0, 15.0]]), rng=np.random.default_rng(5))
    second = augment(image, np.array([[20.0, 15.0]]), rng=np.random.default_rng(5))
    np.testing.assert_array_equal(first.image, second.image)
    assert first.image.shape == (27, 37, 3) and first.image.dtype == np.uint8
    np.testing.assert_allclose(blob_centre(first.image), first.keypoints[0], atol=0.4)

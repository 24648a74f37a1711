"""faceapp.cnn.visualize: measured receptive fields and the nine most activating patches."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import torch
from torch import nn

from faceapp.cnn.visualize import ReceptiveField, receptive_field, save_patch_grid, top_patches, visualize_unit


def test_receptive_field_of_a_conv_pool_stack() -> None:
    # conv 3x3 -> conv 3x3 -> max pool 2 -> conv 3x3 (padding 1): output i sees pool rows
    # i-1..i+1, conv2 rows 2i-2..2i+3, input rows 2i-2..2i+7: size 10, stride 2, offset -2.
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1)
    )
    assert receptive_field(model, "5", (3, 32, 32)) == ReceptiveField(size=(10, 10), stride=(2, 2), offset=(-2, -2))
    assert receptive_field(model, "0", (3, 32, 32)) == ReceptiveField(size=(3, 3), stride=(1, 1), offset=(0, 0))


def test_receptive_field_grows_the_probe_when_the_field_is_larger_than_the_image() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 7, stride=2), nn.ReLU(), nn.Conv2d(4, 4, 7, stride=2))
    field = receptive_field(model, "2", (1, 8, 8))  # 7 + 6 * 2 = 19 pixels > 8
    assert field == ReceptiveField(size=(19, 19), stride=(4, 4), offset=(0, 0))


def bright_square_images(n: int = 12, size: int = 16) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Image k is black with a 3x3 square of brightness (k + 1) / n at a known place."""
    rng = np.random.default_rng(0)
    images = torch.zeros(n, 3, size, size)
    places = []
    for k in range(n):
        r, c = (int(v) for v in rng.integers(2, size - 5, size=2))
        images[k, :, r : r + 3, c : c + 3] = (k + 1) / n
        places.append((r, c))
    return images, places


def square_detector() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 2, 5), nn.ReLU())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].weight[0] = 1.0  # unit 0 sums a 5x5x3 window
        model[0].bias.zero_()
    return model


def test_top_patches_are_the_brightest_squares_in_order() -> None:
    images, places = bright_square_images()
    patches = top_patches(square_detector(), "0", unit=0, images=images)
    assert [p.image_index for p in patches] == list(range(11, 2, -1))  # the nine brightest, strongest first
    best = patches[0]
    assert best.activation == pytest.approx(27.0)  # 3 x 3 x 3 pixels of brightness 1
    assert best.crop.shape == (5, 5, 3)
    top, left, bottom, right = best.box
    r, c = places[11]
    assert top <= r and r + 3 <= bottom and left <= c and c + 3 <= right  # the patch contains the square
    assert best.crop.sum() == pytest.approx(27.0)  # all of it (display images are scaled to max 1)


def test_several_patches_per_image_when_asked() -> None:
    images, _ = bright_square_images()
    patches = top_patches(square_detector(), "0", unit=0, images=images, one_per_image=False)
    assert len(patches) == 9 and all(p.image_index == 11 for p in patches)  # 9 windows over the brightest square
    assert len({p.position for p in patches}) == 9


def test_crops_come_from_the_display_images_and_are_padded_at_the_border() -> None:
    model = nn.Sequential(nn.Conv2d(3, 1, 3, padding=1))
    images = torch.zeros(1, 3, 4, 4)
    images[0, :, 0, 0] = 1.0
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
    display = np.full((1, 4, 4, 3), 200, dtype=np.uint8)
    patch = top_patches(model, "0", unit=0, images=images, display_images=display, k=1)[0]
    # The corner pixel is seen by the 4 positions around it; the first maximum is (0, 0), whose
    # field starts one pixel outside the image (padding 1).
    assert patch.position == (0, 0) and patch.box == (0, 0, 2, 2)
    assert patch.crop.dtype == np.uint8 and patch.crop.shape == (3, 3, 3)
    assert (patch.crop[0] == 0).all() and (patch.crop[1:, 1:] == 200).all()


def test_unknown_unit_and_layer_are_errors() -> None:
    images, _ = bright_square_images()
    with pytest.raises(ValueError, match="unit 5 does not exist"):
        top_patches(square_detector(), "0", unit=5, images=images)
    with pytest.raises(ValueError, match="unknown layers"):
        top_patches(square_detector(), "conv", unit=0, images=images)


def test_the_grid_is_a_png(tmp_path) -> None:
    images, _ = bright_square_images()
    patches = visualize_unit(square_detector(), "0", 0, images, tmp_path / "unit0.png")
    assert len(patches) == 9
    grid = matplotlib.image.imread(tmp_path / "unit0.png")
    assert grid.shape[:2] == (640, 600)  # 6 x 6.4 inches (3 x 3 patches plus a title) at 100 dpi
    assert grid[..., :3].std() > 0.05
    few = save_patch_grid(patches[:2], tmp_path / "few.png")  # still a 3x3 grid, blanks allowed
    assert matplotlib.image.imread(few).shape[:2] == (600, 600)

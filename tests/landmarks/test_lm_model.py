"""The network's pieces: soft-argmax, transfer of the face ResNet's layers, the crop warp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceapp.landmarks.augment import apply_affine, crop_image, crop_matrix, invert_affine, warp_batch
from faceapp.landmarks.model import OFFSET, STRIDE, LandmarkNet, landmark_net, soft_argmax


def test_soft_argmax_reads_a_sharp_peak_and_the_mean_of_two():
    logits = torch.full((1, 2, 8, 10), -1e4)
    logits[0, 0, 3, 7] = 0.0  # one cell: exactly (x=7, y=3)
    logits[0, 1, 2, 1] = logits[0, 1, 6, 5] = 0.0  # two equal cells: their midpoint
    xy, prob = soft_argmax(logits)
    assert xy[0, 0].tolist() == pytest.approx([7.0, 3.0])
    assert xy[0, 1].tolist() == pytest.approx([3.0, 4.0])
    assert prob.sum(dim=(2, 3))[0].tolist() == pytest.approx([1.0, 1.0])


def test_output_grid_maps_onto_input_pixels():
    # cell j of the 1/4 grid is centred on input pixel 4 j + 5 (7x7/2 conv, then 3x3/2 pool, unpadded)
    net = LandmarkNet()
    feats = net.forward_features(torch.zeros(1, 3, 160, 160))
    assert [f.shape[1] for f in feats] == [32, 64, 128]
    assert feats[0].shape[-1] == 38 and (STRIDE, OFFSET) == (4.0, 5.0)
    assert STRIDE * (feats[0].shape[-1] - 1) + OFFSET <= 159


def test_backbone_starts_from_the_face_resnet_weights():
    from faceapp.embed.dlib_resnet import DlibResNet

    face = DlibResNet()
    torch.nn.init.normal_(face.conv1.weight)
    torch.nn.init.normal_(face.blocks[8].conv2.weight)
    net = landmark_net(backbone_state=face.state_dict())
    assert torch.equal(net.conv1.weight, face.conv1.weight)
    assert torch.equal(net.stage3[1].conv2.weight, face.blocks[8].conv2.weight)  # block 8 = stage 3, second
    points = net(torch.zeros(2, 3, 160, 160))
    assert points.shape == (2, 68, 2) and not net.training


def test_crop_matrix_centres_the_box_and_inverts():
    m = crop_matrix((100, 50, 200, 170), 160, margin=1.4, shift_y=0.12)
    centre = apply_affine(m, np.array([[150.0, 110.0 + 0.12 * 120]]))[0]
    assert centre.tolist() == pytest.approx([79.5, 79.5])
    assert m[0, 0] == pytest.approx(160 / (1.4 * 110))
    pts = np.random.default_rng(0).uniform(0, 300, (5, 2))
    assert np.allclose(apply_affine(invert_affine(m), apply_affine(m, pts)), pts)


def test_torch_warp_matches_the_opencv_crop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 140, 3)).astype(np.uint8)
    m = crop_matrix((30, 20, 100, 110), 64)
    ref = crop_image(image, m, 64).astype(np.float32)
    t = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    got = warp_batch(t, torch.tensor(m[None], dtype=torch.float32), 64)[0].permute(1, 2, 0).numpy()
    inside = (slice(2, -2), slice(2, -2))
    assert np.abs(got[inside] - ref[inside]).max() <= 1.0  # OpenCV rounds to uint8

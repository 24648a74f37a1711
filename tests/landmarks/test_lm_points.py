"""Point order, mirroring and the NME / eye-aspect-ratio arithmetic on hand-made points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceapp.landmarks.augment import AugmentConfig, random_matrices, warp_batch, warp_points
from faceapp.landmarks.points import CONTOURS, MIRROR, mirror_points, nme, outer_eye_distance, read_pts
from faceapp.landmarks.pose import FACE_MODEL_3D, eye_aspect_ratio, eye_aspect_ratios


def frontal_points(width: float = 200.0) -> np.ndarray:
    """The generic face seen straight on, centred in a ``width``-pixel image (y down)."""
    p = FACE_MODEL_3D[:, :2] * np.array([1.0, -1.0])
    return p + np.array([(width - 1) / 2, 100.0])


def test_mirror_permutation_pairs_the_right_points():
    assert np.array_equal(MIRROR[MIRROR], np.arange(68))  # an involution
    assert [MIRROR[i] for i in (0, 4, 8, 16)] == [16, 12, 8, 0]  # jaw ends swap, chin stays
    assert (MIRROR[17], MIRROR[21]) == (26, 22)  # brows
    assert [MIRROR[i] for i in (27, 30, 33)] == [27, 30, 33]  # nose midline
    assert (MIRROR[31], MIRROR[35]) == (35, 31)
    assert [MIRROR[i] for i in (36, 37, 38, 39, 40, 41)] == [45, 44, 43, 42, 47, 46]  # eyes
    assert [MIRROR[i] for i in (48, 51, 54, 57, 60, 62, 64, 66)] == [54, 51, 48, 57, 64, 62, 60, 66]


def test_the_drawing_contours_cover_every_point_once():
    flat = [i for c in CONTOURS for i in c]
    assert sorted(set(flat)) == list(range(68))
    assert len(flat) - len(set(flat)) == 5  # the 4 closed loops repeat a point, the bridge joins 33


def test_the_standard_order_puts_the_right_eye_on_the_image_left():
    p = frontal_points()
    assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]  # right eye (36-41) left of the left eye
    assert p[48, 0] < p[54, 0] and p[0, 0] < p[8, 0] < p[16, 0]
    assert p[37, 1] < p[41, 1]  # upper lid above the lower lid (y down)


def test_mirroring_a_symmetric_face_gives_the_same_points_and_twice_is_identity():
    width = 200.0
    p = frontal_points(width)
    assert np.allclose(mirror_points(p, width), p, atol=1e-9)  # the generic face is symmetric
    q = p + np.random.default_rng(0).normal(0, 3, p.shape)
    assert np.allclose(mirror_points(mirror_points(q, width), width), q)
    m = mirror_points(q, width)
    assert m[36, 0] < m[45, 0]  # still the person's right eye on the image's left
    assert m[36, 0] == pytest.approx(width - 1 - q[45, 0])


def test_augmented_mirror_moves_the_pixels_with_the_relabelled_points():
    # a white dot on point 36 (the person's right outer eye corner); after a mirrored crop it
    # must sit on point 45 (the mirrored face's left outer eye corner), rotation and all.
    size = 96
    p = frontal_points(200.0)
    image = torch.zeros(1, 3, 200, 200)
    x, y = np.round(p[36]).astype(int)
    image[0, :, y - 1 : y + 2, x - 1 : x + 2] = 255.0
    pts = torch.as_tensor(np.round(p)[None], dtype=torch.float32)
    pts[0, 36] = torch.tensor([float(x), float(y)])
    s = size / 200.0
    base = torch.tensor([[[s, 0.0, (size - 1) / 2 - s * 99.5], [0.0, s, (size - 1) / 2 - s * 100.0]]])
    cfg = AugmentConfig(mirror=1.0, rotate_deg=20.0)
    m, flip = random_matrices(base, size, cfg, torch.Generator().manual_seed(3))
    assert bool(flip[0])
    crop = warp_batch(image, m, size)[0, 0]
    out = warp_points(pts, m, flip)[0]
    peak = np.unravel_index(int(crop.argmax()), crop.shape)
    assert np.hypot(peak[1] - float(out[45, 0]), peak[0] - float(out[45, 1])) <= 1.5
    assert np.hypot(peak[1] - float(out[36, 0]), peak[0] - float(out[36, 1])) > 10


def test_nme_on_hand_made_points():
    truth = np.zeros((68, 2))
    truth[45] = (100.0, 0.0)  # outer eye corners 100 px apart
    pred = truth + np.array([3.0, 4.0])  # every point off by 5 px
    assert outer_eye_distance(truth) == pytest.approx(100.0)
    assert float(nme(pred, truth)) == pytest.approx(0.05)
    batch = nme(np.stack([pred, truth]), np.stack([truth, truth]))
    assert batch.shape == (2,) and batch[0] == pytest.approx(0.05) and batch[1] == 0.0
    half = truth.copy()
    half[:34] += (6.0, 8.0)  # half the points off by 10 px
    assert float(nme(half, truth)) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        nme(pred[:67], truth[:67])


def _eye(corner_x: float, open_half: float) -> np.ndarray:
    # p1 outer corner, p2 p3 upper lid, p4 inner corner, p5 p6 lower lid: 10 px wide
    x = corner_x
    return np.array([(x, 0), (x + 3, -open_half), (x + 7, -open_half), (x + 10, 0), (x + 7, open_half), (x + 3, open_half)])


def test_eye_aspect_ratio_on_hand_made_eyes():
    p = np.zeros((68, 2))
    p[36:42] = _eye(0.0, 2.0)  # lids 4 px apart over a 10 px eye: (4 + 4) / (2 * 10) = 0.4
    p[42:48] = _eye(30.0, 0.0)[[3, 2, 1, 0, 5, 4]]  # closed; left eye listed inner corner first
    right, left = eye_aspect_ratios(p)
    assert right == pytest.approx(0.4) and left == pytest.approx(0.0)
    assert eye_aspect_ratio(p) == pytest.approx(0.2)


def test_read_pts_reads_the_ibug_format(tmp_path):
    rows = "\n".join(f"{i}.5 {2 * i}" for i in range(68))
    f = tmp_path / "a.pts"
    f.write_text("version: 1\nn_points: 68\n{\n" + rows + "\n}\n")
    p = read_pts(f)
    assert p.shape == (68, 2) and p[10].tolist() == [10.5, 20.0]
    f.write_text(rows.split("\n", 1)[1])  # 67 points
    with pytest.raises(ValueError):
        read_pts(f)

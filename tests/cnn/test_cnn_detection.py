"""faceapp.cnn.detection: targets and losses, sliding windows, IoU, NMS and YOLO encoding/decoding."""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision.ops

from faceapp.cnn.detection import (
    WindowClassifier,
    batched_nms,
    cells_to_boxes,
    center_to_corners,
    corners_to_center,
    decode_landmarks,
    encode_targets,
    fc_to_conv,
    filter_boxes,
    iou,
    landmark_loss,
    landmark_target,
    localization_loss,
    localization_target,
    nms,
    sliding_window_scores,
    sliding_windows,
    yolo_eval,
    yolo_head,
)


def random_boxes(n: int, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 10
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 4 + 0.5
    return torch.cat((xy, xy + wh), dim=1)


# ----------------------------------------------------------------------------- localisation


def test_localization_target_for_a_car_and_for_background() -> None:
    # classes: c_1 pedestrian, c_2 car, c_3 motorcycle
    y = localization_target((0.5, 0.7, 0.3, 0.4), class_index=1, num_classes=3)
    torch.testing.assert_close(y, torch.tensor([1, 0.5, 0.7, 0.3, 0.4, 0, 1, 0]))
    torch.testing.assert_close(localization_target(None, None, 3), torch.zeros(8))


def test_localization_loss_counts_every_entry_when_there_is_an_object() -> None:
    y = localization_target((0.5, 0.7, 0.3, 0.4), 1, 3)
    y_hat = torch.tensor([0.9, 0.4, 0.7, 0.3, 0.6, 0.0, 0.5, 0.0])
    # 0.1^2 + 0.1^2 + 0 + 0 + 0.2^2 + 0 + 0.5^2 + 0 = 0.31
    assert localization_loss(y_hat, y).item() == pytest.approx(0.31)


def test_localization_loss_counts_only_pc_when_there_is_no_object() -> None:
    y = localization_target(None, None, 3)
    y_hat = torch.tensor([0.2, 0.4, 0.7, 0.3, 0.6, 0.1, 0.5, 0.9])
    assert localization_loss(y_hat, y).item() == pytest.approx(0.04)
    y_hat_other = y_hat.clone()
    y_hat_other[1:] = torch.tensor([9.0, -3.0, 1.0, 2.0, 5.0, 5.0, 5.0])
    assert localization_loss(y_hat_other, y).item() == pytest.approx(0.04)  # "don't care"


def test_localization_loss_averages_over_the_batch() -> None:
    y = torch.stack([localization_target((0.5, 0.5, 0.2, 0.2), 0, 3), localization_target(None, None, 3)])
    y_hat = y.clone()
    y_hat[0, 1] += 0.2  # 0.04 on the example with an object
    y_hat[1, 0] = 0.4  # 0.16 on p_c of the background example
    assert localization_loss(y_hat, y).item() == pytest.approx(0.10)
    torch.testing.assert_close(localization_loss(y_hat, y, reduction="none"), torch.tensor([0.04, 0.16]))


def test_landmark_target_normalises_and_decodes_back() -> None:
    points = torch.tensor([[20.0, 10.0], [180.0, 90.0]])  # (x, y) pixels in a 100 x 200 (H x W) image
    y = landmark_target(points, (100, 200))
    torch.testing.assert_close(y, torch.tensor([1, 0.1, 0.1, 0.9, 0.9]))
    torch.testing.assert_close(decode_landmarks(y, (100, 200)), points)
    torch.testing.assert_close(landmark_target(None, (100, 200), num_landmarks=2), torch.zeros(5))


def test_landmark_loss_ignores_landmarks_when_there_is_no_face() -> None:
    y = landmark_target(None, (10, 10), num_landmarks=2)
    assert landmark_loss(torch.tensor([0.5, 3.0, 3.0, 3.0, 3.0]), y).item() == pytest.approx(0.25)


# ----------------------------------------------------------------------------- sliding windows


def test_sliding_windows_count_and_content() -> None:
    image = torch.arange(3 * 28 * 28, dtype=torch.float32).reshape(3, 28, 28)
    crops, grid = sliding_windows(image, window=14, stride=2)
    assert grid == (8, 8) and crops.shape == (64, 3, 14, 14)  # (28 - 14) / 2 + 1 = 8
    torch.testing.assert_close(crops[8 * 3 + 5], image[:, 6:20, 10:24])  # row 3, column 5


def test_fc_to_conv_computes_the_same_function() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(16 * 5 * 5, 7)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(fc_to_conv(linear, (16, 5, 5))(x).flatten(1), linear(x.flatten(1)))


@pytest.mark.parametrize(("size", "grid"), [(14, 1), (16, 2), (28, 8)])
def test_convolutional_sliding_windows_give_the_same_scores(size: int, grid: int) -> None:
    torch.manual_seed(0)
    classifier = WindowClassifier().double().eval()
    image = torch.randn(3, size, size, dtype=torch.float64)
    one_by_one = sliding_window_scores(classifier, image, window=14, stride=classifier.stride)
    with torch.no_grad():
        at_once = classifier.convolutional()(image[None])[0].permute(1, 2, 0)  # (rows, cols, 4)
    assert at_once.shape == (grid, grid, 4)
    torch.testing.assert_close(at_once, one_by_one)


# ----------------------------------------------------------------------------- IoU and NMS


def test_iou_hand_computed() -> None:
    # The course's test: boxes (2, 1, 4, 3) and (1, 2, 3, 4) intersect in a 1x1 square: 1 / (4 + 4 - 1).
    boxes = torch.tensor([[2.0, 1.0, 4.0, 3.0], [1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 6.0, 6.0], [2.0, 1.0, 3.0, 2.0]])
    result = iou(boxes, boxes)
    assert result[0, 1].item() == pytest.approx(1 / 7)
    assert result[0, 2].item() == 0.0  # no overlap
    assert result[0, 3].item() == pytest.approx(1 / 4)  # inside: 1 / 4
    torch.testing.assert_close(result.diagonal(), torch.ones(4))


def test_iou_of_boxes_that_only_touch_is_zero() -> None:
    assert iou(torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[1.0, 0, 2, 1]])).item() == 0.0


def test_iou_agrees_with_torchvision() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = random_boxes(30, g), random_boxes(20, g)
    torch.testing.assert_close(iou(a, b), torchvision.ops.box_iou(a, b))


def test_box_format_round_trip() -> None:
    g = torch.Generator().manual_seed(1)
    boxes = random_boxes(10, g)
    torch.testing.assert_close(center_to_corners(corners_to_center(boxes)), boxes)
    torch.testing.assert_close(
        corners_to_center(torch.tensor([0.0, 0.0, 4.0, 2.0])), torch.tensor([2.0, 1.0, 2.0, 4.0])
    )


def test_nms_hand_case() -> None:
    boxes = torch.tensor([[0.0, 0, 10, 10], [1.0, 1, 11, 11], [20.0, 20, 30, 30], [0.0, 0, 10, 9]])
    scores = torch.tensor([0.8, 0.9, 0.7, 0.6])
    # box 1 (0.9) wins; box 0 overlaps it with IoU 81/119 = 0.68 > 0.5 and goes; box 3
    # overlaps box 1 with IoU 72/118 = 0.61 and goes; box 2 is elsewhere and stays.
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 2]  # box 3 vs box 0: 0.9 > 0.7, suppressed by 0


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_agrees_with_torchvision(threshold: float) -> None:
    g = torch.Generator().manual_seed(2)
    boxes, scores = random_boxes(200, g), torch.rand(200, generator=g, dtype=torch.float64)
    assert nms(boxes, scores, threshold).tolist() == torchvision.ops.nms(boxes, scores, threshold).tolist()


def test_batched_nms_agrees_with_torchvision_and_keeps_classes_apart() -> None:
    g = torch.Generator().manual_seed(3)
    boxes, scores = random_boxes(200, g), torch.rand(200, generator=g, dtype=torch.float64)
    classes = torch.randint(0, 4, (200,), generator=g)
    assert (
        batched_nms(boxes, scores, classes, 0.5).tolist()
        == torchvision.ops.batched_nms(boxes, scores, classes, 0.5).tolist()
    )
    same_box = torch.tensor([[0.0, 0, 1, 1], [0.0, 0, 1, 1]])
    assert batched_nms(same_box, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), 0.5).tolist() == [0, 1]
    assert nms(torch.empty(0, 4), torch.empty(0), 0.5).tolist() == []


# ----------------------------------------------------------------------------- YOLO

# The lecture's two anchors (w, h in cell units): a tall one for pedestrians, a wide one for cars.
TALL_WIDE = torch.tensor([[0.5, 1.5], [1.5, 0.5]])


def test_encode_targets_19x19x5x85() -> None:
    anchors = torch.tensor([[0.57, 0.68], [1.87, 2.06], [3.34, 5.47], [7.88, 3.53], [9.77, 9.17]])
    boxes = torch.tensor([[0.4, 0.4, 0.6, 0.6]])  # centre (0.5, 0.5), 0.2 x 0.2 of the image
    y = encode_targets(boxes, torch.tensor([2]), grid_size=19, num_classes=80, anchors=anchors)
    assert y.shape == (19, 19, 5, 85)
    # The centre is in cell (9, 9) at 9.5 cells; the box is 3.8 x 3.8 cells: anchor 2 (3.34 x 5.47)
    # has IoU 3.34*3.8 / (3.8^2 + 3.34*5.47 - 3.34*3.8) = 0.59, the best of the five.
    assert y[..., 0].sum() == 1 and y[9, 9, 2, 0] == 1
    torch.testing.assert_close(y[9, 9, 2, 1:5], torch.tensor([0.5, 0.5, 3.8, 3.8]))
    assert y[9, 9, 2, 5 + 2] == 1 and y[9, 9, 2, 5:].sum() == 1


def test_two_objects_in_one_cell_go_to_different_anchors() -> None:
    # A pedestrian (tall) and a car (wide) centred in the same middle cell of a 3x3 grid: y is 3x3x2x8.
    pedestrian = [0.45, 0.2, 0.55, 0.8]
    car = [0.2, 0.45, 0.8, 0.55]
    y = encode_targets(
        torch.tensor([pedestrian, car]), torch.tensor([0, 1]), grid_size=3, num_classes=3, anchors=TALL_WIDE
    )
    assert y.shape == (3, 3, 2, 8)
    assert y[1, 1, 0, 0] == 1 and y[1, 1, 0, 5] == 1  # anchor 1 (tall): pedestrian
    assert y[1, 1, 1, 0] == 1 and y[1, 1, 1, 6] == 1  # anchor 2 (wide): car
    assert y[..., 0].sum() == 2


def test_a_third_object_for_a_taken_anchor_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    boxes = torch.tensor([[0.45, 0.2, 0.55, 0.8], [0.46, 0.25, 0.54, 0.75]])  # two pedestrians, same cell
    with caplog.at_level(logging.WARNING, logger="faceapp.cnn.detection.yolo"):
        y = encode_targets(boxes, torch.tensor([0, 0]), grid_size=3, num_classes=3, anchors=TALL_WIDE)
    assert y[..., 0].sum() == 1
    assert "object 1 dropped" in caplog.text


def test_without_anchors_each_cell_has_one_slot() -> None:
    y = encode_targets(torch.tensor([[0.0, 0.0, 0.2, 0.2]]), torch.tensor([1]), grid_size=3, num_classes=3)
    assert y.shape == (3, 3, 1, 8)
    torch.testing.assert_close(y[0, 0, 0], torch.tensor([1, 0.3, 0.3, 0.6, 0.6, 0, 1, 0]))


def test_encoded_targets_decode_to_the_original_boxes() -> None:
    boxes = torch.tensor([[0.1, 0.2, 0.3, 0.5], [0.6, 0.55, 0.9, 0.7], [0.4, 0.05, 0.5, 0.35]])
    labels = torch.tensor([2, 0, 1])
    y = encode_targets(boxes, labels, grid_size=7, num_classes=3, anchors=TALL_WIDE)
    detections = yolo_eval(y, score_threshold=0.5)
    assert sorted(d.class_index for d in detections) == [0, 1, 2]
    for d in detections:
        torch.testing.assert_close(torch.tensor(d.box), boxes[labels.tolist().index(d.class_index)])
        assert d.score == 1.0


def test_yolo_head_maps_raw_outputs_to_target_units() -> None:
    y = encode_targets(
        torch.tensor([[0.1, 0.2, 0.3, 0.5]]), torch.tensor([2]), grid_size=4, num_classes=3, anchors=TALL_WIDE
    )
    # Centre (0.2, 0.35) x 4 cells = (0.8, 1.4): row 1, column 0, the tall anchor;
    # b_x = 0.8, b_y = 0.4, b_h = 1.2, b_w = 0.8 in cell units.
    cell = y[1, 0, 0]
    torch.testing.assert_close(cell[:5], torch.tensor([1.0, 0.8, 0.4, 1.2, 0.8]))
    raw = torch.zeros(4, 4, 2, 8)
    raw[1, 0, 0, :3] = torch.logit(torch.tensor([0.99, 0.8, 0.4]))
    raw[1, 0, 0, 3:5] = torch.log(torch.tensor([1.2 / 1.5, 0.8 / 0.5]))  # b_h / anchor_h, b_w / anchor_w
    raw[1, 0, 0, 5:] = torch.tensor([0.0, 0.0, 10.0])
    decoded = yolo_head(raw, TALL_WIDE)[1, 0, 0]
    torch.testing.assert_close(decoded[1:5], cell[1:5])
    assert decoded[0].item() == pytest.approx(0.99) and decoded[5:].argmax() == 2
    assert yolo_head(raw[None], TALL_WIDE).shape == (1, 4, 4, 2, 8)  # batches too


def test_filter_boxes_keeps_scores_above_the_threshold() -> None:
    boxes = torch.tensor([[0.0, 0, 1, 1], [1.0, 1, 2, 2], [2.0, 2, 3, 3]])
    confidence = torch.tensor([0.9, 0.9, 0.5])
    probs = torch.tensor([[0.1, 0.9], [0.5, 0.5], [0.0, 1.0]])
    kept_boxes, scores, classes = filter_boxes(boxes, confidence, probs, threshold=0.6)
    # scores: 0.81 (class 1), 0.45, 0.5 -> only the first passes
    torch.testing.assert_close(kept_boxes, boxes[:1])
    torch.testing.assert_close(scores, torch.tensor([0.81]))
    assert classes.tolist() == [1]


def test_yolo_eval_suppresses_duplicates_per_class_and_scales_to_pixels() -> None:
    y = torch.zeros(2, 2, 1, 7)
    # The same car seen from two neighbouring cells, plus a pedestrian at the same place.
    y[0, 0, 0] = torch.tensor([0.9, 0.9, 0.5, 1.0, 1.0, 0.0, 1.0])
    y[0, 1, 0] = torch.tensor([0.8, 0.0, 0.5, 1.0, 1.0, 0.0, 1.0])
    y[1, 0, 0] = torch.tensor([0.7, 0.9, -0.5, 1.0, 1.0, 1.0, 0.0])
    detections = yolo_eval(y, score_threshold=0.6, iou_threshold=0.5, image_size=(100, 200))
    assert [(d.class_index, round(d.score, 2)) for d in detections] == [(1, 0.9), (0, 0.7)]
    # Centre ((0 + 0.9) / 2, (0 + 0.5) / 2) = (0.45, 0.25) and size 1 cell = half the image,
    # in a 100 x 200 (H x W) image: x 90 +- 50, y 25 +- 25. The second car box, centre
    # (0.5, 0.25), overlaps it with IoU 0.45 / 0.55 = 0.82 and is suppressed.
    assert detections[0].box == pytest.approx((40.0, 0.0, 140.0, 50.0))
    assert yolo_eval(torch.zeros(2, 2, 1, 7)) == []


def test_cells_to_boxes_places_cells_on_the_image() -> None:
    y = torch.zeros(2, 4, 1, 6)  # 2 rows, 4 columns
    y[1, 3, 0, :5] = torch.tensor([1.0, 0.5, 0.5, 1.0, 1.0])
    boxes, confidence, _ = cells_to_boxes(y)
    torch.testing.assert_close(boxes[1, 3, 0], torch.tensor([0.75, 0.5, 1.0, 1.0]))
    assert confidence.sum() == 1

"""Object localisation and detection: the course's week 3.

* :mod:`~faceapp.cnn.detection.localization`: the [p_c, b_x, b_y, b_h, b_w, c...] target and
  its loss (p_c only when there is no object); landmark targets;
* :mod:`~faceapp.cnn.detection.sliding`: sliding windows and their convolutional implementation;
* :mod:`~faceapp.cnn.detection.boxes`: box formats, IoU, non-max suppression (per class);
* :mod:`~faceapp.cnn.detection.yolo`: grid and anchor-box targets, decoding, score filtering
  and the whole YOLO evaluation.
"""

from faceapp.cnn.detection.boxes import batched_nms, box_area, center_to_corners, corners_to_center, iou, nms
from faceapp.cnn.detection.localization import (
    decode_landmarks,
    landmark_loss,
    landmark_target,
    localization_loss,
    localization_target,
)
from faceapp.cnn.detection.sliding import WindowClassifier, fc_to_conv, sliding_window_scores, sliding_windows
from faceapp.cnn.detection.yolo import (
    Detection,
    anchor_iou,
    cells_to_boxes,
    encode_targets,
    filter_boxes,
    yolo_eval,
    yolo_head,
)

__all__ = [
    "batched_nms",
    "box_area",
    "center_to_corners",
    "corners_to_center",
    "iou",
    "nms",
    "localization_target",
    "localization_loss",
    "landmark_target",
    "landmark_loss",
    "decode_landmarks",
    "WindowClassifier",
    "fc_to_conv",
    "sliding_windows",
    "sliding_window_scores",
    "Detection",
    "anchor_iou",
    "encode_targets",
    "yolo_head",
    "cells_to_boxes",
    "filter_boxes",
    "yolo_eval",
]

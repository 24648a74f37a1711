"""Head-pose signs and sizes on synthetic views of the 3-D face, and the landmark quality checks."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.landmarks.points import mirror_points
from faceapp.landmarks.pose import camera_matrix, head_pose, project_model, rotation_from_angles
from faceapp.landmarks.quality import LandmarkLimits, assess_landmarks
from faceapp.types import QualityIssue

SIZE = (640, 480)
K = camera_matrix(SIZE)


def view(yaw=0.0, pitch=0.0, roll=0.0, offset=(0.0, 0.0)) -> np.ndarray:
    return project_model(rotation_from_angles(yaw, pitch, roll), camera=K, offset_mm=offset)


def test_turning_to_ones_own_left_is_positive_yaw_and_moves_the_nose_right():
    front, left = view(), view(yaw=25)
    eyes_mid = lambda p: (p[36] + p[45]) / 2  # noqa: E731
    # the image itself: the nose tip moves towards the image's right of the eyes' midpoint
    assert (left[30, 0] - eyes_mid(left)[0]) > (front[30, 0] - eyes_mid(front)[0]) + 5
    assert head_pose(left, SIZE).yaw == pytest.approx(25, abs=1.5)
    assert head_pose(view(yaw=-25), SIZE).yaw == pytest.approx(-25, abs=1.5)
    assert abs(head_pose(front, SIZE).yaw) < 1.0


def test_looking_up_is_positive_pitch_and_moves_the_nose_up():
    front, up = view(), view(pitch=15)
    rel = lambda p: p[30, 1] - (p[36, 1] + p[45, 1]) / 2  # noqa: E731  (y down)
    assert rel(up) < rel(front) - 3
    assert head_pose(up, SIZE).pitch == pytest.approx(15, abs=1.5)
    assert head_pose(view(pitch=-15), SIZE).pitch == pytest.approx(-15, abs=1.5)


def test_clockwise_tilt_is_positive_roll_and_lowers_the_eye_on_the_image_right():
    p = view(roll=12)
    assert p[45, 1] > p[36, 1] + 5  # image-right eye lower (y down): clockwise on screen
    assert np.degrees(np.arctan2(p[45, 1] - p[36, 1], p[45, 0] - p[36, 0])) == pytest.approx(12, abs=1.5)
    assert head_pose(p, SIZE).roll == pytest.approx(12, abs=1.5)


def test_combined_rotation_off_centre_and_without_a_camera():
    pose = head_pose(view(yaw=-20, pitch=10, roll=-8, offset=(80.0, -40.0)), SIZE)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((-20, 10, -8), abs=1.5)
    assert pose.error_px < 0.1
    rough = head_pose(view(yaw=-20, pitch=10, roll=-8))  # no image size: near-orthographic guess
    assert rough.yaw < -15 and rough.pitch > 5 and rough.roll < -4


def test_a_mirrored_picture_flips_yaw_back():
    p = view(yaw=20)
    mirrored = mirror_points(p, SIZE[0])
    assert head_pose(mirrored, SIZE).yaw == pytest.approx(-20, abs=1.5)
    assert head_pose(mirrored, SIZE, mirrored=True).yaw == pytest.approx(20, abs=1.5)


def test_quality_flags_a_turned_head_and_closed_eyes():
    limits = LandmarkLimits(min_eye_aspect_ratio=0.15, max_yaw_deg=25, max_pitch_deg=20)
    good = assess_landmarks(view(yaw=10), SIZE, limits)
    assert good.ok and good.eye_aspect_ratio > 0.25
    assert assess_landmarks(view(yaw=35), SIZE, limits).issues == (QualityIssue.HEAD_TURNED,)
    assert assess_landmarks(view(pitch=-28), SIZE, limits).issues == (QualityIssue.HEAD_TURNED,)
    closed = view()
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        closed[upper] = closed[lower] = (closed[upper] + closed[lower]) / 2
    assert assess_landmarks(closed, SIZE, limits).issues == (QualityIssue.EYES_CLOSED,)
    assert assess_landmarks(closed, SIZE, LandmarkLimits(min_eye_aspect_ratio=0.0)).ok

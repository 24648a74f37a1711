"""Geometry of 68 landmarks: head pose (yaw, pitch, roll) and the eye aspect ratio.

**Head pose** fits a generic 3-D face (:data:`FACE_MODEL_3D`, millimetres; made by
``scripts/landmarks_face_model.py``) to the 2-D points with ``cv2.solvePnP`` (SQPnP, then
Levenberg-Marquardt) through a pinhole camera, and reads the head's rotation as three angles in
degrees. Signs, for an unmirrored camera picture (what the camera delivers, not a selfie preview):

- ``yaw`` > 0: the person turns to *their own left* (the nose moves towards the image's right);
- ``pitch`` > 0: the person looks up (the nose moves towards the image's top);
- ``roll`` > 0: the head tilts clockwise as seen in the image (towards the person's left shoulder).

A mirrored preview flips the sign of yaw and roll; pass ``mirrored=True`` where it matters.

**Eye aspect ratio** (Soukupova & Cech, 2016): for the six points p1..p6 of one eye (p1, p4 the
corners, p2, p3 the upper lid, p6, p5 the lower lid), ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)``:
about 0.3 for an open eye, under 0.15 for a closed one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from faceapp.landmarks.points import LEFT_EYE, RIGHT_EYE, check_points, outer_eye_distance

# x to the image's right for a frontal face (the person's left), y up, z towards the camera;
# origin at the nose tip (point 30); outer eye corners 90 mm apart.
FACE_MODEL_3D: np.ndarray = np.array(
    [
        ( -71.0,   35.8,  -72.4),  # 0
        ( -69.7,   16.5,  -69.7),  # 1
        ( -67.2,   -2.2,  -65.1),  # 2
        ( -63.6,  -20.2,  -59.2),  # 3
        ( -56.6,  -37.0,  -49.7),  # 4
        ( -45.6,  -51.5,  -38.4),  # 5
        ( -32.1,  -63.3,  -28.1),  # 6
        ( -17.0,  -72.7,  -20.2),  # 7
        (   0.0,  -75.4,  -15.0),  # 8
        (  17.0,  -72.7,  -20.2),  # 9
        (  32.1,  -63.3,  -28.1),  # 10
        (  45.6,  -51.5,  -38.4),  # 11
        (  56.6,  -37.0,  -49.7),  # 12
        (  63.6,  -20.2,  -59.2),  # 13
        (  67.2,   -2.2,  -65.1),  # 14
        (  69.7,   16.5,  -69.7),  # 15
        (  71.0,   35.8,  -72.4),  # 16
        ( -60.1,   47.1,  -49.2),  # 17
        ( -50.9,   55.5,  -40.3),  # 18
        ( -38.0,   58.0,  -31.6),  # 19
        ( -24.7,   56.4,  -25.9),  # 20
        ( -12.1,   52.0,  -22.9),  # 21
        (  12.1,   52.0,  -22.9),  # 22
        (  24.7,   56.4,  -25.9),  # 23
        (  38.0,   58.0,  -31.6),  # 24
        (  50.9,   55.5,  -40.3),  # 25
        (  60.1,   47.1,  -49.2),  # 26
        (   0.0,   37.4,  -22.0),  # 27
        (   0.0,   24.9,  -15.0),  # 28
        (   0.0,   12.6,   -8.0),  # 29
        (   0.0,   -0.0,    0.0),  # 30
        ( -14.9,   -7.8,  -18.0),  # 31
        (  -7.7,  -10.1,  -14.0),  # 32
        (   0.0,  -12.2,  -12.0),  # 33
        (   7.7,  -10.1,  -14.0),  # 34
        (  14.9,   -7.8,  -18.0),  # 35
        ( -45.0,   35.5,  -37.9),  # 36
        ( -36.9,   39.9,  -33.0),  # 37
        ( -27.2,   39.7,  -28.8),  # 38
        ( -18.9,   33.4,  -26.3),  # 39
        ( -27.8,   32.0,  -29.0),  # 40
        ( -37.5,   32.2,  -33.3),  # 41
        (  18.9,   33.4,  -26.3),  # 42
        (  27.2,   39.7,  -28.8),  # 43
        (  36.9,   39.9,  -33.0),  # 44
        (  45.0,   35.5,  -37.9),  # 45
        (  37.5,   32.2,  -33.3),  # 46
        (  27.8,   32.0,  -29.0),  # 47
        ( -28.1,  -29.3,  -25.5),  # 48
        ( -17.8,  -25.5,  -18.2),  # 49
        (  -7.2,  -23.5,  -14.7),  # 50
        (   0.0,  -25.3,  -14.0),  # 51
        (   7.2,  -23.5,  -14.7),  # 52
        (  17.8,  -25.5,  -18.2),  # 53
        (  28.1,  -29.3,  -25.5),  # 54
        (  18.2,  -39.5,  -18.4),  # 55
        (   7.8,  -43.9,  -14.8),  # 56
        (   0.0,  -44.7,  -14.0),  # 57
        (  -7.8,  -43.9,  -14.8),  # 58
        ( -18.2,  -39.5,  -18.4),  # 59
        ( -23.9,  -29.8,  -23.9),  # 60
        (  -7.4,  -29.1,  -16.7),  # 61
        (   0.0,  -30.0,  -16.0),  # 62
        (   7.4,  -29.1,  -16.7),  # 63
        (  23.9,  -29.8,  -23.9),  # 64
        (   7.5,  -34.9,  -16.7),  # 65
        (   0.0,  -35.9,  -16.0),  # 66
        (  -7.5,  -34.9,  -16.7),  # 67
    ],
    dtype=np.float64,
)

#: The points head pose is fitted on: eye corners, brows' ends, the nose, mouth corners and chin
#: (the jaw contour is a silhouette that slides over the face as it turns, the lids and lips move).
POSE_POINTS: tuple[int, ...] = (17, 21, 22, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 39, 42, 45, 48, 54, 8)

# viewer frame (x right, y up, z to the camera) <-> OpenCV camera frame (x right, y down, z ahead)
_FLIP = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees (signs in the module docstring) and the fit's RMS error in pixels."""

    yaw: float
    pitch: float
    roll: float
    error_px: float = 0.0

    def turned(self, max_yaw: float, max_pitch: float) -> bool:
        return abs(self.yaw) > max_yaw or abs(self.pitch) > max_pitch


def camera_matrix(image_size: tuple[int, int] | None, points: np.ndarray | None = None) -> np.ndarray:
    """A pinhole camera for an image of ``(width, height)``: focal length = the longer side (a
    53-degree field of view, typical of webcams), principal point at the centre. Without a size,
    a long lens centred on the points (12 x the outer-eye distance), which is near-orthographic."""
    if image_size is not None:
        w, h = float(image_size[0]), float(image_size[1])
        f, cx, cy = max(w, h), w / 2, h / 2
    else:
        if points is None:
            raise ValueError("camera_matrix needs an image size or the points")
        f = 12.0 * float(outer_eye_distance(points))
        cx, cy = np.asarray(points, dtype=np.float64).mean(axis=0)
    return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], dtype=np.float64)


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a head rotation given in the viewer frame (model -> viewer)."""
    m = np.asarray(rotation, dtype=np.float64)
    forward = m @ np.array([0.0, 0.0, 1.0])  # where the nose points
    up = m @ np.array([0.0, 1.0, 0.0])  # the top of the head
    yaw = math.degrees(math.atan2(forward[0], forward[2]))
    pitch = math.degrees(math.atan2(forward[1], math.hypot(forward[0], forward[2])))
    # roll: the up vector's tilt in the plane facing the viewer, after undoing yaw and pitch
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    residual = (r_yaw @ r_pitch).T @ up
    roll = math.degrees(math.atan2(residual[0], residual[1]))
    return yaw, pitch, roll


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The head rotation (viewer frame) with these angles in degrees: roll, then pitch, then yaw."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    r_yaw = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    r_pitch = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    # clockwise in the image (y down) = the top of the head towards +x in the viewer frame
    r_roll = np.array([[math.cos(r), math.sin(r), 0], [-math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return r_yaw @ r_pitch @ r_roll


def project_model(
    rotation: np.ndarray, *, distance_mm: float = 600.0, camera: np.ndarray, offset_mm=(0.0, 0.0), model=None
) -> np.ndarray:
    """Image points of the 3-D face model turned by ``rotation`` (viewer frame, about the head's
    centre 90 mm behind the nose tip) at ``distance_mm`` in front of ``camera``. For tests and
    synthetic motion."""
    pts = FACE_MODEL_3D if model is None else np.asarray(model, dtype=np.float64)
    centre = np.array([0.0, 0.0, -90.0])
    world = (pts - centre) @ np.asarray(rotation).T + centre
    world = world + np.array([offset_mm[0], offset_mm[1], 0.0])
    cam = world @ _FLIP.T + np.array([0.0, 0.0, distance_mm])
    uv = cam[:, :2] / cam[:, 2:3]
    return uv * np.array([camera[0, 0], camera[1, 1]]) + camera[:2, 2]


def head_pose(
    points: np.ndarray, image_size: tuple[int, int] | None = None, *, mirrored: bool = False
) -> HeadPose:
    """Yaw, pitch and roll (degrees) of a face from its 68 landmarks (image pixels).

    ``image_size`` = (width, height) of the picture the points are in (for the camera model;
    without it a near-orthographic camera is assumed). ``mirrored``: the picture is a mirrored
    (selfie) view; yaw and roll are then returned for the person as if unmirrored."""
    p = check_points(points)
    if mirrored:
        width = image_size[0] if image_size is not None else 2 * p[:, 0].mean()
        from faceapp.landmarks.points import mirror_points

        p = mirror_points(p, width)
    k = camera_matrix(image_size, p)
    idx = list(POSE_POINTS)
    obj = FACE_MODEL_3D[idx].astype(np.float64)
    img = p[idx].astype(np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        return HeadPose(float("nan"), float("nan"), float("nan"), float("inf"))
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, None, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, k, None)
    err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    r_cam, _ = cv2.Rodrigues(rvec)
    yaw, pitch, roll = angles_from_rotation(_FLIP @ r_cam)
    return HeadPose(yaw, pitch, roll, err)


def eye_aspect_ratios(points: np.ndarray) -> tuple[float, float]:
    """(right eye, left eye) aspect ratios of 68 landmarks (the person's right and left)."""
    p = check_points(points)

    def ear(idx: tuple[int, ...]) -> float:
        p1, p2, p3, p4, p5, p6 = (p[i] for i in idx)
        width = np.linalg.norm(p1 - p4)
        if width <= 1e-9:
            return float("nan")
        return float((np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2 * width))

    return ear(RIGHT_EYE), ear(LEFT_EYE)


def eye_aspect_ratio(points: np.ndarray) -> float:
    """The mean aspect ratio of both eyes (about 0.3 open, under 0.15 closed)."""
    r, left = eye_aspect_ratios(points)
    return (r + left) / 2

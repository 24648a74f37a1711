"""The project's own 68-point landmark CNN and the checks built on it.

- :mod:`~faceapp.landmarks.points`: the iBUG 68-point order, mirroring, NME;
- :mod:`~faceapp.landmarks.model` / :mod:`~faceapp.landmarks.train` / :mod:`~faceapp.landmarks.evaluate`:
  the network (face-ResNet backbone + heatmap soft-argmax), its training and its measurement
  (``faceapp landmarks train|eval``);
- :mod:`~faceapp.landmarks.predict`: ``LandmarkPredictor().predict(image, detection) -> (68, 2)``;
- :mod:`~faceapp.landmarks.pose`: ``head_pose(points)`` (yaw, pitch, roll) and ``eye_aspect_ratio``;
- :mod:`~faceapp.landmarks.quality`: EYES_CLOSED / HEAD_TURNED for enrollment;
- :mod:`~faceapp.landmarks.liveness`: the blink / turn challenge and the planar-photo test;
- :mod:`~faceapp.landmarks.analyze`: one call for GUI workers and services.

Nothing here imports Qt; torch is imported only by the modules that run the network. See
``docs/landmarks.md``.
"""

from faceapp.landmarks.points import MIRROR, NUM_POINTS, mirror_points, nme
from faceapp.landmarks.pose import HeadPose, eye_aspect_ratio, head_pose

__all__ = ["MIRROR", "NUM_POINTS", "HeadPose", "eye_aspect_ratio", "head_pose", "mirror_points", "nme"]

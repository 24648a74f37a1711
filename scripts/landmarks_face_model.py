"""Make the generic 3-D face model of :mod:`faceapp.landmarks.pose` (``FACE_MODEL_3D``).

x, y: the mean of the near-frontal faces of 300-W train (similarity-aligned, made left-right
symmetric), scaled to a 90 mm outer-eye-corner distance, nose tip at the origin, y up.
z (towards the camera, nose tip = 0): anthropometric guesses by region (nose ridge and tip in
front, the eyes, brows and lip corners on a cylinder of radius 80 mm behind it, the jaw
contour bending back to -70 mm at the ears). A generic model: head-pose angles from it are good
to a few degrees, which is what the quality and liveness checks need.

    python scripts/landmarks_face_model.py   # prints the table to paste into pose.py
"""

from __future__ import annotations

import numpy as np

from faceapp.detect.align import similarity_transform
from faceapp.landmarks.data import dataset_root, list_split
from faceapp.landmarks.points import MIRROR


def main() -> None:
    _, pts = list_split(dataset_root(), "train")
    d0 = np.linalg.norm(pts[:, 30] - pts[:, 0], axis=1)
    d16 = np.linalg.norm(pts[:, 30] - pts[:, 16], axis=1)
    frontal = pts[np.abs(d0 - d16) / (d0 + d16) < 0.05]
    ref = frontal[0]
    for _ in range(3):
        aligned = []
        for p in frontal:
            m = similarity_transform(p, ref)
            aligned.append(p @ m[:, :2].T + m[:, 2])
        ref = np.mean(aligned, axis=0)
    mean = ref.copy()
    mirrored = mean.copy()
    mirrored[:, 0] = -mirrored[:, 0]
    mean = (mean + mirrored[MIRROR]) / 2  # symmetric: mirrored shape relabelled
    mean -= mean[30]
    mean *= 90.0 / np.linalg.norm(mean[36] - mean[45])
    x, y = mean[:, 0], -mean[:, 1]  # y up
    x -= x[27:31].mean()  # midline at x = 0

    def cyl(xv: np.ndarray, base: float, radius: float = 80.0) -> np.ndarray:
        return base - radius * (1 - np.sqrt(np.clip(1 - (xv / radius) ** 2, 0, 1)))

    z = np.zeros(68)
    z[0:17] = cyl(x[0:17], -15.0) * 1.0 - 0.2 * np.abs(x[0:17])
    z[17:27] = cyl(x[17:27], -22.0)
    z[27:31] = [-22.0, -15.0, -8.0, 0.0]
    z[31:36] = [-18.0, -14.0, -12.0, -14.0, -18.0]
    z[36:48] = cyl(x[36:48], -24.0)
    z[48:60] = cyl(x[48:60], -14.0, 40.0)
    z[60:68] = cyl(x[60:68], -16.0, 40.0)
    x[np.abs(x) < 0.05] = 0.0
    print("FACE_MODEL_3D = np.array([")
    for i in range(68):
        print(f"    ({x[i]:6.1f}, {y[i]:6.1f}, {z[i]:6.1f}),  # {i}")
    print("])")


if __name__ == "__main__":
    main()

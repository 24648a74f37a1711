"""The 68-point iBUG 300-W markup: index groups, mirroring, and the error measure.

Order (the person's own left/right; in an unmirrored photo the person's right eye is on the
image's left)::

    0-16 jaw (from the person's right ear to their left ear)   17-21 right brow   22-26 left brow
    27-30 nose bridge (top down)   31-35 nose bottom (right to left)
    36-41 right eye (36 outer corner, 39 inner, 37/38 upper lid, 40/41 lower lid)
    42-47 left eye  (42 inner corner, 45 outer, 43/44 upper lid, 46/47 lower lid)
    48-59 outer lips (48 right corner, 54 left corner)   60-67 inner lips (60, 64 the corners)

Coordinates are pixels of the image they belong to, x to the right, y down, (68, 2) arrays.
"""

from __future__ import annotations

import numpy as np

NUM_POINTS = 68

JAW = tuple(range(0, 17))
RIGHT_BROW = tuple(range(17, 22))
LEFT_BROW = tuple(range(22, 27))
NOSE_BRIDGE = tuple(range(27, 31))
NOSE_BOTTOM = tuple(range(31, 36))
RIGHT_EYE = tuple(range(36, 42))
LEFT_EYE = tuple(range(42, 48))
OUTER_LIPS = tuple(range(48, 60))
INNER_LIPS = tuple(range(60, 68))

#: Polylines for drawing the 68 points (closed ones repeat their first index at the end).
CONTOURS: tuple[tuple[int, ...], ...] = (
    JAW,
    RIGHT_BROW,
    LEFT_BROW,
    NOSE_BRIDGE + (33,),
    NOSE_BOTTOM,
    RIGHT_EYE + (36,),
    LEFT_EYE + (42,),
    OUTER_LIPS + (48,),
    INNER_LIPS + (60,),
)

RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 36, 45  # the NME normaliser ("inter-ocular", outer corners)
NOSE_TIP = 30
CHIN = 8


def _mirror_permutation() -> np.ndarray:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]  # brows
    pairs += [(31, 35), (32, 34)]  # nose bottom (27-30 and 33 lie on the midline)
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips (51, 57 midline)
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips (62, 66 midline)
    perm = np.arange(NUM_POINTS)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


#: ``points[MIRROR]`` relabels a horizontally flipped face: the flipped image's point i is the
#: original's point MIRROR[i] (the person's right eye becomes their left eye). An involution.
MIRROR: np.ndarray = _mirror_permutation()
MIRROR.setflags(write=False)


def check_points(points: np.ndarray) -> np.ndarray:
    """``points`` as a float64 (68, 2) array; ValueError for any other shape or a NaN."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (NUM_POINTS, 2):
        raise ValueError(f"expected (68, 2) landmarks, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("landmarks contain NaN or infinity")
    return p


def mirror_points(points: np.ndarray, width: float) -> np.ndarray:
    """Landmarks of the image flipped left-right (``image[:, ::-1]``, ``width`` pixels wide).

    x becomes ``width - 1 - x`` (pixel centres at integers) and the indices are swapped so that
    point 36 is still the person's right outer eye corner in the flipped image."""
    p = np.asarray(points, dtype=np.float64)
    out = p.copy()
    out[..., 0] = (width - 1) - p[..., 0]
    return out[..., MIRROR, :]


def outer_eye_distance(points: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners (points 36 and 45) of ``(..., 68, 2)`` landmarks."""
    p = np.asarray(points, dtype=np.float64)
    return np.linalg.norm(p[..., RIGHT_EYE_OUTER, :] - p[..., LEFT_EYE_OUTER, :], axis=-1)


def nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Normalised mean error: the mean over the 68 points of the Euclidean error, divided by the
    true outer-eye-corner distance (36-45). Works on one face ``(68, 2)`` (returns a 0-d array)
    or a batch ``(N, 68, 2)`` (returns ``(N,)``). A fraction: 0.045 is "4.5%"."""
    pred = np.asarray(pred, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape or pred.shape[-2:] != (NUM_POINTS, 2):
        raise ValueError(f"nme needs two (..., 68, 2) arrays of one shape, got {pred.shape} and {truth.shape}")
    err = np.linalg.norm(pred - truth, axis=-1).mean(axis=-1)
    return err / outer_eye_distance(truth)


def read_pts(path) -> np.ndarray:
    """Read a landmark file: either the iBUG ``.pts`` format (``version``/``n_points``/``{``...``}``)
    or 68 plain ``x y`` lines. Returns (68, 2) float64."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 2:
                continue
            try:
                rows.append((float(parts[0]), float(parts[1])))
            except ValueError:
                continue  # 'version: 1', 'n_points: 68'
    return check_points(np.asarray(rows, dtype=np.float64))

"""5-point alignment: a similarity warp (rotation, uniform scale, translation) that puts the
detected landmarks as close as possible (least squares) to the embedder's canonical template.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceapp.types import AlignedFace, Detection


def similarity_transform(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The 2x3 similarity matrix M minimising sum w_i ||M [src_i; 1] - dst_i||^2 (Umeyama, 1991).

    ``src`` and ``dst`` are (N, 2) arrays of corresponding points, N >= 2; ``weights`` (N,),
    non-negative, default all 1 (a zero weight leaves its point out). Reflections are excluded,
    so a mirrored face is never "aligned" by flipping it.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError("similarity_transform needs two (N, 2) arrays with N >= 2")
    w = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (len(src),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be one non-negative number per point, not all zero")
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s_c, d_c = src - mu_s, dst - mu_d
    var_s = float(w @ (s_c**2).sum(1))
    if var_s <= 1e-12:
        raise ValueError("the source points coincide; no transform fits them")
    cov = (d_c * w[:, None]).T @ s_c
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / var_s
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]]).astype(np.float64)


_BORDERS = {"replicate": cv2.BORDER_REPLICATE, "black": cv2.BORDER_CONSTANT}


def align_face(image: np.ndarray, detection: Detection, template: np.ndarray, size: int,
               border: str = "replicate") -> AlignedFace:
    """Warp ``image`` so the detection's 5 landmarks land on ``template`` in a size x size crop.
    ``border``: how chip pixels outside the photo are filled, "replicate" (its edge pixels) or
    "black" (the model's spec says which its training chips had: ``WeightsSpec.border``)."""
    matrix = similarity_transform(detection.landmarks.points, template)
    chip = cv2.warpAffine(
        image,
        matrix,
        (int(size), int(size)),
        flags=cv2.INTER_LINEAR,
        borderMode=_BORDERS[border],
        borderValue=(0, 0, 0),
    )
    return AlignedFace(image=np.ascontiguousarray(chip), detection=detection, matrix=matrix)

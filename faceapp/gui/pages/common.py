"""Helpers shared by the camera pages: overlays from frame results, camera status texts."""

from __future__ import annotations

from faceapp.gui.widgets import BAD, GOOD, NEUTRAL, WARN, Overlay
from faceapp.landmarks.points import CONTOURS


def face_overlay(detection, label: str, color, landmarks=None, *, detail: str = "") -> Overlay:
    """One face's overlay: its box with the 68-point landmarks and their contours when they were
    predicted (a FaceLandmarks), else MTCNN's 5 points."""
    b = detection.bbox
    if landmarks is not None:
        return Overlay((b.x1, b.y1, b.x2, b.y2), landmarks.points, label, color, CONTOURS, detail)
    return Overlay((b.x1, b.y1, b.x2, b.y2), detection.landmarks.points, label, color)


def landmark_text(face) -> str:
    """'yaw +5  pitch -3  eyes 0.31' for a FaceLandmarks (degrees; eye aspect ratio)."""
    q = face.quality
    return f"yaw {q.pose.yaw:+.0f}\u00b0  pitch {q.pose.pitch:+.0f}\u00b0  eyes {q.eye_aspect_ratio:.2f}"


def face_overlays(result, readings=None, *, show_unknown_distance: bool = True, landmarks=None) -> list[Overlay]:
    """A box, the landmarks and 'name d' (or 'not recognized d') for each face of a FrameResult.
    ``readings``: each face's 1:K reading (an IdentifyResult from ``FaceService.recognize``, the
    door's rule: the threshold for the gallery size and the margin); None (no service yet):
    every face reads 'not recognized'. Two look-alikes too close to tell apart are both named
    ('ann or eve?'). ``landmarks``: the frame's FaceLandmarks (one per face): their 68 points
    and contours are drawn instead of MTCNN's 5, and the head pose is written under the box."""
    out: list[Overlay] = []
    for i, face in enumerate(result.faces):
        det = face.observation.detection
        reading = readings[i] if readings is not None and i < len(readings) else None
        named = reading is not None and reading.name is not None
        q = face.observation.quality
        if named:
            label, color = f"{reading.name}  {reading.distance:.2f}", GOOD
        elif face.candidates and show_unknown_distance:
            label, color = f"not recognized  {face.candidates[0].distance:.2f}", WARN
            if reading is not None and reading.ambiguous and len(face.candidates) > 1:
                label += f"  ({face.candidates[0].name} or {face.candidates[1].name}?)"
        else:
            label, color = "not recognized", WARN
        if not q.ok:
            label += f"  ({q.describe()})"
            color = color if named else BAD
        lm = landmarks[i] if landmarks is not None and i < len(landmarks) else None
        out.append(face_overlay(det, label, color, lm, detail=landmark_text(lm) if lm is not None else ""))
    for det in result.all_detections:
        if any(det is f.observation.detection for f in result.faces):
            continue
        b = det.bbox  # too small to count: drawn thin and unlabelled
        out.append(Overlay((b.x1, b.y1, b.x2, b.y2), None, "", NEUTRAL))
    return out

"""Helpers shared by the camera pages: overlays from frame results, camera status texts."""

from __future__ import annotations

from faceapp.gui.widgets import BAD, GOOD, NEUTRAL, WARN, Overlay


def landmark_text(face) -> str:
    """'yaw +5  pitch -3  eyes 0.31' for a FaceLandmarks (degrees; eye aspect ratio)."""
    q = face.quality
    return f"yaw {q.pose.yaw:+.0f}\u00b0  pitch {q.pose.pitch:+.0f}\u00b0  eyes {q.eye_aspect_ratio:.2f}"


def face_overlays(result, *, show_unknown_distance: bool = True, landmarks=None) -> list[Overlay]:
    """A box, the landmarks and 'name d' (or 'unknown') for each face of a FrameResult.
    ``landmarks``: the frame's FaceLandmarks (one per face): their 68 points and contours are
    drawn instead of MTCNN's 5, and the head pose is written under the box."""
    from faceapp.landmarks.points import CONTOURS

    out: list[Overlay] = []
    for i, face in enumerate(result.faces):
        det = face.observation.detection
        best = face.best
        q = face.observation.quality
        if best is not None:
            label, color = f"{best.name}  {best.distance:.2f}", GOOD
        elif face.candidates and show_unknown_distance:
            label, color = f"unknown  {face.candidates[0].distance:.2f}", WARN
        else:
            label, color = "unknown", WARN
        if not q.ok:
            label += f"  ({q.describe()})"
            color = color if best is not None else BAD
        b = det.bbox
        if landmarks is not None and i < len(landmarks):
            out.append(Overlay((b.x1, b.y1, b.x2, b.y2), landmarks[i].points, label, color, CONTOURS,
                               landmark_text(landmarks[i])))
        else:
            out.append(Overlay((b.x1, b.y1, b.x2, b.y2), det.landmarks.points, label, color))
    for det in result.all_detections:
        if any(det is f.observation.detection for f in result.faces):
            continue
        b = det.bbox  # too small to count: drawn thin and unlabelled
        out.append(Overlay((b.x1, b.y1, b.x2, b.y2), None, "", NEUTRAL))
    return out

"""Helpers shared by the camera pages: overlays from frame results, camera status texts."""

from __future__ import annotations

from faceapp.gui.widgets import BAD, GOOD, NEUTRAL, WARN, Overlay


def face_overlays(result, *, show_unknown_distance: bool = True) -> list[Overlay]:
    """A box, the 5 landmarks and 'name d' (or 'unknown') for each face of a FrameResult."""
    out: list[Overlay] = []
    for face in result.faces:
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
        out.append(Overlay((b.x1, b.y1, b.x2, b.y2), det.landmarks.points, label, color))
    for det in result.all_detections:
        if any(det is f.observation.detection for f in result.faces):
            continue
        b = det.bbox  # too small to count: drawn thin and unlabelled
        out.append(Overlay((b.x1, b.y1, b.x2, b.y2), None, "", NEUTRAL))
    return out

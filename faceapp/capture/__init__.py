"""Frame sources: a webcam, a video file or a folder of images, all behaving as a camera."""

from faceapp.capture.sources import FrameSource, open_source

__all__ = ["FrameSource", "open_source"]

"""Camera sources. Every source yields RGB uint8 frames (converted from OpenCV's BGR once,
here) and raises :class:`~faceapp.errors.CameraUnavailable` when it cannot deliver.

``open_source("0")`` opens webcam 0; ``open_source("door.mp4")`` plays a video file;
``open_source("frames/")`` plays the images of a folder in name order. Video files and
folders can be paced at their frame rate (``realtime=True``, what a live camera does) or read
as fast as the consumer asks (tests, benchmarks), and can loop.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from faceapp.errors import CameraUnavailable, ImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class FrameSource(abc.ABC):
    """Base class: ``read()`` returns the next RGB frame or None at the end of a file source."""

    name: str = "source"
    fps: float = 30.0
    live: bool = False  # a webcam: frames keep coming and cannot be replayed

    @abc.abstractmethod
    def read(self) -> np.ndarray | None:
        """The next RGB uint8 frame (H, W, 3); None when a file source has ended."""

    def close(self) -> None:
        pass

    def frames(self, is_cancelled: Callable[[], bool] = lambda: False) -> Iterator[np.ndarray]:
        """Frames until the source ends or ``is_cancelled()``; the source is closed afterwards."""
        try:
            while not is_cancelled():
                frame = self.read()
                if frame is None:
                    return
                yield frame
        finally:
            self.close()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Pacer:
    def __init__(self, fps: float, realtime: bool) -> None:
        self.period = 1.0 / fps if realtime and fps > 0 else 0.0
        self.next = None

    def wait(self) -> None:
        if not self.period:
            return
        now = time.monotonic()
        if self.next is None:
            self.next = now
        if self.next > now:
            time.sleep(self.next - now)
        self.next = max(self.next + self.period, time.monotonic() - self.period)


class CameraSource(FrameSource):
    """A webcam by device index."""

    live = True

    def __init__(self, index: int, *, width: int = 640, height: int = 480, read_failures: int = 30) -> None:
        self.name = f"camera {index}"
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise CameraUnavailable(f"camera {index} could not be opened (is it connected and free?)")
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 30.0
        self._max_failures = read_failures
        self._lock = threading.Lock()

    def read(self) -> np.ndarray:
        with self._lock:
            for _ in range(self._max_failures):
                ok, bgr = self._cap.read()
                if ok and bgr is not None:
                    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                time.sleep(0.01)
        raise CameraUnavailable(f"{self.name} stopped delivering frames (unplugged?)")

    def close(self) -> None:
        with self._lock:
            self._cap.release()


class VideoFileSource(FrameSource):
    """A video file played as a camera (MJPG .avi and mp4v .mp4 are safe choices)."""

    def __init__(self, path: str | Path, *, realtime: bool = False, loop: bool = False) -> None:
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.is_file():
            raise CameraUnavailable(f"video file {self.path} does not exist")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            self._cap.release()
            raise CameraUnavailable(f"video file {self.path} could not be opened (unsupported codec?)")
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.loop = loop
        self._pacer = _Pacer(self.fps, realtime)
        self._lock = threading.Lock()

    def read(self) -> np.ndarray | None:
        with self._lock:
            self._pacer.wait()
            ok, bgr = self._cap.read()
            if not ok and self.loop:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, bgr = self._cap.read()
            if not ok or bgr is None:
                return None
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        with self._lock:
            self._cap.release()


class ImageFolderSource(FrameSource):
    """The images of a folder, in name order, played as a camera at ``fps`` frames per second."""

    def __init__(self, folder: str | Path, *, fps: float = 5.0, realtime: bool = False, loop: bool = False, max_side: int = 1280) -> None:
        from faceapp.imageio import load_image

        self._load = lambda p: load_image(p, max_side=max_side)
        self.folder = Path(folder)
        self.name = self.folder.name
        if not self.folder.is_dir():
            raise CameraUnavailable(f"image folder {self.folder} does not exist")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CameraUnavailable(f"image folder {self.folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.fps = fps
        self.loop = loop
        self._i = 0
        self._pacer = _Pacer(fps, realtime)

    def read(self) -> np.ndarray | None:
        while True:
            if self._i >= len(self.files):
                if not self.loop:
                    return None
                self._i = 0
            path = self.files[self._i]
            self._i += 1
            self._pacer.wait()
            try:
                return self._load(path)
            except ImageError as exc:  # one bad file does not stop the "camera"
                log.warning("skipping %s", exc)


def open_source(spec: str | int | Path, *, realtime: bool = False, loop: bool = False) -> FrameSource:
    """Open a camera source from a settings string: a device index, a video file or a folder."""
    text = str(spec).strip()
    if text.isdigit():
        return CameraSource(int(text))
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, realtime=realtime, loop=loop)
    if path.is_file():
        return VideoFileSource(path, realtime=realtime, loop=loop)
    raise CameraUnavailable(f"camera source {text!r} is neither a device index, a video file nor an image folder")


class LatestFrame:
    """Reads a source on its own thread and keeps only the newest frame, so a slow consumer
    never builds up lag: ``frames()`` yields the newest frame each time (older ones dropped).
    A read error is re-raised in the consumer."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._taken = 0
        self._done = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"capture-{source.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                with self._cond:
                    if frame is None:
                        break
                    if self._seq > self._taken:
                        self.dropped += 1
                    self._frame, self._seq = frame, self._seq + 1
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()
            self.source.close()

    def frames(self, is_cancelled: Callable[[], bool] = lambda: False) -> Iterator[np.ndarray]:
        try:
            while not is_cancelled():
                with self._cond:
                    while self._seq == self._taken and not self._done:
                        self._cond.wait(0.05)
                        if is_cancelled():
                            return
                    if self._seq == self._taken and self._done:
                        if self._error is not None:
                            raise self._error
                        return
                    frame, self._taken = self._frame, self._seq
                yield frame
        finally:
            self.stop()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

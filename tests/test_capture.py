"""Camera sources: video files and image folders behave as cameras; failures are CameraUnavailable."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PIL import Image

from faceapp.capture.sources import FrameSource, ImageFolderSource, LatestFrame, VideoFileSource, open_source
from faceapp.errors import CameraUnavailable


def _video(path, colours, size=(64, 48), fps=25.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for rgb in colours:
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[:] = rgb[::-1]  # OpenCV writes BGR
        w.write(frame)
    w.release()
    return path


def test_video_file_yields_rgb_frames_then_ends(tmp_path):
    path = _video(tmp_path / "v.avi", [(255, 0, 0)] * 3 + [(0, 0, 255)] * 2)
    src = open_source(str(path))
    assert isinstance(src, VideoFileSource)
    frames = list(src.frames())
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert frames[0][10, 10, 0] > 200 and frames[0][10, 10, 2] < 50  # red stays red (BGR->RGB once)
    assert frames[-1][10, 10, 2] > 200


def test_video_file_can_loop(tmp_path):
    src = VideoFileSource(_video(tmp_path / "v.avi", [(0, 255, 0)] * 2), loop=True)
    got = [src.read() for _ in range(5)]
    assert all(f is not None for f in got)
    src.close()


def test_image_folder_plays_in_name_order_and_skips_bad_files(tmp_path):
    for i, v in enumerate([10, 20, 30]):
        Image.new("RGB", (8, 8), (v, v, v)).save(tmp_path / f"{i:02d}.png")
    (tmp_path / "01b.jpg").write_bytes(b"not an image")
    src = open_source(tmp_path)
    assert isinstance(src, ImageFolderSource)
    assert [int(f[0, 0, 0]) for f in src.frames()] == [10, 20, 30]


@pytest.mark.parametrize("spec", ["/no/such/video.mp4", "nothing-here"])
def test_missing_sources_are_camera_unavailable(spec):
    with pytest.raises(CameraUnavailable):
        open_source(spec)


def test_empty_folder_and_unopenable_camera(tmp_path):
    with pytest.raises(CameraUnavailable, match="no images"):
        open_source(tmp_path)
    with pytest.raises(CameraUnavailable, match="camera 97"):
        open_source("97")


class _Counting(FrameSource):
    """Produces numbered frames quickly; fails after ``fail_after`` frames if set."""

    def __init__(self, n=1000, fail_after=None):
        self.i, self.n, self.fail_after = 0, n, fail_after

    def read(self):
        if self.fail_after is not None and self.i >= self.fail_after:
            raise CameraUnavailable("camera stopped delivering frames (unplugged?)")
        if self.i >= self.n:
            return None
        self.i += 1
        time.sleep(0.001)
        return np.full((2, 2, 3), self.i % 256, np.uint8)


def test_latest_frame_drops_old_frames_for_a_slow_consumer():
    latest = LatestFrame(_Counting(n=250))
    seen = []
    for frame in latest.frames():
        seen.append(int(frame[0, 0, 0]))
        time.sleep(0.02)  # a slow consumer
    assert latest.dropped > 0
    assert seen == sorted(seen) and len(seen) < 250


def test_latest_frame_reraises_a_camera_error_in_the_consumer():
    latest = LatestFrame(_Counting(fail_after=5))
    with pytest.raises(CameraUnavailable, match="unplugged"):
        for _ in latest.frames():
            time.sleep(0.001)


def test_latest_frame_stops_when_cancelled():
    stop = {"now": False}
    latest = LatestFrame(_Counting(n=10**6))
    for i, _ in enumerate(latest.frames(is_cancelled=lambda: stop["now"])):
        if i == 3:
            stop["now"] = True
    latest._thread.join(2)
    assert not latest._thread.is_alive()

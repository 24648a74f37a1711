"""``faceapp benchmark``'s live loop runs what the door runs on each frame: with the setting
``antispoof`` on (the default) every frame's face is scored, and the stage is timed."""

from __future__ import annotations

import numpy as np
import pytest


class _CountingAttempt:
    def __init__(self, fed: list) -> None:
        self.fed = fed

    def feed_result(self, result):
        self.fed.append(result.index)
        return 0.9


@pytest.mark.datasets
def test_the_live_loop_scores_every_frame_with_a_face_when_antispoof_is_on(engine, lfw_image):
    from faceapp.cli.benchmark import frame_with_face, live_loop
    from faceapp.imageio import load_image
    from faceapp.match.gallery import Gallery

    frame = frame_with_face(load_image(lfw_image("Aaron_Eckhart", 1)))
    fed: list = []
    gallery = Gallery.empty(engine.spec.embedding_dim)
    on = live_loop(engine, frame, svc_gallery=gallery, video=None, frames=6, antispoof=lambda: _CountingAttempt(fed))
    assert on["antispoof"] and on["frames"] == 6 and on["frames_with_face"] == 6
    assert fed == list(range(6)) and on["stages_ms"]["antispoof"] >= 0
    assert on["full_scans"] == 1  # the first frame; the others tracked
    off = live_loop(engine, frame, svc_gallery=gallery, video=None, frames=3)
    assert not off["antispoof"] and "antispoof" not in off["stages_ms"]
    assert np.isfinite(off["fps"]) and off["fps"] > 0

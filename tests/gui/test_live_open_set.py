"""The Live page labels each face the way the door decides (the service's 1:K reading): two
look-alikes within tau but within the margin of each other, or a face within tau but beyond
the threshold for the gallery size, read 'not recognized', not the nearest person's name.
Frames are hand-made (a face whose nearest people are chosen), shown through the page's slot."""

from __future__ import annotations

import numpy as np
import pytest

PEOPLE = 20  # the gallery size the frames were matched against


def _frame(candidates, people: int = PEOPLE):
    from PySide6.QtGui import QImage

    from faceapp.gui.context import LiveFrame
    from faceapp.pipeline import FaceObservation, FaceResult, FrameResult
    from faceapp.types import AlignedFace, BBox, Candidate, Detection, Landmarks, QualityReport

    det = Detection(BBox(200, 100, 400, 340), 0.99, Landmarks(np.full((5, 2), 300.0)))
    aligned = AlignedFace(np.zeros((150, 150, 3), np.uint8), det, np.eye(2, 3))
    obs = FaceObservation(aligned, QualityReport(200.0, 120.0, 80.0, 0.99), np.ones(128, np.float32))
    cands = tuple(Candidate(n, d) for n, d in candidates)
    face = FaceResult(obs, cands, 0.15)
    result = FrameResult(0, np.zeros((480, 640, 3), np.uint8), (face,), {}, (det,), gallery_size=people)
    image = QImage(640, 480, QImage.Format.Format_RGB888)
    image.fill(0)
    return LiveFrame(result, image)


@pytest.fixture
def live(qtbot, window, ctx):
    qtbot.waitUntil(lambda: ctx.service is not None, timeout=20000)
    window.show_page(window.live)
    page = window.live
    assert page.isVisible()
    return page


def _rule(ctx):
    rule = ctx.service.recognize_rule()
    tau, t_k = ctx.service.threshold, rule.threshold(PEOPLE)
    assert t_k < tau - 0.02 and rule.margin > 0, (tau, t_k, rule.margin)
    return rule, tau, t_k


def _label(page) -> str:
    overlays = page.view._overlays
    assert len(overlays) == 1
    return overlays[0].label


def test_two_look_alikes_within_the_margin_are_labelled_not_recognized(live, ctx):
    rule, tau, t_k = _rule(ctx)
    d_ann = t_k - 0.015
    d_eve = d_ann + rule.margin / 2
    assert d_eve < tau  # the fixed-tau label named ann
    live._frame(_frame([("ann", d_ann), ("eve", d_eve)]))
    label = _label(live)
    assert label.startswith("not recognized") and "ann" in label and "eve" in label
    assert f"{d_ann:.2f}" in label
    info = live.info.text()
    assert f"threshold {t_k:.3f} for {PEOPLE} people" in info and f"margin {rule.margin:.2f}" in info


def test_a_face_beyond_the_threshold_for_the_gallery_size_is_labelled_not_recognized(live, ctx):
    _rule_, tau, t_k = _rule(ctx)
    d = (t_k + tau) / 2
    live._frame(_frame([("ann", d), ("stranger", 1.9)]))
    label = _label(live)
    assert label.startswith("not recognized") and "ann" not in label and f"{d:.2f}" in label
    live._frame(_frame([("ann", d)], people=1))  # alone in the gallery: t_1 is tau, ann is named
    assert _label(live).startswith(f"ann  {d:.2f}")


def test_a_face_clear_of_everyone_is_labelled_with_its_name(live, ctx):
    _rule_, tau, t_k = _rule(ctx)
    live._frame(_frame([("ann", 0.04), ("eve", tau - 0.01)]))
    assert _label(live).startswith("ann  0.04")

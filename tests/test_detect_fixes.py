"""Detection fixes (issue 16 item 5): ``min_detection_score`` applies before faces are counted,
and a dim face is brightened before the brightness gate judges it."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.config import Settings
from faceapp.detect.edges import shifted
from faceapp.detect.quality import NORMALIZED_LUMA, QualityLimits, brightness, normalize_brightness
from faceapp.door import DoorMode, read_frame
from faceapp.match.gallery import Gallery
from faceapp.pipeline import FaceEngine, FacePipeline
from faceapp.types import BBox, Decision, Detection, Landmarks, QualityIssue


def _det(x, size, score) -> Detection:
    # landmarks roughly where a face's are, so the alignment is well posed
    pts = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]]) * size + [x, 10]
    return Detection(BBox(x, 10, x + size, 10 + size), score, Landmarks(pts.astype(np.float32)))


class _Detector:
    """Finds the given faces (in FRAME's coordinates) wherever FRAME is: a padded copy of it
    (faceapp.detect.edges, for a face near the edge) has them shifted by the border, as MTCNN would."""

    def __init__(self, detections):
        self.detections = detections

    def detect(self, image):
        pad = (image.shape[0] - FRAME.shape[0]) // 2
        return [shifted(d, pad, pad) for d in self.detections]


FRAME = np.random.default_rng(3).integers(60, 200, (320, 480, 3)).astype(np.uint8)  # textured: not 'blurry'


class _Embedder:
    def embed(self, chips):
        e = np.zeros((len(chips), 128), np.float32)
        e[:, 0] = 1.0
        return e


FACE = _det(20, 200, 0.99)
PLANT = _det(300, 90, 0.75)  # a false 'face' on a plant: big enough to count, unsure


def _engine(detections, **settings) -> FaceEngine:
    engine = FaceEngine(Settings(device="cpu", **settings))
    engine._detector = _Detector(detections)  # no networks: these tests are about counting
    engine._embedder = _Embedder()
    return engine


def test_a_low_score_extra_face_is_not_counted():
    engine = _engine([FACE, PLANT])
    assert engine.relevant([FACE, PLANT]) == [FACE]
    second = _det(300, 90, 0.95)
    assert engine.relevant([FACE, second]) == [FACE, second]  # a confident second face still counts
    # only unsure faces: the largest is kept, so the visitor hears 'look at the camera', not 'no face'
    unsure = _det(20, 200, 0.8)
    assert engine.relevant([unsure, PLANT]) == [unsure]
    assert engine.relevant([_det(20, 20, 0.99)]) == []  # too small to count, whatever its score


def test_at_the_door_a_frame_with_a_low_score_extra_face_is_one_face():
    engine = _engine([FACE, PLANT])
    gallery = Gallery(["ann"], np.array([1]), np.eye(1, 128, dtype=np.float32))
    result = FacePipeline(engine, lambda: gallery).process(FRAME)
    assert len(result.faces) == 1 and len(result.all_detections) == 2
    assert result.gallery_size == 1
    v = read_frame(result, DoorMode.RECOGNIZE, threshold=0.15)
    assert v.decision is Decision.MATCH and v.name == "ann"
    lone = _engine([_det(20, 200, 0.8)])
    result = FacePipeline(lone, lambda: gallery).process(FRAME)
    v = read_frame(result, DoorMode.RECOGNIZE, threshold=0.15)
    assert v.decision is Decision.LOW_QUALITY and QualityIssue.LOW_CONFIDENCE in v.issues


def test_in_enrollment_a_low_score_extra_face_is_one_face(tmp_path):
    from faceapp.services import FaceService

    engine = _engine([FACE, PLANT])
    svc = FaceService(Settings(device="cpu", db_url=f"sqlite:///{tmp_path / 'f.db'}"), engine=engine, analyzer=object())
    try:
        probe = svc.probe(FRAME)
        assert probe.decision is None and probe.faces == 1
        engine._detector = _Detector([FACE, _det(300, 90, 0.95)])
        assert svc.probe(FRAME).decision is Decision.MULTIPLE_FACES
    finally:
        svc.close()


def _chip(scale: float) -> np.ndarray:
    y, x = np.mgrid[0:150, 0:150]
    base = 60 + 120 * np.exp(-((x - 75) ** 2 + (y - 70) ** 2) / 2500.0) + 20 * np.sin(x / 5.0)
    return np.clip(np.repeat(base[..., None], 3, axis=2) * scale, 0, 255).astype(np.uint8)


def test_a_dim_chip_is_brightened_in_order_and_a_bright_or_black_one_is_left_alone():
    limits = QualityLimits()
    dim = _chip(0.25)
    assert brightness(dim) < limits.min_brightness
    out = normalize_brightness(dim, limits)
    assert abs(brightness(out) - NORMALIZED_LUMA) < 3.0
    order = np.argsort(dim[..., 0].ravel(), kind="stable")
    assert np.all(np.diff(out[..., 0].ravel()[order].astype(int)) >= 0)  # grey levels keep their order
    bright = _chip(1.0)
    assert normalize_brightness(bright, limits) is bright
    black = _chip(0.05)
    assert brightness(black) < limits.min_raw_brightness
    assert normalize_brightness(black, limits) is black  # nothing to brighten: stays TOO_DARK
    assert normalize_brightness(dim, QualityLimits(normalize=False)) is dim


@pytest.mark.datasets
def test_a_darkened_lfw_pair_still_verifies_after_normalisation(engine, lfw_image):
    from faceapp.imageio import load_image

    def observe(eng, img):
        return eng.observe(img, eng.relevant(eng.detect(img))[:1])[0]

    off = FaceEngine(Settings(device="cpu", brightness_normalize=False))
    off._detector, off._embedder = engine.detector, engine.embedder
    a = observe(engine, load_image(lfw_image("George_W_Bush", 1)))
    b_img = load_image(lfw_image("George_W_Bush", 2))
    dark = (b_img.astype(np.float32) * 0.2).astype(np.uint8)
    plain = observe(engine, b_img)
    refused = observe(off, dark)
    assert QualityIssue.TOO_DARK in refused.quality.issues  # the old gate refuses it
    fixed = observe(engine, dark)
    assert fixed.quality.ok and abs(fixed.quality.brightness - NORMALIZED_LUMA) < 3.0
    d_plain = float(((a.embedding - plain.embedding) ** 2).sum())
    d_fixed = float(((a.embedding - fixed.embedding) ** 2).sum())
    assert d_fixed <= engine.threshold and abs(d_fixed - d_plain) < 0.03


def test_the_door_sees_the_second_nearest_person_whatever_top_k_is():
    """The recognize margin (nearest vs second-nearest) needs two candidates: with the setting
    top_k = 1 the pipeline still hands the door both, so a face between two look-alikes is
    ambiguous, not the nearest's."""
    from faceapp.config import Settings as S
    from faceapp.embed.weights import load_spec
    from faceapp.match.open_set import OpenSetRule

    spec = load_spec("dlib-resnet-v1")
    a = np.eye(1, 128, 0, dtype=np.float32)[0]
    b = np.cos(0.1) * a + np.sin(0.1) * np.eye(1, 128, 1, dtype=np.float32)[0]  # bob: 0.01 from ann
    probe = (a + b) / np.linalg.norm(a + b)  # halfway: within tau of both, no margin between them
    engine = _engine([FACE])

    class _Probe:
        def embed(self, chips):
            return np.tile(probe.astype(np.float32), (len(chips), 1))

    engine._embedder = _Probe()
    gallery = Gallery(["ann", "bob"], np.array([1, 2]), np.stack([a, b]).astype(np.float32))
    rule = OpenSetRule.from_settings(S(), spec, cap=spec.threshold)
    for top_k in (3, 1):
        result = FacePipeline(engine, lambda: gallery, top_k=top_k, track=False).process(FRAME)
        assert len(result.faces[0].candidates) >= 2
        v = read_frame(result, DoorMode.RECOGNIZE, threshold=spec.threshold, rule=rule)
        assert v.decision is Decision.NOT_RECOGNIZED and v.ambiguous, top_k

"""Alignment maths and quality measures on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.detect.align import align_face, similarity_transform
from faceapp.detect.quality import QualityLimits, assess, brightness, sharpness
from faceapp.types import AlignedFace, BBox, Detection, Landmarks, QualityIssue

TEMPLATE = np.array([[50, 60], [100, 60], [75, 90], [55, 115], [95, 115]], dtype=np.float32)


def _apply(m, pts):
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def test_similarity_recovers_a_known_rotation_scale_translation():
    theta, s, t = np.deg2rad(20), 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    src = TEMPLATE.astype(np.float64)
    dst = s * src @ rot.T + t
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], s * rot, atol=1e-9)
    assert np.allclose(m[:, 2], t, atol=1e-9)


def test_similarity_never_reflects():
    mirrored = TEMPLATE.copy()
    mirrored[:, 0] = 200 - mirrored[:, 0]
    m = similarity_transform(mirrored, TEMPLATE)
    assert np.linalg.det(m[:, :2]) > 0


def test_similarity_rejects_degenerate_points():
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), TEMPLATE)


def test_similarity_weights_scale_out_and_drop_points():
    rng = np.random.default_rng(0)
    src = TEMPLATE.astype(np.float64)
    dst = src * 1.3 + rng.normal(0, 2.0, src.shape)  # noisy: the fits differ with the weights
    plain = similarity_transform(src, dst)
    assert np.allclose(similarity_transform(src, dst, np.ones(5)), plain)
    assert np.allclose(similarity_transform(src, dst, np.full(5, 7.0)), plain)  # only ratios count
    # a zero weight is the fit without that point; a small weight moves the fit towards it
    dropped = similarity_transform(src, dst, [1, 1, 1, 0, 0])
    assert np.allclose(dropped, similarity_transform(src[:3], dst[:3]))
    half = similarity_transform(src, dst, [1, 1, 1, 0.25, 0.25])
    assert not np.allclose(half, plain) and not np.allclose(half, dropped)
    for bad in ([1, 1, 1, 1], [1, 1, 1, 1, -1], [0, 0, 0, 0, 0]):
        with pytest.raises(ValueError, match="weights"):
            similarity_transform(src, dst, bad)


def test_align_face_puts_landmarks_on_the_template():
    # A face whose landmarks are the template shifted by (30, 40) and scaled 2x.
    src_pts = TEMPLATE * 2 + np.array([30, 40])
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    for x, y in src_pts.astype(int):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    det = Detection(BBox(0, 0, 400, 400), 0.99, Landmarks(src_pts))
    face = align_face(image, det, TEMPLATE, 150)
    assert face.image.shape == (150, 150, 3)
    assert np.allclose(_apply(face.matrix, src_pts), TEMPLATE, atol=1e-6)
    for x, y in TEMPLATE.astype(int):
        assert face.image[y, x].mean() > 100  # the bright dots landed on the template points


def _face(chip, size=100.0, score=0.99):
    det = Detection(BBox(0, 0, size, size), score, Landmarks(TEMPLATE))
    return AlignedFace(image=chip, detection=det, matrix=np.eye(2, 3))


def _textured(level: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 25, (150, 150, 1))
    return np.clip(level + noise, 0, 255).astype(np.uint8).repeat(3, axis=2)


def test_brightness_and_sharpness_measures():
    flat = np.full((150, 150, 3), 100, dtype=np.uint8)
    assert brightness(flat) == pytest.approx(100, abs=0.5)
    assert sharpness(flat) == 0.0
    assert sharpness(_textured(120)) > 100


def test_good_face_has_no_issues():
    report = assess(_face(_textured(120)), QualityLimits())
    assert report.ok and report.describe() == "good"


@pytest.mark.parametrize(
    "chip, size, score, issue",
    [
        (_textured(120), 30.0, 0.99, QualityIssue.TOO_SMALL),
        (_textured(15), 100.0, 0.99, QualityIssue.TOO_DARK),
        (_textured(245), 100.0, 0.99, QualityIssue.TOO_BRIGHT),
        (np.full((150, 150, 3), 120, np.uint8), 100.0, 0.99, QualityIssue.BLURRY),
        (_textured(120), 100.0, 0.5, QualityIssue.LOW_CONFIDENCE),
    ],
)
def test_each_quality_issue_is_reported(chip, size, score, issue):
    report = assess(_face(chip, size, score), QualityLimits())
    assert issue in report.issues and not report.ok


def test_nested_duplicate_detections_are_suppressed():
    from faceapp.detect.detector import suppress_nested

    def det(x1, y1, x2, y2):
        return Detection(BBox(x1, y1, x2, y2), 0.99, Landmarks(TEMPLATE))

    big, inner, other = det(0, 0, 100, 100), det(10, 5, 95, 90), det(150, 0, 240, 90)
    assert suppress_nested([big, inner, other]) == [big, other]
    side_by_side = det(60, 0, 160, 100)  # overlaps 40% of the smaller: a second face
    assert suppress_nested([big, side_by_side]) == [big, side_by_side]


def test_the_warp_fills_pixels_outside_the_photo_as_the_model_was_trained():
    """A face at the photo's edge: chip pixels beyond it are the edge repeated (dlib-resnet-v1)
    or zeros (sface-v1, as OpenCV's alignCrop leaves them)."""
    from faceapp.detect.align import align_face
    from faceapp.embed.weights import load_spec
    from faceapp.types import BBox, Detection, Landmarks

    image = np.full((60, 60, 3), 200, np.uint8)
    spec = load_spec("sface-v1")
    assert spec.border == "black" and load_spec("dlib-resnet-v1").border == "replicate"
    # the template's own points shifted left by half the chip: the chip's left part is outside
    det = Detection(BBox(0, 0, 60, 60), 1.0, Landmarks((spec.template * 0.5 - [28, 0]).astype(np.float32)))
    black = align_face(image, det, spec.template, spec.input_size, "black").image
    repl = align_face(image, det, spec.template, spec.input_size, "replicate").image
    assert (black[:, :40] == 0).all() and (black[:, -20:] == 200).all()
    assert (repl == 200).all()


def test_a_spec_with_an_unknown_border_is_refused(tmp_path):
    import json

    from faceapp.embed.weights import WeightsSpec, load_spec
    from faceapp.errors import WeightsError

    spec = load_spec("sface-v1")
    data = json.loads(spec.file.with_suffix(".json").read_text())
    data["border"] = "mirror"
    (tmp_path / "x.json").write_text(json.dumps(data))
    with pytest.raises(WeightsError, match="border must be one of replicate, black"):
        WeightsSpec.from_json(tmp_path / "x.json")

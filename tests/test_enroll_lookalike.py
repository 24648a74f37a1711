"""Enrollment's 'already matches someone' check follows the 1:K rule: a face within the
recognize threshold for the gallery it joins is refused (most likely the same person); a
look-alike within tau but beyond it is enrolled, with a warning. No networks: a stub engine
hands out chosen encodings."""

from __future__ import annotations

import numpy as np
import pytest
from statistics import NormalDist

from faceapp.config import Settings
from faceapp.errors import AlreadyEnrolled
from faceapp.match.open_set import FarCurve, OpenSetRule

from test_detect_fixes import FACE, FRAME, _engine


def _unit(angle_from: np.ndarray, d: float, axis: int = 1) -> np.ndarray:
    """A unit vector at squared distance d from the unit vector e0 ``angle_from``, towards e_axis."""
    cos = 1 - d / 2
    other = np.zeros(128, np.float32)
    other[axis] = 1.0
    return (cos * angle_from + np.sqrt(1 - cos**2) * other).astype(np.float32)


@pytest.fixture
def svc(tmp_path):
    from faceapp.services import FaceService

    engine = _engine([FACE])
    s = Settings(device="cpu", db_url=f"sqlite:///{tmp_path / 'f.db'}", enroll_check_landmarks=False)
    service = FaceService(s, engine=engine, analyzer=object())
    t = np.round(np.arange(0.01, 0.61, 0.01), 2)
    far = np.floor(np.array([NormalDist().cdf((x - 0.45) / 0.1) for x in t]) * 1e6) / 1e6
    rule = OpenSetRule(FarCurve.from_points(t, far, 10**6), attempt_far=1e-3, margin=0.02, cap=0.15)
    service.recognize_rule = lambda: rule  # a known curve: t_K = 0.119 for 2 people
    yield service, engine, rule
    service.close()


def _enroll_as(svc, engine, name, embedding, **kw):
    engine._embedder.embed = lambda chips: np.asarray([embedding] * len(chips), np.float32)
    return svc.enroll(name, FRAME, **kw)


def test_a_look_alike_is_enrolled_with_a_warning_and_the_same_face_is_refused(svc):
    service, engine, rule = svc
    ann = np.eye(1, 128, dtype=np.float32)[0]
    _enroll_as(service, engine, "ann", ann)
    tau_2 = rule.threshold(2)
    assert 0.10 < tau_2 < 0.13
    # within tau (0.15) but beyond t_K: a different person who looks alike
    res = _enroll_as(service, engine, "eve", _unit(ann, 0.14))
    assert res.person.name == "eve" and res.similar_to == "ann" and "looks like 'ann'" in res.warning
    assert res.similar_distance == pytest.approx(0.14, abs=1e-4)
    assert "looks like ann" in service.store.events()[0].detail
    # within t_K for the gallery it would join: refused, unless forced
    with pytest.raises(AlreadyEnrolled) as exc:
        _enroll_as(service, engine, "ann2", _unit(ann, 0.05, axis=2))
    assert exc.value.name == "ann" and "recognize threshold" in str(exc.value)
    forced = _enroll_as(service, engine, "ann2", _unit(ann, 0.05, axis=2), force=True)
    assert forced.similar_to == "ann" and not forced.warning
    assert "forced" in service.store.events()[0].detail


def test_the_refusal_threshold_shrinks_as_the_gallery_grows(svc):
    service, engine, rule = svc
    rng = np.random.default_rng(0)
    for i in range(8):  # people far from everyone (random directions in 128-d)
        v = rng.normal(size=128).astype(np.float32)
        _enroll_as(service, engine, f"p{i}", v / np.linalg.norm(v))
    ann = np.eye(1, 128, dtype=np.float32)[0]
    _enroll_as(service, engine, "ann", ann)
    d = (rule.threshold(10) + rule.threshold(2)) / 2  # refused beside one person, not beside nine
    res = _enroll_as(service, engine, "eve", _unit(ann, d))
    assert res.similar_to == "ann" and res.warning

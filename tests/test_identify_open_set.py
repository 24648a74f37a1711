"""``identify`` (the service, the API and the CLI) answers 1:K the way the door does: the
threshold set for the gallery size from the per-attempt FAR target (never above tau) and the
margin to the second-nearest person (:class:`faceapp.match.open_set.OpenSetRule`). No
networks: a stub engine finds one face and hands out a chosen encoding; the gallery is
hand-made templates at chosen squared distances from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceapp.cli.exit_codes import Exit
from faceapp.config import Settings
from faceapp.door import DoorMode, read_frame
from faceapp.imageio import encode_jpeg
from faceapp.pipeline import FacePipeline
from faceapp.types import Decision

from test_detect_fixes import FACE, FRAME, _engine

DIM = 128
PROBE = np.eye(1, DIM, dtype=np.float32)[0]  # what the stub embedder makes of every face


def _at(d: float, axis: int) -> np.ndarray:
    """A unit vector at squared distance ``d`` from PROBE, turned towards e_axis."""
    cos = 1 - d / 2
    v = np.zeros(DIM, np.float32)
    v[0], v[axis] = cos, np.sqrt(1 - cos**2)
    return v


class _Embedder:
    def embed(self, chips):
        return np.asarray([PROBE] * len(chips), np.float32)


@pytest.fixture
def svc(tmp_path):
    from faceapp.services import FaceService

    engine = _engine([FACE])
    engine._embedder = _Embedder()
    service = FaceService(Settings(device="cpu", db_url=f"sqlite:///{tmp_path / 'f.db'}"), engine=engine,
                          analyzer=object())
    yield service
    service.close()


def _add(service, name: str, embedding: np.ndarray) -> None:
    service.store.add_person(name, embedding=embedding, model_id=service.engine.model_id, quality=1.0,
                             face_jpeg=encode_jpeg(np.zeros((8, 8, 3), np.uint8)))


def _strangers(service, n: int) -> None:
    """``n`` people far from the probe (squared distance 2: random directions orthogonal to it)."""
    rng = np.random.default_rng(7)
    for i in range(n):
        v = rng.normal(size=DIM).astype(np.float32)
        v[0] = 0.0
        _add(service, f"stranger{i:02d}", v / np.linalg.norm(v))


PEOPLE = 20  # the gallery of the tests: large enough that its recognize threshold is below tau


def _rule(service):
    rule = service.recognize_rule()
    tau, t_k = service.threshold, rule.threshold(PEOPLE)
    assert t_k < tau - 0.02, (tau, t_k)  # the shipped model has a calibration curve (tests/test_open_set.py)
    assert rule.margin > 0
    return rule, tau, t_k


def _look_alikes(service):
    """ann and eve both within tau and t_K of the probe but closer to each other than the margin;
    18 strangers make the gallery 20 people. Returns (ann's, eve's distance)."""
    rule, _tau, t_k = _rule(service)
    d_ann = t_k - 0.015
    d_eve = d_ann + rule.margin / 2
    _add(service, "ann", _at(d_ann, 1))
    _add(service, "eve", _at(d_eve, 2))
    _strangers(service, PEOPLE - 2)
    return d_ann, d_eve


def test_two_look_alikes_within_tau_and_the_margin_of_each_other_are_not_recognized(svc):
    d_ann, d_eve = _look_alikes(svc)
    assert d_eve <= svc.threshold  # the fixed-tau rule named ann here
    r = svc.identify(FRAME)
    assert r.decision is Decision.NOT_RECOGNIZED and r.name is None and not r.granted
    assert r.ambiguous
    assert r.distance == pytest.approx(d_ann, abs=1e-4) and r.second == pytest.approx(d_eve, abs=1e-4)
    assert r.margin == pytest.approx(d_eve - d_ann, abs=1e-4) and r.min_margin == svc.recognize_rule().margin
    assert r.people == PEOPLE and r.threshold == pytest.approx(svc.recognize_rule().threshold(PEOPLE))
    assert [c.name for c in r.candidates[:2]] == ["ann", "eve"]
    event = svc.store.events()[0]
    assert (event.kind, event.decision, event.decided) == ("identify", Decision.NOT_RECOGNIZED, None)
    assert event.threshold == pytest.approx(r.threshold)
    assert "ann" in event.detail and "eve" in event.detail and "margin" in event.detail


def test_a_face_within_tau_but_beyond_the_threshold_for_the_gallery_size_is_not_recognized(svc):
    _rule_, tau, t_k = _rule(svc)
    d = (t_k + tau) / 2
    _add(svc, "ann", _at(d, 1))
    alone = svc.identify(FRAME)  # one person: t_1 is tau itself
    assert alone.decision is Decision.MATCH and alone.name == "ann" and alone.people == 1
    assert alone.threshold == pytest.approx(tau, abs=0.005) and alone.second is None
    _strangers(svc, PEOPLE - 1)
    r = svc.identify(FRAME)
    assert r.decision is Decision.NOT_RECOGNIZED and r.name is None and not r.ambiguous
    assert r.distance == pytest.approx(d, abs=1e-4) and r.threshold == pytest.approx(t_k)
    assert r.threshold < r.distance < tau


def test_a_face_clear_of_the_second_nearest_is_recognized_with_its_margin(svc):
    rule, tau, t_k = _rule(svc)
    _add(svc, "ann", _at(0.04, 1))
    _add(svc, "eve", _at(tau - 0.01, 2))
    _strangers(svc, PEOPLE - 2)
    r = svc.identify(FRAME)
    assert r.decision is Decision.MATCH and r.name == "ann" and r.granted and not r.ambiguous
    assert r.margin == pytest.approx(tau - 0.05, abs=1e-4) and r.threshold == pytest.approx(t_k)
    assert svc.store.events()[0].decided == "ann"


def test_an_explicit_threshold_caps_the_size_adjusted_one(svc):
    _rule(svc)
    _add(svc, "ann", _at(0.04, 1))
    _strangers(svc, PEOPLE - 1)
    r = svc.identify(FRAME, threshold=0.03)
    assert r.decision is Decision.NOT_RECOGNIZED and r.threshold == pytest.approx(0.03)
    assert svc.identify(FRAME, threshold=0.5).threshold == pytest.approx(svc.recognize_rule().threshold(PEOPLE))


@pytest.mark.parametrize("case", ["look-alikes", "size", "clear"])
def test_identify_and_the_door_read_the_same_face_alike(svc, case):
    rule, tau, t_k = _rule(svc)
    if case == "look-alikes":
        _look_alikes(svc)
    else:
        _add(svc, "ann", _at((t_k + tau) / 2 if case == "size" else 0.04, 1))
        _strangers(svc, PEOPLE - 1)
    frame = FacePipeline(svc.engine, svc.gallery, track=False).process(FRAME)
    door = read_frame(frame, DoorMode.RECOGNIZE, threshold=tau, rule=rule)
    live = svc.recognize(frame.faces[0].candidates, frame.gallery_size)
    r = svc.identify(FRAME)
    assert r.decision is door.decision is live.decision
    assert r.name == door.name == live.name and r.threshold == pytest.approx(door.threshold)
    assert (case == "clear") is (r.decision is Decision.MATCH)


def test_the_api_identifies_through_the_same_rule(svc):
    import faceapp

    _look_alikes(svc)
    app = faceapp.FaceApp(service=svc)
    r = app.identify(FRAME)
    assert r.decision is Decision.NOT_RECOGNIZED and r.ambiguous and r.people == PEOPLE


# -- the command line ------------------------------------------------------------------------
@pytest.fixture
def cli(svc, monkeypatch, capsys, tmp_path):
    """``faceapp identify`` on the stub service; returns (exit code, stdout)."""
    from PIL import Image

    import faceapp.cli.main as cli_main

    probe = tmp_path / "probe.png"
    Image.fromarray(FRAME).save(probe)

    class _Kept:  # the CLI closes its service: keep the fixture's open for the checks after
        def __enter__(self):
            return svc

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(cli_main, "_service", lambda args: _Kept())

    def run(*argv):
        code = cli_main.main(["identify", str(probe), *argv])
        return code, capsys.readouterr().out

    return run


def test_the_cli_says_not_recognized_for_two_look_alikes_and_shows_why(svc, cli):
    d_ann, d_eve = _look_alikes(svc)
    t_k = svc.recognize_rule().threshold(PEOPLE)
    code, out = cli()
    assert code == Exit.NO_MATCH
    first = out.splitlines()[0]
    assert first.startswith("NOT RECOGNIZED") and "ann" in first and "eve" in first
    assert f"{d_ann:.4f}" in first and f"{d_eve:.4f}" in first
    assert f"{t_k:.4f}" in first and f"{PEOPLE} people" in first
    assert f"margin {d_eve - d_ann:.4f} < {svc.recognize_rule().margin:.4f}" in first


def test_the_cli_says_not_recognized_beyond_the_threshold_for_the_gallery_size(svc, cli):
    _rule_, tau, t_k = _rule(svc)
    d = (t_k + tau) / 2
    _add(svc, "ann", _at(d, 1))
    _strangers(svc, PEOPLE - 1)
    code, out = cli()
    assert code == Exit.NO_MATCH
    first = out.splitlines()[0]
    assert first.startswith("NOT RECOGNIZED") and f"{d:.4f} > {t_k:.4f}" in first and f"{PEOPLE} people" in first
    assert f"tau {tau:.4f}" in first


def test_the_cli_json_carries_the_threshold_for_the_gallery_size_and_the_margin(svc, cli):
    d_ann, d_eve = _look_alikes(svc)
    code, out = cli("--json")
    payload = json.loads(out)
    assert code == Exit.NO_MATCH and payload["decision"] == "not_recognized" and payload["name"] is None
    assert payload["threshold"] == pytest.approx(svc.recognize_rule().threshold(PEOPLE))
    assert payload["tau"] == pytest.approx(svc.threshold) and payload["people"] == PEOPLE
    assert payload["second"] == pytest.approx(d_eve, abs=1e-4) and payload["ambiguous"] is True
    assert payload["margin"] == pytest.approx(d_eve - d_ann, abs=1e-4)
    assert payload["min_margin"] == pytest.approx(svc.recognize_rule().margin)


def test_the_cli_names_a_face_clear_of_everyone_with_its_margin(svc, cli):
    _rule_, tau, t_k = _rule(svc)
    _add(svc, "ann", _at(0.04, 1))
    _add(svc, "eve", _at(tau - 0.01, 2))
    _strangers(svc, PEOPLE - 2)
    code, out = cli()
    first = out.splitlines()[0]
    assert code == Exit.OK and first.startswith("RECOGNIZED: ann")
    assert f"0.0400 <= {t_k:.4f}" in first and f"margin {tau - 0.05:.4f}" in first

"""``faceapp door --headless`` on real videos of real people (``../shared/videos``, README there):
the man of ``LivePortrait_driving_d18.mp4`` is enrolled from ``LivePortrait_driving_d19.jpg``.

The door runs in-process through :func:`faceapp.cli.door_headless.run_headless`, the function
the command calls, with the session's face engine; frames are subsampled (``every``) so each
test processes about twenty frames. Decisions are on video time, so they do not depend on how
fast this machine is."""

from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
from pathlib import Path

import pytest
from test_outputs import RELOCK, UNLOCK, Receiver

from faceapp.cli import door_headless
from faceapp.cli.door_headless import run_headless
from faceapp.cli.exit_codes import Exit
from faceapp.cli.main import main
from faceapp.config import Settings

ENROLLED = "Hoodie Man"


@pytest.fixture(scope="session")
def videos() -> Path:
    root = Path(os.environ.get("FACEAPP_VIDEOS") or Path(__file__).resolve().parents[2] / "shared" / "videos")
    if not (root / "LivePortrait_driving_d18.mp4").is_file():
        reason = f"the real videos are not in {root} (set FACEAPP_VIDEOS)"
        if os.environ.get("FACEAPP_REQUIRE_DATASETS") == "1":
            pytest.fail(reason + "; FACEAPP_REQUIRE_DATASETS=1 makes this an error")
        pytest.skip(reason)
    return root


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _door(engine, analyzer, sqlite_url, videos, **settings):
    """(settings, service) with the d18 man enrolled from the d19 still."""
    from faceapp.services import FaceService

    s = Settings(device="cpu", db_url=sqlite_url, **settings)
    service = FaceService(s, engine=engine, analyzer=analyzer)
    service.enroll(ENROLLED, videos / "LivePortrait_driving_d19.jpg")
    return s, service


def _lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_enrolled_man_is_granted_and_the_grant_is_posted(engine, analyzer, sqlite_url, videos, receiver):
    s, service = _door(engine, analyzer, sqlite_url, videos, door_webhook_url=receiver.url, door_webhook_secret="k",
                       door_id="lobby")
    out = io.StringIO()
    try:
        code = run_headless(s, str(videos / "LivePortrait_driving_d18.mp4"), until_end=True, every=10, out=out,
                            service=service)
        events = {e.id: e for e in service.store.events()}
    finally:
        service.close()
    lines = _lines(out)
    assert code == 0 and lines, "no decision"
    assert all(d["decision"] == "match" and d["name"] == ENROLLED for d in lines), lines
    first, *repeats = lines
    assert first["granted"] and first["logged"] and first["door"] == "lobby"
    assert events[first["event_id"]].decided == ENROLLED and events[first["event_id"]].kind == "door"
    assert first["video_s"] <= 2.0  # decided on video time, within the first two seconds
    posted = [json.loads(body) for _, body in receiver.wait_for(1)]
    assert len(posted) == 1 and posted[0]["event_id"] == first["event_id"]
    assert posted[0]["granted"] and posted[0]["name"] == ENROLLED
    # he stays in front of the camera: welcomed again after door_reset_s (video time), not let in or logged again
    assert repeats and all(d["admission"] == "repeat_grant" and not d["granted"] and d["event_id"] is None
                           for d in repeats), repeats
    assert repeats[0]["video_s"] - first["video_s"] >= s.door_reset_s
    assert [e.kind for e in events.values()].count("door") == 1


def test_another_clips_person_is_denied_and_nothing_unlocks(engine, analyzer, sqlite_url, videos, tmp_path):
    ran = tmp_path / "unlocked"
    s, service = _door(engine, analyzer, sqlite_url, videos, door_command=f"touch {ran}")
    out = io.StringIO()
    try:
        code = run_headless(s, str(videos / "video-retalking_face_1.mp4"), until_end=True, every=10, out=out,
                            service=service)
    finally:
        service.close()
    lines = _lines(out)
    assert code == 0 and lines, "no decision"
    assert all(not d["granted"] and d["name"] is None for d in lines), lines
    assert any(d["decision"] == "not_recognized" for d in lines)
    assert not ran.exists() and all(d["lock"] == "none" for d in lines)


def test_verify_mode_checks_every_visitor_against_the_claimed_name(engine, analyzer, sqlite_url, videos):
    s, service = _door(engine, analyzer, sqlite_url, videos)
    out = io.StringIO()
    try:
        run_headless(s, str(videos / "LivePortrait_driving_d18.mp4"), mode="verify", claim=ENROLLED.upper(),
                     until_end=True, every=10, out=out, service=service)
    finally:
        service.close()
    lines = _lines(out)
    assert lines and all(d["mode"] == "verify" and d["claimed"] == ENROLLED for d in lines), lines
    assert lines[0]["granted"] and lines[0]["name"] == ENROLLED and lines[0]["decision"] == "match"


def test_sigterm_stops_the_door_cleanly_and_locks_an_open_door(engine, analyzer, sqlite_url, videos):
    master, slave = os.openpty()
    try:
        s, service = _door(engine, analyzer, sqlite_url, videos, door_serial=os.ttyname(slave), door_unlock_s=60)
        out = io.StringIO()
        try:  # without --until-end: the file is played as a camera, until the signal
            code = run_headless(s, str(videos / "LivePortrait_driving_d18.mp4"), every=10, out=out, service=service,
                                on_decision=lambda line: os.kill(os.getpid(), signal.SIGTERM))
        finally:
            service.close()
        lines = _lines(out)
        assert code == 0 and len(lines) == 1 and lines[0]["lock"] == "opened"
        sent = b""
        while select.select([master], [], [], 2.0)[0] and len(sent) < 12:
            sent += os.read(master, 64)
        assert sent == RELOCK + UNLOCK + RELOCK  # locked at start, opened for him, locked when stopped
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is given back
    finally:
        os.close(master)
        os.close(slave)


def _relay():
    """(master fd, slave fd, port): a pseudo-terminal as the lock relay."""
    master, slave = os.openpty()
    return master, slave, os.ttyname(slave)


def _sent(master: int, n: int) -> bytes:
    sent = b""
    while len(sent) < n and select.select([master], [], [], 2.0)[0]:
        sent += os.read(master, 64)
    return sent


def test_the_door_locks_first_even_when_the_claimed_person_is_unknown(sqlite_url):
    # systemd restarts a door that crashed while open; a start that fails later (here the claimed
    # person was removed) must still have locked it, before the store, the claim and the models
    master, slave, port = _relay()
    try:
        s = Settings(device="cpu", db_url=sqlite_url, door_serial=port)
        with pytest.raises(Exception, match="Nobody Enrolled"):
            run_headless(s, "0", mode="verify", claim="Nobody Enrolled")
        assert _sent(master, 8) == RELOCK + RELOCK  # locked at start, and again when it stopped
    finally:
        os.close(master)
        os.close(slave)


def test_the_door_locks_first_even_when_its_store_cannot_open(sqlite_url, monkeypatch):
    from faceapp.errors import StoreError

    def unreachable(settings, service_class):
        raise StoreError("the database server is unreachable and there is no copy of the gallery")

    monkeypatch.setattr(door_headless, "_door_service", unreachable)
    master, slave, port = _relay()
    try:
        s = Settings(device="cpu", db_url=sqlite_url, door_serial=port)
        with pytest.raises(StoreError):
            run_headless(s, "0")
        assert _sent(master, 8) == RELOCK + RELOCK
    finally:
        os.close(master)
        os.close(slave)


def test_a_camera_that_fails_then_ends_is_reopened(engine, analyzer, sqlite_url, videos, tmp_path, monkeypatch):
    import faceapp.capture.sources as sources

    monkeypatch.setattr(door_headless, "BACKOFF_START_S", 0.05)
    folder = tmp_path / "camera"  # not there yet: the camera "fails" until it appears
    real, opened = sources.open_source, []

    def open_source(spec, **kw):
        opened.append(folder.is_dir())
        if len(opened) == 2:
            folder.mkdir()
            # one pass of the camera holds an attempt: 3 agreeing frames and the anti-spoofing
            # network's 5 (setting antispoof_min_frames; on by default), then it ends
            for i in range(6):
                shutil.copy(videos / "LivePortrait_driving_d19.jpg", folder / f"{i}.jpg")
        return real(spec, **kw)

    monkeypatch.setattr(sources, "open_source", open_source)
    s, service = _door(engine, analyzer, sqlite_url, videos, door_reset_s=0.1)
    out = io.StringIO()
    stop = door_headless.threading.Event()
    decided = []

    def on_decision(line):
        decided.append(line)
        if len(decided) == 2:
            stop.set()

    try:
        code = run_headless(s, str(folder), out=out, service=service, stop=stop, on_decision=on_decision)
    finally:
        service.close()
    assert code == 0 and opened[:2] == [False, False] and len(opened) >= 3  # failed, appeared, ended and reopened
    assert [d["name"] for d in decided] == [ENROLLED, ENROLLED]


def test_a_missing_file_with_until_end_is_a_camera_error(engine, analyzer, sqlite_url, videos, tmp_path, capsys):
    code = main(["door", "--headless", "--camera", str(tmp_path / "gone.mp4"), "--until-end", "--db", sqlite_url,
                 "--device", "cpu"])
    assert code == Exit.CAMERA and "gone.mp4" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--headless", "--mode", "verify"], ["--headless", "--mode", "recognize", "--claim", "x"],
                                  ["--claim", "x"], ["--until-end"], ["--headless", "--windowed"],
                                  ["--headless", "--every", "0"]])
def test_flags_that_do_not_fit_are_usage_errors(argv, capsys):
    try:
        code = main(["door", *argv])
    except SystemExit as exc:  # argparse's own checks (--every 0)
        code = exc.code
    assert code == Exit.USAGE
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# -- packaging: the units that keep a door running ---------------------------------------------------
PACKAGING = Path(__file__).resolve().parents[1] / "packaging" / "linux"


def _unit(name: str) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in (PACKAGING / name).read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            keys.setdefault(key, []).append(value)
    return keys


@pytest.mark.parametrize(("unit", "headless"), [("faceapp-door.service", True), ("faceapp-kiosk.service", False)])
def test_the_systemd_units_restart_the_door_with_flags_faceapp_takes(unit, headless):
    import shlex

    from faceapp.cli.main import build_parser

    keys = _unit(unit)
    assert keys["Restart"] == ["always"] and keys["StartLimitIntervalSec"] == ["0"]
    argv = shlex.split(keys["ExecStart"][0])
    assert argv[0] == "/usr/bin/faceapp"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "door" and args.headless is headless


def test_the_autostart_entry_starts_the_kiosk_unit():
    keys = _unit("faceapp-door-autostart.desktop")
    assert keys["Type"] == ["Application"] and "systemctl --user start faceapp-kiosk.service" in keys["Exec"][0]


# -- the door's start checks and its cooldown, on fakes (no face models) ---------------------------
class _FakeEngine:
    """What run_headless reads of a FaceEngine before the first frame."""

    detector_min_face = 20
    refine = None

    def __init__(self, model: str) -> None:
        from faceapp.embed.weights import load_spec

        self.spec = load_spec(model)
        self.threshold = float(self.spec.threshold)
        self.settings = Settings(device="cpu")

    def warm_up(self) -> None:
        pass

    def detect(self, frame):
        return []


class _FakeGallery:
    def __init__(self, people) -> None:
        self.people = set(people)

    def distance_to(self, name, embedding):
        return None


class _FakeService:
    analyzer = None
    offline = None

    def __init__(self, store, *, model="dlib-resnet-v1", people=("alice", "bob")) -> None:
        self.store = store
        self.engine = _FakeEngine(model)
        self._gallery = _FakeGallery(people)

    @property
    def threshold(self) -> float:
        return self.engine.threshold

    def gallery(self):
        return self._gallery


@pytest.fixture
def fake_store(sqlite_url):
    from faceapp.storage import open_store

    store = open_store(sqlite_url)
    yield store
    store.close()


def test_a_recognize_door_on_a_model_without_a_calibration_curve_refuses_to_start(fake_store, tmp_path):
    # compact-cnn-v1 has no curve: its 1:1 threshold at every gallery size lets a stranger in
    # about 63% of attempts at 1,000 people; the door fails secure instead
    from faceapp.errors import ConfigError

    s = Settings(device="cpu", model="compact-cnn-v1", antispoof=False)
    service = _FakeService(fake_store, model="compact-cnn-v1", people=("alice", "bob"))
    with pytest.raises(ConfigError) as info:
        run_headless(s, str(tmp_path / "gone.mp4"), until_end=True, service=service)
    text = str(info.value)
    assert "compact-cnn-v1" in text and "calibration curve" in text and "verify" in text and "\n" not in text
    from faceapp.errors import CameraUnavailable

    for ok in (_FakeService(fake_store, model="compact-cnn-v1", people=("alice",)),  # one person: 1:1 is right
               _FakeService(fake_store, model="dlib-resnet-v1")):  # a calibrated model
        with pytest.raises(CameraUnavailable):  # it got as far as the camera
            run_headless(s, str(tmp_path / "gone.mp4"), until_end=True, service=ok)
    fake_store.get_person = lambda name: type("Person", (), {"name": name})()  # alice is enrolled
    with pytest.raises(CameraUnavailable):  # verify mode judges one claim: allowed
        run_headless(s, str(tmp_path / "gone.mp4"), mode="verify", claim="alice", until_end=True,
                     service=_FakeService(fake_store, model="compact-cnn-v1"))


def test_weaker_door_settings_are_warned_about_and_logged_at_start(fake_store, tmp_path, monkeypatch, caplog):
    from faceapp.config import load_settings
    from faceapp.errors import CameraUnavailable

    monkeypatch.setenv("FACEAPP_SETTINGS", str(tmp_path / "door.toml"))
    (tmp_path / "door.toml").write_text("recognize_margin = 0.0\n")
    monkeypatch.setenv("FACEAPP_ANTISPOOF", "false")
    monkeypatch.setenv("FACEAPP_DOOR_FRAMES", "1")
    monkeypatch.setenv("FACEAPP_THRESHOLD", "0.3")  # dlib-resnet-v1's calibrated value is 0.15
    s = load_settings()
    service = _FakeService(fake_store)
    service.engine.threshold = 0.3  # the engine runs with the threshold in force
    with caplog.at_level("WARNING"), pytest.raises(CameraUnavailable):
        run_headless(s, str(tmp_path / "gone.mp4"), until_end=True, service=service)
    events = [e for e in fake_store.events() if e.kind == "door_settings"]
    assert len(events) == 1
    detail = events[0].detail
    for words in ("antispoof", "FACEAPP_ANTISPOOF", "door_frames = 1", "FACEAPP_DOOR_FRAMES",
                  "recognize_margin", "door.toml", "threshold 0.300", "FACEAPP_THRESHOLD"):
        assert words in detail
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "door_frames" in r.getMessage()]
    assert len(warned) == 1 and "\n" not in warned[0]


def test_the_default_settings_log_no_door_settings_event(fake_store, tmp_path):
    from faceapp.errors import CameraUnavailable

    with pytest.raises(CameraUnavailable):
        run_headless(Settings(device="cpu", antispoof=True), str(tmp_path / "gone.mp4"), until_end=True,
                     service=_FakeService(fake_store))
    assert [e for e in fake_store.events() if e.kind == "door_settings"] == []


class _Recorder:
    pending = 0
    offline = None

    def __init__(self, store) -> None:
        self.store = store

    def record(self, outcome):
        import dataclasses
        from datetime import UTC, datetime

        from faceapp.door_log import DoorRecord

        event = self.store.log_event("door", decision=outcome.decision, decided=outcome.name, detail=outcome.detail)
        return DoorRecord(dataclasses.replace(outcome, event_id=event.id), outcome, event, datetime.now(UTC))


class _Outputs:
    door_id = "front"

    def __init__(self, lock) -> None:
        self.lock = lock

    def dispatch(self, record):
        from faceapp.outputs import Dispatch, LockState

        return Dispatch(record, {"decision": record.outcome.decision.value, "granted": record.granted},
                        self.lock if record.granted else LockState.NONE)


class _Machine:
    def settle(self, outcome):
        pass


def _fake_door(store, clock, lock):
    from faceapp.door_cooldown import DoorCooldown

    out = io.StringIO()
    door = door_headless._HeadlessDoor(_Machine(), None, _Recorder(store), _Outputs(lock), clock, claim=None, out=out,
                                       on_decision=None, analyzer=None,
                                       cooldown=DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock))
    return door, out


def test_a_headless_grant_whose_lock_was_unreachable_starts_no_cooldown(fake_store):
    from faceapp.door import DoorMode, DoorOutcome
    from faceapp.outputs import LockState
    from faceapp.types import Decision

    clock = door_headless.VideoClock(True)
    grant = DoorOutcome(Decision.MATCH, DoorMode.RECOGNIZE, None, "alice", 0.05, 0.15, 3)
    door, out = _fake_door(fake_store, clock, LockState.UNREACHABLE)
    door._decided(grant, 0.0)
    clock.now = 5.0
    door._decided(grant, 5.0)  # she tries again: the lock is tried again, no WELCOME at a shut door
    assert [line["admission"] for line in _lines(out)] == ["log", "log"]
    door, out = _fake_door(fake_store, clock, LockState.OPENED)
    door._decided(grant, 5.0)
    clock.now = 10.0
    door._decided(grant, 10.0)
    assert [line["admission"] for line in _lines(out)] == ["log", "repeat_grant"]


def test_the_headless_door_logs_quiet_denials_when_the_window_closes_and_when_it_stops(fake_store):
    from faceapp.door import DoorMode, DoorOutcome
    from faceapp.outputs import LockState
    from faceapp.types import Decision

    clock = door_headless.VideoClock(True)
    stranger = DoorOutcome(Decision.NOT_RECOGNIZED, DoorMode.RECOGNIZE, None, None, 0.5, 0.1, 3)
    door, out = _fake_door(fake_store, clock, LockState.NONE)
    for i in range(20):  # repro_quiet.py: 20 stranger attempts 1.4 s apart, 1 logged
        clock.now = 1.4 * i
        door._decided(stranger, clock.now)
        door._report_quiet()
    clock.now = 31.0
    door._report_quiet()  # the window closed: no later denial will carry the count
    quiet = [e for e in fake_store.events() if e.kind == "door_quiet_denials"]
    assert len(quiet) == 1 and quiet[0].detail.startswith("19 more unrecognized face(s)")
    for i in range(3):
        clock.now = 40.0 + i
        door._decided(stranger, clock.now)
    door.finish()  # the door stops
    quiet = sorted((e for e in fake_store.events() if e.kind == "door_quiet_denials"), key=lambda e: e.id)
    assert len(quiet) == 2 and quiet[1].detail.startswith("2 more") and "the door stopped" in quiet[1].detail
    logged = [e for e in fake_store.events() if e.kind == "door"]
    assert len(logged) + 19 + 2 == 23  # every attempt accounted for


class _Frames:
    """A pipeline that hands back the frame results it is given."""

    def process(self, frame, index):
        return frame


def _machine_door(store, clock, **kw):
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "gui"))
    from test_door_logic import machine

    from faceapp.door_cooldown import DoorCooldown
    from faceapp.outputs import LockState

    out = io.StringIO()
    m = machine(clock=clock, **kw)
    door = door_headless._HeadlessDoor(m, _Frames(), _Recorder(store), _Outputs(LockState.NONE), clock, claim=None,
                                       out=out, on_decision=None, analyzer=None,
                                       cooldown=DoorCooldown(cooldown_s=30, attempt_window_s=30, clock=clock))
    return door, out


def _step(door, clock, frames, t0=0.0):
    for i, f in enumerate(frames):
        door.step(f, i, t0 + 0.1 * i)
    return clock.now


def test_the_headless_door_logs_a_photo_lowered_before_the_verdict(fake_store):
    # review 2 item 4: agreeing (confirmed) frames, then the photo is lowered before the anti-
    # spoofing verdict: one door_abandoned event with the reading, no door decision, nobody let in
    from test_door_antispoof import pad
    from test_door_logic import ALICE, NOBODY, STRANGER

    clock = door_headless.VideoClock(True)
    door, out = _machine_door(fake_store, clock, antispoof=pad(0.05, min_frames=5))
    t = _step(door, clock, [ALICE] * 4 + [NOBODY] * 5)
    events = [e for e in fake_store.events() if e.kind == "door_abandoned"]
    assert len(events) == 1 and _lines(out) == []
    assert "recognize attempt abandoned (face gone) after 4 agreeing frame(s) of 3 (match alice, confirmed)" \
        in events[0].detail
    assert events[0].decided is None and [e for e in fake_store.events() if e.kind == "door"] == []
    # a passer-by with no agreeing frames stays quiet
    _step(door, clock, [STRANGER] + [NOBODY] * 4, t0=t + 1.0)
    assert len([e for e in fake_store.events() if e.kind == "door_abandoned"]) == 1
    # an attempt running when the stream ends is reported too (once)
    _step(door, clock, [ALICE] * 3, t0=t + 2.0)
    door.cancel("camera ended")
    door.cancel("camera ended")
    events = sorted((e for e in fake_store.events() if e.kind == "door_abandoned"), key=lambda e: e.id)
    assert len(events) == 2 and "attempt cancelled (camera ended) after 3 agreeing frame(s)" in events[1].detail


def test_a_quiet_timeout_after_agreeing_frames_is_logged_as_abandoned(fake_store):
    # a timeout the cooldown would hold back (a stranger was logged just before) still leaves
    # the reading it had in the log; a logged timeout carries it in its own detail
    from test_door_antispoof import pad
    from test_door_logic import ALICE, STRANGER, _face, frame

    from faceapp.types import QualityIssue

    blurry = frame(_face([("alice", 0.2)], issues=(QualityIssue.BLURRY,)))
    clock = door_headless.VideoClock(True)
    door, out = _machine_door(fake_store, clock, antispoof=pad(0.9, min_frames=5))
    _step(door, clock, [ALICE] * 3 + [blurry] * 90)  # 9 s: the time limit (8 s) runs out
    decided = [line for line in _lines(out)]
    assert [line["decision"] for line in decided] == ["timeout"]
    timeouts = [e for e in fake_store.events() if e.kind == "door"]
    assert len(timeouts) == 1 and "3 agreeing frame(s) of 3 (match alice, confirmed)" in timeouts[0].detail
    assert [e for e in fake_store.events() if e.kind == "door_abandoned"] == []  # the timeout says it
    door, out = _machine_door(fake_store, clock, antispoof=pad(0.9, min_frames=5))
    _step(door, clock, [STRANGER] * 3, t0=20.0)  # logged: the quiet window starts
    _step(door, clock, [ALICE] * 3 + [blurry] * 90, t0=25.0)
    assert [line["admission"] for line in _lines(out)] == ["log", "quiet_denial"]
    events = [e for e in fake_store.events() if e.kind == "door_abandoned"]
    assert len(events) == 1 and "(match alice, confirmed)" in events[0].detail

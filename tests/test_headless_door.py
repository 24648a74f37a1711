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

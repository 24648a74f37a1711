"""faceapp.outputs against real receivers: a local HTTP server (127.0.0.1), a pseudo-terminal
pair as the serial port, scripts as the command. Every decision is recorded first by a real
:class:`faceapp.door_log.DoorRecorder` on a SQLite file, as the doors do."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import select
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dblock import WriteLock

from faceapp.config import Settings, hex_bytes
from faceapp.door import DoorMode, DoorOutcome
from faceapp.door_log import DoorRecorder
from faceapp.errors import ConfigError
from faceapp.outputs import CommandOutput, DoorOutputs, LockState, SerialLock, WebhookOutput
from faceapp.types import Decision

TAU = 0.36
SECRET = "s3cret-for-the-test"
UNLOCK, RELOCK = bytes.fromhex("A00101A2"), bytes.fromhex("A00100A1")


def _grant(name="alice") -> DoorOutcome:
    return DoorOutcome(Decision.MATCH, DoorMode.RECOGNIZE, None, name, 0.2, TAU, 3, "recognize: 3 consecutive frames agreed")


def _denial() -> DoorOutcome:
    return DoorOutcome(Decision.NOT_RECOGNIZED, DoorMode.RECOGNIZE, None, None, 0.7, TAU, 3, "recognize: 3 frames")


@pytest.fixture
def store(sqlite_url):
    from faceapp.store.repository import Store

    s = Store(sqlite_url)
    yield s
    s.close()


@pytest.fixture
def recorder(store):
    r = DoorRecorder(store)
    yield r
    r.close()


def _events(store, kind):
    return [e for e in store.events() if e.kind == kind]


# -- receivers ------------------------------------------------------------------------------------
class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every POST; ``statuses`` are answered in turn (then 200);
    ``hold`` (an Event) makes it wait before answering."""

    def __init__(self, statuses=(), hold: threading.Event | None = None) -> None:
        self.posts: list[tuple[dict, bytes]] = []
        self.statuses = list(statuses)
        self.hold = hold
        self.got = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.hold is not None:
                    outer.hold.wait(10)
                status = outer.statuses.pop(0) if outer.statuses else 200
                with outer.got:
                    outer.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    outer.got.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/door"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[dict, bytes]]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.posts) >= n, timeout), f"{len(self.posts)} of {n} posts arrived"
            return list(self.posts)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the receiver is down)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/door"


@pytest.fixture
def pty():
    """(master fd, slave path): the serial port side is the slave (kept open by the test)."""
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def _read(fd: int, n: int, timeout: float = 5.0) -> bytes:
    data = b""
    while len(data) < n:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            break
        data += os.read(fd, n - len(data))
    return data


def _nothing_to_read(fd: int) -> bool:
    return not select.select([fd], [], [], 0.1)[0]


def _eventually(check, timeout: float = 5.0) -> bool:
    """True once ``check()`` is (the relay gets the bytes a moment before the writer sees it done)."""
    wait = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if check():
            return True
        wait.wait(0.02)
    return check()


def _script(tmp_path, body: str, name="lock.py"):
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}\n")
    path.chmod(0o755)
    return str(path)


# -- webhook ----------------------------------------------------------------------------------------
def test_a_grant_is_posted_with_its_event_id_and_a_valid_signature(store, recorder, receiver):
    outputs = DoorOutputs(door_id="front", webhook=WebhookOutput(receiver.url, secret=SECRET), log_event=store.log_event)
    record = recorder.record(_grant())
    result = outputs.dispatch(record)
    headers, body = receiver.wait_for(1)[0]
    outputs.close()
    sent = json.loads(body)
    assert result.webhook_queued and record.event_id is not None
    assert sent["decision"] == "match" and sent["granted"] is True and sent["name"] == "alice"
    assert sent["event_id"] == record.event_id == int(headers["x-faceapp-event-id"])
    assert sent["distance"] == 0.2 and sent["threshold"] == TAU and sent["door"] == "front"
    assert sent["time"] == record.decided_at.isoformat()
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-faceapp-signature"] == expected
    assert headers["content-type"] == "application/json"


def test_a_denial_is_posted_as_a_denial(store, recorder, receiver):
    outputs = DoorOutputs(door_id="front", webhook=WebhookOutput(receiver.url))
    outputs.dispatch(recorder.record(_denial()))
    headers, body = receiver.wait_for(1)[0]
    outputs.close()
    sent = json.loads(body)
    assert sent["decision"] == "not_recognized" and sent["granted"] is False and sent["name"] is None
    assert "x-faceapp-signature" not in headers  # no secret: unsigned


def test_the_webhook_never_blocks_the_caller_while_the_receiver_is_slow(store, recorder):
    hold = threading.Event()
    slow = Receiver(hold=hold)
    try:
        outputs = DoorOutputs(webhook=WebhookOutput(slow.url, timeout_s=10))
        result = outputs.dispatch(recorder.record(_grant()))
        assert result.webhook_queued and slow.posts == []  # dispatch returned; the receiver still holds the POST
        hold.set()
        assert len(slow.wait_for(1)) == 1
        outputs.close()
    finally:
        hold.set()
        slow.close()


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(store, recorder):
    flaky = Receiver(statuses=[503, 500])
    try:
        hook = WebhookOutput(flaky.url, retries=3, backoff_s=0.02)
        payload = {"decision": "match", "event_id": 1}
        result = hook.deliver(payload)
        assert result.ok and result.attempts == 3 and len(flaky.posts) == 3
    finally:
        flaky.close()


def test_a_client_error_is_not_retried(store, recorder):
    refusing = Receiver(statuses=[401])
    try:
        result = WebhookOutput(refusing.url, retries=3, backoff_s=0.02).deliver({"decision": "match"})
        assert not result.ok and result.attempts == 1 and "HTTP 401" in result.detail
    finally:
        refusing.close()


def test_a_receiver_that_is_down_fails_secure_after_a_bounded_number_of_tries(store, recorder):
    url = _closed_port_url()
    outputs = DoorOutputs(webhook=WebhookOutput(url, retries=2, backoff_s=0.02), log_event=store.log_event)
    record = recorder.record(_grant())
    result = outputs.dispatch(record)
    outputs.close(timeout_s=10)
    assert result.lock is LockState.NONE and result.record.granted  # a notice, not the lock: nothing changes
    assert outputs.webhook.failed == 1 and outputs.webhook.delivered == 0
    failed = _events(store, "door_webhook_failed")
    assert len(failed) == 1 and "after 3 attempt(s)" in failed[0].detail and f"event {record.event_id}" in failed[0].detail


def test_retries_are_bounded_in_time_too():
    hook = WebhookOutput(_closed_port_url(), retries=10, backoff_s=0.1, max_total_s=0.5)
    result = hook.deliver({"decision": "match"})
    assert not result.ok and 1 < result.attempts < 11  # 0.1 + 0.2 = 0.3 s of backoff fit in 0.5 s, 0.7 do not


def test_a_full_queue_drops_the_new_notice_and_says_so(store, recorder):
    hold = threading.Event()
    slow = Receiver(hold=hold)
    seen = []
    try:
        hook = WebhookOutput(slow.url, queue_size=1, on_result=lambda r, p: seen.append(r))
        assert hook.submit({"n": 1})  # taken by the thread, held by the receiver
        slow_started = threading.Event()
        while hook.pending():  # until the thread has taken the first notice
            slow_started.wait(0.01)
        assert hook.submit({"n": 2})  # waits in the queue
        assert not hook.submit({"n": 3})  # the queue is full
        assert seen and not seen[0].ok and "dropped" in seen[0].detail
        hold.set()
        hook.close()
        assert [json.loads(b)["n"] for _, b in slow.posts] == [1, 2]
    finally:
        hold.set()
        slow.close()


# -- command ----------------------------------------------------------------------------------------
def test_the_command_gets_the_decision_on_stdin_and_in_its_environment(store, recorder, tmp_path):
    out = tmp_path / "seen.json"
    script = _script(tmp_path, f"json.dump({{'stdin': json.load(sys.stdin), 'env': {{k: v for k, v in os.environ.items() "
                               f"if k.startswith('FACEAPP_DOOR')}}}}, open({str(out)!r}, 'w'))")
    outputs = DoorOutputs(door_id="front", command=CommandOutput([script]), log_event=store.log_event)
    record = recorder.record(_grant())
    result = outputs.dispatch(record)
    outputs.close()
    seen = json.loads(out.read_text())
    assert result.lock is LockState.OPENED and result.results[0].exit_code == 0
    assert seen["stdin"]["event_id"] == record.event_id and seen["stdin"]["name"] == "alice"
    env = seen["env"]
    assert env["FACEAPP_DOOR_DECISION"] == "match" and env["FACEAPP_DOOR_GRANTED"] == "1"
    assert env["FACEAPP_DOOR_EVENT_ID"] == str(record.event_id) and env["FACEAPP_DOOR_ID"] == "front"
    assert env["FACEAPP_DOOR_NAME"] == "alice" and env["FACEAPP_DOOR_DISTANCE"] == "0.2"
    logged = _events(store, "door_command")
    assert len(logged) == 1 and "exit 0" in logged[0].detail and f"event {record.event_id}" in logged[0].detail


def test_the_command_does_not_inherit_the_webhook_secret(store, recorder, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEAPP_DOOR_WEBHOOK_SECRET", SECRET)
    out = tmp_path / "env.txt"
    script = _script(tmp_path, f"open({str(out)!r}, 'w').write(os.environ.get('FACEAPP_DOOR_WEBHOOK_SECRET', 'absent'))")
    DoorOutputs(command=CommandOutput([script])).dispatch(recorder.record(_grant()))
    assert out.read_text() == "absent"


def test_a_failing_unlock_command_is_lock_unreachable_and_its_own_event(store, recorder, tmp_path):
    script = _script(tmp_path, "sys.stderr.write('relay board not found'); sys.exit(3)")
    outputs = DoorOutputs(command=CommandOutput([script]), log_event=store.log_event)
    record = recorder.record(_grant())
    result = outputs.dispatch(record)
    outputs.close()
    assert result.lock is LockState.UNREACHABLE and result.lock_unreachable
    assert result.results[0].exit_code == 3 and "relay board not found" in result.results[0].detail
    assert "exit 3" in _events(store, "door_command")[0].detail
    failed = _events(store, "door_lock_failed")
    assert len(failed) == 1 and "unlock failed" in failed[0].detail and f"event {record.event_id}" in failed[0].detail


def test_on_granted_the_command_does_not_run_for_a_denial(store, recorder, tmp_path):
    out = tmp_path / "ran"
    script = _script(tmp_path, f"open({str(out)!r}, 'w').write('ran')")
    result = DoorOutputs(command=CommandOutput([script], on="granted")).dispatch(recorder.record(_denial()))
    assert not out.exists() and result.results == () and result.lock is LockState.NONE


def test_on_all_a_failing_command_never_turns_a_denial_into_a_grant(store, recorder, tmp_path):
    out = tmp_path / "stdin.json"
    script = _script(tmp_path, f"open({str(out)!r}, 'w').write(sys.stdin.read()); sys.exit(0 if False else 1)")
    outputs = DoorOutputs(command=CommandOutput([script], on="all"), log_event=store.log_event)
    record = recorder.record(_denial())
    result = outputs.dispatch(record)
    outputs.close()
    assert json.loads(out.read_text())["granted"] is False
    assert not result.record.granted and result.lock is LockState.NONE  # a denial stays a denial; no lock event
    assert result.results[0].exit_code == 1 and _events(store, "door_lock_failed") == []
    assert "exit 1" in _events(store, "door_command")[0].detail


def test_a_command_past_its_time_limit_is_stopped(store, recorder, tmp_path):
    script = _script(tmp_path, "import time; time.sleep(60)")
    result = DoorOutputs(command=CommandOutput([script], timeout_s=0.5)).dispatch(recorder.record(_grant()))
    assert result.lock is LockState.UNREACHABLE and "no exit within 0.5 s" in result.results[0].detail


def test_a_missing_program_is_lock_unreachable(store, recorder, tmp_path):
    result = DoorOutputs(command=CommandOutput([str(tmp_path / "no-such-program")])).dispatch(recorder.record(_grant()))
    assert result.lock is LockState.UNREACHABLE and "cannot be started" in result.results[0].detail


# -- serial -----------------------------------------------------------------------------------------
def test_a_grant_unlocks_the_serial_relay_and_relocks_it_after_unlock_s(store, recorder, pty):
    master, port = pty
    outputs = DoorOutputs(serial=SerialLock(port, unlock=UNLOCK, relock=RELOCK, unlock_s=0.2), log_event=store.log_event)
    result = outputs.dispatch(recorder.record(_grant()))
    assert result.lock is LockState.OPENED
    assert _read(master, 4) == UNLOCK
    assert _read(master, 4) == RELOCK  # after unlock_s, from the timer
    assert _eventually(lambda: not outputs.serial.unlocked)
    outputs.close()
    assert _read(master, 4) == RELOCK  # a door that stops always sends the relock bytes
    assert _nothing_to_read(master)


def test_a_denial_sends_nothing_to_the_relay(store, recorder, pty):
    master, port = pty
    outputs = DoorOutputs(serial=SerialLock(port, unlock=UNLOCK, relock=RELOCK, unlock_s=5))
    result = outputs.dispatch(recorder.record(_denial()))
    assert result.lock is LockState.NONE and result.results == ()
    assert _nothing_to_read(master)


def test_stopping_the_door_while_it_is_open_locks_it(store, recorder, pty):
    master, port = pty
    outputs = DoorOutputs(serial=SerialLock(port, unlock=UNLOCK, relock=RELOCK, unlock_s=60))
    outputs.dispatch(recorder.record(_grant()))
    assert _read(master, 4) == UNLOCK
    outputs.close()
    assert _read(master, 4) == RELOCK


def test_the_door_starts_locked(pty):
    master, port = pty
    outputs = DoorOutputs(serial=SerialLock(port, unlock=UNLOCK, relock=RELOCK))
    assert outputs.start().ok and _read(master, 4) == RELOCK


class FlakyPort:
    """``serial.Serial`` around the real one (the pty): fails to open while ``failing`` (a USB
    hiccup, a board re-enumerating), and writes the unlock bytes ``unlock_delay_s`` slowly."""

    failing = False
    unlock_delay_s = 0.0

    def __init__(self, real):
        self.real = real

    def __call__(self, *args, **kw):
        import serial

        if FlakyPort.failing:
            raise serial.SerialException("could not open port: [Errno 5] Input/output error")
        port = self.real(*args, **kw)
        if FlakyPort.unlock_delay_s:
            write = port.write

            def slow(data):
                n = write(data)
                if bytes(data) == UNLOCK:
                    threading.Event().wait(FlakyPort.unlock_delay_s)  # the bytes are out, the call not back
                return n

            port.write = slow
        return port


@pytest.fixture
def flaky(monkeypatch):
    import serial

    from faceapp.outputs import serial_lock

    monkeypatch.setattr(serial, "Serial", FlakyPort(serial.Serial))
    monkeypatch.setattr(serial_lock, "RELOCK_RETRY_S", 0.05)
    monkeypatch.setattr(serial_lock, "RELOCK_RETRY_MAX_S", 0.2)
    monkeypatch.setattr(FlakyPort, "failing", False)
    monkeypatch.setattr(FlakyPort, "unlock_delay_s", 0.0)
    return FlakyPort


def test_a_relock_that_fails_is_retried_while_it_is_owed(pty, flaky, caplog):
    # the port is gone for longer than the old three tries (about 1 s): the relay stayed energised
    master, port = pty
    results = []
    lock = SerialLock(port, unlock=UNLOCK, relock=RELOCK, unlock_s=0.1, on_result=results.append)
    assert lock.unlock().ok and _read(master, 4) == UNLOCK
    flaky.failing = True
    threading.Event().wait(1.0)  # many retries fail meanwhile
    assert lock.unlocked  # the relock is still owed: the door may be open
    assert [r.ok for r in results] == [False]  # the first failure is reported, the retries logged
    assert "relock failed" in caplog.text
    flaky.failing = False
    assert _read(master, 4) == RELOCK  # the next retry gets through
    assert _eventually(lambda: not lock.unlocked and len(results) == 2)
    assert results[-1].ok and results[-1].attempts > 3
    lock.close()


def test_stopping_the_door_sends_the_relock_bytes_even_when_no_relock_is_pending(pty):
    master, port = pty
    lock = SerialLock(port, unlock=UNLOCK, relock=RELOCK, unlock_s=60)
    result = lock.close()
    assert result.ok and _read(master, 4) == RELOCK


def test_stopping_the_door_during_an_unlock_relocks_after_it(pty, flaky):
    # close() while the unlock bytes are being written: it waits for them, then relocks, and no
    # relock is left to a timer that the process exit would kill
    master, port = pty
    flaky.unlock_delay_s = 0.3
    lock = SerialLock(port, unlock=UNLOCK, relock=RELOCK, unlock_s=60)
    worker = threading.Thread(target=lock.unlock)
    worker.start()
    assert _read(master, 4) == UNLOCK
    closed = lock.close()
    worker.join()
    assert closed is not None and closed.ok and _read(master, 4) == RELOCK
    assert not lock.unlocked
    refused = lock.unlock()  # a stopped door opens no more
    assert not refused.ok and _nothing_to_read(master)


def test_an_unreachable_relay_is_lock_unreachable_and_its_own_event(store, recorder, tmp_path):
    outputs = DoorOutputs(serial=SerialLock(str(tmp_path / "ttyUSB9"), unlock=UNLOCK, relock=RELOCK),
                          log_event=store.log_event)
    record = recorder.record(_grant())
    result = outputs.dispatch(record)
    outputs.close()
    assert result.lock is LockState.UNREACHABLE and "unlock failed" in result.results[0].detail
    assert record.granted  # the decision stays what it was; the screen says the lock is unreachable
    failed = [e for e in _events(store, "door_lock_failed") if "unlock failed" in e.detail]
    assert len(failed) == 1 and "ttyUSB9" in failed[0].detail and f"event {record.event_id}" in failed[0].detail
    # stopping sends the relock bytes whatever the state; the relay being unreachable, that is logged too
    assert [e.detail for e in _events(store, "door_lock_failed") if "at stop" in e.detail]


# -- fail secure: a grant that could not be logged ----------------------------------------------------
def test_a_grant_whose_event_was_not_committed_opens_nothing(store, pty, receiver, tmp_path):
    master, port = pty
    ran = tmp_path / "ran"
    script = _script(tmp_path, f"open({str(ran)!r}, 'w').write('ran')")
    outputs = DoorOutputs(serial=SerialLock(port, unlock=UNLOCK, relock=RELOCK), command=CommandOutput([script]),
                          webhook=WebhookOutput(receiver.url))
    recorder = DoorRecorder(store, budget_s=0.3, attempt_wait_s=0.1)
    with WriteLock(store.engine.url):
        record = recorder.record(_grant())
    recorder.close()
    result = outputs.dispatch(record)
    sent = json.loads(receiver.wait_for(1)[0][1])
    outputs.close()
    assert record.outcome.decision is Decision.LOG_UNAVAILABLE and not record.granted
    assert result.lock is LockState.NONE and not ran.exists()
    assert _read(master, 4) == RELOCK and _nothing_to_read(master)  # only the relock of the stop
    assert sent["granted"] is False and sent["decision"] == "log_unavailable" and sent["event_id"] is None


# -- settings -------------------------------------------------------------------------------------------
def test_outputs_come_from_the_settings(pty, receiver):
    _, port = pty
    s = Settings(door_serial=port, door_serial_unlock="a0:01:01:a2", door_serial_relock="", door_unlock_s=2,
                 door_command="/bin/true --flag 'two words'", door_command_on="all", door_webhook_url=receiver.url,
                 door_webhook_secret=SECRET, door_webhook_retries=0, door_id="back door")
    outputs = DoorOutputs.from_settings(s)
    assert outputs.serial.unlock_bytes == UNLOCK and outputs.serial.relock_bytes == b""
    assert outputs.command.argv == ["/bin/true", "--flag", "two words"] and outputs.command.on == "all"
    assert outputs.webhook.secret == SECRET and outputs.webhook.retries == 0 and outputs.door_id == "back door"
    assert not DoorOutputs.from_settings(Settings()).configured


@pytest.mark.parametrize(("name", "value"), [("door_serial_unlock", "A0 0"), ("door_serial_unlock", "zz"),
                                              ("door_command_on", "denied"), ("door_webhook_url", "ftp://x/"),
                                              ("door_webhook_url", "localhost:8080")])
def test_bad_output_settings_are_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings(**{name: value}).validate()


def test_hex_settings_read_with_separators():
    assert hex_bytes("A0 01 01 A2") == hex_bytes("a0:01:01:a2") == hex_bytes("A00101A2") == UNLOCK
    assert hex_bytes("") == b""

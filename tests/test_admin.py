"""The admin PIN: a salted scrypt hash in an owner-only file, a growing lock after wrong PINs
(on a fake clock), the events it reports, and ``faceapp admin set-pin`` / ``clear-pin``."""

from __future__ import annotations

import io
import json
import os
import stat
import sys

import pytest

from faceapp.admin import FIRST_LOCK_S, AdminGate, AdminPin, lock_after, pin_path
from faceapp.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def pin(tmp_path):
    p = AdminPin(tmp_path / "config" / "admin_pin.json")
    p.set("4711")
    return p


def test_the_pin_is_stored_as_a_salted_scrypt_hash_in_an_owner_only_file(tmp_path, pin):
    text = pin.path.read_text()
    record = json.loads(text)
    assert record["kdf"] == "scrypt" and "4711" not in text
    assert pin.matches("4711") and not pin.matches("4712") and not pin.matches("")
    if os.name == "posix":
        assert stat.S_IMODE(os.stat(pin.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(pin.path.parent).st_mode) == 0o700
    other = AdminPin(tmp_path / "other.json")
    other.set("4711")
    assert json.loads(other.path.read_text())["salt"] != record["salt"]  # salted: same PIN, other hash
    assert json.loads(other.path.read_text())["hash"] != record["hash"]


def test_a_pin_must_be_4_to_64_plain_characters(tmp_path):
    p = AdminPin(tmp_path / "pin.json")
    for bad in ("123", "12\n34", " 1234", "x" * 65):
        with pytest.raises(ConfigError):
            p.set(bad)
    assert not p.is_set
    p.set("\uff11\uff12\uff13\uff14")  # full-width digits: the same PIN as 1234 (NFKC)
    assert p.matches("1234")


def test_a_damaged_pin_file_is_an_error_never_no_pin(tmp_path):
    p = AdminPin(tmp_path / "pin.json")
    p.path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read"):
        AdminGate(p, persist=False).check("1234")


def test_wrong_pins_lock_the_gate_for_a_growing_time(pin):
    clock, events = Clock(), []
    gate = AdminGate(pin, clock=clock, on_event=events.append)
    first, second = gate.check("0000"), gate.check("0001")
    assert (first.ok, first.locked, first.tries_left) == (False, False, 2)
    assert (second.ok, second.locked, second.tries_left) == (False, False, 1)
    third = gate.check("0002")
    assert not third.ok and third.locked_s == FIRST_LOCK_S == 30.0
    clock.t += 10
    refused = gate.check("4711")  # the right PIN, but locked: not even checked
    assert not refused.ok and not refused.checked and refused.locked_s == pytest.approx(20.0)
    clock.t += 20
    assert not gate.check("0003").ok  # the 4th wrong one in a row: twice as long
    assert gate.locked_s() == pytest.approx(60.0)
    clock.t += 60
    assert gate.check("4711").ok
    assert gate.failures == 0 and gate.locked_s() == 0
    assert [lock_after(n) for n in range(1, 7)] == [0, 0, 30, 60, 120, 240]
    assert lock_after(100) == 900
    assert len(events) == 6
    assert events[0] == "wrong admin PIN: 1 in a row"
    assert events[2] == "wrong admin PIN: 3 in a row; locked for 30 s"
    assert events[3].startswith("admin PIN refused without checking")
    assert events[5] == "admin PIN accepted after 4 wrong PIN(s)"


def test_the_lock_survives_a_restart_and_a_new_pin_clears_it(pin):
    clock = Clock()
    gate = AdminGate(pin, clock=clock)
    for guess in ("1", "2", "3"):
        gate.check(guess * 4)
    again = AdminGate(pin, clock=clock)  # the app was restarted to reset the count
    assert again.failures == 3 and again.locked_s() == pytest.approx(30.0)
    assert not again.check("4711").ok
    pin.set("9999")
    assert AdminGate(pin, clock=clock).check("9999").ok


def test_without_a_pin_the_gate_lets_anyone_through(tmp_path):
    gate = AdminGate(AdminPin(tmp_path / "none.json"))
    assert not gate.is_set and gate.check("").ok


def test_faceapp_admin_set_pin_reads_stdin_and_logs_an_event(monkeypatch, sqlite_url, capsys):
    from faceapp.cli.main import main
    from faceapp.storage import open_store

    monkeypatch.setattr(sys, "stdin", io.StringIO("2468\n"))
    assert main(["admin", "set-pin", "--db", sqlite_url]) == 0
    assert AdminPin().matches("2468") and AdminPin().path == pin_path()
    assert "admin PIN set" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO("12\n"))
    assert main(["admin", "set-pin", "--db", sqlite_url]) == 11  # too short: a setting error, nothing changed
    assert "4 to 64 characters" in capsys.readouterr().err
    assert AdminPin().matches("2468")
    assert main(["admin", "clear-pin", "--db", sqlite_url]) == 0
    assert not AdminPin().is_set
    store = open_store(sqlite_url)
    try:
        details = [e.detail for e in store.events() if e.kind == "admin"]
    finally:
        store.close()
    assert sorted(details) == ["admin PIN cleared from the command line", "admin PIN set from the command line"]

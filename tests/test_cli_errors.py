"""The command line never answers with a crash: bad arguments are exit 2, bad settings 11,
unreadable input 7, and anything unexpected 70 with its traceback in a log file; each is ONE
line on stderr (exit 1 means "no match" to scripts, so nothing else may end in it)."""

from __future__ import annotations

import errno
import re
from pathlib import Path

import pytest

from faceapp import paths
from faceapp.cli.exit_codes import EX_SOFTWARE, Exit
from faceapp.cli.main import EXIT_CODES_HELP, main


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    return err.strip()


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'f.db'}"


@pytest.fixture
def env(monkeypatch):
    for name in ("FACEAPP_LIVENESS", "FACEAPP_DOOR_TIMEOUT_S", "FACEAPP_THRESHOLD", "FACEAPP_SETTINGS",
                 "FACEAPP_MIN_BRIGHTNESS", "FACEAPP_TOP_K", "FACEAPP_DB"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- bad arguments: exit 2, one line --------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, names",
    [
        (["events", "--since", "garbage"], ["--since", "'garbage'", "ISO date"]),
        (["events", "--until", "2026-13-45"], ["--until", "'2026-13-45'"]),
        (["events", "--limit", "-1"], ["--limit", "'-1'", "at least 1"]),
        (["events", "--limit", "0"], ["--limit", "'0'"]),
        (["events", "--limit", "many"], ["--limit", "'many'"]),
        (["events", "--since", "2026-02-01", "--until", "2026-01-01"], ["--since", "after --until"]),
        (["events", "--csv", "/no/such/folder/log.csv"], ["--csv", "does not exist"]),
        (["identify", "door.jpg", "--top-k", "-1"], ["--top-k", "'-1'", "1 to 50"]),
        (["identify", "door.jpg", "--top-k", "0"], ["--top-k"]),
        (["identify", "door.jpg", "--top-k", "51"], ["--top-k", "'51'"]),
        (["eval", "pairs", "p.csv", "--limit", "-5"], ["--limit"]),
        (["eval", "pairs", "p.csv", "--resamples", "0"], ["--resamples"]),
        (["benchmark", "--runs", "0"], ["--runs"]),
        (["benchmark", "--frames", "-3"], ["--frames"]),
        (["benchmark", "--sizes", "1000,-1"], ["--sizes", "'1000,-1'"]),
        (["verify", "alice"], ["required", "image"]),
        (["frobnicate"], ["invalid choice", "'frobnicate'"]),
        (["people", "--device", "tpu"], ["--device", "'tpu'"]),
    ],
)
def test_bad_arguments_are_exit_2_with_one_line(capsys, db, argv, names):
    code, out, err = run(capsys, *argv, "--db", db)
    assert code == Exit.USAGE
    line = one_line(err)
    assert line.startswith("faceapp") and all(n in line for n in names), line


def test_good_times_and_limits_still_work(capsys, db):
    code, out, err = run(capsys, "events", "--db", db, "--since", "2026-01-01", "--until", "2026-01-02T08:30+01:00",
                         "--limit", "3", "--json")
    assert code == Exit.OK and '"events": []' in out and err == ""


# -- settings: exit 11, one line naming the setting, the value, its source, what is allowed ----------
@pytest.mark.parametrize(
    "var, raw, allowed",
    [
        ("FACEAPP_LIVENESS", "ture", "true/false, 1/0, yes/no or on/off"),
        ("FACEAPP_DOOR_TIMEOUT_S", "-1", "> 0 and <= 600 seconds"),
        ("FACEAPP_TOP_K", "0", "1..50"),
        ("FACEAPP_MIN_BRIGHTNESS", "bright", "a number 0..255"),
    ],
)
def test_a_bad_environment_setting_is_exit_11_naming_it(capsys, env, db, var, raw, allowed):
    env.setenv(var, raw)
    code, _, err = run(capsys, "people", "--db", db)
    assert code == Exit.CONFIG
    line = one_line(err)
    name = var.removeprefix("FACEAPP_").lower()
    assert line.startswith(f"faceapp: setting {name} has an invalid value {raw!r} (from {var}): allowed ")
    assert allowed in line


def test_a_bad_threshold_flag_is_exit_11_naming_the_flag(capsys, env, db):
    for raw in ("abc", "9", "nan"):
        code, _, err = run(capsys, "verify", "alice", "door.jpg", "--threshold", raw, "--db", db)
        assert code == Exit.CONFIG
        assert f"setting threshold has an invalid value {raw!r} (from --threshold)" in one_line(err)


def test_brightness_limits_that_contradict_each_other_are_exit_11(capsys, env, db, tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text("min_brightness = 230.0\nmax_brightness = 225.0\n")
    env.setenv("FACEAPP_SETTINGS", str(settings))
    code, _, err = run(capsys, "people", "--db", db)
    assert code == Exit.CONFIG and "min_brightness must be below max_brightness" in one_line(err)


def test_an_unreadable_settings_path_is_exit_11_naming_it(capsys, env, db, tmp_path):
    env.setenv("FACEAPP_SETTINGS", str(tmp_path))  # a folder
    code, _, err = run(capsys, "people", "--db", db)
    assert code == Exit.CONFIG and f"settings file {tmp_path} is a folder" in one_line(err)
    env.setenv("FACEAPP_SETTINGS", str(tmp_path / ("s" * 1000 + ".toml")))
    code, _, err = run(capsys, "settings")
    assert code == Exit.CONFIG and "File name too long" in one_line(err)


# -- unreadable input: exit 7 ----------------------------------------------------------------------
def test_a_file_name_too_long_anywhere_is_unreadable_input(capsys, db, monkeypatch):
    from faceapp.store.repository import Store

    name = "/tmp/" + "x" * 1000 + ".csv"

    def too_long(*a, **k):
        raise OSError(errno.ENAMETOOLONG, "File name too long", name)

    monkeypatch.setattr(Store, "list_people", too_long)
    code, _, err = run(capsys, "people", "--db", db)
    assert code == Exit.BAD_INPUT
    line = one_line(err)
    assert "file name is too long" in line and "(1009 characters)" in line and len(line) < 250


# -- crashes: exit 70, one line, the traceback in the data folder's log/ ----------------------------
def _crash(*a, **k):
    return {}["a key that is not there"]


def test_an_unexpected_exception_is_exit_70_with_the_traceback_in_a_log(capsys, db, monkeypatch):
    from faceapp.store.repository import Store

    monkeypatch.setattr(Store, "list_people", _crash)
    code, out, err = run(capsys, "people", "--db", db)
    assert code == EX_SOFTWARE == 70 and out == ""
    line = one_line(err)
    m = re.fullmatch(r"faceapp: internal error: KeyError: 'a key that is not there'; details in (.+)", line)
    assert m, line
    log = Path(m.group(1))
    assert log.parent == paths.data_dir() / "log" and log.is_file()
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in _crash" in text and "KeyError" in text
    assert "'people'" in text  # the command line that crashed


def test_a_crash_when_the_log_folder_cannot_be_made_still_reports_one_line(capsys, db, monkeypatch, tmp_path):
    import tempfile

    from faceapp.store.repository import Store

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setattr(paths, "data_dir", lambda: blocker)  # data/log cannot be created under a file
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(Store, "list_people", _crash)
    code, _, err = run(capsys, "people", "--db", db)
    assert code == Exit.SOFTWARE
    log = Path(one_line(err).split("; details in ")[1])
    assert log.parent == tmp_path / "tmp" and "KeyError" in log.read_text()


def test_a_crash_is_never_exit_1(capsys, db, monkeypatch):
    from faceapp.store.repository import Store

    for exc in (RuntimeError("boom\nsecond line"), AttributeError("x"), PermissionError(13, "denied")):
        def raise_it(*a, _exc=exc, **k):
            raise _exc

        monkeypatch.setattr(Store, "list_people", raise_it)
        code, _, err = run(capsys, "people", "--db", db)
        assert code == Exit.SOFTWARE != Exit.NO_MATCH
        assert one_line(err).startswith(f"faceapp: internal error: {type(exc).__name__}: ")


def test_interrupt_is_still_130(capsys, db, monkeypatch):
    from faceapp.store.repository import Store

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "list_people", interrupt)
    code, _, err = run(capsys, "people", "--db", db)
    assert code == Exit.INTERRUPTED and one_line(err) == "faceapp: interrupted"


# -- documentation -----------------------------------------------------------------------------------
def test_every_exit_code_is_in_the_readme_table_and_the_help():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n\n", 2)[1]
    documented = set()
    for row in section.splitlines()[2:]:
        documented |= {int(c) for c in re.findall(r"\d+", row.split("|")[1])}
    assert documented == {int(e) for e in Exit}
    assert "70=software" in EXIT_CODES_HELP

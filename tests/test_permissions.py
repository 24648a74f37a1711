"""Faces at rest: the database, its WAL/SHM files and faceapp's folders are owner-only."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from faceapp import paths
from faceapp.store.db import make_engine

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def umask(value: int):
    """A permissive umask for the duration of one creation (restored at once)."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FACEAPP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_fresh_database_file_is_0600_and_its_new_folders_0700(tmp_path):
    db = tmp_path / "a" / "b" / "faceapp.db"
    with umask(0o022):
        engine = make_engine(f"sqlite:///{db}")
    engine.dispose()
    assert mode(db) == 0o600
    assert mode(db.parent) == 0o700
    assert mode(db.parent.parent) == 0o700


def test_modes_do_not_depend_on_a_permissive_umask(tmp_path):
    db = tmp_path / "new" / "faceapp.db"
    with umask(0):
        engine = make_engine(f"sqlite:///{db}")
    engine.dispose()
    assert mode(db) == 0o600
    assert mode(db.parent) == 0o700


def test_wal_and_shm_files_are_0600(tmp_path):
    db = tmp_path / "faceapp.db"
    with umask(0o022):
        engine = make_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:  # an open connection keeps -wal and -shm in place
            conn.execute(text("SELECT x FROM t")).all()
            wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
            assert wal.exists() and shm.exists()
            assert mode(wal) == 0o600
            assert mode(shm) == 0o600
    engine.dispose()


def test_rollback_journal_is_0600(tmp_path):
    """SQLite gives a -journal the main file's mode too (seen when WAL is not in use)."""
    db = tmp_path / "faceapp.db"
    engine = make_engine(f"sqlite:///{db}")
    engine.dispose()
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = DELETE")
        con.execute("PRAGMA journal_mode = PERSIST")  # keep the journal after commit to look at it
        con.execute("CREATE TABLE t (x INTEGER)")
        journal = Path(f"{db}-journal")
        assert journal.exists()
        assert mode(journal) == 0o600
    finally:
        con.close()


def test_existing_world_readable_database_is_tightened_with_a_warning(tmp_path, caplog):
    db = tmp_path / "faceapp.db"
    sqlite3.connect(db).close()
    os.chmod(db, 0o644)
    with caplog.at_level(logging.WARNING):
        make_engine(f"sqlite:///{db}").dispose()
    assert mode(db) == 0o600
    assert any(str(db) in r.getMessage() and "0644" in r.getMessage() for r in caplog.records)


def test_existing_wal_and_shm_readable_by_others_are_tightened(tmp_path):
    db = tmp_path / "faceapp.db"
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("CREATE TABLE t (x INTEGER)")
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        for p in (db, wal, shm):
            os.chmod(p, 0o644)
        make_engine(f"sqlite:///{db}").dispose()
        assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        con.close()


def test_an_owner_only_database_is_left_alone_without_warning(tmp_path, caplog):
    db = tmp_path / "faceapp.db"
    make_engine(f"sqlite:///{db}").dispose()
    os.chmod(db, 0o400 | 0o200)
    with caplog.at_level(logging.WARNING):
        make_engine(f"sqlite:///{db}").dispose()
    assert mode(db) == 0o600
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_existing_data_folder_readable_by_others_is_tightened(home, caplog):
    data = paths.data_dir()
    data.mkdir(parents=True)
    os.chmod(data, 0o755)
    with caplog.at_level(logging.WARNING):
        make_engine(paths.default_db_url()).dispose()
    assert mode(data) == 0o700
    assert mode(data / "faceapp.db") == 0o600
    assert any(str(data) in r.getMessage() for r in caplog.records)


def test_a_folder_chosen_by_the_user_keeps_its_mode(tmp_path):
    """The database file is ours; a folder that already existed (the user's cwd, /srv) is not."""
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o755)
    make_engine(f"sqlite:///{folder / 'door.db'}").dispose()
    assert mode(folder) == 0o755
    assert mode(folder / "door.db") == 0o600


def test_failed_open_does_not_leave_an_empty_database_behind(tmp_path):
    from faceapp.errors import StoreError

    db = tmp_path / "faceapp.db"
    with pytest.raises(StoreError):
        make_engine(f"sqlite:///{db}", busy_timeout_ms="not a number")  # type: ignore[arg-type]
    assert not db.exists()


def test_ensure_data_and_config_dirs_are_created_0700(home):
    with umask(0):
        data = paths.ensure_data_dir()
        config = paths.ensure_config_dir()
    assert data == paths.data_dir() and config == paths.config_dir()
    assert mode(data) == 0o700 and mode(config) == 0o700
    assert mode(home) == 0o700  # a missing parent made on the way is ours too


def test_ensure_config_dir_tightens_an_existing_one(home, caplog):
    config = paths.config_dir()
    config.mkdir(parents=True)
    os.chmod(config, 0o775)
    with caplog.at_level(logging.WARNING):
        paths.ensure_config_dir()
    assert mode(config) == 0o700
    assert any("0775" in r.getMessage() for r in caplog.records)


def test_make_private_dir_refuses_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError):
        paths.make_private_dir(f)


def test_in_memory_database_touches_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_engine("sqlite:///:memory:").dispose()
    assert list(tmp_path.iterdir()) == []

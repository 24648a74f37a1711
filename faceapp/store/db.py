"""Engines for the enrollment database.

``make_engine(url)`` is the one place that opens a database. For SQLite it creates the
file's folder, turns on write-ahead logging (readers never block the writer), foreign keys
(so deleting a person cascades to their templates) and a busy timeout (a second faceapp
process waits for a lock instead of failing at once), and takes over transaction control
from Python's ``sqlite3`` driver so that every transaction really is one transaction:
``BEGIN`` for reads, ``BEGIN IMMEDIATE`` for writes (see :func:`writer`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from faceapp import paths
from faceapp.errors import StoreError


# How long a connection waits for another process's write lock before giving up, in ms.
DEFAULT_BUSY_TIMEOUT_MS = 5000

# Execution option read by the "begin" listener: the SQLite BEGIN mode of a transaction.
_BEGIN_OPTION = "faceapp_sqlite_begin"


def mask_url(url: URL | str) -> str:
    """The URL as text, with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def is_sqlite_memory(url: URL) -> bool:
    """True for ``sqlite://`` and ``sqlite:///:memory:`` (and URI-style in-memory names)."""
    if url.get_backend_name() != "sqlite":
        return False
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database or (
        url.query.get("mode") == "memory"
    )


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory and ``file:`` URI names."""
    if url.get_backend_name() != "sqlite" or is_sqlite_memory(url):
        return None
    database = url.database or ""
    if database.startswith("file:"):
        return None
    return Path(database)


# Files SQLite keeps beside a database; it creates them with the database file's mode.
_SQLITE_SIBLINGS = ("-wal", "-shm", "-journal")


def _make_db_folder(folder: Path) -> None:
    """Create the database's folder (missing parts 0700). Only faceapp's own data folder is
    tightened when it exists: a folder the user chose (their cwd, /srv/...) is not ours."""
    tighten = False
    if folder.exists():
        try:
            tighten = folder.resolve() == paths.data_dir().resolve()
        except OSError:
            tighten = False
    paths.make_private_dir(folder, tighten=tighten)


def _create_private_file(path: Path, shown: str) -> Path | None:
    """Make a new database file 0600 before SQLite opens it (SQLite would make it 0644 less
    the umask; an empty file is a valid empty database). An existing file and its siblings
    are tightened instead. Returns the path when this call created it."""
    if not paths.posix_permissions():
        return None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, paths.PRIVATE_FILE_MODE)
    except FileExistsError:
        for p in (path, *(path.with_name(path.name + s) for s in _SQLITE_SIBLINGS)):
            paths.tighten_permissions(p, what="database file")
        return None
    except OSError as exc:
        raise StoreError(f"cannot create database {shown}: {exc.strerror or exc}") from exc
    try:
        os.fchmod(fd, paths.PRIVATE_FILE_MODE)  # the umask may have masked owner bits
    finally:
        os.close(fd)
    return path


def _remove_if_unused(created: Path | None) -> None:
    """Remove a database file this call created when it is still empty (opening failed)."""
    if created is None:
        return
    try:
        if created.stat().st_size == 0:
            created.unlink()
    except OSError:
        pass


def make_engine(url: str | URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    """Open the database at ``url`` (a SQLAlchemy URL such as ``sqlite:///C:/data/faceapp.db``).

    ``~`` in a SQLite path is expanded and the file's folder is created. The file holds faces,
    so it is owner-only: a new file is created 0600 (SQLite gives its -wal, -shm and -journal
    files the same mode) and the folders made for it 0700; an existing file, its -wal/-shm/
    -journal and faceapp's own data folder that other accounts can read are tightened with a
    warning (see :func:`faceapp.paths.tighten_permissions`). ``sqlite:///:memory:``
    gives one in-memory database shared by every session of the engine (it lives as long as
    the engine). The database is opened once here, so a bad URL or a file that cannot be
    opened raises :class:`StoreError` now, with one line naming it, rather than later.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"invalid database URL {str(url)!r}: expected e.g. sqlite:///path/to/faceapp.db") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        # a plain postgresql:// URL means psycopg 3 here (SQLAlchemy's default is psycopg2, not installed)
        parsed = parsed.set(drivername="postgresql+psycopg")
    shown = mask_url(parsed)

    kwargs: dict[str, Any] = {}
    created_file: Path | None = None  # a database file made here, removed again if opening fails
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        if is_sqlite_memory(parsed):
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            path = _sqlite_file(parsed)
            if path is not None:
                path = path.expanduser()
                parsed = parsed.set(database=str(path))
                try:
                    _make_db_folder(path.parent)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the folder {str(path.parent)!r} for database {shown}: "
                        f"{exc.strerror or exc}"
                    ) from exc
                if path.is_dir():
                    raise StoreError(f"cannot open database {shown}: {str(path)!r} is a folder")
                created_file = _create_private_file(path, shown)
    if not is_sqlite:
        # a server restarted (or a network blip) leaves dead connections in the pool: test each
        # one as it is checked out rather than fail the next door decision on it
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        _remove_if_unused(created_file)
        raise StoreError(f"unsupported database URL {shown}: {_one_line(exc)}") from exc
    except ImportError as exc:
        _remove_if_unused(created_file)
        raise StoreError(f"cannot open database {shown}: its driver is not installed ({exc.name})") from exc

    if is_sqlite:
        _configure_sqlite(engine, memory=is_sqlite_memory(parsed), busy_timeout_ms=busy_timeout_ms)

    # Open it once now so that a bad file fails here with a clear message.
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # SQLAlchemy errors, and DBAPI errors raised by the connect hook
        engine.dispose()
        _remove_if_unused(created_file)
        raise StoreError(f"cannot open database {shown}: {_one_line(exc)}") from exc
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine (same pool), whose transactions take the write lock at BEGIN.

    On SQLite that is ``BEGIN IMMEDIATE``: a write transaction waits up to the busy timeout
    for another writer to finish instead of failing half-way with "database is locked".
    On other databases (or engines not made by :func:`make_engine`) it changes nothing."""
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


def _configure_sqlite(engine: Engine, *, memory: bool, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below): the sqlite3 driver's legacy mode would
        # run SELECTs and DDL outside the transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            # Deleted rows (a removed person's face images) are overwritten, not left in free pages.
            cursor.execute("PRAGMA secure_delete = ON")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def set_sqlite_foreign_keys(conn: Connection, on: bool) -> None:
    """Turn foreign-key enforcement on or off for one SQLite connection (no-op elsewhere).

    Must be called outside a transaction (SQLite ignores the pragma inside one), so it goes
    straight to the driver connection instead of through SQLAlchemy's autobegin."""
    if conn.dialect.name != "sqlite":
        return
    if conn.in_transaction():
        raise RuntimeError("PRAGMA foreign_keys cannot change inside a transaction")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _one_line(exc: BaseException) -> str:
    """A short one-line description of a (possibly SQLAlchemy-wrapped) exception."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    if isinstance(exc, SQLAlchemyError) and orig is None:
        # SQLAlchemy appends a "(Background on this error at: ...)" line; keep the first.
        text = text.split("\n", 1)[0]
    return " ".join(text.split()) or type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """One line for a database failure, for StoreError messages."""
    text = _one_line(exc)
    if "database is locked" in text:
        return "the database is locked by another faceapp process; try again"
    if "readonly database" in text:
        return "the database file is read-only"
    if "disk is full" in text or "disk I/O error" in text:
        return f"{text} (check free space and the disk holding the database)"
    return text


# SQLSTATEs of a server that cannot take the connection: class 08 (connection exception) and the
# server shutting down, crashed or starting up
_UNREACHABLE_SQLSTATES = ("57P01", "57P02", "57P03")
# what libpq says when the server answered the connection and refused it: reachable, not an outage
_REFUSED_AT_CONNECT = ("authentication failed", "pg_hba.conf", "does not exist", "permission denied")


def server_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` (a StoreError and the errors it was raised from) says the database
    server could not be reached: no connection could be made, or the one in use was lost
    (SQLAlchemy's ``connection_invalidated``; a driver error with no SQLSTATE, raised by the
    client library, or one of class 08 / 57P01-57P03). A server that answered and refused (no
    permission, a constraint, a lock timeout, a full disk, a bad password), a store that
    refuses by itself (the access log altered) and any other error are not: only an outage may
    send a decision to the door's offline outbox."""
    from sqlalchemy.exc import DBAPIError

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if getattr(e, "unreachable", False):
            return True
        if isinstance(e, DBAPIError):
            if e.connection_invalidated:
                return True
            e = e.orig
            continue
        if hasattr(e, "sqlstate"):  # a psycopg (PostgreSQL) error
            state = e.sqlstate
            if state:
                return state.startswith("08") or state in _UNREACHABLE_SQLSTATES
            text = str(e).lower()
            return not any(words in text for words in _REFUSED_AT_CONNECT)
        if isinstance(e, (ConnectionError, TimeoutError)):
            return True
        e = e.__cause__ if (e.__cause__ is not None or e.__suppress_context__) else e.__context__
    return False

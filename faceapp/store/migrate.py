"""Schema versioning: Alembic, configured in code, run at start-up through one function.

``upgrade_to_head(engine)`` brings a fresh or an existing database to the newest schema;
the app, the tests and ``alembic upgrade head`` all run the same ``migrations/env.py``,
which uses the connection handed to it in ``config.attributes["connection"]``.

No ``alembic.ini`` is needed (so it works the same inside a frozen installer): the
migrations folder is found by :func:`migrations_dir`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

import faceapp
from faceapp.errors import StoreError
from faceapp.store.db import describe_error, mask_url, set_sqlite_foreign_keys, writer

log = logging.getLogger(__name__)

MIGRATIONS_ENV_VAR = "FACEAPP_MIGRATIONS_DIR"

# The PostgreSQL advisory lock held by the transaction that migrates a database, so that
# processes opening it at once upgrade it one after the other. Any constant bigint; advisory
# locks are per database, so this only has to differ from other applications' keys on it.
PG_MIGRATION_LOCK_KEY = int.from_bytes(b"faceapp\x01", "big")


def migrations_dir() -> Path:
    """The folder holding Alembic's ``env.py`` and ``versions/``.

    Looked for, in order: ``$FACEAPP_MIGRATIONS_DIR``; ``<bundle>/migrations`` inside a
    frozen (PyInstaller) app; the repository's top-level ``migrations/``."""
    override = os.environ.get(MIGRATIONS_ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not (path / "env.py").is_file():
            raise StoreError(
                f"{MIGRATIONS_ENV_VAR} is {override!r}, but that folder holds no Alembic env.py"
            )
        return path
    candidates: list[Path] = []
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        candidates.append(Path(bundle) / "migrations")
    candidates.append(Path(faceapp.__file__).resolve().parents[1] / "migrations")
    for path in candidates:
        if (path / "env.py").is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise StoreError(
        f"the database migrations folder is missing (looked in {looked}); "
        f"reinstall faceapp or set {MIGRATIONS_ENV_VAR}"
    )


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` built in code; ``connection`` is handed to ``env.py``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision in the migrations folder."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError(f"the database migrations folder {migrations_dir()} holds no revisions")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision, or None for a database Alembic has never touched."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot read the schema version of {mask_url(engine.url)}: {describe_error(exc)}"
        ) from exc


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one write transaction, set up for schema changes; commits on success.

    On SQLite, foreign keys are off while migrating (batch migrations copy and drop tables,
    and dropping ``people`` with foreign keys on would cascade-delete every template), the
    foreign keys are checked before the commit, and turned back on afterwards.

    Migrations are serialised between processes, so that a second process waits for the
    first one's upgrade and then finds the schema already at head: on SQLite by
    ``BEGIN IMMEDIATE``; on PostgreSQL by a transaction-level advisory lock taken first in
    the transaction (DDL there is transactional, but two processes creating the same tables
    at once would fail with duplicate-key errors on the system catalogs)."""
    with writer(engine).connect() as conn:
        set_sqlite_foreign_keys(conn, False)
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    _pg_migration_lock(conn)
                yield conn
                if conn.dialect.name == "sqlite":
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise StoreError(
                            f"the migration left {len(broken)} rows with broken references "
                            f"(first: table {broken[0][0]}); nothing was changed"
                        )
        finally:
            try:
                set_sqlite_foreign_keys(conn, True)
            except Exception:  # never hand a connection without foreign keys back to the pool
                conn.invalidate()
                raise


def _pg_migration_lock(conn: Connection) -> None:
    """Take the migration lock for this transaction (released at commit or rollback),
    waiting for another process's migration to finish first."""
    key = {"key": PG_MIGRATION_LOCK_KEY}
    if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), key).scalar():
        log.info("another process is migrating database %s; waiting for it", mask_url(conn.engine.url))
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)


def upgrade_to_head(engine: Engine, *, after: Callable[[Connection, str | None], None] | None = None) -> str:
    """Create or upgrade the schema to the newest revision; returns that revision.

    Safe to call on every start: a database already at head is only read. A database made by
    a newer faceapp (a revision this installation does not know) raises :class:`StoreError`,
    as does any failed migration, which leaves the database as it was.

    ``after(connection, from_revision)`` runs when this call did upgrade, inside the
    migration's transaction, after the migrations (``from_revision``: the revision the
    database had, None for a new one), in the same commit. The store does not use it: the
    alembic command line runs no such hook, so what a Store must do once on an upgraded
    database (seal one from before sealing, repair a blank record of an empty log) it decides
    from the content each time it opens (Store._open_keys)."""
    head = head_revision()
    script = ScriptDirectory.from_config(alembic_config())
    current = current_revision(engine)
    if current == head:
        return head
    if current is not None:
        try:
            known = script.get_revision(current) is not None
        except CommandError:
            known = False
        if not known:
            raise StoreError(
                f"database {mask_url(engine.url)} has schema revision {current}, which this "
                "faceapp does not know; it was written by a newer faceapp, so upgrade faceapp"
            )
    log.info("upgrading database %s from %s to %s", mask_url(engine.url), current, head)
    try:
        with migration_connection(engine) as conn:
            start = MigrationContext.configure(conn).get_current_revision()  # under the lock
            command.upgrade(alembic_config(conn), "head")
            if after is not None and start != head:
                after(conn, start)
    except StoreError:
        raise
    except Exception as exc:  # a database error, or a bug in a migration script
        reason = describe_error(exc) if isinstance(exc, SQLAlchemyError) else f"{type(exc).__name__}: {exc}"
        raise StoreError(
            f"cannot upgrade database {mask_url(engine.url)} to schema {head}; it was left as "
            f"it was: {' '.join(reason.split())}"
        ) from exc
    return head

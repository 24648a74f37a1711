"""Alembic environment for faceapp.

The app and the tests call ``faceapp.store.migrate.upgrade_to_head(engine)``, which hands
this script an open connection (already in a transaction) in
``config.attributes["connection"]``. Run from the command line (``alembic upgrade head``,
``alembic revision --autogenerate -m ...``), the database URL comes from
``-x url=sqlite:///path.db``, from ``sqlalchemy.url`` in alembic.ini, or from
``$FACEAPP_DB_URL``, and the connection is opened the same way the app opens it.
"""

from __future__ import annotations

import os

from alembic import context

from faceapp.store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("FACEAPP_DB_URL")
    )
    if not url:
        raise SystemExit("give the database: alembic -x url=sqlite:///path/to/faceapp.db ...")
    return url


def _render_item(type_: str, obj, autogen_context):
    """Render faceapp's UTC datetime column type as a plain DateTime in new revisions, so
    that migrations never import app code that may change later."""
    from faceapp.store.models import UTCDateTime

    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # faceapp's SQLite engines emit BEGIN themselves, so DDL is transactional there too.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    from faceapp.store.db import make_engine
    from faceapp.store.migrate import migration_connection

    engine = make_engine(_url())
    try:
        with migration_connection(engine) as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

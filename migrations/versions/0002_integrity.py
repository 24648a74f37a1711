"""Integrity: normalised unique names, sealed face data, an append-only hash-chained log.

- ``people.name_key``: the normalised, case-folded name, unique (``Alice`` and ``alice`` are
  one person). Existing names are keyed here; two existing names with the same key keep the
  first and get " (2)", " (3)"... appended to the others' spelling (logged).
- ``people.data_key``: the person's data key wrapped by the site key (filled by the app at
  first start, which seals the stored faces and templates: the key is not in the database).
- ``people`` ids are never reused (SQLite AUTOINCREMENT; PostgreSQL sequences never reuse).
- ``templates.sealed``: whether the row's embedding and face are sealed; the size check
  holds for plain rows only.
- ``events``: ``prev_hash`` / ``hash`` (the chain; existing events are chained by the app at
  first start, with the key), ``person_id`` loses its foreign key (removing a person keeps
  their events), ``uid`` (unique: an event queued by a door while offline is delivered once),
  and triggers refuse UPDATE and DELETE of a chained event (and TRUNCATE on PostgreSQL).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

APPEND_ONLY = "the access log is append-only: events cannot be changed or deleted"


def _key(name: str) -> str:
    # The same rule as faceapp.store.names.name_key, written out so that this revision never
    # changes when the app's code does. Names that the new rules would refuse (invisible
    # characters) are kept as they are; their key drops those characters.
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c for c in text if c.isspace() or not unicodedata.category(c).startswith("C"))
    text = " ".join(text.split())
    return unicodedata.normalize("NFKC", text.casefold())


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name

    with op.batch_alter_table("people", schema=None, recreate="always" if dialect == "sqlite" else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("data_key", sa.LargeBinary(), nullable=True))

    people = sa.table("people", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("name_key", sa.String))
    rows = bind.execute(sa.select(people.c.id, people.c.name).order_by(people.c.id)).all()
    # A later duplicate is renamed "<name> (n)": that name must be nobody's, neither an earlier
    # nor a later row's (0001 allowed "Bob", "bob" and "bob (2)" side by side), so every key is
    # taken before the first rename is chosen.
    taken: set[str] = {_key(name) for _, name in rows}
    kept: set[str] = set()
    for pid, name in rows:
        key, shown, n = _key(name), name, 1
        if key in kept:
            while key in taken:
                n += 1
                shown = f"{name} ({n})"
                key = _key(shown)
            taken.add(key)
            log.warning("person %d: name %r is the same as an earlier one once normalised; renamed %r", pid, name, shown)
        kept.add(key)
        bind.execute(sa.update(people).where(people.c.id == pid).values(name=shown, name_key=key))

    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.alter_column("name_key", existing_type=sa.String(length=200), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_people_name_key"), ["name_key"])

    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.Boolean(), server_default="0", nullable=False))
        batch_op.drop_constraint(batch_op.f("ck_templates_embedding_size"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_templates_embedding_size"), "sealed OR length(embedding) = 4 * dim")

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_events_person_id_people"), type_="foreignkey")
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("uid", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_events_uid"), ["uid"])

    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER events_append_only_{action.lower()} BEFORE {action} ON events "
                f"WHEN OLD.hash IS NOT NULL BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION faceapp_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "IF TG_OP = 'TRUNCATE' OR OLD.hash IS NOT NULL THEN "
            f"RAISE EXCEPTION '{APPEND_ONLY}'; END IF; "
            "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; "
            "END $$"
        )
        op.execute(
            "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
            "FOR EACH ROW EXECUTE FUNCTION faceapp_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
            "FOR EACH STATEMENT EXECUTE FUNCTION faceapp_events_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_append_only_update")
        op.execute("DROP TRIGGER IF EXISTS events_append_only_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_no_truncate ON events")
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        op.execute("DROP FUNCTION IF EXISTS faceapp_events_append_only()")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_events_uid"), type_="unique")
        batch_op.drop_column("uid")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.create_foreign_key(
            batch_op.f("fk_events_person_id_people"), "people", ["person_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_templates_embedding_size"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_templates_embedding_size"), "length(embedding) = 4 * dim")
        batch_op.drop_column("sealed")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_people_name_key"), type_="unique")
        batch_op.drop_column("data_key")
        batch_op.drop_column("name_key")

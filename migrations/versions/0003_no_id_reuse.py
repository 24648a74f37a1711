"""Ids of people and templates are never reused, on SQLite too.

SQLite without AUTOINCREMENT gives a new row the id of the newest deleted one. For
``templates`` that let a re-embed (which reads the templates, embeds them with no lock held,
then writes by id) seal a removed person's face under the name of whoever enrolled next; for
``people`` (0002 declared AUTOINCREMENT, but its second batch on ``people`` recreated the
table without it) a removed person's events were shown as the next enrollee's.

SQLite: both tables are recreated with AUTOINCREMENT (rows copied as they are), and the
sequence starts above every id used so far that is still known: the largest id in the table
and, for ``people``, the largest ``events.person_id`` (a removed person's). PostgreSQL:
nothing to do (sequences never hand out an id twice).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in ("people", "templates"):
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass
    people = bind.exec_driver_sql(
        "SELECT max(coalesce((SELECT max(id) FROM people), 0), coalesce((SELECT max(person_id) FROM events), 0))"
    ).scalar()
    templates = bind.exec_driver_sql("SELECT coalesce(max(id), 0) FROM templates").scalar()
    op.execute("DELETE FROM sqlite_sequence WHERE name IN ('people', 'templates')")
    for table, seq in (("people", people), ("templates", templates)):
        op.execute(f"INSERT INTO sqlite_sequence (name, seq) VALUES ('{table}', {int(seq)})")


def downgrade() -> None:
    # AUTOINCREMENT is only ever stricter: the 0002 schema works with it as it is.
    pass

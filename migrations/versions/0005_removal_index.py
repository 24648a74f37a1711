"""The gallery record v2 and the index it is checked along.

Adds the index ``ix_events_kind_person_id`` on events (kind, person_id): every gallery read
looks up, in one query, whether the log records the removal of a person who is in the gallery
(after that person's creation), which is what a gallery put back whole from an older copy
(people, templates and gallery record together) shows. faceapp rewrites a v1 gallery record
(schema 0004) as v2, which also covers each person's ``created_at``, at its first open of the
database (it needs the site key, which is not in the database), once (docs/security.md). The
revision also keeps a faceapp of schema 0004 (which would write v1 records) from opening it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_kind_person_id", "events", ["kind", "person_id"], if_not_exists=True)


def downgrade() -> None:
    # The record stays v2 and the chain key wrapped for it: a faceapp of schema 0004 refuses the
    # gallery. Downgrading is for a database restored to its 0004 copy, not for this one.
    op.drop_index("ix_events_kind_person_id", table_name="events", if_exists=True)

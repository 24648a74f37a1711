"""The gallery record: which people and templates make up the gallery, authenticated.

Adds the meta row ``gallery_head``, blank. faceapp fills it at its first open of the database
(it needs the site key, which is not in the database): every person's data key is wrapped
again bound to their id *and* name key, and the record gets a MAC over the live people (id,
name key, name) and template ids (docs/security.md). A blank record is only ever filled once,
for a database whose keys are still wrapped the 0003 way; once filled, a missing or blank
record is tampering. The revision also keeps a faceapp of schema 0003 (which would wrap new
data keys the old way and not keep the record) from opening the database.

No table changes: the row is data, so the models are unchanged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a database that has the record already (sealed by this faceapp at schema 0002 or 0003,
    # then upgraded) keeps it as it is
    op.execute("INSERT INTO meta (key, value) SELECT 'gallery_head', '' "
               "WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'gallery_head')")


def downgrade() -> None:
    # The data keys stay wrapped bound to their names: a faceapp of schema 0003 cannot open
    # them. Downgrading is for a database restored to its 0003 copy, not for this one.
    op.execute("DELETE FROM meta WHERE key = 'gallery_head' AND value = ''")

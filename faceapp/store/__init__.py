"""The enrollment database: SQLAlchemy models, engine, Alembic migrations, repository.

Use :class:`Store`; it returns the domain types of :mod:`faceapp.types`, never ORM rows.
"""

from faceapp.store.db import make_engine
from faceapp.store.migrate import current_revision, head_revision, migrations_dir, upgrade_to_head
from faceapp.store.repository import ExportResult, Gallery, ImportResult, Store

__all__ = [
    "ExportResult",
    "Gallery",
    "ImportResult",
    "Store",
    "current_revision",
    "head_revision",
    "make_engine",
    "migrations_dir",
    "upgrade_to_head",
]

"""Every row of a faceapp database, read around the store (for before/after comparisons)."""

from __future__ import annotations

import sqlalchemy as sa


def dump(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, read through a connection of its own (not the store's)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t} ORDER BY 1")]
                for t in ("people", "templates", "events", "meta")
            }
    finally:
        engine.dispose()

"""Issue 15 item 8: the least-privilege roles of packaging/postgresql/roles.sql work as
documented in docs/deployment.md: a door reads the gallery and logs decisions, and cannot
enroll, remove or rewrite anyone; the admin role can."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import make_url

from faceapp.errors import StoreError
from faceapp.store.repository import Store
from faceapp.types import Decision

ROLES = Path(__file__).resolve().parents[1] / "packaging" / "postgresql" / "roles.sql"
FACE = np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32)


def _as(url: str, role: str) -> str:
    return make_url(url).set(username=role).render_as_string(hide_password=False)


def test_a_door_reads_and_logs_but_cannot_enroll_or_remove(pg_cluster, pg_url):
    with Store(pg_url) as owner:
        owner.add_person("alice", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"j")
    database = make_url(pg_url).database
    pg_cluster.execute(ROLES.read_text(), database=database)

    with Store(_as(pg_url, "faceapp_door")) as door:
        assert door.gallery("m1").names == ["alice"]
        door.log_event("door", decision=Decision.MATCH, claimed="alice", distance=0.05, threshold=0.15)
        for write in (
            lambda: door.add_person("mallory", embedding=FACE, model_id="m1", quality=1.0, face_jpeg=b"j"),
            lambda: door.remove_person("alice"),
            lambda: door.rename_person("alice", "mallory"),
        ):
            with pytest.raises(StoreError, match="permission denied"):
                write()
        assert door.verify_events().ok

    with Store(_as(pg_url, "faceapp_admin")) as admin:
        admin.add_person("bob", embedding=np.array([0, 0, 1, 0], np.float32), model_id="m1", quality=1.0,
                         face_jpeg=b"j")
        assert admin.remove_person("alice") == 1
        assert [p.name for p in admin.list_people()] == ["bob"]
        assert admin.verify_events().ok

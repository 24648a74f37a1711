"""Issue 15 item 5 at the door itself: a headless door on PostgreSQL whose server is down. It
decides from its local copy of the gallery (taken while the server answered), queues each
decision before acting, and delivers the queue exactly once when the server is back; with no
local copy it refuses to start. The real test cluster is stopped with -m immediate."""

from __future__ import annotations

import functools
import io
import json

import pytest
from test_headless_door import ENROLLED, videos  # noqa: F401  (the shared videos fixture)

import faceapp.services
from faceapp import storage
from faceapp.cli.door_headless import run_headless
from faceapp.config import Settings
from faceapp.errors import StoreError
from faceapp.store.repository import Store


def _run(settings, clip) -> list[dict]:
    out = io.StringIO()
    assert run_headless(settings, str(clip), until_end=True, every=10, out=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture
def door(engine, analyzer, pg_url, videos, tmp_path, monkeypatch):  # noqa: F811
    """Settings of a door on the test cluster, its cache in tmp_path, the session's engine."""
    monkeypatch.setattr(storage, "door_cache_dir", lambda: tmp_path / "door-cache")
    monkeypatch.setattr(faceapp.services, "FaceService",
                        functools.partial(faceapp.services.FaceService, engine=engine, analyzer=analyzer))
    settings = Settings(device="cpu", db_url=pg_url)
    with faceapp.services.FaceService(settings) as admin:
        admin.enroll(ENROLLED, videos / "LivePortrait_driving_d19.jpg")
    return settings


def test_a_door_started_while_its_server_is_down_decides_from_its_copy_and_delivers_later(
        door, pg_cluster, pg_url, videos):  # noqa: F811
    clip = videos / "LivePortrait_driving_d18.mp4"
    online = [line for line in _run(door, clip) if line["granted"]]
    assert online and online[0]["logged"] and not online[0]["queued"]

    pg_cluster.stop("immediate")
    offline = [line for line in _run(door, clip) if line["granted"]]
    assert offline and offline[0]["name"] == ENROLLED
    assert all(line["queued"] and not line["logged"] for line in offline)

    pg_cluster.start()
    _run(door, videos / "video-retalking_face_1.mp4")  # a stranger; at its end the outbox is delivered
    with Store(pg_url) as server:
        grants = [e for e in server.events() if e.kind == "door" and e.decision and e.decision.granted]
        assert len(grants) == len(online) + len(offline)
        assert sum("decided offline" in e.detail for e in grants) == len(offline)
        assert server.verify_events().ok


def test_a_door_with_no_copy_of_the_gallery_refuses_to_start_while_the_server_is_down(door, pg_cluster, videos):  # noqa: F811
    pg_cluster.stop("immediate")
    try:
        with pytest.raises(StoreError, match="no local copy"):
            _run(door, videos / "LivePortrait_driving_d18.mp4")
    finally:
        pg_cluster.start()

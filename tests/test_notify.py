"""Issue 15 item 4: a change made by one door reaches every other door's gallery at once
(PostgreSQL LISTEN/NOTIFY), and a watcher survives its server going away."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from faceapp.store.repository import Store


def _unit(*v: float) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


class Changes:
    def __init__(self) -> None:
        self.seen: list[int | None] = []
        self.event = threading.Event()

    def __call__(self, generation: int | None) -> None:
        self.seen.append(generation)
        self.event.set()

    def wait_for(self, generation: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while generation not in self.seen and time.monotonic() < deadline:
            self.event.wait(0.05)
            self.event.clear()
        return generation in self.seen


def test_an_enrollment_and_a_removal_are_pushed_to_another_door(pg_url):
    with Store(pg_url) as admin, Store(pg_url) as door:
        changes = Changes()
        watcher = door.watch(changes)
        try:
            assert watcher is not None and watcher.connected.wait(10)
            admin.add_person("alice", embedding=_unit(1, 0, 0, 0), model_id="m1", quality=1.0, face_jpeg=b"j")
            first = door.generation()[0]
            assert changes.wait_for(first)
            admin.remove_person("alice")
            assert changes.wait_for(door.generation()[0])
            assert door.gallery("m1").names == []
        finally:
            watcher.close()


def test_a_watcher_reconnects_after_the_server_restarts(pg_cluster, pg_url):
    with Store(pg_url) as door:
        changes = Changes()
        watcher = door.watch(changes)
        try:
            assert watcher.connected.wait(10)
            pg_cluster.stop("immediate")
            pg_cluster.start()
            heard = len(changes.seen)
            with Store(pg_url) as admin:
                admin.add_person("bob", embedding=_unit(0, 1, 0, 0), model_id="m1", quality=1.0, face_jpeg=b"j")
                generation = admin.generation()[0]
            # the push itself, or (if it came while the watcher was reconnecting) the "changes
            # may have been missed" call the watcher makes on every reconnection
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                generation in changes.seen or None in changes.seen[heard:]
            ):
                time.sleep(0.05)
            assert generation in changes.seen or None in changes.seen[heard:]
        finally:
            watcher.close()


def test_sqlite_has_no_watcher_the_generation_check_serves(sqlite_url):
    with Store(sqlite_url) as a, Store(sqlite_url) as b:
        assert b.watch(lambda g: None) is None
        before = b.generation()
        a.add_person("carol", embedding=_unit(0, 0, 1, 0), model_id="m1", quality=1.0, face_jpeg=b"j")
        assert b.generation() != before


@pytest.fixture(autouse=True)
def _quiet_watcher_warnings(caplog):
    caplog.set_level("ERROR", logger="faceapp.store.notify")

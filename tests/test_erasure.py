"""Issue 15 item 7: removing a person leaves no readable face or template in PostgreSQL's
files. Faces and templates are sealed with the person's data key; removal deletes the wrapped
key and purges it from the table's pages and the write-ahead log (server setting
``wal_recycle = off``, as docs/deployment.md says), so what remains on disk is noise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceapp.store.repository import Store


def _files_holding(folder: Path, needle: bytes) -> list[str]:
    hits = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            try:
                if needle in path.read_bytes():
                    hits.append(str(path.relative_to(folder)))
            except OSError:
                continue
    return hits


def test_a_removed_persons_key_and_face_are_gone_from_the_servers_files(pg_cluster, pg_url):
    pg_cluster.execute("ALTER SYSTEM SET wal_recycle = off", "SELECT pg_reload_conf()")
    face = b"\xff\xd8" + os.urandom(6000) + b"\xff\xd9"
    embedding = np.array([0.6, 0.8, 0.0, 0.0], dtype=np.float32)
    with Store(pg_url) as store:
        store.add_person("alice", embedding=embedding, model_id="m1", quality=1.0, face_jpeg=face)
        store.add_person("bob", embedding=np.array([0, 0, 0.6, 0.8], np.float32), model_id="m1", quality=1.0,
                         face_jpeg=os.urandom(6000))
        snap = store.sealed_snapshot()
        alice = next(p for p in snap.people if p["name"] == "alice")
        wrapped = bytes(alice["data_key"])
        assert _files_holding(pg_cluster.folder, face) == []  # sealed from the start
        assert store.remove_person("alice") == 1
        assert store.purge_erased() == []  # every step was allowed (the test role is the owner)
        assert store.templates()[0].person_name == "bob"
    assert _files_holding(pg_cluster.folder, wrapped) == []
    assert _files_holding(pg_cluster.folder, face) == []
    assert _files_holding(pg_cluster.folder, embedding.tobytes()) == []

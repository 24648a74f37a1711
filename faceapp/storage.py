"""The one way the app opens its enrollment store: :func:`open_store`.

It hands the :class:`~faceapp.store.repository.Store` what the store itself must not look up
(the store sits below the models): the installed embedding models' sizes, so that every write
and every gallery import refuses an embedding or a face that no installed model could have
made. The site key comes from the default key file (docs/security.md).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from faceapp import paths
from faceapp.embed.weights import available_specs
from faceapp.errors import StoreError
from faceapp.store.db import is_sqlite_memory
from faceapp.store.repository import ModelFacts, Store

log = logging.getLogger(__name__)


def model_facts() -> dict[str, ModelFacts]:
    """Embedding size and aligned-face size of every installed model, by model id."""
    return {
        model_id: ModelFacts(embedding_dim=spec.embedding_dim, input_size=spec.input_size)
        for model_id, spec in available_specs().items()
    }


def open_store(url: str) -> Store:
    """The store at ``url`` (a SQLAlchemy URL), checking writes against the installed models."""
    return Store(url, models=model_facts())


def is_shared_server(url: str) -> bool:
    """True for a database on a server (PostgreSQL): a door on it keeps an offline cache."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.get_backend_name() != "sqlite" and not is_sqlite_memory(parsed)


def door_cache_dir() -> Path:
    """Where a door keeps its offline cache (its copy of the gallery and its outbox)."""
    return paths.data_dir() / "door-cache"


class ReconnectingStore:
    """A :class:`Store` on a server that may not answer yet: every use tries to open it (at
    most once per ``retry_s``) and raises :class:`StoreError` while it cannot, so that a door
    started during an outage decides from its offline cache and logs to its outbox, and
    switches to the server by itself when it answers. Once open it is the store itself."""

    def __init__(self, url: str, *, retry_s: float = 5.0) -> None:
        self._url = url
        self._retry_s = retry_s
        self._store: Store | None = None
        self._error: StoreError | None = None
        self._tried_at = -float("inf")
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._store is not None

    @property
    def engine(self) -> Any:
        return self._store.engine if self._store is not None else None

    @property
    def url(self) -> str:
        return self._store.url if self._store is not None else self._url

    def open(self) -> Store:
        with self._lock:
            if self._store is not None:
                return self._store
            now = time.monotonic()
            if now - self._tried_at < self._retry_s and self._error is not None:
                raise self._error
            self._tried_at = now
            try:
                self._store = open_store(self._url)
            except StoreError as exc:
                self._error = exc
                raise
            log.warning("database %s reachable: the door uses it again", self._store.url)
            return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.open(), name)

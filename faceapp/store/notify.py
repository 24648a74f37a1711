"""Changes to the gallery pushed to every door: PostgreSQL LISTEN/NOTIFY.

Every transaction that changes people or templates bumps the gallery generation and, on
PostgreSQL, sends ``NOTIFY faceapp_gallery, '<generation>'`` (delivered when it commits).
A :class:`GalleryWatcher` holds one extra connection per door that LISTENs and calls
``on_change(generation)`` from its own thread, so a door learns of an enrollment or a removal
within milliseconds instead of asking the database on every frame. A watcher that loses its
connection reconnects with backoff and reports a change on reconnecting (it may have missed
one), so the worst case is a door that asks again, never a door that keeps a stale gallery.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

CHANNEL = "faceapp_gallery"

_LIVE: weakref.WeakSet[GalleryWatcher] = weakref.WeakSet()


def close_all_watchers(timeout: float = 2.0) -> int:
    """Stop every watcher of this process (before a server is shut down on purpose); returns
    how many were running."""
    watchers = list(_LIVE)
    for w in watchers:
        w._stop.set()
    for w in watchers:
        w.close(timeout)
    return len(watchers)


def libpq_url(url: URL) -> str:
    """A SQLAlchemy PostgreSQL URL as the libpq URI psycopg connects with."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class GalleryWatcher:
    """LISTEN on :data:`CHANNEL` in a daemon thread; ``on_change(generation or None)``
    is called for each notification, and once after every (re)connection."""

    def __init__(self, url: URL, on_change: Callable[[int | None], None], *, poll_s: float = 0.5,
                 max_backoff_s: float = 10.0) -> None:
        self._conninfo = libpq_url(url)
        self._shown = url.render_as_string(hide_password=True)
        self._on_change = on_change
        self._poll_s = poll_s
        self._max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faceapp-gallery-watcher", daemon=True)
        _LIVE.add(self)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        backoff = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    backoff = 0.2
                    self._on_change(None)  # whatever happened while we were not listening
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=self._poll_s):
                            try:
                                generation = int(note.payload)
                            except ValueError:
                                generation = None
                            self._on_change(generation)
            except Exception as exc:  # the server went away: retry, a stale gallery is re-checked
                self.connected.clear()
                if self._stop.is_set():
                    break
                log.warning("gallery watcher on %s lost its connection (%s); retrying in %.1f s",
                            self._shown, " ".join(str(exc).split()), backoff)
                self._stop.wait(backoff)
                backoff = min(self._max_backoff_s, backoff * 2)
        self.connected.clear()

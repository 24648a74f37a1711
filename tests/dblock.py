"""Holding a database's write lock from another connection, as an import in another process
would: SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``LOCK TABLE events IN EXCLUSIVE MODE`` (no
event can be written until it ends)."""

from __future__ import annotations

import sqlite3
import threading

from sqlalchemy.engine import URL


class WriteLock:
    """Holds the write lock in another thread from ``__enter__`` until ``release()`` (or for
    ``hold_s`` seconds)."""

    def __init__(self, url: URL, hold_s: float | None = None) -> None:
        self.url, self.hold_s = url, hold_s
        self.locked, self._release = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            if self.url.get_backend_name() == "sqlite":
                self._hold_sqlite()
            else:
                self._hold_postgresql()
        except BaseException as exc:  # reported by __enter__
            self.error = exc
            self.locked.set()

    def _hold_sqlite(self) -> None:
        con = sqlite3.connect(self.url.database, isolation_level=None, check_same_thread=False)
        try:
            con.execute("BEGIN IMMEDIATE")
            self.locked.set()
            self._release.wait(self.hold_s)
            con.execute("ROLLBACK")
        finally:
            con.close()

    def _hold_postgresql(self) -> None:
        import psycopg

        url = self.url.set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False)) as con:
            con.execute("LOCK TABLE events IN EXCLUSIVE MODE")
            self.locked.set()
            self._release.wait(self.hold_s)
            con.rollback()

    def __enter__(self) -> WriteLock:
        self._thread.start()
        assert self.locked.wait(10), "the lock holder could not take the write lock"
        if self.error is not None:
            raise self.error
        return self

    def release(self) -> None:
        self._release.set()
        self._thread.join(10)

    def __exit__(self, *exc) -> None:
        self.release()

"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` on a temp folder.

The server listens on 127.0.0.1 at a free port and on a unix socket inside the temp folder,
trusts local connections (only this machine can reach it) and runs without fsync (its data
is thrown away; a killed server still recovers what was committed). ``initdb`` refuses to run as root, so as root every server command runs as the
``postgres`` user (made by Debian's ``postgresql`` package) through ``runuser``.

If the test process dies without stopping the cluster (a crash, SIGKILL, a CI timeout), a
small watchdog process notices that its pipe from the test process closed, stops the server
(``pg_ctl stop -m immediate``) and removes the folder, so no server is left running.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

log = logging.getLogger(__name__)

SUPERUSER = "faceapp_test"
# The user the server runs as when the tests run as root (initdb refuses root).
ROOT_RUN_AS = os.environ.get("FACEAPP_TEST_PG_USER", "postgres")
# Server settings for a disposable test cluster. fsync=off only loses data when the machine
# itself crashes; a server killed by `pg_ctl stop -m immediate` still recovers every committed
# transaction (so synchronous_commit stays on: off would lose the last commits to a kill).
SERVER_OPTIONS = (
    "-c fsync=off -c full_page_writes=off "
    "-c max_connections=100 -c shared_buffers=32MB -c max_wal_size=256MB"
)


class ClusterUnavailable(RuntimeError):
    """The PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed."""


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: ``$FACEAPP_TEST_PG_BINDIR``, else the newest
    ``/usr/lib/postgresql/<version>/bin``, else wherever ``initdb`` is on the PATH."""
    override = os.environ.get("FACEAPP_TEST_PG_BINDIR")
    candidates = [Path(override)] if override else []
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda p: [int(x) for x in re.findall(r"\d+", p)], reverse=True)
    candidates += [Path(p) for p in versioned]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise ClusterUnavailable(
        "PostgreSQL server binaries not found (looked in "
        f"{', '.join(map(str, candidates)) or '/usr/lib/postgresql/*/bin and the PATH'}); "
        "install Debian's postgresql package (scripts/setup.sh does, as root)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_WATCHDOG = textwrap.dedent(
    """
    import shutil, subprocess, sys
    prefix, pg_ctl, data, folder = sys.argv[1:5]
    prefix = prefix.split() if prefix else []
    sys.stdin.buffer.read()  # returns when the test process closes the pipe (or dies)
    if subprocess.run(prefix + [pg_ctl, "status", "-D", data], capture_output=True).returncode == 0:
        subprocess.run(prefix + [pg_ctl, "stop", "-D", data, "-m", "immediate", "-w"], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)
    """
)


class PgCluster:
    """One PostgreSQL server on a temp folder. ``PgCluster.create()`` makes and starts it;
    :meth:`destroy` stops it and removes the folder."""

    def __init__(self, bindir: Path, folder: Path, port: int, run_as: str | None) -> None:
        self.bindir = bindir
        self.folder = folder
        self.data = folder / "data"
        self.socket_dir = folder / "socket"
        self.logfile = folder / "server.log"
        self.port = port
        self.host = "127.0.0.1"
        self.user = SUPERUSER
        self._prefix = ["runuser", "-u", run_as, "--"] if run_as else []
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._counter = 0
        self.running = False  # as far as start() / stop() know; is_running() asks the server

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def create(cls) -> PgCluster:
        """initdb a new cluster in a fresh temp folder and start it. ClusterUnavailable when
        the binaries are missing; RuntimeError (with the server's log) when it fails."""
        bindir = find_bindir()
        run_as = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(ROOT_RUN_AS)
            except KeyError as exc:
                raise RuntimeError(
                    f"running as root, but there is no {ROOT_RUN_AS!r} user to run PostgreSQL as "
                    "(initdb refuses root); set FACEAPP_TEST_PG_USER to a non-root user"
                ) from exc
            run_as = ROOT_RUN_AS
        folder = Path(tempfile.mkdtemp(prefix="faceapp-pg-"))
        cluster = cls(bindir, folder, _free_port(), run_as)
        try:
            cluster.socket_dir.mkdir()
            if run_as:
                entry = pwd.getpwnam(run_as)
                for path in (folder, cluster.socket_dir):
                    os.chown(path, entry.pw_uid, entry.pw_gid)
            cluster._start_watchdog()
            cluster._run(
                "initdb", "-D", str(cluster.data), "-U", SUPERUSER, "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
            )
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def start(self) -> None:
        """Start the server (after :meth:`stop`) and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host} {SERVER_OPTIONS}"
        try:
            self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60", "-o", options)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nserver log:\n{self.server_log()}") from exc
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>``: ``fast`` (roll back and disconnect everybody),
        ``immediate`` (kill the server, like a power cut), or ``smart``."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"mode must be smart, fast or immediate, got {mode!r}")
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")
        self.running = False

    def is_running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.data), check=False).returncode == 0

    def destroy(self) -> None:
        """Stop the server if it runs (fast, then immediate) and remove the folder."""
        try:
            if self.data.is_dir() and self.is_running():
                try:
                    self.stop("fast")
                except RuntimeError as exc:
                    log.warning("pg_ctl stop -m fast failed, stopping immediately: %s", exc)
                    self.stop("immediate")
        finally:
            if self._watchdog is not None:
                self._watchdog.stdin.close()  # type: ignore[union-attr]
                try:
                    self._watchdog.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self._watchdog.kill()
                self._watchdog = None
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- databases -------------------------------------------------------------------------

    def url(self, database: str = "postgres", *, driver: str = "psycopg") -> str:
        """A SQLAlchemy URL for ``database`` over TCP on 127.0.0.1."""
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def socket_url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` through the unix socket in the temp folder."""
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}&port={self.port}"

    def execute(self, *statements: str, database: str = "postgres") -> None:
        """Run statements in autocommit mode (CREATE / DROP DATABASE cannot run in a transaction)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=database, autocommit=True, connect_timeout=10
        ) as conn:
            for sql in statements:
                conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database (a copy of template0); returns its name."""
        self._counter += 1
        name = f"{prefix}_{os.getpid()}_{self._counter}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def server_log(self, tail: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-tail:])
        except OSError:
            return "(no server log)"

    # -- plumbing --------------------------------------------------------------------------

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [*self._prefix, str(self.bindir / tool), *args]
        # cwd: runuser keeps the working directory, which the postgres user may not be able to read.
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=self.folder, stdin=subprocess.DEVNULL)
        if check and res.returncode != 0:
            output = " ".join((res.stderr or res.stdout).split())
            raise RuntimeError(f"{tool} {' '.join(args[:2])} failed (exit {res.returncode}): {output}")
        return res

    def _start_watchdog(self) -> None:
        # Its own session: Ctrl-C in the terminal must not kill it before the cleanup.
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, " ".join(self._prefix), str(self.bindir / "pg_ctl"),
             str(self.data), str(self.folder)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, cwd="/",
        )


@contextlib.contextmanager
def throwaway_database(url: str | None = None):
    """``url`` itself, or the URL of a database on a throwaway cluster destroyed afterwards
    (for the benchmark scripts: ``with throwaway_database(args.url) as url: ...``)."""
    if url is not None:
        yield url
        return
    cluster = PgCluster.create()
    try:
        yield cluster.url(cluster.create_database())
    finally:
        cluster.destroy()

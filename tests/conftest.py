"""Shared fixtures. Tests never touch the user's real data: FACEAPP_HOME points at a temp dir.

Dataset tests read ``$FACEAPP_DATASETS``; without it they skip with a reason, except when
``FACEAPP_REQUIRE_DATASETS=1`` (CI), where a missing dataset fails the test.

``db_url`` runs each test that takes it twice: on a SQLite file (id ``sqlite``) and on a
fresh database of a throwaway PostgreSQL cluster (id ``postgresql``; ``tests/pg_cluster.py``)
that the session starts on first use and stops at the end. Without the PostgreSQL server
binaries those cases skip with a reason, except when ``FACEAPP_REQUIRE_POSTGRESQL=1`` or
``CI=true``, where that is a failure. ``-m "not postgresql"`` leaves them out.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "postgresql: runs on the session's throwaway PostgreSQL cluster (the db_url fixture's postgresql case)"
    )


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("faceapp-home")
    old = {k: os.environ.get(k) for k in ("FACEAPP_HOME", "FACEAPP_DB", "FACEAPP_SETTINGS")}
    os.environ["FACEAPP_HOME"] = str(home)
    os.environ.pop("FACEAPP_DB", None)
    os.environ.pop("FACEAPP_SETTINGS", None)
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _dataset(name: str) -> Path:
    root = os.environ.get("FACEAPP_DATASETS")
    path = Path(root) / name if root else None
    if path is None or not path.is_dir():
        reason = f"dataset {name!r} not found (set FACEAPP_DATASETS to the folder that holds it)"
        if os.environ.get("FACEAPP_REQUIRE_DATASETS") == "1":
            pytest.fail(reason + "; FACEAPP_REQUIRE_DATASETS=1 makes this an error")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return _dataset("lfw")


@pytest.fixture(scope="session")
def w300_dir() -> Path:
    """$FACEAPP_DATASETS/300w-subset (68-point landmarks)."""
    return _dataset("300w-subset")


@pytest.fixture(scope="session")
def lfw_image(lfw_dir):
    """lfw_image("George_W_Bush", 1) -> path of that LFW photo."""

    def get(name: str, n: int = 1) -> Path:
        p = lfw_dir / "images" / name / f"{name}_{n:04d}.jpg"
        assert p.is_file(), p
        return p

    return get


@pytest.fixture(scope="session")
def analyzer():
    """One LandmarkAnalyzer (the 68-point CNN on the CPU, default limits) for the whole session."""
    from faceapp.config import Settings
    from faceapp.landmarks.analyze import LandmarkAnalyzer

    return LandmarkAnalyzer(Settings(device="cpu"))


@pytest.fixture(scope="session")
def engine():
    """One FaceEngine (MTCNN + the shipped embedder on the CPU) for the whole session."""
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from faceapp.config import Settings
    from faceapp.pipeline import FaceEngine

    eng = FaceEngine(Settings(device="cpu"))
    eng.warm_up()
    return eng


def _postgresql_required() -> bool:
    return os.environ.get("FACEAPP_REQUIRE_POSTGRESQL") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's PostgreSQL cluster (a ``pg_cluster.PgCluster``), started on first use:
    ``url(database)``, ``create_database()`` / ``drop_database(name)``, and ``stop(mode)`` /
    ``start()`` for tests of a server going away (``stop("immediate")`` is a crash). A test
    that stops it should start it again; the next ``db_url`` restarts it if it did not."""
    from pg_cluster import ClusterUnavailable, PgCluster

    try:
        import psycopg  # noqa: F401
    except ImportError:
        reason = "psycopg is not installed (pip install -r requirements.txt)"
        cluster = None
    else:
        try:
            cluster = PgCluster.create()
        except ClusterUnavailable as exc:
            reason, cluster = str(exc), None
    if cluster is None:
        if _postgresql_required():
            pytest.fail(f"{reason}; FACEAPP_REQUIRE_POSTGRESQL=1 / CI=true makes this an error")
        pytest.skip(reason)
    try:
        yield cluster
    finally:
        from faceapp.store.notify import close_all_watchers

        close_all_watchers()  # services the tests left open would otherwise warn as the server goes
        cluster.destroy()


@pytest.fixture
def pg_url(pg_cluster):
    """The URL of a new empty database on the session's PostgreSQL cluster, dropped afterwards."""
    if not pg_cluster.running:
        pg_cluster.start()
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    if not pg_cluster.running:
        pg_cluster.start()
    pg_cluster.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A new SQLite file in tmp_path, for the SQLite-only tests (WAL, pragmas, file locks)."""
    return f"sqlite:///{tmp_path / 'faceapp.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def db_url(request) -> str:
    """A new empty database: a SQLite file in tmp_path, or a PostgreSQL database (``pg_url``)."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def service(engine, analyzer, db_url):
    from faceapp.config import Settings
    from faceapp.services import FaceService

    svc = FaceService(Settings(device="cpu", db_url=db_url), engine=engine, analyzer=analyzer)
    yield svc
    svc.close()

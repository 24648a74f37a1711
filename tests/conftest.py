"""Shared fixtures. Tests never touch the user's real data: FACEAPP_HOME points at a temp dir.

Dataset tests read ``$FACEAPP_DATASETS``; without it they skip with a reason, except when
``FACEAPP_REQUIRE_DATASETS=1`` (CI), where a missing dataset fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


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


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'faceapp.db'}"


@pytest.fixture
def service(engine, analyzer, db_url):
    from faceapp.config import Settings
    from faceapp.services import FaceService

    svc = FaceService(Settings(device="cpu", db_url=db_url), engine=engine, analyzer=analyzer)
    yield svc
    svc.close()

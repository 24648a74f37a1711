"""The networks' CPU threads: the setting ``threads``, every core by default, and ONNX Runtime
pools whose idle threads sleep (spinning ones took the core from the other sessions: a 640x480
frame's detection went from 18 to 49 ms, docs/speed/threads.md)."""

from __future__ import annotations

import os

import pytest

from faceapp import runtime
from faceapp.config import Settings, load_settings


@pytest.fixture
def restore_threads(monkeypatch):
    monkeypatch.setattr(runtime, "_threads", None)
    yield
    # set_num_threads may have changed torch's pool: give the test session back its own
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def test_every_core_by_default(restore_threads):
    assert Settings().threads == 0
    assert runtime.session_threads() == runtime.usable_cores() >= 1
    if hasattr(os, "sched_getaffinity"):
        assert runtime.usable_cores() == len(os.sched_getaffinity(0))


def test_the_setting_sets_the_threads_and_zero_leaves_them(restore_threads):
    runtime.apply_threads(0)
    assert runtime.num_threads() is None
    runtime.apply_threads(3)
    assert runtime.num_threads() == 3 and runtime.session_threads() == 3
    runtime.apply_threads(0)  # 0 does not undo what the process chose
    assert runtime.session_threads() == 3


def test_the_engine_applies_the_setting_when_it_is_made(restore_threads):
    from faceapp.pipeline import FaceEngine

    engine = FaceEngine(Settings(device="cpu", threads=1))
    assert engine._detector is None and engine._embedder is None  # nothing loaded yet: its sessions get it
    assert runtime.session_threads() == 1


def test_threads_from_the_environment(monkeypatch, tmp_path):
    for k in [k for k in os.environ if k.startswith("FACEAPP_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("FACEAPP_THREADS", "2")
    assert load_settings(tmp_path / "none.toml").threads == 2


def test_onnx_sessions_get_the_threads_and_do_not_spin(restore_threads, monkeypatch, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    seen = {}

    class Capture:
        def __init__(self, path, sess_options=None, providers=None):
            seen["opts"] = sess_options

    monkeypatch.setattr(ort, "InferenceSession", Capture)
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not read: the session is a stand-in")
    runtime.set_num_threads(2)
    runtime.onnx_session(model)
    opts = seen["opts"]
    assert opts.intra_op_num_threads == 2 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"

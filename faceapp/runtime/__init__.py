"""Which inference runtime runs the networks: PyTorch (source installs, GPU) or ONNX Runtime
(the installers: a CPU-only bundle without torch).

``backend()`` decides once per call from ``$FACEAPP_BACKEND`` (``auto`` | ``torch`` | ``onnx``):
``auto`` takes torch when torch and facenet-pytorch are importable, else ONNX Runtime. Only
inference changes; training, evaluation tooling and the CNN course toolkit stay PyTorch.

The ONNX files are exported from the same weights by :mod:`faceapp.runtime.export` (the
installer build does that) and are found in ``$FACEAPP_ONNX_DIR``, else ``<models>/onnx``
(inside a frozen bundle: ``<bundle>/resources/models/onnx``). Both runtimes give the same
encodings to 1e-4 (tests/packaging/test_onnx_backend.py).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from faceapp.errors import ConfigError
from faceapp.runtime import torchvision_shim  # noqa: F401  (torch-free; imports torch lazily)

BACKEND_ENV = "FACEAPP_BACKEND"
ONNX_DIR_ENV = "FACEAPP_ONNX_DIR"
BACKENDS = ("auto", "torch", "onnx")

MTCNN_FILES = {"pnet": "mtcnn_pnet.onnx", "rnet": "mtcnn_rnet.onnx", "onet": "mtcnn_onet.onnx"}

_threads: int | None = None


def torch_available() -> bool:
    """True when torch and facenet-pytorch can be imported (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "facenet_pytorch"))


def backend() -> str:
    """``"torch"`` or ``"onnx"``: the runtime the detector and the embedder use."""
    choice = (os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if choice not in BACKENDS:
        raise ConfigError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)} (got {choice!r})")
    if choice == "auto":
        return "torch" if torch_available() else "onnx"
    return choice


def onnx_dir() -> Path:
    env = os.environ.get(ONNX_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from faceapp import paths

    return paths.models_dir() / "onnx"


def onnx_device(choice: str = "auto") -> str:
    """The ONNX runtime here runs on the CPU: ``auto``/``cpu`` give ``"cpu"``; ``cuda`` is refused."""
    choice = (choice or "auto").strip().lower()
    if choice in ("auto", "cpu"):
        return "cpu"
    if choice == "cuda" or choice.startswith("cuda:"):
        raise ConfigError(
            "device 'cuda' was asked for, but this installation runs the networks with ONNX Runtime "
            "on the CPU; install faceapp from source (scripts/setup.sh) for GPU support, or use 'auto'"
        )
    raise ConfigError(f"device must be one of auto, cpu, cuda (got {choice!r})")


def set_num_threads(n: int) -> None:
    """Threads for inference: torch's intra-op pool, or the ONNX sessions created afterwards."""
    global _threads
    _threads = max(1, int(n))
    if backend() == "torch":
        import torch

        torch.set_num_threads(_threads)


def num_threads() -> int | None:
    return _threads


def inference_mode(which: str | None = None):
    """``torch.inference_mode()`` when torch is the backend (``which``, default :func:`backend`),
    else a no-op context."""
    if (which or backend()) == "torch":
        import torch

        return torch.inference_mode()
    from contextlib import nullcontext

    return nullcontext()


def onnx_session(path: Path):
    """An ONNX Runtime CPU session for ``path`` (WeightsError when missing or unreadable)."""
    from faceapp.errors import WeightsError

    if not Path(path).is_file():
        raise WeightsError(
            f"the ONNX model {path} is missing; reinstall faceapp, or export it with "
            f"'python -m faceapp.runtime.export DIR' and set {ONNX_DIR_ENV}"
        )
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise WeightsError(f"ONNX Runtime is not installed: {exc}") from None
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    threads = _threads or max(1, (os.cpu_count() or 2) - 1)
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise WeightsError(f"the ONNX model {path} cannot be loaded: {exc}") from None


def checked_session(path: Path, spec, *, kind: str = "weights"):
    """:func:`onnx_session` for a network exported from ``spec``'s weights: the file's metadata
    (written by :mod:`faceapp.runtime.export`) must name ``spec.sha256``, else WeightsError (a
    file made from other weights would mix encodings or move landmarks). The weights decide, not
    the model id: specs that share one weights file (dlib-resnet-v1 and its flip variant) share
    its export."""
    from faceapp.errors import WeightsError

    session = onnx_session(path)
    meta = session.get_modelmeta().custom_metadata_map
    made_from = meta.get("source_sha256", "")
    if made_from != spec.sha256:
        raise WeightsError(
            f"{path} was exported from other {kind} (model {meta.get('model_id')!r}, sha256 "
            f"{made_from[:12]}...) than model {spec.model_id} ({spec.sha256[:12]}...); rebuild it"
        )
    return session

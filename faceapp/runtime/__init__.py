"""Which inference runtime runs the networks: PyTorch (source installs, GPU) or ONNX Runtime
(the installers: a CPU-only bundle without torch).

``backend(device)`` decides from ``$FACEAPP_BACKEND`` (``auto`` | ``torch`` | ``onnx``) and the
device a network is asked to run on:

- ``torch`` / ``onnx``: that runtime, whatever is installed (an error names what is missing);
- ``auto`` (the default): ONNX Runtime wherever the networks run on the CPU, torch on a GPU.
  Without torch (the installers) that is always ONNX Runtime; in a source install it is ONNX
  Runtime when the device is ``cpu``, or ``auto`` and no CUDA GPU is present. ONNX Runtime
  runs the same networks about twice as fast on a small CPU (README, "Big cameras"), which is
  what a door on a 2-core box needs.

In ``auto`` a network whose ONNX file is missing, or was exported from other weights (a model
trained or converted since ``scripts/setup.sh`` last exported), runs on torch instead when torch
is installed (:func:`onnx_or_torch`, logged once per network); with ``onnx`` asked for explicitly,
or without torch, that is an error. Only inference changes; training, evaluation tooling and the
CNN course toolkit stay PyTorch.

The ONNX files are exported from the same weights by :mod:`faceapp.runtime.export`
(``scripts/setup.sh`` and the installer build do that) and are found in ``$FACEAPP_ONNX_DIR``,
else ``<models>/onnx`` (inside a frozen bundle: ``<bundle>/resources/models/onnx``). Both
runtimes give the same detections and encodings (tests/packaging/test_onnx_backend.py).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from faceapp.errors import ConfigError
from faceapp.runtime import torchvision_shim  # noqa: F401  (torch-free; imports torch lazily)

BACKEND_ENV = "FACEAPP_BACKEND"
ONNX_DIR_ENV = "FACEAPP_ONNX_DIR"
BACKENDS = ("auto", "torch", "onnx")

MTCNN_FILES = {"pnet": "mtcnn_pnet.onnx", "rnet": "mtcnn_rnet.onnx", "onet": "mtcnn_onet.onnx"}

_threads: int | None = None
_fallbacks_logged: set[str] = set()
log = logging.getLogger(__name__)


def torch_available() -> bool:
    """True when torch and facenet-pytorch can be imported (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "facenet_pytorch"))


def onnx_runtime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def backend_choice() -> str:
    """``$FACEAPP_BACKEND`` checked: ``"auto"``, ``"torch"`` or ``"onnx"``."""
    choice = (os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if choice not in BACKENDS:
        raise ConfigError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)} (got {choice!r})")
    return choice


def _cuda_wanted(device: str) -> bool:
    """Whether ``device`` puts torch networks on a CUDA GPU (``auto``: when one is present)."""
    device = (device or "auto").strip().lower()
    if device == "cpu":
        return False
    if device == "cuda" or device.startswith("cuda:"):
        return True
    import torch  # "auto" (or a bad name, which resolve_device refuses with its own message)

    return bool(torch.cuda.is_available())


def backend(device: str = "auto") -> str:
    """``"torch"`` or ``"onnx"``: the runtime a network asked to run on ``device`` uses (see the
    module's docstring). A network constructor that gets ``"onnx"`` builds its runner through
    :func:`onnx_or_torch`, which may still fall back to torch in ``auto``."""
    choice = backend_choice()
    if choice != "auto":
        return choice
    if not torch_available():
        return "onnx"
    if not onnx_runtime_available() or _cuda_wanted(device):
        return "torch"
    return "onnx"


def can_fall_back() -> bool:
    """True when a network that cannot run on ONNX Runtime may run on torch instead: ``auto``
    with torch installed."""
    return backend_choice() == "auto" and torch_available()


def onnx_or_torch(build, what: str):
    """``build()`` (an ONNX runner), or None where its file is missing or stale (WeightsError)
    and :func:`can_fall_back`: the caller then runs that network on torch. Anything else, and
    every error when no fallback is allowed, propagates."""
    from faceapp.errors import WeightsError

    try:
        return build()
    except WeightsError as exc:
        if not can_fall_back():
            raise
        if what not in _fallbacks_logged:
            _fallbacks_logged.add(what)
            log.warning("%s runs on torch: %s (scripts/setup.sh exports the ONNX files)", what, exc)
        return None


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
    if torch_available() and backend_choice() != "onnx":  # torch runs some or all networks
        import torch

        torch.set_num_threads(_threads)


def num_threads() -> int | None:
    return _threads


def session_threads() -> int:
    """Intra-op threads of the ONNX sessions created now: :func:`set_num_threads`'s, else every
    core this process may run on (measured on the 2-core Xeon, ``faceapp benchmark --threads
    1|2``: docs/speed/threads.md)."""
    return _threads or usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or ``taskset``'s
    set), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def apply_threads(n: int) -> None:
    """The setting ``threads``: n > 0 sets the networks' threads (:func:`set_num_threads`); 0
    leaves the default (every core), or what the process set before."""
    if int(n) > 0:
        set_num_threads(int(n))


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
    opts.intra_op_num_threads = session_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # idle pool threads sleep instead of spinning: a spinning thread holds a core the window, the
    # camera's decoding and the door's other work need between two inferences
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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

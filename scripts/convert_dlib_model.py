"""Convert dlib's ``dlib_face_recognition_resnet_model_v1.dat`` into a PyTorch state dict.

Conversion needs nothing but numpy and torch: the dlib file is parsed in pure Python. Layout
facts used (from dlib's ``serialize.h``, ``float_details.h``, ``dnn/tensor.h``, ``dnn/core.h``,
``dnn/layers.h``, ``dnn/input.h``, ``dnn/loss.h``):

- integers: one control byte (low 4 bits: number of bytes that follow; bit 7: negative), then
  the magnitude, little-endian;
- floats/doubles: two integers, a 64-bit mantissa and a 16-bit exponent, value = m * 2**e
  (exponents 32000/32001/32002 mean +inf/-inf/nan);
- bool: the character '0' or '1'; string: length (integer) then the raw bytes;
- tensor: version (1: each value as a dlib float; 2: raw little-endian float32), then
  num_samples, k, nr, nc and the values; alias_tensor: version 1 then the four sizes;
- add_loss_layer: version, loss details, subnetwork; add_layer: version, subnetwork, layer
  details, 3 bools, x_grad, cached_output (+ params_grad in version 2); the add_layer sitting
  on the input layer: version, input layer, details, 3 bools, x_grad, cached_output,
  grad_final (+ sample expansion factor in version 3); tag and skip layers: version, subnetwork.
  So the file holds all the wrappers' version numbers from the top down, then the layers'
  details from the input up.

Usage (conversion only, no dlib needed)::

    python scripts/convert_dlib_model.py --dat /path/to/dlib_face_recognition_resnet_model_v1.dat

Without ``--dat`` the file is taken from an installed ``face_recognition_models`` package
(``pip install face-recognition-models``, or unpack its sdist). Writes
``resources/models/dlib_resnet_v1.pt`` and the sha256 in ``resources/models/dlib_resnet_v1.json``.

Verification against dlib itself (conversion time only; dlib is *not* a faceapp dependency)::

    python -m venv /tmp/dlibvenv && /tmp/dlibvenv/bin/pip install dlib-bin
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/dlibvenv/lib/python3.11/site-packages/main.pth
    /tmp/dlibvenv/bin/python scripts/convert_dlib_model.py --dat ... --verify \
        --lfw /work/shared/datasets/lfw/images --write-reference

``--verify`` compares the PyTorch raw output with ``compute_face_descriptor`` on seeded noise
chips and on LFW chips made by dlib (HOG detector + 5-point shape predictor + get_face_chip);
``--write-reference`` stores dlib's descriptors of the deterministic test chips in
``tests/data/dlib_reference.npz`` (see ``reference_chips``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceapp.embed.dlib_resnet import (  # noqa: E402
    _STAGES,
    MEAN_RGB,
    DlibResNet,
    dlib_resnet,
    normalize_chips,
)

DAT_NAME = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_5_NAME = "shape_predictor_5_face_landmarks.dat"
OUT_PT = REPO / "resources" / "models" / "dlib_resnet_v1.pt"
OUT_SPEC = REPO / "resources" / "models" / "dlib_resnet_v1.json"
REFERENCE = REPO / "tests" / "data" / "dlib_reference.npz"
TOLERANCE = 1e-4


# --------------------------------------------------------------------------- dlib stream


class DlibFormatError(ValueError):
    """The file does not follow dlib's serialisation of the expected network."""


class DlibStream:
    """Reads dlib's serialised primitives from a bytes buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of file at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8:
            raise DlibFormatError(f"bad integer control byte {control:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        if self.data[self.pos] & 0x70:
            raise DlibFormatError(f"old ASCII float format at byte {self.pos} is not supported")
        mantissa, exponent = self.int(), self.int()
        if exponent == 32000:
            return float("inf")
        if exponent == 32001:
            return float("-inf")
        if exponent == 32002:
            return float("nan")
        return float(np.ldexp(np.float64(mantissa), exponent))

    def bool(self) -> bool:
        ch = self._take(1)
        if ch not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool {ch!r} at byte {self.pos - 1}")
        return ch == b"1"

    def string(self) -> str:
        return self._take(self.int()).decode("latin-1")

    def expect_string(self, *allowed: str) -> str:
        at = self.pos
        s = self.string()
        if s not in allowed:
            raise DlibFormatError(f"expected {' or '.join(allowed)!r} at byte {at}, found {s!r}")
        return s

    def expect_int(self, allowed: tuple[int, ...], what: str) -> int:
        at = self.pos
        v = self.int()
        if v not in allowed:
            raise DlibFormatError(f"{what}: version {v} at byte {at}, expected one of {allowed}")
        return v

    def tensor(self) -> np.ndarray:
        version = self.expect_int((1, 2), "tensor")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        if version == 2:
            values = np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)
        else:
            values = np.array([self.float() for _ in range(count)], dtype=np.float32)
        return values.reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        self.expect_int((1,), "alias_tensor")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


# ------------------------------------------------------------------ the expected network


@dataclass
class Node:
    """One wrapper of dlib's ``anet_type``, listed from the top (loss side) down."""

    kind: str  # "tag", "skip", "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    name: str = ""  # state-dict prefix for layers with parameters
    geometry: tuple[int, ...] = ()  # con: (filters, nr, nc, stride, padding); pools: (nr, nc, stride, padding)
    params: dict[str, np.ndarray] = field(default_factory=dict)


def expected_chain() -> list[Node]:
    """The ``anet_type`` of dlib's dnn_face_recognition_ex.cpp, top-down, below the loss layer."""
    blocks: list[tuple[int, bool]] = []  # (channels, down) from the input up
    for channels, count, first_down in _STAGES:
        blocks += [(channels, first_down and i == 0) for i in range(count)]

    chain = [Node("fc", "fc"), Node("avg_pool", geometry=(0, 0, 1, 0))]
    for index in reversed(range(len(blocks))):
        n, down = blocks[index]
        p = f"blocks.{index}."
        stride, pad = (2, 0) if down else (1, 1)
        inner = [
            Node("affine", p + "affine2"),
            Node("con", p + "conv2", (n, 3, 3, 1, 1)),
            Node("relu"),
            Node("affine", p + "affine1"),
            Node("con", p + "conv1", (n, 3, 3, stride, pad)),
            Node("tag"),
        ]
        if down:  # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<..., tag1<S>>>>>>>
            chain += [Node("relu"), Node("add_prev"), Node("avg_pool", geometry=(2, 2, 2, 0)), Node("skip"), Node("tag")]
        else:  # relu<add_prev1<block<..., tag1<S>>>>
            chain += [Node("relu"), Node("add_prev")]
        chain += inner
    chain += [
        Node("max_pool", geometry=(3, 3, 2, 0)),
        Node("relu"),
        Node("affine", "affine1"),
        Node("con", "conv1", (32, 7, 7, 2, 0)),
    ]
    return chain


def _read_details(s: DlibStream, node: Node) -> None:
    """Read one layer's details and check them against the expected architecture."""
    at = s.pos
    if node.kind == "con":
        s.expect_string("con_4")
        params = s.tensor().reshape(-1)
        filters, nr, nc, sy, sx, py, px = (s.int() for _ in range(7))
        f_shape, b_shape = s.alias_tensor(), s.alias_tensor()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            s.float()
        exp_f, exp_nr, exp_nc, exp_stride, exp_pad = node.geometry
        if (filters, nr, nc, sy, sx, py, px) != (exp_f, exp_nr, exp_nc, exp_stride, exp_stride, exp_pad, exp_pad):
            raise DlibFormatError(f"con at byte {at}: {filters, nr, nc, sy, sx, py, px} != {node.geometry}")
        w_count = int(np.prod(f_shape))
        node.params["weight"] = params[:w_count].reshape(f_shape)
        node.params["bias"] = params[w_count : w_count + int(np.prod(b_shape))].reshape(-1)
    elif node.kind == "affine":
        s.expect_string("affine_")
        params = s.tensor().reshape(-1)
        g_shape, b_shape = s.alias_tensor(), s.alias_tensor()
        mode = s.int()
        if mode != 0 or g_shape[2:] != (1, 1):
            raise DlibFormatError(f"affine at byte {at}: expected conv mode, got mode {mode}, gamma {g_shape}")
        g_count = int(np.prod(g_shape))
        node.params["weight"] = params[:g_count].copy()
        node.params["bias"] = params[g_count : g_count + int(np.prod(b_shape))].copy()
    elif node.kind == "relu":
        s.expect_string("relu_")
    elif node.kind == "add_prev":
        s.expect_string("add_prev_")
    elif node.kind in ("max_pool", "avg_pool"):
        s.expect_string(f"{node.kind}_2")
        nr, nc, sy, sx, py, px = (s.int() for _ in range(6))
        e_nr, e_nc, e_stride, e_pad = node.geometry
        if (nr, nc, sy, sx, py, px) != (e_nr, e_nc, e_stride, e_stride, e_pad, e_pad):
            raise DlibFormatError(f"{node.kind} at byte {at}: {nr, nc, sy, sx, py, px} != {node.geometry}")
    elif node.kind == "fc":
        s.expect_string("fc_2")
        num_outputs, num_inputs = s.int(), s.int()
        params = s.tensor().reshape(-1)
        w_shape, _biases = s.alias_tensor(), s.alias_tensor()
        if s.int() != 1:
            raise DlibFormatError(f"fc at byte {at}: expected fc_no_bias")
        for _ in range(4):
            s.float()
        # dlib computes out = in @ W with W stored (num_inputs, num_outputs), row-major.
        w = params[: int(np.prod(w_shape))].reshape(num_inputs, num_outputs)
        node.params["weight"] = np.ascontiguousarray(w.T)
    else:
        raise AssertionError(node.kind)


@dataclass
class ParsedModel:
    state_dict: dict[str, torch.Tensor]
    mean_rgb: tuple[float, float, float]
    input_size: int
    margin: float
    dist_thresh: float


def parse_dlib_model(data: bytes) -> ParsedModel:
    """Parse the whole file; raises :class:`DlibFormatError` if anything is not as expected."""
    s = DlibStream(data)
    s.expect_int((1,), "add_loss_layer")
    s.expect_string("loss_metric_2")
    margin, dist_thresh = s.float(), s.float()

    chain = expected_chain()
    pending: list[tuple[Node, int]] = []
    for node in chain[:-1]:
        if node.kind in ("tag", "skip"):
            s.expect_int((1,), node.kind)
        else:
            pending.append((node, s.expect_int((1, 2), "add_layer")))

    bottom = chain[-1]  # the add_layer over the input layer
    version = s.expect_int((2, 3), "add_layer over input")
    s.expect_string("input_rgb_image_sized")
    mean_rgb = (s.float(), s.float(), s.float())
    nr, nc = s.int(), s.int()
    _read_details(s, bottom)
    for _ in range(3):
        s.bool()
    for _ in range(3):  # x_grad, cached_output, grad_final
        s.tensor()
    if version >= 3:
        s.int()  # sample expansion factor

    for node, version in reversed(pending):
        _read_details(s, node)
        for _ in range(3):
            s.bool()
        for _ in range(2 if version == 1 else 3):  # x_grad, cached_output (, params_grad)
            s.tensor()

    if s.pos != len(data):
        raise DlibFormatError(f"{len(data) - s.pos} trailing bytes after the network")
    if nr != nc:
        raise DlibFormatError(f"input layer is {nr}x{nc}, expected square")

    state: dict[str, torch.Tensor] = {}
    for node in chain:
        for key, value in node.params.items():
            state[f"{node.name}.{key}"] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return ParsedModel(state, mean_rgb, nr, margin, dist_thresh)


# ----------------------------------------------------------------------------- conversion


def find_dat(name: str) -> Path:
    try:
        import face_recognition_models  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SystemExit(
            f"--dat not given and face_recognition_models is not installed; pass the path of {name}"
        ) from exc
    return Path(face_recognition_models.__file__).parent / "models" / name


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(dat: Path, out: Path, spec_path: Path) -> DlibResNet:
    parsed = parse_dlib_model(dat.read_bytes())
    print(f"parsed {dat.name}: {len(parsed.state_dict)} tensors, input {parsed.input_size}x{parsed.input_size}, "
          f"mean RGB {tuple(round(m, 6) for m in parsed.mean_rgb)}, "
          f"loss_metric margin {parsed.margin:g} distance threshold {parsed.dist_thresh:g}")
    if any(abs(a - b) > 1e-4 for a, b in zip(parsed.mean_rgb, MEAN_RGB)):
        raise SystemExit(f"input means {parsed.mean_rgb} differ from MEAN_RGB {MEAN_RGB} in dlib_resnet.py")

    model = DlibResNet()
    model.load_state_dict(parsed.state_dict, strict=True)  # same names and shapes, nothing missing
    out.parent.mkdir(parents=True, exist_ok=True)
    # Plain float32 state dict; a fixed key order and torch.save keep the file reproducible.
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, out)
    digest = sha256(out)
    print(f"wrote {out.relative_to(REPO)} ({out.stat().st_size} bytes, sha256 {digest})")
    write_spec(spec_path, sha=digest)
    return dlib_resnet(weights_path=out)


SPEC_TEMPLATE = {
    "model_id": "dlib-resnet-v1",
    "file": "dlib_resnet_v1.pt",
    "sha256": None,
    "architecture": "dlib_resnet",
    "embedding_dim": 128,
    "input_size": 150,
    "normalization": {"mean": list(MEAN_RGB), "scale": 256.0, "channel_order": "RGB"},
    "template": None,
    # dlib's rule is raw Euclidean distance < 0.6, and raw descriptors have norm ~1.435 (LFW chips),
    # so on unit embeddings it is squared L2 < (0.6 / 1.435) ** 2 = 0.175 (0.36 would accept ~2/3 of
    # different-people pairs; see scripts/fit_alignment_template.py output).
    "threshold": 0.175,
    "threshold_note": (
        "placeholder until calibrated by faceapp eval: dlib's 0.6 Euclidean on raw descriptors "
        "(mean norm 1.435 on LFW chips) = squared L2 0.175 on unit embeddings"
    ),
    "card": "dlib_resnet_v1.md",
    "license": "CC0 (dlib model by Davis King)",
}


def write_spec(path: Path, *, sha: str | None = None, template: list[list[float]] | None = None) -> None:
    """Create or update the weights spec, keeping fields this call does not set."""
    spec = dict(SPEC_TEMPLATE)
    if path.exists():
        spec.update(json.loads(path.read_text()))
    if sha is not None:
        spec["sha256"] = sha
    if template is not None:
        spec["template"] = template
    spec = {key: spec[key] for key in SPEC_TEMPLATE}  # fixed key order
    path.write_text(json.dumps(spec, indent=2) + "\n")
    print(f"updated {path.relative_to(REPO)}")


# --------------------------------------------------------------------------- verification


def reference_chips() -> tuple[list[str], np.ndarray]:
    """The deterministic chips whose dlib descriptors are stored for the tests (no dlib in CI)."""
    names, chips = [], []
    for seed in range(4):
        names.append(f"noise_seed{seed}")
        chips.append(np.random.default_rng(seed).integers(0, 256, (150, 150, 3), dtype=np.uint8))
    yy, xx = np.mgrid[0:150, 0:150]
    gradient = np.stack([xx * 255 // 149, yy * 255 // 149, 255 - (xx + yy) * 255 // 298], axis=-1)
    names.append("gradient")
    chips.append(gradient.astype(np.uint8))
    return names, np.stack(chips)


def torch_raw(model: DlibResNet, chips: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        x = normalize_chips(chips)
        out = [model.forward_head(model.forward_features(x[i : i + 16])) for i in range(0, len(x), 16)]
    return torch.cat(out).numpy().astype(np.float64)


def dlib_lfw_chips(dlib, lfw: Path, count: int, shape_dat: Path) -> tuple[list[str], np.ndarray]:  # noqa: ANN001
    """dlib's own 150x150 chips (padding 0.25) of the first ``count`` LFW people with one detected face."""
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(shape_dat))
    names, chips = [], []
    for person in sorted(p.name for p in lfw.iterdir() if p.is_dir()):
        path = lfw / person / f"{person}_0001.jpg"
        img = np.asarray(Image.open(path).convert("RGB"))
        dets = detector(img, 1)
        if len(dets) != 1:
            continue
        shape = predictor(img, dets[0])
        chips.append(dlib.get_face_chip(img, shape, size=150, padding=0.25))
        names.append(path.name)
        if len(chips) == count:
            break
    return names, np.stack(chips)


def verify(model: DlibResNet, dat: Path, shape_dat: Path, lfw: Path | None, lfw_count: int,
           noise_count: int, write_reference: bool) -> float:
    try:
        import dlib  # type: ignore[import-not-found]
    except ImportError as exc:
        raise SystemExit("--verify needs dlib (pip install dlib-bin in a throwaway venv)") from exc

    facerec = dlib.face_recognition_model_v1(str(dat))

    def dlib_raw(chips: np.ndarray) -> np.ndarray:
        return np.array([np.array(facerec.compute_face_descriptor(np.ascontiguousarray(c))) for c in chips])

    worst = 0.0
    sets: list[tuple[str, np.ndarray]] = []
    rng = np.random.default_rng(20240601)
    sets.append((f"{noise_count} seeded noise chips", rng.integers(0, 256, (noise_count, 150, 150, 3), dtype=np.uint8)))
    ref_names, ref_chips = reference_chips()
    sets.append((f"{len(ref_chips)} reference chips", ref_chips))
    if lfw is not None:
        names, chips = dlib_lfw_chips(dlib, lfw, lfw_count, shape_dat)
        sets.append((f"{len(chips)} LFW chips by dlib ({names[0]} .. {names[-1]})", chips))
    for label, chips in sets:
        ours, theirs = torch_raw(model, chips), dlib_raw(chips)
        err = float(np.abs(ours - theirs).max())
        norms = np.linalg.norm(theirs, axis=1)
        print(f"max |torch - dlib| on {label}: {err:.3e}  (dlib descriptor norm {norms.mean():.3f} +- {norms.std():.3f})")
        worst = max(worst, err)

    if write_reference:
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            REFERENCE,
            names=np.array(ref_names),
            chip_sha256=np.array([hashlib.sha256(c.tobytes()).hexdigest() for c in ref_chips]),
            descriptors=dlib_raw(ref_chips).astype(np.float32),
            dlib_version=np.array(dlib.__version__),
        )
        print(f"wrote {REFERENCE.relative_to(REPO)} (dlib {dlib.__version__})")
    print(f"max conversion error over all sets: {worst:.3e} (tolerance {TOLERANCE:g})")
    if worst > TOLERANCE:
        raise SystemExit("conversion error above tolerance")
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dat", type=Path, help=f"path of {DAT_NAME} (default: from face_recognition_models)")
    ap.add_argument("--shape-dat", type=Path, help=f"path of {SHAPE_5_NAME} (default: next to --dat)")
    ap.add_argument("--out", type=Path, default=OUT_PT)
    ap.add_argument("--spec", type=Path, default=OUT_SPEC)
    ap.add_argument("--verify", action="store_true", help="compare with dlib (needs the dlib module)")
    ap.add_argument("--lfw", type=Path, help="LFW images folder (<Name>/<Name>_0001.jpg) for --verify")
    ap.add_argument("--lfw-count", type=int, default=40)
    ap.add_argument("--noise-count", type=int, default=16)
    ap.add_argument("--write-reference", action="store_true", help=f"write {REFERENCE.relative_to(REPO)}")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    dat = args.dat or find_dat(DAT_NAME)
    model = convert(dat, args.out, args.spec)
    if args.verify:
        shape_dat = args.shape_dat or dat.with_name(SHAPE_5_NAME)
        verify(model, dat, shape_dat, args.lfw, args.lfw_count, args.noise_count, args.write_reference)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

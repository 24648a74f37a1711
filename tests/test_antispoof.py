"""The anti-spoofing model (faceapp.antispoof): the rebuilt MiniFASNets, the crop, the spec's
checks, the attempt rule, and the model's outputs on stored reference frames of ../shared/videos
(tests/data/antispoof_reference.json: boxes, crops' geometry and probabilities, no pixels;
made by ``python scripts/eval_antispoof.py --write-reference tests/data/antispoof_reference.json``),
and the ONNX Runtime backend of the installers against the torch one (to 1e-5) on those frames."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceapp.antispoof import (  # noqa: E402
    AntiSpoof,
    AntiSpoofAttempt,
    PadVerdict,
    antispoof_factory,
    attempt_is_live,
    crop_box,
    crop_face,
    load_antispoof_spec,
)
from faceapp.antispoof.model import AntiSpoofSpec  # noqa: E402
from faceapp.antispoof.network import (  # noqa: E402
    MiniFASNet,
    MiniFASNetShape,
    fuse_batch_norms,
    minifasnet_from_state_dict,
)
from faceapp import runtime  # noqa: E402
from faceapp.config import Settings  # noqa: E402
from faceapp.errors import ConfigError, WeightsError  # noqa: E402
from faceapp.types import BBox  # noqa: E402

REFERENCE = Path(__file__).parent / "data" / "antispoof_reference.json"
ATTACKS = {"Silent-Face-Anti-Spoofing_image_F1.jpg", "Silent-Face-Anti-Spoofing_image_F2.jpg",
           "LivePortrait_source_s11.jpg"}


@pytest.fixture(scope="module")
def antispoof() -> AntiSpoof:
    """The project's own MiniFASNet on torch (the networks themselves are tested here; on a CPU
    the app runs their ONNX export, checked against these further down)."""
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(runtime.BACKEND_ENV, "torch")
        return AntiSpoof(device="cpu")


@pytest.fixture(scope="module")
def videos() -> Path:
    root = Path(os.environ.get("FACEAPP_VIDEOS") or Path(__file__).resolve().parents[2] / "shared" / "videos")
    if not (root / "Silent-Face-Anti-Spoofing_image_T1.jpg").is_file():
        pytest.skip(f"the real videos are not in {root} (set FACEAPP_VIDEOS)")
    return root


# -- the network ------------------------------------------------------------------------------
def test_each_networks_widths_are_read_from_its_weights(antispoof):
    v2, v1se = (n.shape for n in antispoof.networks)
    assert [len(s) for s in v2.stages] == [4, 6, 2] == [len(s) for s in v1se.stages]
    assert v2.transitions == ((103, 64), (231, 128), (308, 128))
    assert v2.stages[1][0] == (231, None) and v1se.stages[1][0] == (154, None)  # pruned differently
    assert not v2.has_se
    # squeeze-excitation on the last block of each stage only, at a quarter of the channels
    assert [[se for _, se in stage] for stage in v1se.stages] == [[None, None, None, 16],
                                                                 [None] * 5 + [32], [None, 32]]
    assert v2.input_size == v1se.input_size == 80 and v2.classes == 3


def test_the_network_gives_three_logits_per_crop_the_same_alone_and_in_a_batch(antispoof):
    net = antispoof.networks[1]
    x = torch.rand(3, 3, 80, 80, generator=torch.Generator().manual_seed(1)) * 255
    with torch.inference_mode():
        batch, again, alone = net(x), net(x), net(x[1:2])
    assert batch.shape == (3, 3)
    assert torch.equal(batch, again)
    np.testing.assert_allclose(alone[0].numpy(), batch[1].numpy(), atol=1e-4, rtol=1e-4)


def test_folding_the_batch_norms_keeps_the_outputs(antispoof):
    x = torch.rand(2, 3, 80, 80, generator=torch.Generator().manual_seed(2)) * 255
    for net in antispoof.networks:
        fused = fuse_batch_norms(net)
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fused.modules())
        with torch.inference_mode():
            np.testing.assert_allclose(fused(x).numpy(), net(x).numpy(), atol=1e-4, rtol=1e-4)
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is kept


def test_a_state_dict_with_a_missing_tensor_is_refused(antispoof):
    state = antispoof.networks[0].state_dict()
    del state["conv_4.model.2.project.bn.running_var"]
    with pytest.raises(WeightsError, match="do not fit"):
        minifasnet_from_state_dict(state)
    with pytest.raises(WeightsError, match="not a MiniFASNet"):
        MiniFASNetShape.from_state_dict({"conv1.conv.weight": torch.zeros(32, 3, 3, 3)})


def test_data_parallel_prefixes_are_stripped(antispoof):
    net = antispoof.networks[0]
    prefixed = {"module." + k: v for k, v in net.state_dict().items()}
    rebuilt = minifasnet_from_state_dict(prefixed)
    x = torch.full((1, 3, 80, 80), 128.0)
    with torch.inference_mode():
        assert torch.equal(rebuilt(x), net(x))
    assert isinstance(rebuilt, MiniFASNet) and not rebuilt.training


# -- the spec and the weights files -------------------------------------------------------------
def test_the_spec_names_both_networks_their_scales_and_the_preprocessing():
    spec = load_antispoof_spec()
    assert [(n.name, n.scale) for n in spec.networks] == [("MiniFASNetV2", 2.7), ("MiniFASNetV1SE", 4.0)]
    assert (spec.input_size, spec.channel_order, spec.pixel_scale, spec.live_class) == (80, "BGR", 1.0, 1)
    assert 0.0 < spec.threshold < 1.0
    folder = spec.networks[0].file.parent
    for name in ("minifasnet_v1.md", "minifasnet_v1_LICENSE.txt", "minifasnet_v1_NOTICE.txt"):
        assert (folder / name).is_file(), name


def test_a_replaced_weights_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")  # where the weights file itself is read (the export reads it too)
    spec = load_antispoof_spec()
    src = spec.networks[0].file.parent
    for f in ("minifasnet_v1.toml", spec.networks[0].file.name, spec.networks[1].file.name):
        shutil.copyfile(src / f, tmp_path / f)
    with open(tmp_path / spec.networks[1].file.name, "r+b") as fh:  # flip a byte inside the tensors
        fh.seek(fh.seek(0, 2) // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WeightsError, match="corrupt or replaced"):
        AntiSpoof(AntiSpoofSpec.from_toml(tmp_path / "minifasnet_v1.toml"))
    with pytest.raises(WeightsError, match="unknown anti-spoofing model"):
        load_antispoof_spec("minifasnet-v9", tmp_path)


# -- the crop ---------------------------------------------------------------------------------
def test_the_crop_is_the_box_scaled_about_its_centre():
    # box 100x120 centred at (300, 260) in 640x480: 2x -> 200x240 about the centre
    assert crop_box((640, 480), BBox(250, 200, 350, 320), 2.0).as_tuple() == (200, 140, 400, 380)


def test_a_crop_over_an_edge_slides_back_inside():
    # 2x of a box at the top-left corner: would start at (-30, -40); slides right and down
    assert crop_box((640, 480), BBox(10, 10, 90, 110), 2.0).as_tuple() == (0, 0, 160, 200)
    # at the bottom-right: would end at (680, 525); slides left and up to end on the last pixel
    assert crop_box((640, 480), BBox(560, 390, 640, 480), 2.0).as_tuple() == (479, 299, 639, 479)


def test_the_scale_shrinks_when_the_crop_cannot_fit_the_image():
    # a 200x300 box at 4x would be 1200 tall in a 480 image: scale becomes 479/300
    box = crop_box((640, 480), BBox(220, 90, 420, 390), 4.0)
    assert box.y2 - box.y1 == pytest.approx(479, abs=1) and (box.y1, box.y2) == (0, 479)
    assert box.x2 - box.x1 == pytest.approx(200 * 479 / 300, abs=1)


def test_crop_face_resizes_to_the_input_size_and_keeps_the_channel_order():
    img = np.zeros((100, 100, 3), np.uint8)
    img[..., 2] = 200  # the third channel only
    crop, box = crop_face(img, BBox(40, 40, 60, 60), 2.7, 80)
    assert crop.shape == (80, 80, 3) and crop[..., 2].min() == 200 and crop[..., :2].max() == 0
    assert box.as_tuple() == (23, 23, 77, 77)


def test_scores_of_several_faces_in_one_batch_equal_the_single_scores(antispoof):
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes = [BBox(40, 30, 120, 130), BBox(180, 60, 260, 170)]
    together = antispoof.score_faces(frame, boxes)
    assert together.shape == (2,)
    for box, s in zip(boxes, together, strict=True):
        assert antispoof.score(frame, box) == pytest.approx(float(s), abs=1e-5)
        assert 0.0 <= s <= 1.0
    assert antispoof.score_batch([]).shape == (0,)
    with pytest.raises(ValueError, match="RGB uint8"):
        antispoof.score(frame.astype(np.float32), boxes[0])


# -- the attempt rule -------------------------------------------------------------------------
def test_an_attempt_is_live_when_the_median_of_its_scores_reaches_the_threshold():
    assert attempt_is_live([0.9, 0.1, 0.8], 0.5)  # one odd frame does not decide
    assert not attempt_is_live([0.9, 0.1, 0.2], 0.5)
    assert attempt_is_live([0.5, 0.5], 0.5)  # at the threshold counts as live
    assert not attempt_is_live([0.9, 0.9], 0.5, min_frames=3)
    assert not attempt_is_live([], 0.0)


class _Fixed:
    """A stand-in scorer: the face's score is its box's x1 / 100."""

    threshold = 0.5

    def score(self, frame, bbox):
        return bbox.x1 / 100.0


def _result(*x1s):
    faces = [SimpleNamespace(observation=SimpleNamespace(detection=SimpleNamespace(
        bbox=BBox(x, 0, x + (10 if x != 90 else 50), 50)))) for x in x1s]
    return SimpleNamespace(frame=np.zeros((8, 8, 3), np.uint8), faces=faces)


def test_the_attempt_waits_for_its_frames_then_judges_the_median():
    check = AntiSpoofAttempt(_Fixed(), min_frames=3)
    assert check.feed_result(_result()) is None and check.verdict is PadVerdict.PENDING
    assert check.feed_result(_result(10, 90)) == pytest.approx(0.9)  # the largest face is scored
    check.feed(np.zeros((8, 8, 3), np.uint8), BBox(20, 0, 30, 10))
    assert check.verdict is PadVerdict.PENDING
    check.feed(np.zeros((8, 8, 3), np.uint8), BBox(30, 0, 40, 10))
    assert check.scores == pytest.approx([0.9, 0.2, 0.3]) and check.verdict is PadVerdict.SPOOF
    assert "0.300 over 3 frames" in check.detail()
    lenient = AntiSpoofAttempt(_Fixed(), threshold=0.25, min_frames=3)
    lenient.scores = [0.9, 0.2, 0.3]
    assert lenient.verdict is PadVerdict.LIVE


def test_the_factory_follows_the_settings():
    assert antispoof_factory(Settings(antispoof=False)) is None
    make = antispoof_factory(Settings(antispoof=True, antispoof_threshold=0.3, antispoof_min_frames=2),
                             antispoof=_Fixed())
    a, b = make(), make()
    assert a is not b and (a.threshold, a.min_frames) == (0.3, 2)
    assert antispoof_factory(Settings(antispoof=True), antispoof=_Fixed())().threshold == 0.5


def test_on_by_default_and_the_onnx_backend_builds_the_model(onnx_dir, monkeypatch):
    """The default (docs/door-benchmark.md: measured at the door on the real videos) is on on both
    runtimes: without torch (the installers' bundle) the factory's model runs on ONNX Runtime."""
    assert Settings().antispoof is True
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(onnx_dir))
    check = antispoof_factory(Settings(device="auto"))()
    assert check.antispoof.backend == "onnx" and check.antispoof.networks == []
    assert check.threshold == load_antispoof_spec().threshold and check.min_frames == 5


# -- the ONNX Runtime backend (the installers) ----------------------------------------------------
@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from faceapp.runtime.export import export_antispoof

    out = tmp_path_factory.mktemp("antispoof_onnx")
    files = export_antispoof("minifasnet-v1", out)
    assert sorted(f.name for f in files) == ["minifasnet_v1_v1se_4p0.onnx", "minifasnet_v1_v2_2p7.onnx"]
    return out


@pytest.fixture(scope="module")
def onnx_antispoof(onnx_dir) -> AntiSpoof:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(runtime.BACKEND_ENV, "onnx")
        mp.setenv(runtime.ONNX_DIR_ENV, str(onnx_dir))
        model = AntiSpoof(device="cpu")
    assert model.backend == "onnx"
    return model


def test_onnx_scores_equal_torch_on_random_frames(antispoof, onnx_antispoof):
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(2)]
    items = [(frames[0], BBox(40, 30, 120, 130)), (frames[0], BBox(180, 60, 260, 170)), (frames[1], BBox(5, 5, 300, 235))]
    ref = antispoof.probabilities_batch(items)
    got = onnx_antispoof.probabilities_batch(items)
    assert got.shape == (3, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert onnx_antispoof.score(*items[1]) == pytest.approx(float(ref[1, 1]), abs=1e-5)
    assert onnx_antispoof.score_batch([]).shape == (0,)


def test_an_onnx_file_of_other_weights_or_none_is_refused(onnx_dir, tmp_path, monkeypatch):
    import dataclasses

    spec = load_antispoof_spec()
    other = dataclasses.replace(spec, networks=(dataclasses.replace(spec.networks[0], sha256="0" * 64), spec.networks[1]))
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(onnx_dir))
    with pytest.raises(WeightsError, match="other anti-spoofing weights"):
        AntiSpoof(other)
    shutil.copyfile(onnx_dir / "minifasnet_v1_v2_2p7.onnx", tmp_path / "minifasnet_v1_v2_2p7.onnx")
    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(tmp_path))  # the V1SE file is not there
    with pytest.raises(WeightsError, match="missing"):
        AntiSpoof()
    with pytest.raises(ConfigError, match="ONNX Runtime"):
        AntiSpoof(device="cuda")


# -- the stored reference frames ------------------------------------------------------------------
def _onnx_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def _frame(path: Path, index):
    import cv2

    if index is None:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    else:
        cap = cv2.VideoCapture(str(path))
        for _ in range(index):
            cap.grab()
        ok, bgr = cap.read()
        cap.release()
        assert ok, f"frame {index} of {path}"
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.mark.parametrize("entry", json.loads(REFERENCE.read_text())["frames"], ids=lambda e: f"{e['file']}-{e['frame']}")
def test_the_model_reproduces_its_reference_outputs_on_real_frames(antispoof, videos, entry, request):
    onnx_antispoof = request.getfixturevalue("onnx_antispoof") if _onnx_installed() else None
    rgb = _frame(videos / entry["file"], entry["frame"])
    assert [rgb.shape[1], rgb.shape[0]] == entry["size"]
    bbox = BBox(*entry["bbox"])
    assert [list(box.as_tuple()) for _, box in antispoof.crops(rgb, bbox)] == entry["crops"]
    probs = antispoof.probabilities_batch([(rgb, bbox)])[0]
    np.testing.assert_allclose(probs, entry["probabilities"], atol=2e-4)
    live = antispoof.score(rgb, bbox)
    if onnx_antispoof is not None:  # the installers' runtime gives the torch scores
        np.testing.assert_allclose(onnx_antispoof.probabilities_batch([(rgb, bbox)])[0], probs, rtol=0, atol=1e-5)
    if entry["file"] in ATTACKS:  # the prints and the tablet screen read as attacks
        assert live < antispoof.threshold
    else:  # the live sample and the real videos read as live
        assert live >= antispoof.threshold

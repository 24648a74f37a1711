"""The installers run MTCNN and the embedder on ONNX Runtime (faceapp.runtime); source installs
on PyTorch. Both must give the same detections and the same encodings (to 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp import paths, runtime
from faceapp.errors import ConfigError, WeightsError

torch = pytest.importorskip("torch")
F = torch.nn.functional


# -- pieces of the NumPy MTCNN against torch / torchvision ----------------------------------


@pytest.mark.parametrize("shape, size", [((2, 3, 250, 250), (151, 151)), ((1, 3, 37, 53), (24, 24)), ((1, 3, 17, 9), (48, 48)), ((1, 3, 480, 640), (97, 129))])
def test_area_resampling_matches_torch(shape, size):
    from faceapp.runtime.onnx_mtcnn import imresample

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(img), size=size, mode="area").numpy()
    np.testing.assert_allclose(imresample(img, size), ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("shape, size", [((2, 3, 250, 250), (151, 151)), ((1, 3, 37, 53), (24, 24)), ((1, 3, 17, 9), (48, 48)),
                                         ((1, 3, 1080, 1920), (433, 769)), ((1, 3, 101, 99), (200, 150))])
def test_pyramid_resampling_from_summed_area_tables_matches_torch(shape, size):
    """The detection pyramid's levels come from one summed-area table per frame (the dense
    matrix products cost most of a 1080p detection): the same pixels as torch's 'area'."""
    from faceapp.runtime.onnx_mtcnn import imresample_integral, integral_images

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (shape[0], shape[2], shape[3], 3), dtype=np.uint8)
    ref = F.interpolate(torch.from_numpy(img.transpose(0, 3, 1, 2).astype(np.float32)), size=size, mode="area").numpy()
    np.testing.assert_allclose(imresample_integral(integral_images(img), size), ref, rtol=0, atol=1e-4)


def _random_boxes(rng, n, groups=3):
    xy = rng.uniform(0, 200, (n, 2)).astype(np.float32)
    wh = rng.uniform(5, 60, (n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    idxs = rng.integers(0, groups, n)
    return boxes, scores, idxs


@pytest.mark.parametrize("seed", range(5))
def test_numpy_batched_nms_matches_torchvision_and_the_stand_in(seed):
    from faceapp.runtime import torchvision_shim
    from faceapp.runtime.onnx_mtcnn import batched_nms

    rng = np.random.default_rng(seed)
    boxes, scores, idxs = _random_boxes(rng, 300)
    ours = batched_nms(boxes, scores, idxs, 0.5)
    shim = torchvision_shim.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), 0.5).numpy()
    np.testing.assert_array_equal(ours, shim)
    try:
        from torchvision.ops import batched_nms as tv_batched_nms
    except ImportError:
        return
    ref = tv_batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), 0.5).numpy()
    np.testing.assert_array_equal(ours, ref)


def test_stand_in_is_registered_only_without_torchvision(monkeypatch):
    import importlib.util
    import sys

    from faceapp.runtime import torchvision_shim

    if importlib.util.find_spec("torchvision") is not None:
        assert torchvision_shim.install() is False
        return
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    assert torchvision_shim.install() is True
    from torchvision.ops.boxes import batched_nms

    assert batched_nms is torchvision_shim.batched_nms


# -- backend choice -------------------------------------------------------------------------


def test_backend_choice(monkeypatch):
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    assert runtime.backend() == "onnx"
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")
    assert runtime.backend() == "torch"
    monkeypatch.setenv(runtime.BACKEND_ENV, "tensorflow")
    with pytest.raises(ConfigError):
        runtime.backend()


def test_auto_runs_onnx_on_the_cpu_and_torch_on_a_gpu(monkeypatch):
    """A source install has both runtimes: on the CPU ONNX Runtime is about twice as fast
    (README, "Big cameras"), on a GPU only torch runs."""
    pytest.importorskip("onnxruntime")
    monkeypatch.delenv(runtime.BACKEND_ENV, raising=False)
    assert runtime.backend("cpu") == "onnx"
    assert runtime.backend("cuda") == "torch"
    assert runtime.backend("cuda:1") == "torch"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.backend("auto") == runtime.backend() == "onnx"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.backend("auto") == "torch"
    assert runtime.backend("cpu") == "onnx"  # asked for the CPU on a GPU machine
    monkeypatch.setattr(runtime, "onnx_runtime_available", lambda: False)
    assert runtime.backend("cpu") == "torch"
    monkeypatch.setattr(runtime, "torch_available", lambda: False)
    assert runtime.backend("cpu") == runtime.backend("auto") == "onnx"  # the installers


def test_auto_falls_back_to_torch_only_where_it_may(tmp_path, monkeypatch, caplog):
    """auto with torch: a network whose ONNX file is missing runs on torch (and says so);
    with onnx asked for, or without torch (the installers), that is an error."""
    pytest.importorskip("onnxruntime")
    from faceapp.detect.detector import FaceDetector

    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(tmp_path))  # no files here
    monkeypatch.delenv(runtime.BACKEND_ENV, raising=False)
    monkeypatch.setattr(runtime, "_fallbacks_logged", set())
    assert runtime.can_fall_back()
    with caplog.at_level("WARNING", logger="faceapp.runtime"):
        det = FaceDetector(device="cpu")
    assert det.backend == "torch"
    assert "MTCNN runs on torch" in caplog.text and "missing" in caplog.text
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    assert not runtime.can_fall_back()
    with pytest.raises(WeightsError, match="missing"):
        FaceDetector(device="cpu")
    monkeypatch.setenv(runtime.BACKEND_ENV, "auto")
    monkeypatch.setattr(runtime, "torch_available", lambda: False)
    with pytest.raises(WeightsError, match="missing"):
        FaceDetector(device="cpu")
    assert runtime.onnx_or_torch(lambda: "runner", "x") == "runner"
    with pytest.raises(ValueError):  # only a missing or stale file falls back
        runtime.onnx_or_torch(lambda: (_ for _ in ()).throw(ValueError("bug")), "x")


def test_onnx_runs_on_the_cpu_and_refuses_cuda():
    assert runtime.onnx_device("auto") == "cpu"
    assert runtime.onnx_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="from source"):
        runtime.onnx_device("cuda")


# -- exported networks ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("facenet_pytorch")
    from faceapp.runtime.export import export_all

    out = tmp_path_factory.mktemp("onnx")
    export_all(out, ["dlib-resnet-v1", "dlib-resnet-flip-v1"])
    return out


@pytest.fixture
def onnx_backend(onnx_dir, monkeypatch):
    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(onnx_dir))
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    return onnx_dir


def test_missing_onnx_files_are_a_weights_error(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from faceapp.detect.detector import FaceDetector

    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    with pytest.raises(WeightsError, match="missing"):
        FaceDetector(device="cpu")


def test_embedder_onnx_file_of_other_weights_is_refused(onnx_backend):
    import dataclasses

    from faceapp.embed.embedder import Embedder
    from faceapp.embed.weights import load_spec

    spec = dataclasses.replace(load_spec("dlib-resnet-v1"), sha256="0" * 64)
    with pytest.raises(WeightsError, match="other weights"):
        Embedder(spec, device="cpu")


def test_stale_embedder_file_falls_back_to_torch_in_auto(onnx_dir, tmp_path, monkeypatch):
    """A model whose weights changed since the export (a retrained or replaced model) still runs
    in auto, on torch, with torch's encodings; never from the stale file."""
    import shutil

    import onnx

    from faceapp.embed.embedder import Embedder
    from faceapp.embed.weights import load_spec

    monkeypatch.delenv(runtime.BACKEND_ENV, raising=False)
    spec = load_spec("dlib-resnet-v1")
    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(onnx_dir))
    assert Embedder(spec, device="cpu").backend == "onnx"
    for f in runtime.MTCNN_FILES.values():
        shutil.copy(onnx_dir / f, tmp_path / f)
    proto = onnx.load(str(onnx_dir / "dlib_resnet_v1.onnx"))
    for entry in proto.metadata_props:  # as if exported from the weights before a retraining
        if entry.key == "source_sha256":
            entry.value = "0" * 64
    onnx.save(proto, str(tmp_path / "dlib_resnet_v1.onnx"))
    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(tmp_path))
    emb = Embedder(spec, device="cpu")
    assert emb.backend == "torch"
    chip = np.random.default_rng(0).integers(0, 256, (1, spec.input_size, spec.input_size, 3), dtype=np.uint8)
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")
    np.testing.assert_allclose(emb.embed(list(chip)), Embedder(spec, device="cpu").embed(list(chip)), atol=1e-6)


def test_export_if_stale_rewrites_only_missing_or_stale_files(onnx_dir, tmp_path):
    import shutil

    from faceapp.embed.weights import load_spec
    from faceapp.runtime.export import current, export_embedder, export_mtcnn

    spec = load_spec("dlib-resnet-v1")
    made = onnx_dir / "dlib_resnet_v1.onnx"
    assert current(made, spec.sha256)
    assert not current(made, "0" * 64)
    assert not current(tmp_path / "missing.onnx", spec.sha256)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert not current(tmp_path / "junk.onnx", spec.sha256)
    assert all(current(onnx_dir / f) for f in runtime.MTCNN_FILES.values())
    assert not current(made)  # an embedder's file is not MTCNN's

    folder = tmp_path / "onnx"
    folder.mkdir()
    shutil.copy(made, folder / made.name)
    before = (folder / made.name).stat().st_mtime_ns
    assert export_embedder("dlib-resnet-v1", folder, if_stale=True) == folder / made.name
    assert (folder / made.name).stat().st_mtime_ns == before  # current: kept
    for f in runtime.MTCNN_FILES.values():
        shutil.copy(onnx_dir / f, folder / f)
    (folder / runtime.MTCNN_FILES["rnet"]).write_bytes(b"truncated")
    export_mtcnn(folder, if_stale=True)
    assert all(current(folder / f) for f in runtime.MTCNN_FILES.values())  # the broken one rewritten


def test_the_source_install_runs_onnx_on_the_cpu():
    """scripts/setup.sh exports the networks into the checkout (resources/models/onnx): what
    the README's commands start then runs on ONNX Runtime on a CPU. Checked where the set-up
    ran (always in CI)."""
    import os

    from faceapp.antispoof.model import AntiSpoof
    from faceapp.detect.detector import FaceDetector
    from faceapp.embed.embedder import Embedder
    from faceapp.embed.weights import load_spec
    from faceapp.landmarks.predict import LandmarkPredictor

    folder = paths.models_dir() / "onnx"
    if os.environ.get(runtime.ONNX_DIR_ENV) or os.environ.get(runtime.BACKEND_ENV):
        pytest.skip("FACEAPP_ONNX_DIR / FACEAPP_BACKEND set: not the source install's defaults")
    if not folder.is_dir() and os.environ.get("CI") != "true":
        pytest.skip(f"{folder} not exported (bash scripts/setup.sh does it)")
    assert FaceDetector(device="cpu").backend == "onnx"
    assert Embedder(load_spec("dlib-resnet-v1"), device="cpu").backend == "onnx"
    assert Embedder(load_spec("sface-v1"), device="cpu").backend == "onnx"
    assert LandmarkPredictor(device="cpu").backend == "onnx"
    assert AntiSpoof(device="cpu").backend == "onnx"


def test_embedder_onnx_equals_torch_on_the_same_chips(onnx_backend, monkeypatch):
    from faceapp.embed.embedder import Embedder
    from faceapp.embed.weights import load_spec

    spec = load_spec("dlib-resnet-v1")
    rng = np.random.default_rng(1)
    chips = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(5)]
    onnx = Embedder(spec, device="cpu", batch_size=2).embed(chips)
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")
    ref = Embedder(spec, device="cpu").embed(chips)
    np.testing.assert_allclose(onnx, ref, rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)


def test_specs_on_one_weights_file_share_one_export(onnx_dir):
    """dlib-resnet-flip-v1 is dlib-resnet-v1's weights fed differently: one file serves both."""
    names = sorted(f.name for f in onnx_dir.glob("*.onnx") if not f.name.startswith(("mtcnn_", "landmarks")))
    assert names == ["dlib_resnet_v1.onnx"]


def test_flip_model_on_onnx_equals_torch(onnx_backend, monkeypatch):
    from faceapp.embed.embedder import Embedder
    from faceapp.embed.weights import load_spec

    spec = load_spec("dlib-resnet-flip-v1")
    assert spec.flip_tta
    rng = np.random.default_rng(2)
    chips = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(3)]
    onnx = Embedder(spec, device="cpu").embed(chips)
    plain = Embedder(load_spec("dlib-resnet-v1"), device="cpu").embed(chips)
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")
    ref = Embedder(spec, device="cpu").embed(chips)
    np.testing.assert_allclose(onnx, ref, rtol=0, atol=1e-5)
    assert np.abs(onnx - plain).max() > 1e-3  # the mirror images were used


def test_shipped_model_ids_are_the_specs_with_weights(tmp_path):
    import shutil

    from faceapp.runtime.export import shipped_model_ids

    ids = shipped_model_ids()
    assert {"dlib-resnet-v1", "dlib-resnet-flip-v1", "compact-cnn-v1"} <= set(ids)
    shutil.copy(paths.models_dir() / "dlib_resnet_v1.json", tmp_path / "dlib_resnet_v1.json")
    assert shipped_model_ids(tmp_path) == []  # a spec without its weights file is not shipped


PEOPLE = ["Colin_Powell", "Serena_Williams", "Tony_Blair", "Jennifer_Aniston", "Gerhard_Schroeder", "Hugo_Chavez"]


@pytest.mark.datasets
def test_detections_and_encodings_equal_torch_on_lfw(onnx_backend, lfw_image, monkeypatch):
    """End to end from the photo: boxes, scores and landmarks within float noise, and the
    encodings (detect -> align -> embed) to 1e-4, so templates made by a source install and by
    an installed app can be compared with each other."""
    from faceapp.config import Settings
    from faceapp.imageio import load_image
    from faceapp.pipeline import FaceEngine

    images = [load_image(lfw_image(p, n)) for p in PEOPLE for n in (1, 2)]
    runs = {}
    for backend in ("onnx", "torch"):
        monkeypatch.setenv(runtime.BACKEND_ENV, backend)
        eng = FaceEngine(Settings(device="cpu"))
        runs[backend] = [(eng.detect(im), im) for im in images]
        runs[backend] = [(dets, eng.observe(im, dets) if dets else []) for dets, im in runs[backend]]
    faces = 0
    for (d_onnx, o_onnx), (d_torch, o_torch) in zip(runs["onnx"], runs["torch"], strict=True):
        assert len(d_onnx) == len(d_torch)
        for a, b in zip(d_onnx, d_torch, strict=True):
            np.testing.assert_allclose(a.landmarks.points, b.landmarks.points, atol=1e-2)
            np.testing.assert_allclose([a.bbox.x1, a.bbox.y1, a.bbox.x2, a.bbox.y2], [b.bbox.x1, b.bbox.y1, b.bbox.x2, b.bbox.y2], atol=1e-2)
            assert a.score == pytest.approx(b.score, abs=1e-5)
        for a, b in zip(o_onnx, o_torch, strict=True):
            np.testing.assert_allclose(a.embedding, b.embedding, rtol=0, atol=1e-4)
            faces += 1
    assert faces >= len(images)


@pytest.mark.datasets
def test_batch_detection_equals_one_by_one(onnx_backend, lfw_image):
    from faceapp.detect.detector import FaceDetector
    from faceapp.imageio import load_image

    det = FaceDetector(device="cpu")
    images = [load_image(lfw_image(p)) for p in PEOPLE[:4]]
    assert len({im.shape for im in images}) == 1
    for batch, single in zip(det.detect_batch(images), [det.detect(im) for im in images], strict=True):
        assert len(batch) == len(single) >= 1
        for a, b in zip(batch, single, strict=True):
            np.testing.assert_allclose(a.landmarks.points, b.landmarks.points, atol=1e-3)


def test_no_face_gives_an_empty_list(onnx_backend):
    from faceapp.detect.detector import FaceDetector

    assert FaceDetector(device="cpu").detect(np.full((120, 160, 3), 90, np.uint8)) == []


# -- the 68-point landmark CNN ------------------------------------------------------------------


def test_landmark_onnx_file_of_other_weights_is_refused(onnx_backend):
    import dataclasses

    from faceapp.landmarks.predict import LandmarkPredictor
    from faceapp.landmarks.spec import load_landmark_spec

    spec = dataclasses.replace(load_landmark_spec("landmarks-v1"), sha256="0" * 64)
    with pytest.raises(WeightsError, match="other landmark weights"):
        LandmarkPredictor(spec=spec)


@pytest.mark.datasets
@pytest.mark.parametrize("flip", [False, True])
def test_landmarks_on_onnx_equal_torch_on_lfw_faces(onnx_backend, lfw_image, monkeypatch, flip):
    """The installed app's landmarks (and so its eyes / head-pose checks and liveness) are the
    source install's: the same points to a hundredth of a pixel on real faces."""
    from faceapp.detect.detector import FaceDetector
    from faceapp.imageio import load_image
    from faceapp.landmarks.predict import LandmarkPredictor

    images = [load_image(lfw_image(name, 1)) for name in PEOPLE[:3]]
    faces = [FaceDetector(device="cpu").detect(img)[0] for img in images]
    onnx = LandmarkPredictor(flip=flip)
    assert onnx.backend == "onnx"
    got = [onnx.predict(img, face) for img, face in zip(images, faces, strict=True)]
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")
    ref = LandmarkPredictor(flip=flip)
    assert ref.backend == "torch"
    for img, face, pts in zip(images, faces, got, strict=True):
        assert pts.shape == (68, 2)
        np.testing.assert_allclose(pts, ref.predict(img, face), rtol=0, atol=0.01)


@pytest.mark.datasets
def test_refine_on_onnx_equals_torch(onnx_backend, lfw_image, monkeypatch):
    """The tracker's step (ONet alone at the last frame's boxes) gives the same boxes, scores
    and landmarks on both runtimes."""
    from faceapp.detect.detector import FaceDetector
    from faceapp.imageio import load_image

    images = [load_image(lfw_image(p)) for p in PEOPLE[:3]]
    found = {}
    for backend in ("onnx", "torch"):
        monkeypatch.setenv(runtime.BACKEND_ENV, backend)
        det = FaceDetector(device="cpu")
        found[backend] = [det.refine(np.roll(im, 6, axis=1), det.detect(im)) for im in images]
    for a_list, b_list in zip(found["onnx"], found["torch"], strict=True):
        assert len(a_list) == len(b_list) >= 1
        for a, b in zip(a_list, b_list, strict=True):
            np.testing.assert_allclose(a.landmarks.points, b.landmarks.points, atol=1e-2)
            np.testing.assert_allclose([a.bbox.x1, a.bbox.y1, a.bbox.x2, a.bbox.y2], [b.bbox.x1, b.bbox.y1, b.bbox.x2, b.bbox.y2], atol=1e-2)
            assert a.score == pytest.approx(b.score, abs=1e-5)

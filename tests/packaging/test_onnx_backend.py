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
    monkeypatch.setenv(runtime.BACKEND_ENV, "auto")
    assert runtime.backend() == ("torch" if runtime.torch_available() else "onnx")
    monkeypatch.setenv(runtime.BACKEND_ENV, "tensorflow")
    with pytest.raises(ConfigError):
        runtime.backend()


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

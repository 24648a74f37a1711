"""The fused model (faceapp/embed/fused.py): one 184x184 canvas, two backbones, a linear head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceapp.detect.align import align_face
from faceapp.embed.fused import CANVAS_SIZE, FusedNet, branch_matrices, canvas_template
from faceapp.embed.weights import load_spec


@pytest.fixture(scope="module")
def net() -> FusedNet:
    torch.manual_seed(0)
    return FusedNet().eval()


def _canvas_batch(n: int, seed: int = 0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    return torch.as_tensor(g.integers(0, 256, (n, 3, CANVAS_SIZE, CANVAS_SIZE)).astype(np.float32))


def test_output_is_128d_unit_length(net: FusedNet) -> None:
    with torch.no_grad():
        e = net(_canvas_batch(3))
        f = net.forward_features(_canvas_batch(3))
    assert e.shape == (3, 128)
    np.testing.assert_allclose(e.norm(dim=1).numpy(), 1.0, atol=1e-5)
    # the frozen part is two unit encodings side by side
    assert f.shape == (3, 256)
    np.testing.assert_allclose(f[:, :128].norm(dim=1).numpy(), 1.0, atol=1e-5)
    np.testing.assert_allclose(f[:, 128:].norm(dim=1).numpy(), 1.0, atol=1e-5)


def test_refuses_other_chip_sizes(net: FusedNet) -> None:
    with pytest.raises(ValueError, match="184"):
        net(torch.zeros(1, 3, 150, 150))


def test_branch_matrices_put_each_template_where_its_backbone_expects_it() -> None:
    d, s = load_spec("dlib-resnet-v1"), load_spec("sface-v1")
    canvas = canvas_template(s.template)
    m = branch_matrices(d.template, s.template)
    # SFace's branch: its template maps exactly onto the canvas template
    sf = (m["sface"] @ np.c_[s.template, np.ones(5)].T).T
    np.testing.assert_allclose(sf, canvas, atol=1e-4)
    # dlib's branch: its template maps near the canvas template (the two templates' shapes
    # differ by up to 2.3 pixels of dlib's chip), and its chip lies inside the canvas
    dl = (m["dlib"] @ np.c_[d.template, np.ones(5)].T).T
    assert np.abs(dl - canvas).max() < 4.0
    corners = np.array([[0, 0, 1], [149, 0, 1], [0, 149, 1], [149, 149, 1]], float).T
    c = (m["dlib"] @ corners).T
    assert c.min() >= 0 and c.max() <= CANVAS_SIZE - 1


def test_branch_chip_of_a_canvas_is_the_direct_crop(net: FusedNet) -> None:
    """A canvas made from a synthetic picture: the SFace branch's 112 chip equals the picture
    warped straight onto SFace's template (same similarity), up to resampling."""
    import cv2

    from faceapp.types import BBox, Detection, Landmarks

    g = np.random.default_rng(3)
    img = cv2.GaussianBlur(g.integers(0, 256, (300, 300, 3)).astype(np.uint8), (0, 0), 4)
    pts = np.array([[120, 130], [180, 130], [150, 165], [125, 200], [175, 200]], np.float32)
    det = Detection(BBox(80, 80, 220, 240), 0.99, Landmarks(pts))
    canvas = align_face(img, det, net.template.astype(np.float32), CANVAS_SIZE).image
    direct = align_face(img, det, load_spec("sface-v1").template, 112).image
    x = torch.as_tensor(canvas).permute(2, 0, 1)[None].float()
    _, xs = net.branch_chips(x)
    got = xs[0].permute(1, 2, 0).numpy()
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(got[inner] - direct[inner].astype(np.float32)).mean() < 3.0


def test_state_dict_is_the_head_only_and_load_checks_it(net: FusedNet) -> None:
    sd = net.head_state_dict()
    assert set(sd) == {"head.weight"} and tuple(sd["head.weight"].shape) == (128, 256)
    other = FusedNet(load_backbones=False)
    other.load_state_dict(sd)
    assert torch.equal(other.head.weight, net.head.weight)
    with pytest.raises(RuntimeError, match="head only"):
        other.load_state_dict({"head.weight": sd["head.weight"], "dlib.x": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="128x256"):
        other.load_state_dict({"head.weight": torch.zeros(128, 255)})


def test_backbone_checksums_are_checked() -> None:
    from faceapp.embed.fused import check_backbones
    from faceapp.errors import WeightsError

    check_backbones({"backbones": {"sface-v1": load_spec("sface-v1").sha256}})
    with pytest.raises(WeightsError, match="sface-v1"):
        check_backbones({"backbones": {"sface-v1": "0" * 64}})


def test_backbone_branches_equal_the_shipped_models_on_lfw_faces(net: FusedNet, lfw_image) -> None:
    """Each half of the features is that backbone's own encoding of the face, aligned directly
    onto its own template, to within resampling (squared L2 < 0.01; dlib's tau is 0.15)."""
    from faceapp.config import Settings
    from faceapp.embed.embedder import Embedder
    from faceapp.evaluation.runner import central_face
    from faceapp.imageio import load_image
    from faceapp.pipeline import FaceEngine

    engine = FaceEngine(Settings(device="cpu"))
    ed, es = Embedder(load_spec("dlib-resnet-v1"), device="cpu"), Embedder(load_spec("sface-v1"), device="cpu")
    for name, n in [("George_W_Bush", 1), ("Serena_Williams", 1), ("Colin_Powell", 2)]:
        img = load_image(lfw_image(name, n))
        det = central_face(engine.detect(img), img.shape)
        canvas = align_face(img, det, net.template.astype(np.float32), CANVAS_SIZE).image
        with torch.no_grad():
            f = net.forward_features(torch.as_tensor(canvas).permute(2, 0, 1)[None].float()).numpy()[0]
        a = ed.embed([align_face(img, det, ed.spec.template, 150).image])[0]
        b = es.embed([align_face(img, det, es.spec.template, 112).image])[0]
        assert ((f[:128] - a) ** 2).sum() < 0.01, name
        assert ((f[128:] - b) ** 2).sum() < 0.01, name


def test_onnx_export_runs_like_torch(net: FusedNet, tmp_path) -> None:
    """The installers run ONNX: the exported canvas -> encoding graph (both sampling grids, both
    backbones, the head) gives torch's encodings."""
    ort = pytest.importorskip("onnxruntime")
    from faceapp.runtime.export import _save

    path = tmp_path / "fused.onnx"
    _save(net, torch.zeros(2, 3, CANVAS_SIZE, CANVAS_SIZE), path, ["input"], ["embedding"],
          {"input": {0: "n"}, "embedding": {0: "n"}}, {"model_id": "test"})
    x = _canvas_batch(3, seed=5)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = net(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def _flip_reference(net: FusedNet, x: torch.Tensor) -> torch.Tensor:
    """Flip TTA as scripts/train_fused.py measured it: each backbone on its own chip and on that
    chip mirrored, e = normalise(head(features)), normalise(e(chips) + e(mirrors))."""
    import torch.nn.functional as F

    xd, xs = net.branch_chips(x)

    def e(d, s):
        f = torch.cat([net.dlib((d - net.mean_dlib) / net.scale_dlib), net.sface((s - net.mean_sface) / net.scale_sface)], 1)
        return F.normalize(net.head(f), dim=1)

    return F.normalize(e(xd, xs) + e(xd.flip(3), xs.flip(3)), dim=1)


def test_flip_tta_mirrors_each_branch_chip_not_the_canvas(net: FusedNet) -> None:
    x = _canvas_batch(2, seed=3)
    with torch.no_grad():
        plain = net(x)
        net.flip_tta = True
        try:
            flipped = net(x)
        finally:
            net.flip_tta = False
        want = _flip_reference(net, x)
        canvas_mirrored = torch.nn.functional.normalize(net(x) + net(x.flip(3)), dim=1)
    np.testing.assert_allclose(flipped.numpy(), want.numpy(), atol=1e-5)
    np.testing.assert_allclose(flipped.norm(dim=1).numpy(), 1.0, atol=1e-5)
    assert (flipped - plain).abs().max() > 1e-3  # the mirrors count
    assert (flipped - canvas_mirrored).abs().max() > 1e-4  # not the canvas mirrored


def _flip_spec(tmp_path, net: FusedNet):
    """A fused-flip spec on a random head written to tmp_path (the shipped backbones)."""
    import dataclasses
    import hashlib

    pt = tmp_path / "fused_flip_test.pt"
    torch.save(net.head_state_dict(), pt)
    base = load_spec("sface-v1")
    return dataclasses.replace(
        base, model_id="fused-flip-test", file=pt, sha256=hashlib.sha256(pt.read_bytes()).hexdigest(),
        architecture="fused_dlib_sface", input_size=CANVAS_SIZE, mean=(0.0, 0.0, 0.0), scale=1.0,
        template=canvas_template(base.template).astype(np.float32), flip_tta=True, border="replicate",
        extra={"backbones": dict(net.backbone_sha256)})


def test_embedder_runs_a_fused_flip_spec_through_the_network_on_both_runtimes(net: FusedNet, tmp_path, monkeypatch) -> None:
    """The embedder must not mirror the fused canvas itself (as it does for dlib-resnet-flip-v1);
    the ONNX export carries the flip in its graph and gives torch's encodings."""
    pytest.importorskip("onnxruntime")
    from faceapp import runtime
    from faceapp.embed.embedder import Embedder
    from faceapp.runtime.export import export_embedder

    spec = _flip_spec(tmp_path, net)
    monkeypatch.setattr("faceapp.embed.weights.load_spec", lambda m, *a, **k: spec if m == spec.model_id else load_spec(m, *a, **k))
    chips = list(np.random.default_rng(1).integers(0, 256, (2, CANVAS_SIZE, CANVAS_SIZE, 3), dtype=np.uint8))
    monkeypatch.setenv(runtime.BACKEND_ENV, "torch")
    got = Embedder(spec, device="cpu").embed(chips)
    x = torch.as_tensor(np.stack(chips).transpose(0, 3, 1, 2).astype(np.float32))
    with torch.no_grad():
        want = _flip_reference(net, x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)

    out = tmp_path / "onnx"
    export_embedder(spec.model_id, out)
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    monkeypatch.setenv(runtime.ONNX_DIR_ENV, str(out))
    emb = Embedder(spec, device="cpu")
    assert emb.backend == "onnx" and not emb.model.flip_tta  # mirrored inside the graph
    np.testing.assert_allclose(emb.embed(chips), want, atol=1e-4)
    import dataclasses

    from faceapp.errors import WeightsError

    with pytest.raises(WeightsError, match="flip TTA"):  # a plain spec on a flip export
        Embedder(dataclasses.replace(spec, flip_tta=False), device="cpu")


def test_a_fused_head_with_other_backbones_is_refused_on_onnx_and_at_export(monkeypatch, tmp_path) -> None:
    """The head was trained on the backbones its spec names: ONNX Runtime must refuse it beside
    other backbone files as torch does, and an export must not bake other backbones into it."""
    import dataclasses

    from faceapp import runtime
    from faceapp.embed.embedder import Embedder
    from faceapp.errors import WeightsError
    from faceapp.runtime.export import export_embedder

    spec = load_spec("fused-flip-v1")
    bad = dataclasses.replace(spec, extra={**spec.extra, "backbones": {**spec.extra["backbones"], "sface-v1": "0" * 64}})
    monkeypatch.setenv(runtime.BACKEND_ENV, "onnx")
    with pytest.raises(WeightsError, match="sface-v1"):
        Embedder(bad, device="cpu")
    monkeypatch.setattr("faceapp.embed.weights.load_spec", lambda m, *a, **k: bad if m == spec.model_id else load_spec(m, *a, **k))
    with pytest.raises(WeightsError, match="sface-v1"):
        export_embedder(spec.model_id, tmp_path)
    assert not list(tmp_path.iterdir())

"""faceapp.cnn.style: hand-computed costs, hooks on any backbone, the optimisation loop, outputs."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from faceapp.cnn.style import (
    VGG16_CONTENT_LAYER,
    VGG16_STYLE_LAYERS,
    FeatureExtractor,
    content_cost,
    gram_matrix,
    image_to_tensor,
    layer_style_cost,
    load_vgg16_features,
    run_style_transfer,
    save_image,
    save_loss_plot,
    style_cost,
    tensor_to_image,
    total_cost,
)


def tiny_backbone() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
    )


# ----------------------------------------------------------------------------- costs


def test_content_cost_is_sum_of_squares_over_4_nh_nw_nc() -> None:
    a_C = torch.ones(1, 2, 3, 4)
    a_G = torch.zeros(1, 2, 3, 4)
    assert content_cost(a_C, a_G).item() == pytest.approx(24 / (4 * 24))
    assert content_cost(a_C, a_C).item() == 0.0


def test_gram_matrix_of_unrolled_activations() -> None:
    A = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # n_C = 2 channels, 2 positions
    torch.testing.assert_close(gram_matrix(A), torch.tensor([[5.0, 11.0], [11.0, 25.0]]))
    feature_map = torch.randn(1, 3, 4, 5)
    torch.testing.assert_close(gram_matrix(feature_map), torch.einsum("chw,khw->ck", feature_map[0], feature_map[0]))


def test_layer_style_cost_hand_computed() -> None:
    # one channel, 1 x 2 positions: G(S) = 1 + 4 = 5, G(G) = 0 + 1 = 1; (5 - 1)^2 / (2 * 1 * 1 * 2)^2 = 1
    a_S = torch.tensor([[[[1.0, 2.0]]]])
    a_G = torch.tensor([[[[0.0, 1.0]]]])
    assert layer_style_cost(a_S, a_G).item() == pytest.approx(1.0)


def test_style_cost_weights_the_layers() -> None:
    a_S = {"a": torch.tensor([[[[1.0, 2.0]]]]), "b": torch.tensor([[[[2.0, 0.0]]]])}
    a_G = {"a": torch.tensor([[[[0.0, 1.0]]]]), "b": torch.tensor([[[[0.0, 0.0]]]])}
    # layer a: 1; layer b: (4 - 0)^2 / 16 = 1
    assert style_cost(a_S, a_G, {"a": 0.2, "b": 0.8}).item() == pytest.approx(1.0)
    assert style_cost(a_S, a_G, {"a": 1.0, "b": 0.0}).item() == pytest.approx(1.0)
    assert style_cost(a_S, {"a": a_S["a"], "b": a_G["b"]}).item() == pytest.approx(0.5)  # equal weights 1/2


def test_total_cost_is_alpha_content_plus_beta_style() -> None:
    assert total_cost(torch.tensor(2.0), torch.tensor(3.0)).item() == pytest.approx(10 * 2 + 40 * 3)
    assert total_cost(torch.tensor(2.0), torch.tensor(3.0), alpha=1, beta=0.5).item() == pytest.approx(3.5)


# ----------------------------------------------------------------------------- hooks


def test_feature_extractor_captures_named_layers() -> None:
    backbone = tiny_backbone()
    x = torch.randn(1, 3, 8, 8)
    with FeatureExtractor(backbone, ["1", "6"]) as extract:
        activations = extract(x)
    torch.testing.assert_close(activations["1"], backbone[:2](x))
    torch.testing.assert_close(activations["6"], backbone(x))
    assert all(not m._forward_hooks for m in backbone.modules())  # hooks removed


def test_feature_extractor_stops_after_the_last_requested_layer() -> None:
    class Explodes(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("ran past the last requested layer")

    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), Explodes())
    with FeatureExtractor(backbone, ["0"]) as extract:
        assert extract(torch.randn(1, 3, 5, 5))["0"].shape == (1, 4, 3, 3)


def test_feature_extractor_is_not_fooled_by_inplace_relu() -> None:
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True))
    x = torch.randn(1, 3, 5, 5)
    with FeatureExtractor(backbone, ["0", "1"]) as extract:
        activations = extract(x)
    assert (activations["0"] < 0).any()  # the convolution's output, before the ReLU


def test_feature_extractor_names_unknown_layers() -> None:
    with pytest.raises(ValueError, match=r"unknown layers \['conv9'\]"):
        FeatureExtractor(tiny_backbone(), ["conv9"])


# ----------------------------------------------------------------------------- optimisation


def test_style_transfer_lowers_the_cost_with_any_backbone() -> None:
    backbone = tiny_backbone()
    before = [p.clone() for p in backbone.parameters()]
    g = torch.Generator().manual_seed(1)
    content = torch.rand(3, 16, 16, generator=g)
    style = (np.random.default_rng(2).random((24, 24, 3)) * 255).astype(np.uint8)  # resized to 16 x 16
    history = list(run_style_transfer(content, style, backbone, ["1", "6"], content_layer="3", steps=40, lr=0.05))
    assert [p.step for p in history] == list(range(1, 41))
    assert history[-1].total < 0.5 * history[0].total
    assert history[-1].style < history[0].style
    final = history[-1].image
    assert final.shape == (3, 16, 16) and 0 <= final.min() and final.max() <= 1
    # The backbone was frozen during the run and is untouched and trainable again afterwards.
    assert all(torch.equal(a, b) for a, b in zip(before, backbone.parameters()))
    assert all(p.requires_grad for p in backbone.parameters()) and backbone.training


def test_style_transfer_can_be_cancelled() -> None:
    calls = iter(range(100))
    steps = list(
        run_style_transfer(
            torch.rand(3, 8, 8),
            torch.rand(3, 8, 8),
            tiny_backbone(),
            ["1"],
            steps=50,
            is_cancelled=lambda: next(calls) >= 3,
        )
    )
    assert len(steps) == 3


def test_style_transfer_rejects_weights_for_other_layers() -> None:
    with pytest.raises(ValueError, match="style_weights"):
        next(
            run_style_transfer(
                torch.rand(3, 8, 8), torch.rand(3, 8, 8), tiny_backbone(), ["1"], style_weights={"3": 1.0}
            )
        )


def test_image_conversions_round_trip() -> None:
    array = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    tensor = image_to_tensor(array)
    assert tensor.shape == (3, 4, 5) and tensor.max() <= 1
    np.testing.assert_array_equal(tensor_to_image(tensor), array)


def test_outputs_are_pngs(tmp_path) -> None:
    history = list(run_style_transfer(torch.rand(3, 8, 8), torch.rand(3, 8, 8), tiny_backbone(), ["1"], steps=3))
    image_path = save_image(history[-1].image, tmp_path / "out" / "generated.png")
    plot_path = save_loss_plot(history, tmp_path / "loss.png")
    written = matplotlib.image.imread(image_path)
    assert written.shape[:2] == (8, 8)
    np.testing.assert_array_equal((written[..., :3] * 255).round().astype(np.uint8), tensor_to_image(history[-1].image))
    plot = matplotlib.image.imread(plot_path)
    assert plot.shape[:2] == (400, 600) and plot[..., :3].std() > 0.05


# ----------------------------------------------------------------------------- VGG-16 loader


@pytest.fixture(scope="module")
def vgg16_features_file(tmp_path_factory) -> tuple:
    torch.manual_seed(0)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg16().features.state_dict().items()}
    state = {f"features.{k}": torch.randn(shape) * 0.01 for k, shape in shapes.items()}
    path = tmp_path_factory.mktemp("weights") / "vgg16.pth"
    torch.save(state, path)
    return path, state


def test_vgg16_loader_reads_a_local_state_dict(vgg16_features_file) -> None:
    path, state = vgg16_features_file
    features = load_vgg16_features(path)
    torch.testing.assert_close(features[0].weight, state["features.0.weight"])
    assert not any(p.requires_grad for p in features.parameters()) and not features.training
    assert not any(getattr(m, "inplace", False) for m in features.modules())
    x = torch.rand(1, 3, 32, 32)
    with FeatureExtractor(features, [*VGG16_STYLE_LAYERS, VGG16_CONTENT_LAYER]) as extract:
        activations = extract(x)
    assert activations[VGG16_STYLE_LAYERS[0]].shape == (1, 64, 32, 32)  # relu1_1
    assert activations[VGG16_CONTENT_LAYER].shape == (1, 512, 4, 4)  # relu4_2


def test_vgg16_loader_checks_the_checksum_and_the_file(vgg16_features_file, tmp_path) -> None:
    path, _ = vgg16_features_file
    with pytest.raises(ValueError, match="SHA-256"):
        load_vgg16_features(path, sha256="0" * 64)
    with pytest.raises(FileNotFoundError):
        load_vgg16_features(tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="not a VGG-16 state dict"):
        load_vgg16_features(wrong)

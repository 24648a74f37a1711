"""faceapp.cnn on a CUDA device: the same results as on the CPU (skipped without CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.ops
from torch import nn

from faceapp.cnn.detection import (
    batched_nms,
    encode_targets,
    iou,
    landmark_loss,
    landmark_target,
    localization_loss,
    nms,
    yolo_eval,
    yolo_head,
)
from faceapp.cnn.nets import build
from faceapp.cnn.segmentation import SHAPE_CLASSES, UNet, majority_baseline, synthetic_shapes, train_segmentation
from faceapp.cnn.style import run_style_transfer
from faceapp.cnn.transfer import extract_features
from faceapp.cnn.visualize import top_patches

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CUDA = torch.device("cuda")


@pytest.fixture
def exact_cuda():
    """Full float32 precision on the GPU (no TF32), so that CPU and GPU results can be compared."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.parametrize("name", ["lenet5", "resnet50", "googlenet", "mobilenet_v2", "efficientnet_b0"])
def test_networks_give_the_same_logits_on_cuda(name: str, exact_cuda) -> None:
    torch.manual_seed(0)
    kwargs = {"aux_logits": False} if name == "googlenet" else {}
    model = build(name, num_classes=4, **kwargs).eval()
    x = torch.randn(2, 3, 64, 64) if name != "lenet5" else torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        actual = model.to(CUDA)(x.to(CUDA)).cpu()
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_iou_and_nms_on_cuda_agree_with_torchvision() -> None:
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=g) * 10
    boxes = torch.cat((xy, xy + torch.rand(300, 2, generator=g) * 4 + 0.5), dim=1).to(CUDA)
    scores = torch.rand(300, generator=g).to(CUDA)
    classes = torch.randint(0, 5, (300,), generator=g).to(CUDA)
    torch.testing.assert_close(iou(boxes, boxes), torchvision.ops.box_iou(boxes, boxes))
    assert nms(boxes, scores, 0.5).tolist() == torchvision.ops.nms(boxes, scores, 0.5).tolist()
    assert (
        batched_nms(boxes, scores, classes, 0.5).tolist()
        == torchvision.ops.batched_nms(boxes, scores, classes, 0.5).tolist()
    )


def test_yolo_decoding_on_cuda_matches_the_cpu() -> None:
    anchors = torch.tensor([[0.5, 1.5], [1.5, 0.5]])
    raw = torch.randn(7, 7, 2, 8, generator=torch.Generator().manual_seed(1)) * 3
    on_cpu = yolo_eval(yolo_head(raw, anchors), score_threshold=0.3, image_size=(100, 200))
    on_gpu = yolo_eval(yolo_head(raw.to(CUDA), anchors), score_threshold=0.3, image_size=(100, 200))
    assert [d.class_index for d in on_gpu] == [d.class_index for d in on_cpu] and on_cpu
    for a, b in zip(on_gpu, on_cpu, strict=True):
        assert a.box == pytest.approx(b.box, abs=1e-3) and a.score == pytest.approx(b.score, abs=1e-5)
    y = encode_targets(
        torch.tensor([[0.1, 0.2, 0.3, 0.5]], device=CUDA),
        torch.tensor([1], device=CUDA),
        grid_size=7,
        num_classes=3,
        anchors=anchors,
    )
    assert y.device.type == "cpu" and y[..., 0].sum() == 1


def test_losses_on_cuda() -> None:
    y = landmark_target(torch.tensor([[20.0, 10.0]], device=CUDA), (100, 200))
    assert y.device.type == "cuda"
    assert landmark_loss(y + 0.1, y).item() == pytest.approx(0.03, abs=1e-6)
    target = torch.tensor([[0.0, 0, 0, 0, 0, 0]], device=CUDA)
    assert localization_loss(torch.full_like(target, 0.5), target).item() == pytest.approx(0.25)


def test_style_transfer_on_cuda_lowers_the_cost() -> None:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU()).to(
        CUDA
    )
    history = list(
        run_style_transfer(torch.rand(3, 32, 32), torch.rand(3, 32, 32), backbone, ["1", "3"], steps=30, lr=0.05)
    )
    assert history[-1].total < 0.5 * history[0].total
    assert history[-1].image.device.type == "cpu"


def test_unet_trains_on_cuda() -> None:
    torch.manual_seed(0)
    images, masks = synthetic_shapes(256, size=32, seed=0)
    val_images, val_masks = synthetic_shapes(64, size=32, seed=1)
    model = UNet(num_classes=len(SHAPE_CLASSES), base_channels=16, depth=2).to(CUDA)
    history = list(
        train_segmentation(model, images, masks, epochs=8, batch_size=16, lr=3e-3, validation=(val_images, val_masks))
    )
    assert history[-1].val_accuracy > majority_baseline(val_masks) + 0.1


def test_top_patches_on_cuda_match_the_cpu(exact_cuda) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3))
    images = torch.rand(20, 3, 24, 24)
    expected = top_patches(model, "3", 2, images)
    actual = top_patches(model.to(CUDA), "3", 2, images)
    assert [(p.image_index, p.position, p.box) for p in actual] == [
        (p.image_index, p.position, p.box) for p in expected
    ]
    np.testing.assert_allclose([p.activation for p in actual], [p.activation for p in expected], rtol=1e-4)


def test_extract_features_on_cuda_returns_cpu_tensors() -> None:
    model = build("lenet5").to(CUDA)
    features = extract_features(model.forward_features, torch.randn(5, 3, 32, 32), batch_size=2, device=CUDA)
    assert features.device.type == "cpu" and features.shape == (5, 16, 5, 5)

"""faceapp.cnn.transfer: freezing, replacing the head, per-group learning rates, frozen batch norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from faceapp.cnn.nets import build
from faceapp.cnn.transfer import (
    extract_features,
    fine_tune_param_groups,
    freeze,
    freeze_up_to,
    param_groups,
    replace_head,
    set_frozen_batchnorm_eval,
    trainable_parameter_names,
    unfreeze,
)


@pytest.fixture
def lenet() -> nn.Module:
    torch.manual_seed(0)
    return build("lenet5")


def test_freeze_up_to_a_layer_inclusive_and_exclusive(lenet: nn.Module) -> None:
    frozen = freeze_up_to(lenet, "features.conv2")
    assert frozen == ["features.conv1.weight", "features.conv1.bias", "features.conv2.weight", "features.conv2.bias"]
    assert trainable_parameter_names(lenet)[0] == "head.fc3.weight"
    freeze_up_to(lenet, "features.conv2", inclusive=False)
    assert trainable_parameter_names(lenet)[:2] == ["features.conv2.weight", "features.conv2.bias"]
    freeze_up_to(lenet, "features")  # a whole block
    assert trainable_parameter_names(lenet) == [n for n, _ in lenet.head.named_parameters(prefix="head")]


def test_freeze_up_to_an_unknown_layer_names_the_layers(lenet: nn.Module) -> None:
    with pytest.raises(ValueError, match="no layer 'features.conv9'.*features.conv1"):
        freeze_up_to(lenet, "features.conv9")


def test_freeze_and_unfreeze(lenet: nn.Module) -> None:
    freeze(lenet.features)
    assert not any(p.requires_grad for p in lenet.features.parameters())
    assert all(p.requires_grad for p in lenet.head.parameters())
    unfreeze(lenet)
    assert all(p.requires_grad for p in lenet.parameters())


def test_replace_head_then_train_only_the_head(lenet: nn.Module) -> None:
    freeze(lenet)
    head = replace_head(lenet, 2)
    assert lenet.head.output is head and (head.in_features, head.out_features) == (84, 2)
    assert trainable_parameter_names(lenet) == ["head.output.weight", "head.output.bias"]
    before = {n: p.clone() for n, p in lenet.named_parameters()}
    optimizer = torch.optim.SGD([p for p in lenet.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(lenet(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    optimizer.step()
    changed = {n for n, p in lenet.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"head.output.weight", "head.output.bias"}


def test_replace_a_named_head_and_reject_non_linear_layers(lenet: nn.Module) -> None:
    assert replace_head(lenet, 5, name="head.fc4").out_features == 5
    with pytest.raises(ValueError, match="not an nn.Linear"):
        replace_head(lenet, 5, name="features.conv1")


def test_param_groups_by_longest_prefix(lenet: nn.Module) -> None:
    freeze_up_to(lenet, "features.conv1")
    groups = param_groups(lenet, {"features": 1e-4, "head": 1e-3, "head.output": 1e-2})
    by_name = {g["name"]: g for g in groups}
    assert {k: g["lr"] for k, g in by_name.items()} == {"features": 1e-4, "head": 1e-3, "head.output": 1e-2}
    assert len(by_name["features"]["params"]) == 2  # conv2 only: conv1 is frozen
    assert len(by_name["head.output"]["params"]) == 2 and len(by_name["head"]["params"]) == 4
    assert sum(len(g["params"]) for g in groups) == len(trainable_parameter_names(lenet))
    torch.optim.Adam(groups)  # a valid optimizer specification
    with pytest.raises(ValueError, match="no default_lr"):
        param_groups(lenet, {"head": 1e-3})


def test_fine_tune_groups_use_a_smaller_rate_for_the_pretrained_layers(lenet: nn.Module) -> None:
    groups = fine_tune_param_groups(lenet, "head.output", lr=1e-3)
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs == {"*": pytest.approx(1e-4), "head.output": 1e-3}


def test_frozen_batchnorm_keeps_its_statistics() -> None:
    torch.manual_seed(0)
    model = build("mobilenet_v2", num_classes=3, width_mult=0.25)
    freeze(model.features)
    model.train()
    assert set_frozen_batchnorm_eval(model) == sum(isinstance(m, nn.BatchNorm2d) for m in model.features.modules())
    bn = model.features[0][1]
    mean = bn.running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    assert not bn.training and torch.equal(bn.running_mean, mean)
    assert model.classifier.training


def test_extract_features_runs_the_trunk_in_eval_mode(lenet: nn.Module) -> None:
    lenet.train()
    images = torch.randn(5, 3, 32, 32)
    features = extract_features(lenet.forward_features, images, batch_size=2)
    assert lenet.training  # restored
    lenet.eval()
    torch.testing.assert_close(features, lenet.forward_features(images).detach())
    assert features.shape == (5, 16, 5, 5)

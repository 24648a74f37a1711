"""Transfer learning (course week 2): reuse a trained network, retrain only what the data allows.

The course's recipe, by how much data the new task has:

* little: freeze the whole trunk, replace the softmax layer with one for the new classes and
  train only that (optionally precompute the trunk's features once: :func:`extract_features`);
* more: freeze fewer layers (:func:`freeze_up_to`) and train the rest;
* a lot: train everything, starting from the pretrained weights.

Fine-tuning uses a smaller learning rate for the pretrained layers than for the new head
(:func:`fine_tune_param_groups`), and frozen batch-norm layers should keep their statistics
(:func:`set_frozen_batchnorm_eval`, the PyTorch side of Keras's ``training=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

__all__ = [
    "freeze",
    "unfreeze",
    "freeze_up_to",
    "trainable_parameter_names",
    "set_frozen_batchnorm_eval",
    "replace_head",
    "param_groups",
    "fine_tune_param_groups",
    "extract_features",
]


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradient updates for every parameter of ``module``; returns it."""
    return module.requires_grad_(False)


def unfreeze(module: nn.Module) -> nn.Module:
    """Let every parameter of ``module`` train again; returns it."""
    return module.requires_grad_(True)


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        shown = ", ".join(n for n in list(modules)[1:21] if n) + (", ..." if len(modules) > 21 else "")
        raise ValueError(f"the model has no layer {name!r}; its layers include: {shown}")
    return modules[name]


def freeze_up_to(model: nn.Module, layer: str, *, inclusive: bool = True) -> list[str]:
    """Freeze every parameter defined before ``layer`` (and in it, when ``inclusive``); unfreeze the rest.

    "Before" is the order of ``model.named_modules()``, i.e. the order the layers were
    defined in, which for sequential trunks is the order data flows through them. Returns the
    names of the frozen parameters.
    """
    _module(model, layer)
    prefix = layer + "."
    positions = {}
    start = end = None
    for position, (name, module) in enumerate(model.named_modules()):
        if name == layer or name.startswith(prefix):
            start = position if start is None else start
            end = position
        for param_name, _ in module.named_parameters(recurse=False):
            positions[f"{name}.{param_name}" if name else param_name] = position
    assert start is not None and end is not None
    limit = end if inclusive else start - 1
    frozen = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(positions[name] > limit)
        if positions[name] <= limit:
            frozen.append(name)
    return frozen


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that will be updated."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def set_frozen_batchnorm_eval(model: nn.Module) -> int:
    """Put batch-norm layers whose parameters are all frozen in eval mode; returns how many.

    In train mode a batch-norm layer keeps updating its running mean and variance even when
    its weights are frozen. Call this after every ``model.train()``.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, _BATCHNORM) and not any(p.requires_grad for p in module.parameters()):
            module.eval()
            count += 1
    return count


def replace_head(model: nn.Module, num_classes: int, *, name: str | None = None) -> nn.Linear:
    """Replace the final linear layer (the last ``nn.Linear``, or the one called ``name``) with a new one.

    The new layer has the old one's input size, ``num_classes`` outputs, fresh weights, and
    the old one's device and dtype. Returns it.
    """
    if name is None:
        linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError("the model has no nn.Linear layer to replace; pass name=")
        name = linears[-1]
    old = _module(model, name)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"layer {name!r} is a {type(old).__name__}, not an nn.Linear")
    new = nn.Linear(
        old.in_features, num_classes, bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype
    )
    parent_name, _, child = name.rpartition(".")
    setattr(_module(model, parent_name) if parent_name else model, child, new)
    return new


def param_groups(model: nn.Module, lrs: Mapping[str, float], *, default_lr: float | None = None) -> list[dict]:
    """Optimizer parameter groups with a learning rate per layer-name prefix.

    Each trainable parameter goes to the longest prefix of ``lrs`` that its name starts with
    (``"features"`` matches ``features.0.weight``), or to ``default_lr``; frozen parameters
    are left out. Every group has a ``"name"``. A parameter that matches nothing when
    ``default_lr`` is None is a ``ValueError``.
    """
    prefixes = sorted(lrs, key=len, reverse=True)
    groups: dict[str, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        match = next((p for p in prefixes if name == p or name.startswith(p + ".") or p == ""), None)
        if match is None:
            if default_lr is None:
                raise ValueError(f"parameter {name!r} matches none of {prefixes} and there is no default_lr")
            match = "*"
        groups.setdefault(match, []).append(parameter)
    return [
        {"name": key, "params": params, "lr": default_lr if key == "*" else lrs[key]} for key, params in groups.items()
    ]


def fine_tune_param_groups(model: nn.Module, head: str, *, lr: float, backbone_lr_scale: float = 0.1) -> list[dict]:
    """Two groups: the head (``head`` prefix) at ``lr``, the rest at ``lr * backbone_lr_scale``."""
    _module(model, head)
    return param_groups(model, {head: lr}, default_lr=lr * backbone_lr_scale)


@torch.no_grad()
def extract_features(
    feature_fn: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Run a frozen trunk once over a data set ("save to disk"): features on the CPU, in order.

    ``feature_fn`` is e.g. ``model.forward_features``; if it is a bound method of a module,
    the module runs in eval mode (restored afterwards).
    """
    owner = getattr(feature_fn, "__self__", None)
    was_training = owner.training if isinstance(owner, nn.Module) else None
    if isinstance(owner, nn.Module):
        owner.eval()
    try:
        outputs = [
            feature_fn(batch.to(device) if device is not None else batch).cpu() for batch in images.split(batch_size)
        ]
    finally:
        if isinstance(owner, nn.Module) and was_training is not None:
            owner.train(was_training)
    return torch.cat(outputs)

"""Activations of named layers of any network, by forward hooks.

    with FeatureExtractor(backbone, ["features.3", "features.8"]) as extract:
        activations = extract(image)          # {"features.3": tensor, "features.8": tensor}

Names are those of ``backbone.named_modules()``. The forward pass stops as soon as the last
requested layer has run (the rest of the network, e.g. a classifier, is skipped), and the
activations are cloned, so a later in-place ReLU cannot change them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FeatureExtractor"]


class _Done(Exception):
    """Raised inside the forward pass once every requested activation is captured."""


class FeatureExtractor:
    """Captures the outputs of ``layers`` of ``backbone`` on every call; ``close()`` removes the hooks."""

    def __init__(self, backbone: nn.Module, layers: Sequence[str]) -> None:
        modules = dict(backbone.named_modules())
        unknown = [name for name in layers if name not in modules]
        if unknown:
            known = [name for name in modules if name]
            shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
            raise ValueError(f"unknown layers {unknown}; the backbone has: {shown}")
        if not layers:
            raise ValueError("no layers requested")
        self.backbone = backbone
        self.layers = list(dict.fromkeys(layers))
        self._captured: dict[str, torch.Tensor] = {}
        self._handles = [modules[name].register_forward_hook(self._hook(name)) for name in self.layers]

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            if name not in self._captured:  # a module used twice keeps its first output
                self._captured[name] = output.clone()
            if len(self._captured) == len(self.layers):
                raise _Done

        return hook

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the backbone on ``x`` and return {layer name: activation}."""
        self._captured = {}
        try:
            self.backbone(x)
        except _Done:
            pass
        missing = [name for name in self.layers if name not in self._captured]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in the backbone's forward pass")
        captured, self._captured = self._captured, {}
        return captured

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> FeatureExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

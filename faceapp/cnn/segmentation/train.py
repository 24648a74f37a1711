"""A short training loop for segmentation that reports pixel accuracy as it goes.

:func:`train_segmentation` is a generator: it yields a :class:`SegmentationProgress` after
every epoch, so a command line prints it and a GUI shows it, and ``is_cancelled`` stops it
cleanly between batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from faceapp.cnn.segmentation.unet import pixel_loss

__all__ = ["SegmentationProgress", "train_segmentation", "evaluate_pixel_accuracy"]


@dataclass(frozen=True)
class SegmentationProgress:
    """After one epoch: mean training loss, training and (if given) validation pixel accuracy."""

    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float | None


@torch.no_grad()
def evaluate_pixel_accuracy(
    model: nn.Module, images: torch.Tensor, masks: torch.Tensor, *, batch_size: int = 64
) -> float:
    """Pixel accuracy of ``model`` (in eval mode; its mode is restored) on images (N, C, H, W)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for x, y in zip(images.split(batch_size), masks.split(batch_size)):
        correct += int((model(x.to(device)).argmax(dim=1) == y.to(device)).sum())
    model.train(was_training)
    return correct / masks.numel()


def train_segmentation(
    model: nn.Module,
    images: torch.Tensor,
    masks: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 3e-3,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    seed: int = 0,
    is_cancelled: Callable[[], bool] | None = None,
) -> Iterator[SegmentationProgress]:
    """Train ``model`` (logits (N, K, H, W)) with Adam on the per-pixel cross-entropy.

    ``images`` (N, C, H, W) and ``masks`` (N, H, W) are moved batch by batch to the model's
    device. Yields one :class:`SegmentationProgress` per epoch.
    """
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        total_loss, correct = 0.0, 0
        for batch in order.split(batch_size):
            if is_cancelled is not None and is_cancelled():
                return
            x, y = images[batch].to(device), masks[batch].to(device)
            logits = model(x)
            loss = pixel_loss(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(dim=1) == y).sum())
        val = evaluate_pixel_accuracy(model, *validation, batch_size=batch_size * 4) if validation is not None else None
        yield SegmentationProgress(epoch, total_loss / len(images), correct / masks.numel(), val)

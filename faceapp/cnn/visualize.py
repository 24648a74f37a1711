"""What is a deep network learning? The nine image patches that most activate one unit.

Zeiler and Fergus (2013), as the course shows it: pick a unit (a channel) of a layer, run a
set of images through the network, find the nine positions of that channel with the largest
activations, and show the part of the input each one sees: its *receptive field*. Shallow
layers' units respond to edges and colours in small patches; deeper units see larger
patches and respond to textures and object parts.

The receptive field is measured, not assumed, so any convolutional network works (padding,
strides, pooling, branches): the gradient of one activation with respect to random inputs is
non-zero exactly on the input pixels that activation depends on. Its bounding box at two
neighbouring positions gives the field's size, stride and offset.

    patches = top_patches(model, "layer2.0", unit=5, images=batch)   # 9 Patch objects
    save_patch_grid(patches, "unit5.png")                            # a 3x3 PNG grid
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from faceapp.cnn.style.features import FeatureExtractor

__all__ = ["ReceptiveField", "Patch", "receptive_field", "top_patches", "save_patch_grid", "visualize_unit"]


@dataclass(frozen=True)
class ReceptiveField:
    """Which input pixels an activation at (i, j) sees: rows offset_h + stride_h i + [0, size_h), same for columns.

    The offset is negative when padding lets border units see beyond the image.
    """

    size: tuple[int, int]
    stride: tuple[int, int]
    offset: tuple[int, int]

    def box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of position (i, j), bottom and right exclusive, not clipped."""
        top = self.offset[0] + self.stride[0] * i
        left = self.offset[1] + self.stride[1] * j
        return top, left, top + self.size[0], left + self.size[1]


@dataclass(frozen=True)
class Patch:
    """One highly activating patch: where it is, how strongly it activates the unit, and its pixels.

    ``box`` is (top, left, bottom, right) in the image, clipped to it; ``crop`` is the
    receptive field's pixels (H, W, 3), zero where the field lies outside the image.
    """

    image_index: int
    position: tuple[int, int]
    activation: float
    box: tuple[int, int, int, int]
    crop: np.ndarray


def _layer_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    with FeatureExtractor(model, [layer]) as extract:
        output = extract(x)[layer]
    if output.ndim != 4:
        raise ValueError(f"layer {layer!r} gives shape {tuple(output.shape)}, not a (N, C, H, W) feature map")
    return output


def _support(grad: torch.Tensor) -> tuple[int, int, int, int] | None:
    mask = grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(mask.any(dim=1)).flatten(), torch.nonzero(mask.any(dim=0)).flatten()
    if len(rows) == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def receptive_field(
    model: nn.Module,
    layer: str,
    input_shape: tuple[int, int, int],
    *,
    probes: int = 8,
    max_size: int = 1024,
    seed: int = 0,
) -> ReceptiveField:
    """Measure the receptive field of ``layer``'s units for inputs of ``input_shape`` (C, H, W).

    Gradients of the activations at the centre position and its lower-right neighbour, summed
    over channels, are taken with respect to ``probes`` random inputs; their non-zero bounding
    boxes give size and stride. The probe grows (doubling, up to ``max_size``) until the field
    does not touch the border (or the input is large enough to reach the layer at all). The
    model is put in eval mode meanwhile.
    """
    channels, height, width = input_shape
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        while True:
            x = torch.randn(probes, channels, height, width, generator=generator).to(device).requires_grad_()
            can_grow = max(height, width) * 2 <= max_size
            try:
                out = _layer_output(model, layer, x)
            except RuntimeError:  # the input is too small to reach this layer: try a larger one
                if not can_grow:
                    raise
                height, width = height * 2, width * 2
                continue
            out_h, out_w = out.shape[-2:]
            ci, cj = out_h // 2, out_w // 2
            centre = _support(torch.autograd.grad(out[:, :, ci, cj].sum(), x, retain_graph=True)[0])
            if centre is None:
                raise ValueError(f"the activations of {layer!r} do not depend on the input")
            touches = centre[0] == 0 or centre[1] == 0 or centre[2] == height or centre[3] == width
            if touches and can_grow:
                height, width = height * 2, width * 2
                continue
            stride = [1, 1]
            if ci + 1 < out_h:
                below = _support(torch.autograd.grad(out[:, :, ci + 1, cj].sum(), x, retain_graph=True)[0])
                stride[0] = below[0] - centre[0] if below else 1
            if cj + 1 < out_w:
                right = _support(torch.autograd.grad(out[:, :, ci, cj + 1].sum(), x)[0])
                stride[1] = right[1] - centre[1] if right else 1
            size = (centre[2] - centre[0], centre[3] - centre[1])
            offset = (centre[0] - stride[0] * ci, centre[1] - stride[1] * cj)
            return ReceptiveField(size=size, stride=(stride[0], stride[1]), offset=offset)
    finally:
        model.train(was_training)


def _display_images(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) tensors -> (N, H, W, 3) floats in [0, 1], each image min-max scaled."""
    x = images.detach().float().cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = x[:, :3]
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x - low) / (high - low).clamp(min=1e-12)).permute(0, 2, 3, 1).numpy()


def _crop(image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    top, left, bottom, right = box
    height, width = image.shape[:2]
    crop = np.zeros((bottom - top, right - left, image.shape[2]), dtype=image.dtype)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, height), min(right, width)
    if t < b and lft < r:
        crop[t - top : b - top, lft - left : r - left] = image[t:b, lft:r]
    return crop, (t, lft, b, r)


@torch.no_grad()
def _unit_activations(model: nn.Module, layer: str, unit: int, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    maps = []
    for batch in images.split(batch_size):
        out = _layer_output(model, layer, batch.to(device))
        if not 0 <= unit < out.shape[1]:
            raise ValueError(f"layer {layer!r} has {out.shape[1]} units (channels); unit {unit} does not exist")
        maps.append(out[:, unit].float().cpu())
    return torch.cat(maps)


def top_patches(
    model: nn.Module,
    layer: str,
    unit: int,
    images: torch.Tensor,
    *,
    k: int = 9,
    display_images: np.ndarray | None = None,
    one_per_image: bool = True,
    batch_size: int = 32,
) -> list[Patch]:
    """The ``k`` receptive-field patches of ``images`` that activate ``unit`` of ``layer`` most, strongest first.

    Args:
        model: any network; it runs in eval mode (restored afterwards).
        layer: a name from ``model.named_modules()`` whose output is (N, C, H, W).
        unit: the channel of that output.
        images: the network's input (N, C, H, W), already preprocessed.
        k: how many patches (fewer if there are fewer candidates).
        display_images: (N, H, W, 3) images to crop for display (e.g. the uint8 originals);
            by default ``images`` themselves, min-max scaled to [0, 1].
        one_per_image: take each image's strongest position only (different images, as in
            Zeiler and Fergus's figures); otherwise any positions, several per image allowed.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    display = _display_images(images) if display_images is None else np.asarray(display_images)
    if display.shape[:3] != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"display_images {display.shape} do not match images {tuple(images.shape)}")
    was_training = model.training
    model.eval()
    try:
        activations = _unit_activations(model, layer, unit, images, batch_size)  # (N, h, w)
    finally:
        model.train(was_training)
    field = receptive_field(model, layer, tuple(images.shape[1:]))  # type: ignore[arg-type]
    n, h, w = activations.shape
    flat = activations.reshape(n, h * w)
    if one_per_image:
        values, where = flat.max(dim=1)
        order = torch.argsort(values, descending=True, stable=True)[:k]
        candidates = [(int(i), int(where[i]), float(values[i])) for i in order]
    else:
        values, where = torch.topk(flat.flatten(), min(k, flat.numel()))
        candidates = [(int(idx) // (h * w), int(idx) % (h * w), float(v)) for v, idx in zip(values, where)]
    patches = []
    for image_index, position, value in candidates:
        i, j = divmod(position, w)
        crop, box = _crop(display[image_index], field.box(i, j))
        patches.append(Patch(image_index=image_index, position=(i, j), activation=value, box=box, crop=crop))
    return patches


def save_patch_grid(patches: list[Patch], path: str | Path, *, title: str | None = None, columns: int = 3) -> Path:
    """Draw the patches in a grid (3 x 3 for nine), each titled with its activation; write a PNG."""
    if not patches:
        raise ValueError("no patches to draw")
    path = Path(path)
    rows = max(columns, -(-len(patches) // columns))  # a square grid, longer if there are more patches
    figure = Figure(figsize=(2 * columns, 2 * rows + (0.4 if title else 0)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index < len(patches):
            patch = patches[index]
            crop = patch.crop
            if crop.dtype != np.uint8:
                crop = np.clip(crop, 0.0, 1.0)
            ax.imshow(crop, interpolation="nearest")
            ax.set_title(f"#{patch.image_index} {patch.activation:.3g}", fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def visualize_unit(
    model: nn.Module, layer: str, unit: int, images: torch.Tensor, path: str | Path, **kwargs: object
) -> list[Patch]:
    """:func:`top_patches` (nine by default) saved as a 3x3 grid at ``path``; returns the patches."""
    patches = top_patches(model, layer, unit, images, **kwargs)  # type: ignore[arg-type]
    save_patch_grid(patches, path, title=f"{layer}, unit {unit}")
    return patches

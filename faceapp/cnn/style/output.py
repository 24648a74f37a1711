"""Writing style-transfer results: the generated image and a plot of the costs (PNG).

Uses matplotlib's object-oriented API with the Agg canvas (no pyplot, no window, safe in a
worker thread).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from faceapp.cnn.style.generate import StyleProgress, tensor_to_image

__all__ = ["save_image", "save_loss_plot"]


def save_image(image: torch.Tensor | np.ndarray, path: str | Path) -> Path:
    """Write an image ((3, H, W) tensor in [0, 1], or (H, W, 3) uint8 array) as a PNG; returns the path."""
    import matplotlib.image

    path = Path(path)
    array = tensor_to_image(image) if isinstance(image, torch.Tensor) else np.asarray(image)
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, array, format="png")
    return path


def save_loss_plot(history: Sequence[StyleProgress], path: str | Path, *, title: str = "Neural style transfer") -> Path:
    """Plot total, content and style cost against the step (log scale) and write a PNG."""
    if not history:
        raise ValueError("no progress to plot")
    path = Path(path)
    steps = [p.step for p in history]
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name in ("total", "content", "style"):
        values = [getattr(p, name) for p in history]
        axes.plot(steps, values, label=f"J_{name}" if name != "total" else "J(G)")
    if all(getattr(p, name) > 0 for p in history for name in ("total", "content", "style")):
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("cost")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path

"""Moving state dicts between machines: split into shards under a size limit, and join again.

``save_shards(state, folder, "model", max_bytes=15e6)`` writes ``model-00.pt``, ``model-01.pt``,
... each a plain tensor dict below ``max_bytes`` (a tensor larger than that gets a shard of
its own); ``load_shards(folder, "model")`` returns the whole state dict again, bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["save_shards", "load_shards"]


def save_shards(state: dict[str, torch.Tensor], folder: Path | str, prefix: str, *, max_bytes: float = 15e6) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t.detach().cpu().contiguous()
        size += nbytes
    out = []
    for i, shard in enumerate(shards):
        path = folder / f"{prefix}-{i:02d}.pt"
        torch.save(shard, path)
        out.append(path)
    return out


def load_shards(folder: Path | str, prefix: str) -> dict[str, torch.Tensor]:
    paths = sorted(Path(folder).glob(f"{prefix}-[0-9][0-9].pt"))
    if not paths:
        raise FileNotFoundError(f"no shards {prefix}-NN.pt in {folder}")
    state: dict[str, torch.Tensor] = {}
    for p in paths:
        state.update(torch.load(p, map_location="cpu", weights_only=True))
    return state

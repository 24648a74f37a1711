"""A stand-in for the two torchvision functions facenet-pytorch imports, for torch without torchvision.

torchvision's PyPI wheels need torch's CUDA build; the installer build uses the CPU build of
torch (only to export the networks to ONNX), so there facenet-pytorch's
``from torchvision.ops.boxes import batched_nms`` and ``from torchvision.transforms import
functional`` have nothing to import. :func:`install` registers a minimal ``torchvision`` module
(pure-torch ``nms`` / ``batched_nms`` with torchvision's semantics, and ``to_tensor``) in
``sys.modules``, and only when the real torchvision is absent.
"""

from __future__ import annotations

import importlib.util
import sys
import types


def nms(boxes, scores, iou_threshold: float):
    """torchvision.ops.nms: greedy IoU suppression; kept indices, highest score first."""
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True, stable=True)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    keep = []
    for pos in range(len(order)):
        i = order[pos]
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1 :]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou > iou_threshold]] = True
    return torch.stack(keep).to(torch.int64)


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """torchvision.ops.batched_nms: NMS within each ``idxs`` category; kept indices by score."""
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    keep = torch.zeros_like(scores, dtype=torch.bool)
    for c in torch.unique(idxs):
        members = torch.where(idxs == c)[0]
        keep[members[nms(boxes[members], scores[members], iou_threshold)]] = True
    kept = torch.where(keep)[0]
    return kept[scores[kept].argsort(descending=True, stable=True)]


def to_tensor(pic):
    """torchvision.transforms.functional.to_tensor for HWC numpy arrays / PIL images."""
    import numpy as np
    import torch

    arr = np.asarray(pic)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return t.float().div(255) if t.dtype == torch.uint8 else t


def install() -> bool:
    """Register the stand-in when torchvision is not installed; True when it did."""
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return False
    root = types.ModuleType("torchvision")
    root.__doc__ = "faceapp's stand-in for torchvision (faceapp.runtime.torchvision_shim)"
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    boxes.nms = ops.nms = nms
    boxes.batched_nms = ops.batched_nms = batched_nms
    functional.to_tensor = to_tensor
    ops.boxes, transforms.functional = boxes, functional
    root.ops, root.transforms = ops, transforms
    for mod in (root, ops, boxes, transforms, functional):
        sys.modules[mod.__name__] = mod
    return True

"""faceapp's own fused embedding: dlib's ResNet and SFace on one aligned chip, joined by a
triplet-trained linear head into one 128-d unit-length encoding.

Why one chip. The pipeline aligns a face once, onto one model's template, and stores that chip
(re-encoding at a model change starts from the stored chips). The two backbones want different
framings: dlib's 150x150 chip and SFace's 112x112 ArcFace crop, which reaches higher up the
forehead and wider than dlib's chip. So the fused model takes a 184x184 canvas that holds both:
the canvas is SFace's framing at 1.5 times its scale, shifted by (8, 1) pixels
(:data:`CANVAS_SCALE`, :data:`CANVAS_OFFSET`), which puts dlib's chip at almost exactly its own
pixel scale inside it. Two fixed bilinear resamplings of the canvas (precomputed sampling
grids, ``F.grid_sample``) cut out each backbone's chip:

- SFace: canvas point = 1.5 * (SFace point) + (8, 1);
- dlib: a dlib-chip point is first mapped to SFace's frame by the similarity that best maps
  SFace's template onto dlib's (fitted once from the two templates; they differ by up to 2.3
  pixels, so dlib's branch sees its face placed by the five points' SFace-shaped fit, not its
  own), then onto the canvas as above.

The frozen part (:meth:`FusedNet.forward_features`) is the concatenation of the two backbones'
unit encodings (256-d). The head (:meth:`FusedNet.forward_head`, a linear 256 -> 128 without
bias) is the only trained layer: trained with the project's P x K sampler, batch-hard mining
and triplet loss on those features (``scripts/train_fused.py``), starting from the principal
directions of the training features. :meth:`FusedNet.forward` returns unit-length encodings.

Flip test-time augmentation (a spec's ``flip_tta``, model ``fused-flip-v1``) is done inside
the network (:attr:`FusedNet.flip_tta`), not by mirroring the canvas: the branch chips are not
centred on it, so a mirrored canvas would shift SFace's crop by 1/3 pixel and mirror dlib's
SFace-fitted placement. Each backbone encodes its own chip and that chip mirrored, and the
encoding is ``normalise(e(chips) + e(mirrored chips))`` with ``e = normalise(head(features))``,
as ``scripts/train_fused.py --flip`` measured it.

The weights file holds the head only (``head.weight``); the backbones come from their own
shipped, checksummed files (``dlib-resnet-v1``, ``sface-v1``), named with their sha256 in the
fused spec's ``backbones`` entry, so that 60 MB of weights are not shipped twice.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceapp.detect.align import similarity_transform

__all__ = ["FusedNet", "CANVAS_SIZE", "canvas_template", "branch_matrices", "BACKBONES"]

CANVAS_SIZE = 184
CANVAS_SCALE = 1.5
CANVAS_OFFSET = (8.0, 1.0)
FEATURE_DIM = 256
EMBEDDING_DIM = 128
BACKBONES = ("dlib-resnet-v1", "sface-v1")


def _spec_json(model_id: str) -> dict:
    from faceapp.embed.weights import load_spec

    spec = load_spec(model_id)
    return {"template": np.asarray(spec.template, np.float64), "size": spec.input_size,
            "mean": tuple(spec.mean), "scale": float(spec.scale), "spec": spec}


def canvas_template(sface_template: np.ndarray) -> np.ndarray:
    """The fused model's 5-point template on the 184x184 canvas: SFace's, scaled and shifted."""
    return np.asarray(sface_template, np.float64) * CANVAS_SCALE + np.asarray(CANVAS_OFFSET)


def branch_matrices(dlib_template: np.ndarray, sface_template: np.ndarray) -> dict[str, np.ndarray]:
    """2x3 matrices mapping each branch's chip pixel (u, v) to its canvas position (x, y)."""
    to_canvas = np.array([[CANVAS_SCALE, 0, CANVAS_OFFSET[0]], [0, CANVAS_SCALE, CANVAS_OFFSET[1]], [0, 0, 1]])
    s_to_d = np.vstack([similarity_transform(sface_template, dlib_template), [0, 0, 1]])
    d_to_s = np.linalg.inv(s_to_d)
    return {"sface": to_canvas[:2], "dlib": (to_canvas @ d_to_s)[:2]}


def _grid(matrix: np.ndarray, out_size: int, in_size: int) -> torch.Tensor:
    """``F.grid_sample`` grid (1, H, W, 2) sampling an in_size canvas at ``matrix @ (u, v, 1)``
    for every output pixel centre (align_corners=False: pixel i's centre is coordinate i)."""
    u, v = np.meshgrid(np.arange(out_size, dtype=np.float64), np.arange(out_size, dtype=np.float64))
    pts = np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    xy = (np.asarray(matrix, np.float64) @ pts).T.reshape(out_size, out_size, 2)
    g = (2.0 * xy + 1.0) / in_size - 1.0
    return torch.from_numpy(g.astype(np.float32)).unsqueeze(0)


class FusedNet(nn.Module):
    """184x184 RGB canvas (0..255, unnormalised) -> 128-d unit encoding (module docstring).

    ``flip_tta``: also encode each backbone's mirrored chip (the embedder sets it from the
    spec; :attr:`handles_flip` tells it not to mirror the canvas itself)."""

    handles_flip = True

    def __init__(self, *, load_backbones: bool = True, flip_tta: bool = False) -> None:
        super().__init__()
        self.flip_tta = bool(flip_tta)
        from faceapp.embed import network

        d, s = _spec_json(BACKBONES[0]), _spec_json(BACKBONES[1])
        self.dlib = network.build(d["spec"].architecture)
        self.sface = network.build(s["spec"].architecture)
        if load_backbones:
            self.dlib.load_state_dict(d["spec"].load_state_dict())
            self.sface.load_state_dict(s["spec"].load_state_dict())
        for p in list(self.dlib.parameters()) + list(self.sface.parameters()):
            p.requires_grad_(False)
        self.backbone_sha256 = {BACKBONES[0]: d["spec"].sha256, BACKBONES[1]: s["spec"].sha256}
        self.template = canvas_template(s["template"])
        m = branch_matrices(d["template"], s["template"])
        self.register_buffer("grid_dlib", _grid(m["dlib"], d["size"], CANVAS_SIZE), persistent=False)
        self.register_buffer("grid_sface", _grid(m["sface"], s["size"], CANVAS_SIZE), persistent=False)
        self.register_buffer("mean_dlib", torch.tensor(d["mean"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("mean_sface", torch.tensor(s["mean"], dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.scale_dlib, self.scale_sface = d["scale"], s["scale"]
        self.head = nn.Linear(FEATURE_DIM, EMBEDDING_DIM, bias=False)

    def branch_chips(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 184, 184) canvases, 0..255 -> (dlib 150x150, SFace 112x112) chips, 0..255."""
        if x.shape[-2:] != (CANVAS_SIZE, CANVAS_SIZE):
            raise ValueError(f"the fused model takes {CANVAS_SIZE}x{CANVAS_SIZE} chips (got {tuple(x.shape[-2:])})")
        n = x.shape[0]
        xd = F.grid_sample(x, self.grid_dlib.expand(n, -1, -1, -1), mode="bilinear", padding_mode="border", align_corners=False)
        xs = F.grid_sample(x, self.grid_sface.expand(n, -1, -1, -1), mode="bilinear", padding_mode="border", align_corners=False)
        return xd, xs

    def chip_features(self, xd: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """Branch chips (0..255; :meth:`branch_chips`) -> (N, 256): dlib's unit encoding, then SFace's."""
        ed = self.dlib((xd - self.mean_dlib) / self.scale_dlib)
        es = self.sface((xs - self.mean_sface) / self.scale_sface)
        return torch.cat([ed, es], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Canvases -> (N, 256): dlib's unit encoding, then SFace's."""
        return self.chip_features(*self.branch_chips(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.flip_tta:
            return F.normalize(self.forward_head(self.forward_features(x)), dim=1)
        n = x.shape[0]
        xd, xs = self.branch_chips(x)
        f = self.chip_features(torch.cat([xd, xd.flip(3)]), torch.cat([xs, xs.flip(3)]))  # one pass over chips + mirrors
        e = F.normalize(self.forward_head(f), dim=1)
        return F.normalize(e[:n] + e[n:], dim=1)

    def head_state_dict(self) -> dict:
        """What a fused weights file holds: the head only (the backbones ship in their own files)."""
        return {"head.weight": self.head.weight.detach().clone()}

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        """Load a fused weights file: the head only (see :meth:`head_state_dict`)."""
        keys = set(state)
        if strict and keys != {"head.weight"}:
            raise RuntimeError(f"a fused model's weights are its head only ('head.weight'); got {sorted(keys)}")
        w = torch.as_tensor(state["head.weight"], dtype=torch.float32)
        if tuple(w.shape) != (EMBEDDING_DIM, FEATURE_DIM):
            raise RuntimeError(f"head.weight must be {EMBEDDING_DIM}x{FEATURE_DIM} (got {tuple(w.shape)})")
        with torch.no_grad():
            self.head.weight.copy_(w)
        return torch.nn.modules.module._IncompatibleKeys([], [])


def spec_entry(model: FusedNet) -> dict:
    """The ``backbones`` entry of a fused spec: each backbone's model id and sha256."""
    return {k: v for k, v in model.backbone_sha256.items()}


def check_backbones(spec_extra: dict | None) -> None:
    """Refuse a fused spec whose backbones are not the shipped files it was trained on."""
    from faceapp.embed.weights import load_spec
    from faceapp.errors import WeightsError

    want = (spec_extra or {}).get("backbones") or {}
    for model_id, sha in want.items():
        have = load_spec(model_id).sha256
        if have != str(sha).lower():
            raise WeightsError(f"fused model needs {model_id} with sha256 {sha}, the installed one is {have}")


def describe() -> str:  # pragma: no cover - a convenience for the card
    d, s = _spec_json(BACKBONES[0]), _spec_json(BACKBONES[1])
    return json.dumps({"canvas_template": canvas_template(s["template"]).round(4).tolist(),
                       "branches": {k: v.round(6).tolist() for k, v in branch_matrices(d["template"], s["template"]).items()}})

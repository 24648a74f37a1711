"""Registry of embedding architectures: a name in a weights spec -> a builder of an nn.Module
whose ``forward`` returns L2-normalised encodings and which exposes ``forward_features`` /
``forward_head``."""

from __future__ import annotations

from collections.abc import Callable

from faceapp.errors import WeightsError

_BUILDERS: dict[str, Callable[..., object]] = {}


def register(name: str):
    def deco(fn):
        _BUILDERS[name] = fn
        return fn

    return deco


def build(architecture: str, **kwargs):
    _load_builtin()
    if architecture not in _BUILDERS:
        raise WeightsError(f"unknown architecture {architecture!r} (known: {', '.join(sorted(_BUILDERS))})")
    return _BUILDERS[architecture](**kwargs)


def architectures() -> list[str]:
    _load_builtin()
    return sorted(_BUILDERS)


def _load_builtin() -> None:
    if "dlib_resnet" not in _BUILDERS:
        from faceapp.embed import dlib_resnet

        _BUILDERS["dlib_resnet"] = lambda **kw: dlib_resnet.DlibResNet(**kw)
    if "sface" not in _BUILDERS:
        from faceapp.embed import sface

        _BUILDERS["sface"] = lambda **kw: sface.SFaceNet(**kw)
    if "fused_dlib_sface" not in _BUILDERS:
        from faceapp.embed import fused

        _BUILDERS["fused_dlib_sface"] = lambda **kw: fused.FusedNet(**kw)
    if "compact_cnn" not in _BUILDERS:
        from faceapp.training import networks

        _BUILDERS["compact_cnn"] = lambda **kw: networks.CompactFaceNet(**kw)

"""Export the inference networks to ONNX: MTCNN's PNet / RNet / ONet, the embedding models, the
68-point landmark model and the anti-spoofing networks.

    python -m faceapp.runtime.export OUT_DIR [--model ID ...] [--landmark-model landmarks-v1]
                                     [--antispoof-model minifasnet-v1] [--if-stale]

Without ``--model`` every embedding model whose weights are in the models folder is exported
(the installer offers what it ships). One file per weights file (``<weights stem>.onnx``): specs
on the same weights, such as ``dlib-resnet-v1`` and its flip-TTA variant, share it.

Needs torch, facenet-pytorch and onnx (the installer build runs it in its build venv, with the
CPU build of torch; ``scripts/setup.sh`` runs it with ``--if-stale`` into ``resources/models/onnx``
of a source checkout); the app then runs the files with ONNX Runtime on the CPU
(faceapp.runtime). Training stays in PyTorch: re-export after the weights change (each file
records the sha256 of the weights it came from and is refused when they differ; ``--if-stale``
rewrites only the files that are missing or were made from other weights).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from faceapp import runtime

OPSET = 17


def _save(model, example, path: Path, input_names, output_names, dynamic_axes, metadata: dict[str, str]) -> None:
    import onnx
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad(), warnings.catch_warnings():
        # tracing warns about shape arithmetic (dlib's zero-padded add): shapes are fixed here
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(tmp), dynamo=False, opset_version=OPSET, do_constant_folding=True,
            input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
        )
    proto = onnx.load(str(tmp))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    tmp.unlink()


MTCNN_SOURCE = "facenet-pytorch MTCNN"


def current(path: Path, source_sha256: str | None = None) -> bool:
    """True when ``path`` is a file this module exported from the weights ``source_sha256`` (for
    MTCNN, None: from facenet-pytorch's weights): ``--if-stale`` keeps it."""
    if not Path(path).is_file():
        return False
    try:
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:  # unreadable or not ONNX: rewrite it
        return False
    if meta.get("producer") != "faceapp.runtime.export":
        return False
    if source_sha256 is None:
        return meta.get("source") == MTCNN_SOURCE
    return meta.get("source_sha256") == source_sha256


def _meta(spec) -> dict[str, str]:
    """What an exported network records of its weights: the runtime refuses a file whose
    ``source_sha256`` is not the spec's (the file was made from other weights)."""
    return {
        "producer": "faceapp.runtime.export",
        "model_id": spec.model_id,
        "source_sha256": spec.sha256,
        "architecture": spec.architecture,
    }


def export_mtcnn(out_dir: Path, *, if_stale: bool = False) -> list[Path]:
    """facenet-pytorch's three MTCNN networks (its shipped weights) -> mtcnn_{p,r,o}net.onnx."""
    if if_stale and all(current(Path(out_dir) / f) for f in runtime.MTCNN_FILES.values()):
        return [Path(out_dir) / f for f in runtime.MTCNN_FILES.values()]
    import torch

    from faceapp.runtime import torchvision_shim

    torchvision_shim.install()
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    out = []
    meta = {"producer": "faceapp.runtime.export", "source": MTCNN_SOURCE}
    specs = [
        ("pnet", PNet(), torch.zeros(1, 3, 48, 64), ["reg", "prob"], {"input": {0: "n", 2: "h", 3: "w"}, "reg": {0: "n", 2: "oh", 3: "ow"}, "prob": {0: "n", 2: "oh", 3: "ow"}}),
        ("rnet", RNet(), torch.zeros(2, 3, 24, 24), ["reg", "prob"], {"input": {0: "n"}, "reg": {0: "n"}, "prob": {0: "n"}}),
        ("onet", ONet(), torch.zeros(2, 3, 48, 48), ["reg", "landmarks", "prob"], {"input": {0: "n"}, "reg": {0: "n"}, "landmarks": {0: "n"}, "prob": {0: "n"}}),
    ]
    for name, net, example, outputs, axes in specs:
        path = out_dir / runtime.MTCNN_FILES[name]
        _save(net.eval(), example, path, ["input"], outputs, axes, meta)
        out.append(path)
    return out


def shipped_model_ids(models_dir: Path | None = None) -> list[str]:
    """The embedding models whose weights file is present (the ones an installer can run)."""
    from faceapp.embed.weights import available_specs

    return [m for m, spec in sorted(available_specs(models_dir).items()) if spec.file.is_file()]


def export_embedder(model_id: str, out_dir: Path, *, if_stale: bool = False) -> Path:
    """The embedding model of ``model_id`` (its checked weights) -> <weights stem>.onnx."""
    from faceapp.embed.weights import load_spec
    from faceapp.runtime.onnx_embedder import onnx_file

    spec = load_spec(model_id)
    if if_stale and current(onnx_file(spec, out_dir), spec.sha256):
        return onnx_file(spec, out_dir)
    import torch

    from faceapp.embed import network

    if (spec.extra or {}).get("backbones"):  # a fused head: exported only with the backbones it was trained on
        from faceapp.embed.fused import check_backbones

        check_backbones(spec.extra)
    model = network.build(spec.architecture)
    model.load_state_dict(spec.load_state_dict(map_location="cpu"))
    meta = _meta(spec)
    if getattr(model, "handles_flip", False):  # the fused model: flip TTA inside the graph
        model.flip_tta = spec.flip_tta
        meta["flip_in_graph"] = "1" if spec.flip_tta else "0"
    example = torch.zeros(2, 3, spec.input_size, spec.input_size)
    path = onnx_file(spec, out_dir)
    _save(model.eval(), example, path, ["input"], ["embedding"], {"input": {0: "n"}, "embedding": {0: "n"}}, meta)
    return path


def export_landmarks(model_id: str, out_dir: Path, *, if_stale: bool = False) -> Path:
    """The 68-point landmark CNN of ``model_id`` (its checked weights) -> <model_id>.onnx:
    normalised crops (N, 3, S, S) -> points (N, 68, 2) in crop pixels (soft-argmax included)."""
    from faceapp.landmarks.spec import load_landmark_spec

    spec = load_landmark_spec(model_id)
    path = Path(out_dir) / f"{spec.model_id}.onnx"
    if if_stale and current(path, spec.sha256):
        return path
    import torch

    from faceapp.landmarks.model import landmark_net

    net = landmark_net(state=spec.load_state_dict(map_location="cpu"), width=spec.width)
    example = torch.zeros(2, 3, spec.input_size, spec.input_size)
    _save(net.eval(), example, path, ["input"], ["points"], {"input": {0: "n"}, "points": {0: "n"}}, _meta(spec))
    return path


def export_antispoof(model_id: str, out_dir: Path, *, if_stale: bool = False) -> list[Path]:
    """The anti-spoofing ensemble of ``model_id`` (its checked weights) -> one <weights stem>.onnx
    per network: BGR crops (N, 3, S, S), 0..255 -> class probabilities (N, 3). The batch norms are
    folded first and the softmax is included, as :class:`faceapp.antispoof.AntiSpoof` runs it on torch."""
    import torch

    from faceapp.antispoof.model import load_antispoof_spec
    from faceapp.antispoof.network import fuse_batch_norms, minifasnet_from_state_dict
    from faceapp.runtime.onnx_antispoof import onnx_file

    spec = load_antispoof_spec(model_id)
    out = []
    for net_spec in spec.networks:
        path = onnx_file(net_spec, out_dir)
        if if_stale and current(path, net_spec.sha256):
            out.append(path)
            continue
        net = fuse_batch_norms(minifasnet_from_state_dict(net_spec.load_state_dict()))
        model = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()
        example = torch.zeros(2, 3, spec.input_size, spec.input_size)
        meta = {"producer": "faceapp.runtime.export", "model_id": spec.model_id, "network": net_spec.name,
                "source_sha256": net_spec.sha256, "scale": str(net_spec.scale)}
        _save(model, example, path, ["input"], ["probabilities"], {"input": {0: "n"}, "probabilities": {0: "n"}}, meta)
        out.append(path)
    return out


def export_all(out_dir: Path, model_ids: list[str], landmark_ids: tuple[str, ...] | list[str] = ("landmarks-v1",),
               antispoof_ids: tuple[str, ...] | list[str] = (), *, if_stale: bool = False) -> list[Path]:
    """Every network named; with ``if_stale`` only those whose file is missing or was exported
    from other weights are (re)written (:func:`current`)."""
    out_dir = Path(out_dir)
    files = export_mtcnn(out_dir, if_stale=if_stale)
    from faceapp.embed.weights import load_spec
    from faceapp.runtime.onnx_embedder import onnx_file

    by_file: dict[Path, str] = {}
    for m in model_ids:  # specs sharing a weights file share its export
        by_file.setdefault(onnx_file(load_spec(m), out_dir), m)
    files += [export_embedder(m, out_dir, if_stale=if_stale) for m in by_file.values()]
    files += [export_landmarks(m, out_dir, if_stale=if_stale) for m in landmark_ids]
    for m in antispoof_ids:
        files += export_antispoof(m, out_dir, if_stale=if_stale)
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m faceapp.runtime.export", description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--model", action="append", dest="models", help="embedding model id (repeatable; default: every model whose weights are present)")
    p.add_argument("--landmark-model", action="append", dest="landmarks",
                   help="68-point landmark model id (repeatable; default: landmarks-v1)")
    p.add_argument("--antispoof-model", action="append", dest="antispoof",
                   help="anti-spoofing model id (repeatable; default: minifasnet-v1)")
    p.add_argument("--if-stale", action="store_true",
                   help="only (re)write the files that are missing or were exported from other weights")
    args = p.parse_args(argv)
    files = export_all(args.out_dir, args.models or shipped_model_ids(), args.landmarks or ["landmarks-v1"],
                       args.antispoof or ["minifasnet-v1"], if_stale=args.if_stale)
    json.dump({"files": [str(f) for f in files], "sizes": {f.name: f.stat().st_size for f in files}}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``faceapp cnn style|patches``: the course toolkit (faceapp.cnn) driven with the project's
face network as the default backbone. The toolkit itself knows nothing of faceapp; this edge
module wires them together."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from faceapp.cli.exit_codes import Exit

#: Residual blocks of the face ResNet that start its stages (32, 64, 128, 256 channels).
FACE_STYLE_LAYERS = ["blocks.0", "blocks.3", "blocks.7", "blocks.10"]


def _face_network(args):
    import torch

    from faceapp.cli.main import _settings
    from faceapp.device import resolve_device
    from faceapp.embed import network
    from faceapp.embed.weights import load_spec

    settings = _settings(args)
    spec = load_spec(settings.model)
    model = network.build(spec.architecture)
    model.load_state_dict(spec.load_state_dict())
    device = resolve_device(settings.device)
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)

    def normalize(x):  # the toolkit's images are RGB in [0, 1]
        return (x * 255.0 - mean) / spec.scale

    return model.to(device).eval(), normalize, spec, device


def add_parsers(add) -> None:
    sp = add("cnn", cmd_cnn, "course tools on the face network: neural style transfer, top-9 patches of a unit")
    sp.add_argument("action", choices=["style", "patches"])
    sp.add_argument("inputs", nargs="*", help="style: CONTENT STYLE images; patches: image files or folders (default: LFW)")
    sp.add_argument("-o", "--out", required=True, help="the PNG to write (style also writes OUT-loss.png)")
    sp.add_argument("--layers", help=f"style layers, comma separated (default {','.join(FACE_STYLE_LAYERS)})")
    sp.add_argument("--content-layer", help="content layer (default: the last style layer)")
    sp.add_argument("--steps", type=int, default=200, help="style: optimisation steps on the pixels")
    sp.add_argument("--size", type=int, default=150, help="style: side of the generated image in pixels")
    sp.add_argument("--alpha", type=float, default=10.0, help="style: weight of the content cost")
    sp.add_argument("--beta", type=float, default=40.0, help="style: weight of the style cost")
    sp.add_argument("--vgg16", metavar="WEIGHTS", help="style: use VGG-16 with this local torchvision state dict instead of the face network")
    sp.add_argument("--layer", default="blocks.7", help="patches: the layer whose unit to look at")
    sp.add_argument("--unit", type=int, default=0, help="patches: the channel index")
    sp.add_argument("--images", type=int, default=200, help="patches: how many faces to search")


def _load_rgb01(path: str, size: int):
    import numpy as np
    from PIL import Image

    from faceapp.imageio import load_image

    img = Image.fromarray(load_image(path)).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


def cmd_cnn(args: argparse.Namespace) -> int:
    if args.action == "style":
        return _style(args)
    return _patches(args)


def _style(args: argparse.Namespace) -> int:
    from faceapp.cnn.style import run_style_transfer, save_image, save_loss_plot

    if len(args.inputs) != 2:
        print("faceapp: cnn style needs CONTENT and STYLE images", file=sys.stderr)
        return int(Exit.USAGE)
    content, style = (_load_rgb01(p, args.size) for p in args.inputs)
    if args.vgg16:
        from faceapp.cnn.style.vgg import VGG16_STYLE_LAYERS, imagenet_normalize, load_vgg16_features

        backbone, normalize = load_vgg16_features(args.vgg16), imagenet_normalize
        layers = args.layers.split(",") if args.layers else list(VGG16_STYLE_LAYERS)
        device = None
    else:
        backbone, normalize, _, device = _face_network(args)
        layers = (args.layers or ",".join(FACE_STYLE_LAYERS)).split(",")
    history = []
    last = None
    for progress in run_style_transfer(
        content, style, backbone, layers, content_layer=args.content_layer, alpha=args.alpha, beta=args.beta,
        steps=args.steps, normalize=normalize, device=device,
    ):
        history.append(progress)
        last = progress
        if sys.stderr.isatty():
            print(f"\rstep {progress.step}/{args.steps} J={progress.total:.4g}", end="", file=sys.stderr)
    out = Path(args.out)
    save_image(last.image, out)
    plot = out.with_name(out.stem + "-loss.png")
    save_loss_plot(history, plot)
    result = {"image": str(out), "loss_plot": str(plot), "steps": len(history), "final_cost": float(last.total)}
    print(json.dumps(result, indent=2) if args.json else f"wrote {out} and {plot} (J = {last.total:.4g})")
    return int(Exit.OK)


def _patches(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from faceapp.cnn.visualize import visualize_unit
    from faceapp.evaluation.protocols import datasets_dir
    from faceapp.imageio import load_image
    from faceapp.pipeline import FaceEngine

    files: list[Path] = []
    sources = [Path(p) for p in args.inputs] or ([datasets_dir() / "lfw" / "images"] if datasets_dir() else [])
    for src in sources:
        files += sorted(src.rglob("*.jpg")) if src.is_dir() else [src]
    if not files:
        print("faceapp: no images (pass files or folders, or set FACEAPP_DATASETS)", file=sys.stderr)
        return int(Exit.USAGE)
    files = files[:: max(1, len(files) // args.images)][: args.images]
    model, normalize, spec, device = _face_network(args)
    from faceapp.cli.main import _settings

    engine = FaceEngine(_settings(args))
    chips = []
    for f in files:
        img = load_image(f)
        dets = engine.detect(img, still=True)
        if dets:
            chips.append(engine.align(img, dets[0]).image)
    x = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float().div(255.0).to(device)

    class Normalized(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, t):
            return self.net(normalize(t))

    wrapped = Normalized(model).eval()
    patches = visualize_unit(wrapped, f"net.{args.layer}", args.unit, x, args.out)
    result = {"image": args.out, "faces": len(chips), "layer": args.layer, "unit": args.unit, "top_activations": [float(p.activation) for p in patches]}
    print(json.dumps(result, indent=2) if args.json else f"wrote {args.out}: the 9 patches of {len(chips)} faces that most activate {args.layer} unit {args.unit}")
    return int(Exit.OK)

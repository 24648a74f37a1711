"""Adopt Silent-Face-Anti-Spoofing's two MiniFASNet weight files as the project's ``minifasnet-v1``.

    python scripts/convert_minifasnet.py [--src ../shared/models] [--threshold 0.5]

The originals are legacy torch pickles of ``nn.DataParallel`` state dicts saved on a GPU (keys
prefixed ``module.``, storages on ``cuda:0``). Each is checked against its known sha256, loaded
with ``torch.load(..., weights_only=True, map_location="cpu")``, loaded strictly into the network
rebuilt in :mod:`faceapp.antispoof.network`, and written again with the prefix removed as a plain
CPU float32 state dict (values unchanged; the conversion asserts equal outputs). The spec
``resources/models/minifasnet_v1.toml`` records the new files' and the originals' sha256; the
licence and a NOTICE are copied beside them. Run it once; the results are committed.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceapp.antispoof.network import minifasnet_from_state_dict, strip_prefix  # noqa: E402
from faceapp.landmarks.spec import dump_toml  # noqa: E402

log = logging.getLogger("convert_minifasnet")

SOURCES = (  # (original file, its sha256, crop scale, network, project file)
    ("2.7_80x80_MiniFASNetV2.pth", "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0", 2.7,
     "MiniFASNetV2", "minifasnet_v1_v2_2p7.pt"),
    ("4_0_0_80x80_MiniFASNetV1SE.pth", "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990", 4.0,
     "MiniFASNetV1SE", "minifasnet_v1_v1se_4p0.pt"),
)
LICENSE_NAME = "LICENSE-Silent-Face-Anti-Spoofing"
REPO = "minivision-ai/Silent-Face-Anti-Spoofing"

NOTICE = """\
faceapp anti-spoofing model minifasnet-v1
==========================================

The files minifasnet_v1_v2_2p7.pt and minifasnet_v1_v1se_4p0.pt contain the model weights of
Silent-Face-Anti-Spoofing (https://github.com/minivision-ai/Silent-Face-Anti-Spoofing),
resources/anti_spoof_models/2.7_80x80_MiniFASNetV2.pth and 4_0_0_80x80_MiniFASNetV1SE.pth,
Copyright 2020 Minivision, licensed under the Apache License, Version 2.0 (the full text is in
minifasnet_v1_LICENSE.txt beside this file).

Changes made by faceapp (scripts/convert_minifasnet.py): the state dicts were re-saved as plain
CPU tensors with the "module." prefix removed from their keys. No weight value was changed.
The network code that runs them (faceapp/antispoof/network.py) is faceapp's own.
"""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT.parent / "shared" / "models")
    ap.add_argument("--out", type=Path, default=ROOT / "resources" / "models")
    ap.add_argument("--threshold", type=float, default=0.4,
                    help="live-score threshold written to the spec (chosen by scripts/eval_antispoof.py)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    networks = []
    for name, digest, scale, arch, out_name in SOURCES:
        src = args.src / name
        if sha256_of(src) != digest:
            raise SystemExit(f"{src}: sha256 differs from the released file's {digest[:12]}...")
        original = torch.load(src, map_location="cpu", weights_only=True)
        state = {k: v.detach().to("cpu").clone().contiguous() for k, v in strip_prefix(original).items()}
        net = minifasnet_from_state_dict(state)  # strict: every tensor has its place
        out = args.out / out_name
        torch.save(state, out)
        again = minifasnet_from_state_dict(torch.load(out, map_location="cpu", weights_only=True))
        x = torch.rand(4, 3, 80, 80, generator=torch.Generator().manual_seed(0)) * 255
        with torch.inference_mode():
            if not torch.equal(net(x), again(x)):
                raise SystemExit(f"{out}: the re-saved weights do not give the same outputs")
        params = sum(v.numel() for k, v in state.items() if v.is_floating_point() and "running_" not in k)
        log.info("%s -> %s: %d tensors, %d parameters, SE=%s", name, out.name, len(state), params, net.shape.has_se)
        networks.append({
            "name": arch, "file": out.name, "sha256": sha256_of(out), "scale": scale,
            "source": f"{REPO} : resources/anti_spoof_models/{name}", "source_sha256": digest,
            "parameters": params,
        })
    shutil.copyfile(args.src / LICENSE_NAME, args.out / "minifasnet_v1_LICENSE.txt")
    (args.out / "minifasnet_v1_NOTICE.txt").write_text(NOTICE, encoding="utf-8")
    head = dump_toml({
        "model_id": "minifasnet-v1",
        "architecture": "minifasnet",
        "input_size": 80,
        "channel_order": "BGR",
        "pixel_scale": 1.0,
        "live_class": 1,
        "threshold": float(args.threshold),
        "threshold_note": "live score (mean softmax of class 1) at or above which a frame reads as live; "
                          "chosen on development files, see docs/antispoof.md",
        "card": "minifasnet_v1.md",
        "license": "Apache-2.0 (Copyright 2020 Minivision); minifasnet_v1_LICENSE.txt, minifasnet_v1_NOTICE.txt",
    })
    body = "".join("\n[[networks]]\n" + dump_toml(n) for n in networks)
    (args.out / "minifasnet_v1.toml").write_text(head + body, encoding="utf-8")
    log.info("wrote %s", args.out / "minifasnet_v1.toml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

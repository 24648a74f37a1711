"""Training and inference throughput (images/s) of the trainable architectures on this machine.

    python scripts/train_bench.py [--device cuda] [--batch 256] [--seconds 8] [--arch sface:-1 ...]

A training step is what ``faceapp train fit`` does per batch: on-device augmentation, forward
(bf16 autocast on CUDA), batch-hard mining, triplet loss, backward and an AdamW step. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from faceapp.training.augment import BatchAugmenter  # noqa: E402
from faceapp.training.losses import triplet_loss  # noqa: E402
from faceapp.training.mining import batch_hard  # noqa: E402
from faceapp.training.trainer import TrainConfig, build_model  # noqa: E402


def bench(arch: str, device: torch.device, batch: int, seconds: float, freeze: int) -> dict:
    cfg = TrainConfig(arch=arch, freeze_stages=freeze)
    model = build_model(cfg).to(device)
    amp = device.type == "cuda"
    if amp:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    aug = BatchAugmenter(device=device)
    size = 112 if arch == "sface" else 150  # the chips of its cache (the model's template)
    chips = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, device=device)
    labels = torch.arange(batch, device=device) // 4
    mean = torch.tensor(cfg.mean, device=device).view(1, 3, 1, 1)

    def step() -> None:
        x = (aug(chips.permute(0, 3, 1, 2).float()) - mean) / cfg.scale
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            raw = model.forward_head(model.forward_features(x))
        emb = F.normalize(raw.float(), dim=1)
        loss = triplet_loss(emb, batch_hard(emb.detach(), labels))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def timed(fn, secs: float) -> float:
        fn()
        if amp:
            torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < secs:
            fn()
            n += 1
        if amp:
            torch.cuda.synchronize()
        return n * batch / (time.perf_counter() - t0)

    train = timed(step, seconds)
    model.eval()

    @torch.no_grad()
    def infer() -> None:
        x = (chips.permute(0, 3, 1, 2).float() - mean) / cfg.scale
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            model(x)

    return {"arch": arch, "frozen_stages": freeze, "batch": batch, "train_images_per_s": round(train, 1),
            "inference_images_per_s": round(timed(infer, seconds / 2), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--arch", action="append", metavar="ARCH[:FROZEN]",
                    help="architecture and frozen stages (repeatable; default dlib_resnet:2 compact_cnn sface)")
    args = ap.parse_args()
    args.runs = [(a.split(":")[0], int(a.split(":")[1]) if ":" in a else -1)
                 for a in (args.arch or ["dlib_resnet:2", "compact_cnn", "sface"])]
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    out = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
           "results": [bench(arch, dev, args.batch, args.seconds, freeze) for arch, freeze in args.runs]}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

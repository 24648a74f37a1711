"""Train the shipped landmark model and its ablations on one GPU machine, inside a time budget.

Runs ``python -m faceapp landmarks train`` four times at once (one GPU is plenty for this small
network): the model that ships (all 1207 training faces) and three runs that hold out 10% of the
training faces to compare recipes without touching the test split: the same recipe, a backbone
from random weights (no transfer), and a backbone frozen throughout (head only). A short
benchmark first picks the number of epochs that fits ``--budget`` seconds.

    python scripts/landmarks_gpu_train.py --out OUTDIR [--budget 330] [--max-epochs 300]

Needs FACEAPP_DATASETS (300w-subset/train) and the MTCNN box cache in FACEAPP_HOME (made by a
first ``faceapp landmarks train`` or ``eval`` on a machine with facenet-pytorch).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

TRAIN_FACES = 1207


DEVICE = "cuda"
LIMIT: list[str] = []


def train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "faceapp", "landmarks", "train", "--device", DEVICE, "--threads", "2",
            "--out", str(out), *LIMIT, *extra]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=330.0, help="seconds for the four training runs together")
    ap.add_argument("--max-epochs", type=int, default=300)
    ap.add_argument("--min-epochs", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--bench-limit", type=int, default=320, help="faces in the benchmark runs")
    ap.add_argument("--device", default="cuda", help="(cpu only to try this script out)")
    ap.add_argument("--limit", type=int, help="(train on the first N faces only, to try this script out)")
    args = ap.parse_args()
    global DEVICE, LIMIT
    DEVICE = args.device
    LIMIT = ["--limit", str(args.limit)] if args.limit else []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_WAIT_POLICY": "PASSIVE"}

    # 1. benchmark: four concurrent short runs (the load of the real thing), last epoch's step time
    t0 = time.time()
    bench = [subprocess.Popen(train_cmd(Path(f"/tmp/lm-bench{i}"), "--limit", str(args.bench_limit), "--epochs", "3",
                                        "--freeze-epochs", "1", "--batch-size", str(args.batch_size)),
                              env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
             for i in range(4)]
    step_s = []
    for p in bench:
        err = p.communicate()[1]
        secs = re.findall(r"epoch\s+3/3 all .*\(([\d.]+) s\)", err)
        if p.returncode != 0 or not secs:
            print(err[-3000:], file=sys.stderr)
            return 1
        step_s.append(float(secs[-1]) / (args.bench_limit // args.batch_size))
    per_step = max(step_s)
    steps_per_epoch = (args.limit or TRAIN_FACES) // args.batch_size
    epochs = int(min(args.max_epochs, max(args.min_epochs, args.budget / (per_step * steps_per_epoch))))
    epochs = max(args.min_epochs, int(math.floor(epochs / 10) * 10))
    print(f"benchmark {time.time() - t0:.0f} s: {per_step * 1e3:.1f} ms/step with 4 runs -> {epochs} epochs",
          flush=True)

    # 2. the four runs
    runs = {
        "full": train_cmd(out / "full", "--epochs", str(epochs)),
        "val": train_cmd(Path("/tmp/lm-val"), "--epochs", str(epochs), "--val-fraction", "0.1"),
        "scratch": train_cmd(Path("/tmp/lm-scratch"), "--epochs", str(epochs), "--val-fraction", "0.1",
                             "--scratch", "--freeze-epochs", "0"),
        "frozen": train_cmd(Path("/tmp/lm-frozen"), "--epochs", str(epochs), "--val-fraction", "0.1",
                            "--freeze-epochs", str(epochs)),
    }
    procs = {}
    for name, cmd in runs.items():
        log = open(out / f"{name}.log", "w")
        procs[name] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    t1 = time.time()
    for name, (p, log) in procs.items():
        rc = p.wait()
        log.close()
        print(f"{name}: exit {rc} after {time.time() - t1:.0f} s", flush=True)
        tail = (out / f"{name}.log").read_text().strip().splitlines()[-2:]
        print("   " + "\n   ".join(tail), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

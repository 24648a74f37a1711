"""Embedding time per face of every shipped model, on both inference runtimes (issue 13 item 6).

For each model in resources/models (``faceapp models``) and each runtime (torch, as a source
install runs it; ONNX Runtime, as the installers do, from the files ``python -m
faceapp.runtime.export DIR`` writes), one LFW face is detected, aligned onto the model's template
and encoded ``--runs`` times, one face per call (a door encodes one face per frame); the median
and the fastest call are reported in milliseconds. A model with flip TTA encodes two chips per
face, which its time includes. Run it on a quiet machine: the figures are only as steady as the
CPU is idle.

    FACEAPP_DATASETS=../shared/datasets OMP_WAIT_POLICY=PASSIVE .venv/bin/python scripts/bench_embedders.py \
        --onnx-dir /tmp/onnx --json docs/accuracy/embed-ms.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _face_image() -> Path:
    root = os.environ.get("FACEAPP_DATASETS")
    if not root:
        raise SystemExit("bench_embedders: set FACEAPP_DATASETS to the folder that holds lfw/")
    path = Path(root) / "lfw" / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg"
    if not path.is_file():
        raise SystemExit(f"bench_embedders: {path} is missing")
    return path


def time_model(model_id: str, runs: int, image) -> dict:
    """Median and fastest ms per face of ``model_id`` on the runtime FACEAPP_BACKEND selects."""
    from faceapp import runtime
    from faceapp.config import Settings
    from faceapp.pipeline import FaceEngine

    engine = FaceEngine(Settings(device="cpu", model=model_id))
    detections = engine.relevant(engine.detect(image))
    if not detections:
        raise SystemExit(f"bench_embedders: no face found for {model_id}")
    chip = engine.align(image, detections[0]).image
    embedder = engine.embedder
    for _ in range(3):  # warm-up: first calls allocate
        embedder.embed([chip])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        embedder.embed([chip])
        times.append((time.perf_counter() - t0) * 1e3)
    return {"model": model_id, "backend": runtime.backend(), "input_size": engine.spec.input_size,
            "flip_tta": bool(engine.spec.flip_tta), "median_ms": round(statistics.median(times), 2),
            "min_ms": round(min(times), 2), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50, help="timed calls per model and runtime (default 50)")
    ap.add_argument("--onnx-dir", type=Path, default=None,
                    help="folder of ONNX exports (python -m faceapp.runtime.export DIR); without it only torch is timed")
    ap.add_argument("--models", default="", help="comma-separated model ids (default: every shipped model)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    from faceapp import runtime
    from faceapp.embed.weights import available_specs
    from faceapp.imageio import load_image

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    models = [m for m in args.models.split(",") if m] or sorted(available_specs())
    image = load_image(_face_image())
    backends = ["torch"]
    if args.onnx_dir is not None:
        if not any(args.onnx_dir.glob("*.onnx")):
            ap.error(f"no ONNX files in {args.onnx_dir} (make them with: python -m faceapp.runtime.export DIR)")
        backends.append("onnx")
        os.environ[runtime.ONNX_DIR_ENV] = str(args.onnx_dir)
    rows = []
    for backend in backends:
        os.environ[runtime.BACKEND_ENV] = backend
        for m in models:
            row = time_model(m, args.runs, image)
            rows.append(row)
            print(f"{m:24s} {backend:5s} {row['input_size']:4d} px{' x2 (flip TTA)' if row['flip_tta'] else '':15s} "
                  f"median {row['median_ms']:7.2f} ms, fastest {row['min_ms']:7.2f} ms")
    report = {"cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How long a gallery import makes a door wait for the database.

Exports N synthetic people (unit 128-d embeddings, 150x150 JPEG faces) from one database,
then imports them into another while a "door" thread writes one event every 20 ms to the
same database and records how long each write took. Reports the import's time and the
door's worst and median write latency during it.

    .venv/bin/python scripts/bench_import_lock.py --people 2000 [--url sqlite:///...] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from faceapp.store.repository import ModelFacts, Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--url", help="database to import into (default: a fresh SQLite file)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    models = {"bench": ModelFacts(embedding_dim=128, input_size=150)}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=90)
        face = buf.getvalue()
        with Store(f"sqlite:///{tmp / 'src.db'}", models=models) as src:
            for i in range(args.people):
                v = rng.normal(size=128).astype(np.float32)
                src.add_person(f"person {i}", embedding=v / np.linalg.norm(v), model_id="bench", quality=0.9,
                               face_jpeg=face)
            src.export_gallery(tmp / "gallery.zip")
        url = args.url or f"sqlite:///{tmp / 'dst.db'}"
        with Store(url, models=models) as dst, Store(url, models=models) as door:
            latencies: list[float] = []
            failures: list[str] = []
            stop = threading.Event()

            def door_loop() -> None:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    try:
                        door.log_event("door", detail="bench")
                    except Exception as exc:  # counted: a door write that could not be made
                        failures.append(str(exc))
                    latencies.append(time.perf_counter() - t0)
                    time.sleep(0.02)

            thread = threading.Thread(target=door_loop)
            thread.start()
            t0 = time.perf_counter()
            result = dst.import_gallery(tmp / "gallery.zip")
            took = time.perf_counter() - t0
            time.sleep(0.1)
            stop.set()
            thread.join()
    out = {
        "people": args.people,
        "imported": result.added,
        "import_s": round(took, 3),
        "door_writes": len(latencies),
        "door_write_ms_median": round(1000 * statistics.median(latencies), 1),
        "door_write_ms_max": round(1000 * max(latencies), 1),
        "door_write_failures": len(failures),
    }
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()

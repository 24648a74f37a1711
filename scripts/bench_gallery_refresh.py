"""How fast an enrollment or a removal reaches another door (PostgreSQL LISTEN/NOTIFY).

One "admin" store enrolls and removes people; a "door" store watches. Reports, over N
changes, the time from the admin's commit to the door's notification (median and worst),
and the same for SQLite's generation check polled every 0.1 s for comparison.

    .venv/bin/python scripts/bench_gallery_refresh.py --changes 50 [--url postgresql+psycopg://...]

Without --url it starts a throwaway PostgreSQL cluster (tests/pg_cluster.py; needs Debian's
postgresql binaries) on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from faceapp.store.repository import Store


def _unit(rng) -> np.ndarray:
    v = rng.normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v)


def measure_pg(url: str, changes: int) -> list[float]:
    rng = np.random.default_rng(0)
    heard: dict[int, float] = {}
    cv = threading.Condition()

    def on_change(generation):
        if generation is not None:
            with cv:
                heard[generation] = time.perf_counter()
                cv.notify_all()

    with Store(url) as admin, Store(url) as door:
        watcher = door.watch(on_change)
        assert watcher is not None and watcher.connected.wait(10)
        latencies = []
        for i in range(changes):
            if i % 2 == 0:
                admin.add_person(f"p{i}", embedding=_unit(rng), model_id="bench", quality=1.0, face_jpeg=b"j")
            else:
                admin.remove_person(f"p{i - 1}")
            committed = time.perf_counter()
            generation = admin.generation()[0]
            with cv:
                cv.wait_for(lambda: generation in heard, timeout=10)
            latencies.append(heard.get(generation, float("inf")) - committed)
        watcher.close()
    return latencies


def measure_sqlite(changes: int, poll_s: float = 0.1) -> list[float]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'f.db'}"
        with Store(url) as admin, Store(url) as door:
            latencies = []
            for i in range(changes):
                before = door.generation()
                if i % 2 == 0:
                    admin.add_person(f"p{i}", embedding=_unit(rng), model_id="bench", quality=1.0, face_jpeg=b"j")
                else:
                    admin.remove_person(f"p{i - 1}")
                committed = time.perf_counter()
                while door.generation() == before:
                    time.sleep(poll_s)
                latencies.append(time.perf_counter() - committed)
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--url", help="a PostgreSQL URL (default: a throwaway cluster)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pg_cluster import throwaway_database

    with throwaway_database(args.url) as url:
        pg = measure_pg(url, args.changes)
    lite = measure_sqlite(args.changes)
    out = {
        "changes": args.changes,
        "postgresql_notify_ms_median": round(1000 * statistics.median(pg), 2),
        "postgresql_notify_ms_max": round(1000 * max(pg), 2),
        "sqlite_generation_poll_ms_median": round(1000 * statistics.median(lite), 2),
        "sqlite_generation_poll_ms_max": round(1000 * max(lite), 2),
    }
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()

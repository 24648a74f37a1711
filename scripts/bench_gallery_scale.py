"""Gallery size at building scale: load time and memory per door, and identify time.

Fills a database with N people (one sealed 128-d template each, written straight into the
tables in bulk, sealed exactly as the store seals them), then, in this process, measures a
door's gallery load (Store.gallery: read, unwrap each data key, open each template) and its
peak memory, and the time of one exact 1:K search (one matrix product) on the loaded matrix.

    .venv/bin/python scripts/bench_gallery_scale.py --sizes 10000,100000 [--url URL] [--json]

Without --url it uses a throwaway PostgreSQL cluster (tests/pg_cluster.py). Bounded: it
stops after the sizes given; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert, text

from faceapp.match.gallery import Gallery as MatchGallery
from faceapp.store import crypto
from faceapp.store.repository import _PEOPLE, _TEMPLATES, Store, _aad, _dek_aad


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fill(store: Store, n: int, rng: np.random.Generator) -> None:
    key = store._site_key  # the bench seals as the store does (same functions, same AAD)
    batch = 5000
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM templates"))
        conn.execute(text("DELETE FROM people"))
    for start in range(0, n, batch):
        ids = range(start + 1, min(n, start + batch) + 1)
        vecs = rng.normal(size=(len(ids), 128)).astype("<f4")
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        deks = [crypto.new_data_key() for _ in ids]
        people = [{"id": i, "name": f"person {i}", "name_key": f"person {i}", "data_key": key.wrap(d, aad=_dek_aad(i)),
                   "created_at": T0, "updated_at": T0} for i, d in zip(ids, deks)]
        templates = [{"person_id": i, "embedding": crypto.seal(d, v.tobytes(), aad=_aad(i, "embedding")), "dim": 128,
                      "model_id": "bench", "face_jpeg": crypto.seal(d, b"x" * 64, aad=_aad(i, "face")),
                      "quality": 1.0, "sealed": True, "created_at": T0}
                     for i, d, v in zip(ids, deks, vecs)]
        with store.engine.begin() as conn:
            conn.execute(insert(_PEOPLE), people)
            conn.execute(insert(_TEMPLATES), templates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--url")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pg_cluster import throwaway_database

    rows = []
    rng = np.random.default_rng(0)
    with throwaway_database(args.url) as url:
        with Store(url) as store:
            for n in [int(x) for x in args.sizes.split(",")]:
                fill(store, n, rng)
                rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                t0 = time.perf_counter()
                gallery = store.gallery("bench")
                load_s = time.perf_counter() - t0
                rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                matcher = MatchGallery(gallery.names, gallery.person_ids, gallery.embeddings)
                probe = gallery.embeddings[n // 2] + 0.01
                probe /= np.linalg.norm(probe)
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    matcher.nearest(probe, 5)
                    times.append(time.perf_counter() - t0)
                rows.append({"templates": n, "load_s": round(load_s, 2),
                             "peak_memory_growth_mb": round((rss1 - rss0) / 1024, 1),
                             "matrix_mb": round(gallery.embeddings.nbytes / 2**20, 1),
                             "identify_ms": round(1000 * sorted(times)[2], 2)})
                del gallery, matcher
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(r)


if __name__ == "__main__":
    main()

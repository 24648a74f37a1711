"""Gallery size at building scale: load time and memory per door, identify time exact and
through the approximate index, and the index's recall against exact search.

Fills a database with N people (one sealed 128-d template each, random unit vectors, written
straight into the tables in bulk, sealed exactly as the store seals them). Then a fresh child
process (so its peak memory is the load's own) measures a door's gallery load (Store.gallery:
a streamed read, unwrap each data key, open each template into one preallocated matrix), its
peak memory growth, the index build, and ``nearest(k=5)`` for Q probes exact and indexed: half
genuine (a gallery row plus noise, squared distance spread over 0 .. 1.5 tau), half strangers
(random unit vectors). Recall@1: the indexed top-1 person is the exact one; within-tau recall:
of the people exact search puts within tau (among its top 5), the share the index finds too;
same decision: OpenSetRule(cap=tau, margin) gives the same name (or none) and ambiguity on both.

    nice -n 10 .venv/bin/python scripts/bench_gallery_scale.py --sizes 10000,100000,1000000 [--nprobe N] [--url URL] [--json]

Without --url it uses a throwaway PostgreSQL cluster (tests/pg_cluster.py). Bounded: it
stops after the sizes given; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from queue import Empty

import numpy as np
from sqlalchemy import insert, text

from faceapp.match.gallery import Gallery as MatchGallery
from faceapp.match.open_set import OpenSetRule
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


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _probes(matrix: np.ndarray, q: int, tau: float, rng: np.random.Generator) -> np.ndarray:
    """q // 2 genuine probes (a row plus noise, squared distance about U(0, 1.5 tau)), the rest strangers."""
    n, dim = matrix.shape
    g = q // 2
    rows = rng.choice(n, g, replace=False)
    noise = rng.normal(size=(g, dim)).astype(np.float32)
    noise -= (noise * matrix[rows]).sum(1, keepdims=True) * matrix[rows]  # orthogonal to the row
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    d = rng.uniform(0, 1.5 * tau, size=(g, 1)).astype(np.float32)  # ||a - b||^2 = 2 - 2 cos
    cos = 1 - d / 2
    genuine = cos * matrix[rows] + np.sqrt(1 - cos**2) * noise
    strangers = rng.normal(size=(q - g, dim)).astype(np.float32)
    strangers /= np.linalg.norm(strangers, axis=1, keepdims=True)
    return np.vstack([genuine, strangers])


def measure(url: str, n: int, q: int, tau: float, margin: float, nprobe: int | None, queue) -> None:
    """In a child process: load, index, search; puts one result row on ``queue``."""
    with Store(url) as store:
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        gallery = store.gallery("bench")
        load_s = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    exact = MatchGallery(gallery.names, gallery.person_ids, gallery.embeddings, index_from=2**62)
    t0 = time.perf_counter()
    indexed = MatchGallery(gallery.names, gallery.person_ids, gallery.embeddings, index_from=0)
    build_s = time.perf_counter() - t0
    if nprobe:
        indexed.index.nprobe = nprobe
    probes = _probes(gallery.embeddings, q, tau, np.random.default_rng(1))
    rule = OpenSetRule(None, margin=margin, cap=tau)
    te, ti, top1, within, within_found, same = [], [], 0, 0, 0, 0
    for p in probes:
        t0 = time.perf_counter()
        a = exact.nearest(p, 5)
        te.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = indexed.nearest(p, 5)
        ti.append(time.perf_counter() - t0)
        top1 += a[0].person_id == b[0].person_id
        wa = {c.person_id for c in a if c.distance <= tau}
        within += len(wa)
        within_found += len(wa & {c.person_id for c in b if c.distance <= tau})
        ra, rb = rule.read(a, n), rule.read(b, n)
        same += (ra.name, ra.ambiguous) == (rb.name, rb.ambiguous)
    queue.put({"templates": n, "load_s": round(load_s, 2), "peak_memory_growth_mb": round(peak - rss0, 1),
               "matrix_mb": round(gallery.embeddings.nbytes / 2**20, 1), "index_build_s": round(build_s, 2),
               "index_cells": indexed.index.nlist, "index_nprobe": indexed.index.nprobe,
               "exact_p50_ms": round(1000 * float(np.percentile(te, 50)), 2),
               "exact_p99_ms": round(1000 * float(np.percentile(te, 99)), 2),
               "index_p50_ms": round(1000 * float(np.percentile(ti, 50)), 2),
               "index_p99_ms": round(1000 * float(np.percentile(ti, 99)), 2),
               "recall_at_1": round(top1 / len(probes), 4),
               "within_tau_recall": round(within_found / within, 4) if within else None, "within_tau_people": within,
               "same_decision": round(same / len(probes), 4), "probes": len(probes)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--url")
    ap.add_argument("--probes", type=int, default=400)
    ap.add_argument("--tau", type=float, default=0.6, help="squared-distance threshold of the decisions compared")
    ap.add_argument("--margin", type=float, default=0.02)
    ap.add_argument("--nprobe", type=int, help="index cells searched per probe (default: the index's own)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pg_cluster import throwaway_database

    rows = []
    rng = np.random.default_rng(0)
    ctx = multiprocessing.get_context("spawn")
    with throwaway_database(args.url) as url:
        for n in [int(x) for x in args.sizes.split(",")]:
            with Store(url) as store:
                t0 = time.perf_counter()
                fill(store, n, rng)
                fill_s = time.perf_counter() - t0
            queue = ctx.Queue()
            child = ctx.Process(target=measure, args=(url, n, args.probes, args.tau, args.margin, args.nprobe, queue))
            child.start()
            row = None
            while row is None:
                try:
                    row = queue.get(timeout=5)
                except Empty:
                    if not child.is_alive():
                        raise SystemExit(f"the measuring process for {n} templates died (exit {child.exitcode})")
            child.join()
            row["fill_s"] = round(fill_s, 1)
            rows.append(row)
            print(json.dumps(row) if args.json else row, flush=True)


if __name__ == "__main__":
    main()

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

    nice -n 10 .venv/bin/python scripts/bench_gallery_scale.py --sizes 10000,100000,1000000 \\
        [--nprobe default,32] [--url URL] [--json]

Without --url it uses a throwaway PostgreSQL cluster (tests/pg_cluster.py). Bounded: it
stops after the sizes given; nothing leaves the machine.

With --real-lfw it measures the index on real faces instead (no database: in memory): LFW
people with at least two images encoded by faceapp's own front end (FaceEngine, --model), the
first image of each enrolled and the others probed as genuine attempts, one-image people probed
as strangers; the gallery is filled up to each size with random unit vectors. Each probe is
decided by the door's rule (the model's calibration curve for the gallery's size, capped at the
model's tau; the margin) with exact search and through the index (--nprobe as above):

    nice -n 10 .venv/bin/python scripts/bench_gallery_scale.py --real-lfw --sizes 500,100000,1000000 \\
        --nprobe default,32 --json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
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
        people = [{"id": i, "name": f"person {i}", "name_key": f"person {i}", "data_key": key.wrap(d, aad=_dek_aad(i, f"person {i}")),
                   "created_at": T0, "updated_at": T0} for i, d in zip(ids, deks)]
        templates = [{"person_id": i, "embedding": crypto.seal(d, v.tobytes(), aad=_aad(i, "embedding")), "dim": 128,
                      "model_id": "bench", "face_jpeg": crypto.seal(d, b"x" * 64, aad=_aad(i, "face")),
                      "quality": 1.0, "sealed": True, "created_at": T0}
                     for i, d, v in zip(ids, deks, vecs)]
        with store.engine.begin() as conn:
            conn.execute(insert(_PEOPLE), people)
            conn.execute(insert(_TEMPLATES), templates)
    # rows written around the store: its gallery record (docs/security.md) says they are its own
    with store._writing() as s:
        store._write_gallery_record(s, store._lock_gallery(s))


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


def measure(url: str, n: int, q: int, tau: float, margin: float, nprobes: list[int | None], queue) -> None:
    """In a child process: load, index, search; puts one result row per cells-searched value
    (None: the index's default) on ``queue``."""
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
    default = indexed.index.nprobe
    probes = _probes(gallery.embeddings, q, tau, np.random.default_rng(1))
    rule = OpenSetRule(None, margin=margin, cap=tau)
    te, want = [], []
    for p in probes:
        t0 = time.perf_counter()
        want.append(exact.nearest(p, 5))
        te.append(time.perf_counter() - t0)
    for nprobe in nprobes:
        indexed.index.nprobe = default if nprobe is None else nprobe
        ti, top1, within, within_found, same = [], 0, 0, 0, 0
        for p, a in zip(probes, want):
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
                   "nprobe_is_default": indexed.index.nprobe == default,
                   "exact_p50_ms": round(1000 * float(np.percentile(te, 50)), 2),
                   "exact_p99_ms": round(1000 * float(np.percentile(te, 99)), 2),
                   "index_p50_ms": round(1000 * float(np.percentile(ti, 50)), 2),
                   "index_p99_ms": round(1000 * float(np.percentile(ti, 99)), 2),
                   "recall_at_1": round(top1 / len(probes), 4),
                   "within_tau_recall": round(within_found / within, 4) if within else None,
                   "within_tau_people": within, "within_tau_found": within_found,
                   "same_decision": round(same / len(probes), 4), "probes": len(probes)})
    queue.put(None)


def lfw_faces(lfw: Path, people: int, per_person: int, strangers: int, model: str) -> dict:
    """Real encodings from faceapp's own front end (FaceEngine: detect, align, embed; cached
    under ~/.cache/faceapp/eval): ``people`` LFW people with at least two images (chosen with a
    fixed seed), their first image enrolled and up to ``per_person - 1`` more as genuine probes,
    and ``strangers`` one-image people as stranger probes."""
    from faceapp.config import Settings
    from faceapp.evaluation.runner import EvalCache, embed_images
    from faceapp.match.open_set import OpenSetRule
    from faceapp.pipeline import FaceEngine

    counts = {}
    for line in (lfw / "lfw-names.txt").read_text().split("\n"):
        if line.strip():
            name, c = line.split()
            counts[name] = int(c)
    rng = np.random.default_rng(0)
    multi = sorted(n for n, c in counts.items() if c >= 2)
    single = sorted(n for n, c in counts.items() if c == 1)
    chosen = sorted(rng.choice(multi, min(people, len(multi)), replace=False).tolist())
    alone = sorted(rng.choice(single, min(strangers, len(single)), replace=False).tolist())
    images, owner, role = [], [], []
    for name in chosen:
        for i in range(1, min(counts[name], per_person) + 1):
            images.append(lfw / "images" / name / f"{name}_{i:04d}.jpg")
            owner.append(name)
            role.append("enrol" if i == 1 else "genuine")
    for name in alone:
        images.append(lfw / "images" / name / f"{name}_0001.jpg")
        owner.append(name)
        role.append("stranger")
    engine = FaceEngine(Settings(device="cpu", model=model))
    t0 = time.perf_counter()

    def progress(done, total):
        print(f"\r{done}/{total} detections + encodings ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr,
              flush=True)

    table = embed_images(engine, images, cache=EvalCache(engine), progress=progress)
    print(file=sys.stderr)
    emb = table.embeddings / np.linalg.norm(table.embeddings, axis=1, keepdims=True)
    return {"embeddings": emb.astype(np.float32), "owner": np.array(owner), "role": np.array(role),
            "no_face": len(table.fallback), "tau": float(engine.threshold),
            "rule": OpenSetRule.from_settings(engine.settings, engine.spec, cap=engine.threshold)}


def measure_real(faces: dict, n: int, nprobes: list[int | None], rng: np.random.Generator) -> list[dict]:
    """The enrolled LFW faces in a gallery filled up to ``n`` templates with random unit vectors
    (in memory: the load is measured by the random bench); every genuine and stranger probe
    decided by the door's rule (calibration curve for n people, capped at tau; margin) with exact
    search and through the index, one row per cells-searched value (None: the default)."""
    emb, owner, role = faces["embeddings"], faces["owner"], faces["role"]
    enrol = np.flatnonzero(role == "enrol")
    fill_n = max(0, n - len(enrol))
    filler = rng.normal(size=(fill_n, emb.shape[1])).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    names = [str(owner[i]) for i in enrol] + [f"random {i}" for i in range(fill_n)]
    matrix = np.vstack([emb[enrol], filler])
    pids = np.arange(len(names))
    exact = MatchGallery(names, pids, matrix, index_from=2**62)
    t0 = time.perf_counter()
    indexed = MatchGallery(names, pids, matrix)
    build_s = time.perf_counter() - t0
    rule, tau = faces["rule"], faces["tau"]
    probes = np.flatnonzero(role != "enrol")
    te, want = [], []
    for i in probes:
        t0 = time.perf_counter()
        want.append(exact.nearest(emb[i], 5))
        te.append(time.perf_counter() - t0)
    default = indexed.index.nprobe if indexed.index else None
    rows = []
    for nprobe in nprobes if indexed.index else [None]:
        if indexed.index:
            indexed.index.nprobe = default if nprobe is None else nprobe
        stats = dict.fromkeys(("genuine", "stranger", "exact_accept_right", "exact_accept_wrong", "index_accept_right",
                               "index_accept_wrong", "same_decision", "within", "within_found"), 0)
        ti = []
        for i, a in zip(probes, want):
            t0 = time.perf_counter()
            b = indexed.nearest(emb[i], 5)
            ti.append(time.perf_counter() - t0)
            ra, rb = rule.read(a, n), rule.read(b, n)
            stats[str(role[i])] += 1
            for who, r in (("exact", ra), ("index", rb)):
                if r.name is not None:
                    stats[f"{who}_accept_{'right' if r.name == owner[i] else 'wrong'}"] += 1
            stats["same_decision"] += (ra.name, ra.ambiguous) == (rb.name, rb.ambiguous)
            wa = {c.person_id for c in a if c.distance <= tau}
            stats["within"] += len(wa)
            stats["within_found"] += len(wa & {c.person_id for c in b if c.distance <= tau})
        rows.append({
            "templates": n, "real_enrolled": len(enrol), "random_fill": fill_n, "tau": round(tau, 4),
            "t_n": round(rule.threshold(n), 4), "index": indexed.index is not None,
            "index_cells": indexed.index.nlist if indexed.index else None,
            "index_nprobe": indexed.index.nprobe if indexed.index else None,
            "nprobe_is_default": indexed.index is None or indexed.index.nprobe == default,
            "index_build_s": round(build_s, 2), "genuine_probes": stats["genuine"],
            "stranger_probes": stats["stranger"], "no_face_found": faces["no_face"],
            "exact_right": stats["exact_accept_right"], "exact_wrong": stats["exact_accept_wrong"],
            "index_right": stats["index_accept_right"], "index_wrong": stats["index_accept_wrong"],
            "same_decision": round(stats["same_decision"] / len(probes), 4), "within_tau_people": stats["within"],
            "within_tau_found": stats["within_found"],
            "within_tau_recall": round(stats["within_found"] / stats["within"], 4) if stats["within"] else None,
            "exact_p50_ms": round(1000 * float(np.percentile(te, 50)), 2),
            "index_p50_ms": round(1000 * float(np.percentile(ti, 50)), 2)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--url")
    ap.add_argument("--probes", type=int, default=400)
    ap.add_argument("--tau", type=float, default=0.6, help="squared-distance threshold of the decisions compared")
    ap.add_argument("--margin", type=float, default=0.02)
    ap.add_argument("--nprobe", default="default",
                    help="index cells searched per probe, comma-separated values measured on one load "
                         "('default': the index's own; e.g. default,32,128)")
    ap.add_argument("--real-lfw", action="store_true",
                    help="real LFW faces (FaceEngine encodings) in galleries filled with random vectors, in memory")
    ap.add_argument("--lfw", type=Path, help="the LFW folder (default: $FACEAPP_DATASETS/lfw)")
    ap.add_argument("--lfw-people", type=int, default=500, help="enrolled people (with at least two images)")
    ap.add_argument("--lfw-per-person", type=int, default=4,
                    help="images per enrolled person (the first enrolled, the others probes)")
    ap.add_argument("--lfw-strangers", type=int, default=1000, help="one-image people probed as strangers")
    ap.add_argument("--model", default="dlib-resnet-v1")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    nprobes = [None if x == "default" else int(x) for x in args.nprobe.split(",")]
    if args.real_lfw:
        datasets = os.environ.get("FACEAPP_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
        lfw = args.lfw or Path(datasets) / "lfw"
        faces = lfw_faces(lfw, args.lfw_people, args.lfw_per_person, args.lfw_strangers, args.model)
        rng = np.random.default_rng(0)
        for n in sizes:
            for row in measure_real(faces, n, nprobes, rng):
                print(json.dumps(row) if args.json else row, flush=True)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pg_cluster import throwaway_database

    rng = np.random.default_rng(0)
    ctx = multiprocessing.get_context("spawn")
    with throwaway_database(args.url) as url:
        for n in sizes:
            with Store(url) as store:
                t0 = time.perf_counter()
                fill(store, n, rng)
                fill_s = time.perf_counter() - t0
            queue = ctx.Queue()
            child = ctx.Process(target=measure, args=(url, n, args.probes, args.tau, args.margin, nprobes, queue))
            child.start()
            while True:
                try:
                    row = queue.get(timeout=5)
                except Empty:
                    if not child.is_alive():
                        raise SystemExit(f"the measuring process for {n} templates died (exit {child.exitcode})")
                    continue
                if row is None:
                    break
                row["fill_s"] = round(fill_s, 1)
                print(json.dumps(row) if args.json else row, flush=True)
            child.join()


if __name__ == "__main__":
    main()

"""A building of doors against one PostgreSQL server, on this machine (loopback only).

Starts a throwaway PostgreSQL cluster (tests/pg_cluster.py) unless --url is given, enrolls the
d18 man of ../shared/videos (from LivePortrait_driving_d19.jpg) and --people synthetic people,
then runs N headless door processes at once (`faceapp door --headless --until-end`, each on
its own clip: the d18 man and strangers, in turn) while an admin process enrolls and removes
people every --admin-every seconds. Reports, for each N: decisions, decisions per second,
p50 / p99 of the time a decision waited for its event to commit (the door's log_ms), and
events lost: decisions a door printed as logged whose event is not in the server's log
(must be 0), and the server's door events that no door printed (must be 0).

    .venv/bin/python scripts/load_building.py --doors 2,4,8 [--every 5] [--json]

Bounded: each door stops at the end of its clip (a few seconds of video), the whole run is
cut off after --timeout seconds per N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = Path(os.environ.get("FACEAPP_VIDEOS") or ROOT.parent / "shared" / "videos")
CLIPS = ["LivePortrait_driving_d18.mp4", "video-retalking_face_1.mp4", "LivePortrait_driving_d9.mp4",
         "video-retalking_face_2.mp4", "LivePortrait_driving_d0.mp4", "video-retalking_face_4.mp4",
         "AniPortrait_pose_ref_video.mp4", "video-retalking_face_5.mp4"]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run_doors(url: str, n: int, env: dict, every: int, admin_every: float, timeout: float) -> dict:
    from faceapp.store.repository import Store

    import shutil

    procs = []
    for i in range(n):
        clip = VIDEOS / CLIPS[i % len(CLIPS)]
        home = Path(env["FACEAPP_HOME"]) / f"door-{n}-{i}"  # each door its own cache, the site's key
        (home / "config").mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(Path(env["FACEAPP_HOME"]) / "config" / "faceapp.key", home / "config" / "faceapp.key")
        cmd = [sys.executable, "-m", "faceapp", "door", "--headless", "--camera", str(clip), "--until-end",
               "--every", str(every), "--db", url]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                      env={**env, "FACEAPP_DOOR_ID": f"door-{i}", "FACEAPP_HOME": str(home)}))
    stop = threading.Event()
    admin_changes = [0]

    def admin() -> None:
        rng = np.random.default_rng(n)
        with Store(url) as store:
            k = 0
            while not stop.wait(admin_every):
                v = rng.normal(size=128).astype(np.float32)
                store.add_person(f"visitor {n}-{k}", embedding=v / np.linalg.norm(v), model_id="dlib-resnet-v1",
                                 quality=1.0, face_jpeg=b"x")
                if k:
                    store.remove_person(f"visitor {n}-{k - 1}")
                admin_changes[0] += 2 if k else 1
                k += 1

    t = threading.Thread(target=admin)
    start = time.perf_counter()
    t.start()
    lines: list[dict] = []
    deadline = start + timeout
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        lines += [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    wall = time.perf_counter() - start
    stop.set()
    t.join()
    with Store(url) as store:
        door_events = {e.id for e in store.events() if e.kind == "door"}
    logged = {x["event_id"] for x in lines if x.get("logged")}
    waits = [x["log_ms"] for x in lines if "log_ms" in x]
    return {
        "doors": n, "decisions": len(lines), "wall_s": round(wall, 1),
        "decisions_per_s": round(len(lines) / wall, 2) if wall else None,
        "log_ms_p50": round(_percentile(waits, 50), 1), "log_ms_p99": round(_percentile(waits, 99), 1),
        "events_lost": len(logged - door_events), "events_unprinted": len(door_events - logged),
        "admin_changes": admin_changes[0], "exit_codes": sorted({p.returncode for p in procs}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--doors", default="2,4,8")
    ap.add_argument("--every", type=int, default=5, help="each door decides on every Nth frame")
    ap.add_argument("--admin-every", type=float, default=1.0, help="seconds between the admin's changes")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds at most per N")
    ap.add_argument("--url")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from faceapp.config import Settings
    from faceapp.services import FaceService

    home = tempfile.mkdtemp(prefix="faceapp-load-")
    os.environ["FACEAPP_HOME"] = home  # the site key and each door's cache live here
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "FACEAPP_DEVICE": "cpu"}
    cluster = None
    results = []
    try:
        for n in [int(x) for x in args.doors.split(",")]:
            url = args.url
            if url is None:
                from pg_cluster import PgCluster

                if cluster is None:
                    cluster = PgCluster.create()
                url = cluster.url(cluster.create_database())
            with FaceService(Settings(device="cpu", db_url=url)) as svc:
                svc.enroll("Hoodie Man", VIDEOS / "LivePortrait_driving_d19.jpg")
            results.append(run_doors(url, n, env, args.every, args.admin_every, args.timeout))
            print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        if cluster is not None:
            cluster.destroy()
    print(json.dumps(results) if args.json else "\n".join(str(r) for r in results))


if __name__ == "__main__":
    main()

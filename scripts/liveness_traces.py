"""Head-turn, blink and planarity traces of the real videos, and the liveness challenge run on them.

For every clip of ``../shared/videos`` (``$FACEAPP_VIDEOS``) the frames the door benchmark sees
(every ``--step``-th, from the cache of ``scripts/eval_door.py``: its face boxes, so nothing is
detected again) get the landmark CNN's 68 points for every face; per frame of the largest face:
yaw (``head_pose``), the eye aspect ratio, the planar error against the clip's first frontal
frame and the shape change (:func:`faceapp.landmarks.liveness.shape_change`). The traces are cached
(``--traces``, default ``~/.cache/faceapp/liveness/real-traces.npz``) and used by
``scripts/eval_door.py --liveness``.

Printed: the per-clip max |yaw| (and the largest turn each way) and its percentiles, which the
turn threshold is chosen from; the planar error of frames against their yaw change; and every
challenge (blink, turn left, turn right) started at every 10th sampled frame of every clip, as
the door would run it (the clips were not recorded doing the challenges, so a timeout is the
clip not doing it, but any SPOOF or WRONG_MOVE here is a real person refused as such):

    OMP_NUM_THREADS=2 .venv/bin/python scripts/liveness_traces.py --json docs/door-benchmark/liveness-traces.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp import paths  # noqa: E402
from faceapp.landmarks.liveness import ChallengeKind, LivenessChallenge, LivenessConfig, planar_error  # noqa: E402

try:  # BEFORE (run with PYTHONPATH at an older checkout) had no shape_change
    from faceapp.landmarks.liveness import shape_change  # noqa: E402
except ImportError:
    shape_change = None
from faceapp.landmarks.pose import eye_aspect_ratio, head_pose  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VIDEO_EXT = (".mp4", ".avi", ".mov", ".mkv", ".gif")


def door_cache(cache: Path, clip: str, step: int) -> Path | None:
    """The newest eval_door cache file of a clip (its face boxes are what the door saw)."""
    found = sorted(cache.glob(f"{clip}-*-s{step}-*.npz"), key=lambda p: p.stat().st_mtime)
    found = [p for p in found if "-x" not in p.name.split(f"-s{step}")[1][:3]]
    return found[-1] if found else None


def clip_points(video: Path, meta: dict, predictor) -> dict:
    """{frame index: (N, 68, 2) points of the frame's faces, in the order of the cache's faces}."""
    import cv2

    from faceapp.types import BBox, Detection, Landmarks

    wanted = {r["index"]: r for r in meta["records"] if r["faces"]}
    out, i = {}, 0
    cap = cv2.VideoCapture(str(video))
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rec = wanted.get(i)
        if rec is not None:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            dets = [Detection(BBox(*f["det"][0]), float(f["det"][1]), Landmarks(np.asarray(f["det"][2], np.float32)))
                    for f in rec["faces"]]
            out[i] = predictor.predict_many(rgb, dets)
        i += 1
    cap.release()
    return out


def load_traces(path: Path) -> dict:
    """{clip: {"fps", "size", "index" (S,), "points" (S, F, 68, 2) NaN-padded}} from the cache."""
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return {c: {**m, "index": z[f"{c}|index"], "points": z[f"{c}|points"]} for c, m in meta.items()}


def save_traces(path: Path, traces: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"meta": json.dumps({c: {"fps": t["fps"], "size": t["size"]} for c, t in traces.items()})}
    for c, t in traces.items():
        arrays[f"{c}|index"] = t["index"]
        arrays[f"{c}|points"] = t["points"].astype(np.float32)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def build(videos: Path, cache: Path, step: int, out: Path, clips_filter=None) -> dict:
    traces = load_traces(out)
    predictor = None
    for video in sorted(videos.iterdir()):
        if video.suffix.lower() not in VIDEO_EXT or video.stem in traces:
            continue
        if clips_filter and not any(c in video.name for c in clips_filter):
            continue
        f = door_cache(cache, video.stem, step)
        if f is None:
            print(f"{video.name}: no eval_door cache (run scripts/eval_door.py first)", file=sys.stderr)
            continue
        with np.load(f, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        if predictor is None:
            from faceapp.landmarks.predict import LandmarkPredictor

            predictor = LandmarkPredictor(device="cpu")
        pts = clip_points(video, meta, predictor)
        idx = np.array([r["index"] for r in meta["records"]], np.int32)
        nf = max([len(r["faces"]) for r in meta["records"]] + [1])
        arr = np.full((len(idx), nf, 68, 2), np.nan, np.float32)
        for s, i in enumerate(idx):
            if int(i) in pts:
                arr[s, : len(pts[int(i)])] = pts[int(i)]
        import cv2

        cap = cv2.VideoCapture(str(video))
        size = [int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))]
        cap.release()
        traces[video.stem] = {"fps": meta["fps"], "size": size, "index": idx, "points": arr}
        save_traces(out, traces)
        print(f"{video.name}: {len(pts)} frames with faces", file=sys.stderr, flush=True)
    return traces


def largest(points: np.ndarray) -> np.ndarray | None:
    """The largest face's points of one sampled frame (by outer-eye distance), or None."""
    ok = [p for p in points if not np.isnan(p).any()]
    if not ok:
        return None
    return max(ok, key=lambda p: float(np.linalg.norm(p[36] - p[45])))


def per_frame(t: dict) -> list[dict]:
    """yaw, eye ratio, planar error and squash against the first frontal frame, per sampled frame."""
    rows, ref = [], None
    size = tuple(t["size"])
    for i, pts in zip(t["index"], t["points"], strict=True):
        p = largest(pts)
        if p is None:
            rows.append({"index": int(i), "face": False})
            continue
        yaw = head_pose(p, size).yaw
        if ref is None and abs(yaw) <= 12:
            ref = (p, yaw)
        row = {"index": int(i), "face": True, "yaw": yaw, "ear": eye_aspect_ratio(p)}
        if ref is not None:
            row.update(dyaw=yaw - ref[1], planar=planar_error(ref[0], p))
            if shape_change is not None:
                row["shape"] = shape_change(ref[0], p)
        rows.append(row)
    return rows


def run_challenges(t: dict, config: LivenessConfig, every: int = 10) -> list[dict]:
    """Every challenge kind started at every ``every``-th sampled frame, on video time."""
    fps, size = t["fps"], tuple(t["size"])
    frames = [(int(i) / fps, largest(p)) for i, p in zip(t["index"], t["points"], strict=True)]
    out = []
    for s in range(0, len(frames), every):
        for kind in ChallengeKind:
            ch = LivenessChallenge(kind, config=config)
            t0 = frames[s][0]
            ch.start(t0)
            state = ch.state
            for now, p in frames[s:]:
                state = ch.update(p, now, image_size=size)
                if state.finished:
                    break
            if not state.finished:
                if frames[-1][0] - t0 < config.time_limit_s:
                    continue  # the clip ended before the time limit: not a run
                state = ch.update(None, t0 + config.time_limit_s + 1e-3)
            out.append({"start_s": round(t0, 2), "kind": kind.value,
                        "outcome": "passed" if state.passed else state.decision.value, "detail": state.detail})
    return out


def percentiles(xs, qs=(5, 10, 25, 50, 75, 90), digits: int = 1) -> dict:
    return {f"p{q}": round(float(np.percentile(xs, q)), digits) for q in qs} if xs else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="?", default=os.environ.get("FACEAPP_VIDEOS", str(ROOT.parent / "shared" / "videos")))
    ap.add_argument("--step", type=int, default=3)
    ap.add_argument("--cache", default=str(paths.cache_dir() / "door-eval"), help="eval_door's frame cache")
    ap.add_argument("--traces", default=str(paths.cache_dir() / "liveness" / "real-traces.npz"))
    ap.add_argument("--clips", help="only the clips whose name contains one of these, comma-separated")
    ap.add_argument("--json", help="write the per-clip figures and challenge outcomes here")
    ap.add_argument("--every", type=int, default=10, help="start the challenges at every EVERY-th sampled frame")
    ap.add_argument("--turn-deg", type=float, help="run the challenges with this turn threshold (default: the code's)")
    args = ap.parse_args()
    traces = build(Path(args.videos), Path(args.cache), args.step, Path(args.traces),
                   args.clips.split(",") if args.clips else None)
    config = LivenessConfig() if args.turn_deg is None else LivenessConfig(turn_deg=args.turn_deg)
    report = {"config": {k: getattr(config, k, None) for k in ("turn_deg", "wrong_way_deg", "planar_max_error",
                                                               "flat_ratio_max", "time_limit_s")},
              "clips": {}, "challenges": {}}
    max_abs, max_left, max_right, still_planar, turn_planar = [], [], [], [], []
    print(f"{'clip':48s} {'frames':>6s} {'max|yaw|':>8s} {'left':>6s} {'right':>6s}")
    for c, t in sorted(traces.items()):
        rows = [r for r in per_frame(t) if r["face"]]
        if not rows:
            continue
        yaws = [r["yaw"] for r in rows if math.isfinite(r["yaw"])]
        d = [r for r in rows if "dyaw" in r]
        m = {"frames": len(rows), "max_abs_yaw": round(max(abs(y) for y in yaws), 1),
             "max_left": round(max(yaws), 1), "max_right": round(-min(yaws), 1)}
        max_abs.append(m["max_abs_yaw"])
        max_left.append(m["max_left"])
        max_right.append(m["max_right"])
        still_planar += [r["planar"] for r in d if abs(r["dyaw"]) < 5]
        turn_planar += [(abs(r["dyaw"]), r["planar"]) for r in d]
        runs = run_challenges(t, config, args.every)
        m["challenges"] = {k.value: dict(Counter(r["outcome"] for r in runs if r["kind"] == k.value)) for k in ChallengeKind}
        report["clips"][c] = m
        report["challenges"][c] = runs
        print(f"{c:48s} {len(rows):6d} {m['max_abs_yaw']:8.1f} {m['max_left']:6.1f} {m['max_right']:6.1f}")
    report["max_abs_yaw"] = percentiles(max_abs)
    report["max_left"] = percentiles(max_left)
    report["max_right"] = percentiles(max_right)
    report["still_planar"] = percentiles(still_planar, (50, 90, 95, 99, 100), 3) if still_planar else {}
    bins = {}
    for lo, hi in ((0, 5), (5, 10), (10, 15), (15, 20), (20, 30), (30, 90)):
        xs = [p for a, p in turn_planar if lo <= a < hi]
        if xs:
            bins[f"{lo}-{hi}"] = {"frames": len(xs), **percentiles(xs, (5, 25, 50, 75), 3)}
    report["planar_by_yaw_change"] = bins
    total = Counter((r["kind"], r["outcome"]) for runs in report["challenges"].values() for r in runs)
    report["challenge_totals"] = {k.value: {o: n for (kk, o), n in total.items() if kk == k.value} for k in ChallengeKind}
    print("per-clip max |yaw| percentiles over", len(max_abs), "clips:", report["max_abs_yaw"])
    print("largest turn to the left:", report["max_left"], " to the right:", report["max_right"])
    print("planar error of frames within 5 deg of the reference yaw:", report["still_planar"])
    print("planar error by |yaw change| from the reference:", json.dumps(bins))
    print(f"challenge outcomes (started at every {args.every}th sampled frame of every clip):", json.dumps(report["challenge_totals"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

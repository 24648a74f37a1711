"""Measure the liveness check against photo attacks (``faceapp.landmarks.attacks``).

For each of N LFW people (the first N of ``peopleDevTest.txt``; ``--dev`` uses
``peopleDevTrain.txt`` for trying things out without touching the measurement set), the first
photo is "printed" and moved in front of a simulated camera in 7 ways (static, slide, rotate,
tilt left, tilt right, tilt forward, wobble; with sensor noise and blur). Every frame goes through
the product's path: MTCNN -> the largest face -> the landmark CNN. Each landmark track is then
fed to each challenge (blink, turn left, turn right) exactly as the door would, and an attack
counts as rejected unless the challenge PASSED. Tracks are cached (``--tracks``) so the
evaluation can be rerun without recomputing frames.

This measures attack rejection only. Genuine acceptance needs recordings of live people doing
the challenges; there are none here, so no genuine acceptance rate is claimed.

    FACEAPP_DATASETS=../shared/datasets python scripts/landmarks_attacks.py --people 100 \\
        --tracks artifacts/landmarks/attack_tracks.npz --json artifacts/landmarks/attacks.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from faceapp.landmarks.attacks import ATTACKS, attack_video
from faceapp.landmarks.liveness import ChallengeKind, LivenessChallenge, LivenessConfig

SIZE = (640, 480)


def people(lfw: Path, dev: bool, n: int) -> list[str]:
    lines = (lfw / ("peopleDevTrain.txt" if dev else "peopleDevTest.txt")).read_text().splitlines()[1:]
    names = [ln.split()[0] for ln in lines if ln.strip()]
    return names[:n]


def _load_cache(path: Path) -> dict:
    """Tracks cache: int16 fixed point (1/16 pixel), -32768 where no face was found."""
    if not path.is_file():
        return {}
    data = np.load(path, allow_pickle=False)
    return {k: np.where(v == -32768, np.nan, v / 16.0).astype(np.float32) for k, v in data.items()}


def _save_cache(path: Path, tracks: dict) -> None:
    packed = {k: np.where(np.isnan(v), -32768, np.round(v * 16)).astype(np.int16) for k, v in tracks.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **packed)
    os.replace(tmp, path)


def build_tracks(names, lfw: Path, out: Path, *, seconds: float, fps: float, distance_mm: float,
                 device: str = "cpu", deadline: float | None = None) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import torch

    from faceapp.detect.detector import FaceDetector
    from faceapp.imageio import load_image
    from faceapp.landmarks.augment import apply_affine, invert_affine
    from faceapp.landmarks.predict import LandmarkPredictor

    torch.set_num_threads(int(os.environ.get("LM_THREADS", "2")))
    tracks = _load_cache(out)
    # min_face_size 60 = the product's default smallest face; the faces here are about 120 px
    detector = FaceDetector(device=device, min_face_size=60)
    predictor = LandmarkPredictor(device=device)
    n_frames = int(round(seconds * fps))
    pool = ThreadPoolExecutor(max_workers=int(os.environ.get("LM_RENDER_THREADS", "2")))

    def render(args):
        photo, kind, seed = args
        return [f for _, f in attack_video(photo, kind, seconds=seconds, fps=fps, size=SIZE,
                                           distance_mm=distance_mm, seed=seed)]

    for pi, name in enumerate(names):
        if deadline is not None and time.time() > deadline:
            print(f"deadline reached after {pi} people", file=sys.stderr)
            break
        todo = [(ai, kind) for ai, kind in enumerate(ATTACKS) if f"{name}|{kind}" not in tracks]
        if not todo:
            continue
        photo = load_image(lfw / "images" / name / f"{name}_0001.jpg")
        t0 = time.time()
        videos = pool.map(render, [(photo, kind, 1000 * pi + ai) for ai, kind in todo])
        for (ai, kind), frames in zip(todo, videos, strict=True):
            pts = np.full((n_frames, 68, 2), np.nan, np.float32)
            found = []  # (frame index, the largest face), detected in bursts like a camera's
            for start in range(0, len(frames), 16):
                for j, dets in enumerate(detector.detect_batch(frames[start : start + 16])):
                    if dets:
                        found.append((start + j, dets[0]))
            if found:
                crops, mats = zip(*(predictor.crop(frames[i], d) for i, d in found), strict=True)
                crop_pts = predictor.predict_crops(np.stack(crops))
                back = invert_affine(np.stack(mats))
                for (i, _), p in zip(found, apply_affine(back, crop_pts), strict=True):
                    pts[i] = p
            tracks[f"{name}|{kind}"] = pts
        _save_cache(out, tracks)
        print(f"{pi + 1}/{len(names)} {name}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    pool.shutdown()
    return tracks


def evaluate(tracks: dict, names, config: LivenessConfig, fps: float) -> dict:
    trials = []
    for name in names:
        for kind in ATTACKS:
            pts = tracks.get(f"{name}|{kind}")
            if pts is None:
                continue
            for challenge in ChallengeKind:
                ch = LivenessChallenge(challenge, config=config)
                ch.start(0.0)
                state = ch.state
                for i, p in enumerate(pts):
                    state = ch.update(None if np.isnan(p).any() else p, i / fps, image_size=SIZE)
                    if state.finished:
                        break
                if not state.finished:  # the video ended first: count it as the timeout it would be
                    state = ch.update(None, config.time_limit_s + config.face_lost_s + 1.0, image_size=SIZE)
                trials.append({
                    "person": name, "attack": kind, "challenge": challenge.value, "passed": state.passed,
                    "decision": state.decision.value if state.decision else "passed",
                    "planar_error": state.planar_error, "detail": state.detail,
                    "face_frames": int((~np.isnan(pts).any(axis=(1, 2))).sum()),
                })
    rejected = [not t["passed"] for t in trials]

    def rate(sel) -> dict:
        sel = list(sel)
        return {"trials": len(sel), "rejected": int(sum(not t["passed"] for t in sel)),
                "rejection_rate": round(float(np.mean([not t["passed"] for t in sel])), 4) if sel else None}

    by_person = {}
    for t in trials:
        by_person.setdefault(t["person"], []).append(t["passed"])
    return {
        "people": len(by_person),
        "trials": len(trials),
        "attack_rejection_rate": round(float(np.mean(rejected)), 4) if trials else None,
        "people_with_no_attack_passing": round(float(np.mean([not any(v) for v in by_person.values()])), 4)
        if by_person else None,
        "by_attack": {k: rate(t for t in trials if t["attack"] == k) for k in ATTACKS},
        "by_challenge": {c.value: rate(t for t in trials if t["challenge"] == c.value) for c in ChallengeKind},
        "decisions": dict(Counter(t["decision"] for t in trials)),
        "passed_trials": [t for t in trials if t["passed"]],
        "config": config.__dict__,
        "genuine_acceptance": "not measured: no recordings of live people doing the challenges exist here",
    }


def main() -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--dev", action="store_true", help="use peopleDevTrain (for development), not peopleDevTest")
    ap.add_argument("--lfw", help="LFW folder (default: $FACEAPP_DATASETS/lfw)")
    ap.add_argument("--tracks", default="artifacts/landmarks/attack_tracks.npz", help="landmark track cache (npz)")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--fps", type=float, default=8.0)
    ap.add_argument("--distance-mm", type=float, default=420.0, help="photo to camera (face about 120 px wide)")
    ap.add_argument("--eval-only", action="store_true", help="use the cached tracks only")
    ap.add_argument("--device", default="cpu", help="where MTCNN and the landmark CNN run")
    ap.add_argument("--minutes", type=float, help="stop making tracks after this long (resume later)")
    ap.add_argument("--tracks-only", action="store_true", help="make the tracks, do not evaluate")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    lfw = Path(args.lfw or Path(os.environ.get("FACEAPP_DATASETS", "../shared/datasets")) / "lfw")
    names = people(lfw, args.dev, args.people)
    config = LivenessConfig()
    out = Path(args.tracks)
    out.parent.mkdir(parents=True, exist_ok=True)
    seconds = config.time_limit_s + 0.5
    if args.eval_only:
        tracks = _load_cache(out)
    else:
        deadline = time.time() + 60 * args.minutes if args.minutes else None
        tracks = build_tracks(names, lfw, out, seconds=seconds, fps=args.fps, distance_mm=args.distance_mm,
                              device=args.device, deadline=deadline)
    if args.tracks_only:
        return 0
    report = evaluate(tracks, names, config, args.fps)
    report.update(fps=args.fps, seconds=seconds, frame_size=SIZE, set="peopleDevTrain" if args.dev else "peopleDevTest")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    summary = {k: v for k, v in report.items() if k != "passed_trials"}
    print(json.dumps(summary, indent=2, default=str))
    for t in report["passed_trials"][:20]:
        print("PASSED:", t["person"], t["attack"], t["challenge"], t["detail"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

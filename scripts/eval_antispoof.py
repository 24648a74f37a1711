"""Measure the anti-spoofing model (minifasnet-v1) on the development videos and stills.

    OMP_NUM_THREADS=2 nice -n 10 python scripts/eval_antispoof.py [--videos ../shared/videos] \
        [--stride 3] [--attempt-frames 10] [--threshold 0.5] [--json out.json] [--markdown out.md]

Every ``*.mp4`` of the folder is live material (real people filmed by a camera); every
``--stride``-th frame is run through the detector (MTCNN) and the largest face with a detector
score >= 0.9 is scored. Attack material: the print stills ``Silent-Face-Anti-Spoofing_image_F1.jpg``
and ``LivePortrait_source_s11.jpg`` and the tablet-screen still ``..._F2.jpg``; the live stills
``..._T1.jpg`` and ``LivePortrait_driving_d19.jpg``. A still gives one frame as it is and
``--jitter`` frames more that imitate a camera watching it (the face box shifted and scaled by a
few per cent, brightness and contrast changed, JPEG re-encoded, sensor noise), so that it can make
an attempt. ``Silent-Face-Anti-Spoofing_demo.gif`` (a screen recording of the original's demo app,
its overlays drawn on the frames, 150x322) is scored by segment: frames 0-32 live, 33-61 a phone
replay, 62-87 a print; it is degraded material and reported apart.

An *attempt* is ``--attempt-frames`` consecutive scored frames of one video (non-overlapping
windows; with stride 3 at 25-30 fps about one second), or the jittered frames of one still. The
attempt rule: live if the median live score of its frames >= threshold.

These files are development material: the threshold in the spec is chosen from them (see
docs/antispoof.md); the held-out recordings and replay attacks are kept by others.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faceapp.antispoof import AntiSpoof  # noqa: E402
from faceapp.types import BBox  # noqa: E402

log = logging.getLogger("eval_antispoof")

LIVE_STILLS = ("Silent-Face-Anti-Spoofing_image_T1.jpg", "LivePortrait_driving_d19.jpg")
ATTACK_STILLS = {
    "Silent-Face-Anti-Spoofing_image_F1.jpg": "print",
    "Silent-Face-Anti-Spoofing_image_F2.jpg": "screen",
    "LivePortrait_source_s11.jpg": "print",
}
GIF = "Silent-Face-Anti-Spoofing_demo.gif"
GIF_SEGMENTS = (("live", 0, 32), ("phone replay", 33, 61), ("print", 62, 87))
MIN_DETECTION_SCORE = 0.9


def largest_face(detector, rgb: np.ndarray):
    faces = [d for d in detector.detect(rgb) if d.score >= MIN_DETECTION_SCORE]
    return max(faces, key=lambda d: d.bbox.area) if faces else None


def jittered(rgb: np.ndarray, bbox: BBox, n: int, rng: np.random.Generator):
    """``n`` (frame, box) pairs imitating a camera's frames of one still."""
    out = []
    w, h = bbox.width, bbox.height
    for _ in range(n):
        s = rng.uniform(0.95, 1.05)
        dx, dy = rng.uniform(-0.04, 0.04) * w, rng.uniform(-0.04, 0.04) * h
        cx, cy = (bbox.x1 + bbox.x2) / 2 + dx, (bbox.y1 + bbox.y2) / 2 + dy
        box = BBox(cx - s * w / 2, cy - s * h / 2, cx + s * w / 2, cy + s * h / 2)
        img = rgb.astype(np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-12, 12)
        img = np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
        out.append((cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy(), box))
    return out


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def score_video(path: Path, detector, antispoof: AntiSpoof, stride: int) -> dict:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames, scores, no_face, i = [], [], 0, 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % stride == 0:
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            face = largest_face(detector, rgb)
            if face is None:
                no_face += 1
            else:
                frames.append(i)
                scores.append(antispoof.score(rgb, face.bbox))
        i += 1
    cap.release()
    return {"file": path.name, "fps": fps, "frames_read": i, "frames": frames, "scores": scores, "no_face": no_face}


def attempts_of(scores: list[float], k: int) -> list[float]:
    """Medians of non-overlapping windows of ``k`` scores (a shorter tail of at least k/2 counts)."""
    out = []
    for start in range(0, len(scores), k):
        window = scores[start:start + k]
        if len(window) >= max(1, k // 2):
            out.append(float(np.median(window)))
    return out


def quantiles(xs) -> str:
    a = np.asarray(xs, np.float64)
    if a.size == 0:
        return "-"
    return " / ".join(f"{v:.3f}" for v in (a.min(), np.percentile(a, 5), np.median(a), a.max()))


def timing(antispoof: AntiSpoof, rgb: np.ndarray, bbox: BBox, repeats: int = 30) -> dict:
    antispoof.score(rgb, bbox)  # warm-up
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        antispoof.score(rgb, bbox)
        t.append(time.perf_counter() - t0)
    batch = [(rgb, bbox)] * 8
    antispoof.score_batch(batch)
    tb = []
    for _ in range(max(3, repeats // 5)):
        t0 = time.perf_counter()
        antispoof.score_batch(batch)
        tb.append((time.perf_counter() - t0) / 8)
    import torch

    return {"ms_per_face": 1000 * float(np.median(t)), "ms_per_face_batch8": 1000 * float(np.median(tb)),
            "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "videos")
    ap.add_argument("--stride", type=int, default=3, help="score every N-th video frame")
    ap.add_argument("--attempt-frames", type=int, default=10, help="scored frames per video attempt")
    ap.add_argument("--jitter", type=int, default=15, help="camera-like frames made from each still")
    ap.add_argument("--threshold", type=float, default=None, help="default: the spec's")
    ap.add_argument("--only", nargs="*", default=None, help="only these video files (names)")
    ap.add_argument("--json", type=Path, default=None, help="write every score here")
    ap.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    ap.add_argument("--write-reference", type=Path, default=None,
                    help="only write the test reference (boxes, crops' geometry, probabilities) to this JSON")
    ap.add_argument("--time-only", action="store_true", help="only measure the time per face (on the T1 still)")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="score nothing: render the tables of an earlier --json run (other --threshold / --attempt-frames)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.from_json:
        result = json.loads(args.from_json.read_text(encoding="utf-8"))
        if args.threshold is not None:
            result["threshold"] = args.threshold
        result["attempt_frames"] = args.attempt_frames
        md = render(result, args)
        if args.markdown:
            args.markdown.write_text(md, encoding="utf-8")
        else:
            sys.stdout.write(md)
        return 0

    from faceapp.detect.detector import FaceDetector

    detector = FaceDetector(device="cpu")
    antispoof = AntiSpoof(device="cpu", threshold=args.threshold)
    if args.write_reference:
        write_reference(args.write_reference, args.videos, detector, antispoof)
        return 0
    if args.time_only:
        rgb = read_rgb(args.videos / LIVE_STILLS[0])
        t = timing(antispoof, rgb, largest_face(detector, rgb).bbox, repeats=100)
        log.info("time: %.2f ms a face (one at a time), %.2f ms a face in batches of 8, %d torch threads, "
                 "load average %.1f", t["ms_per_face"], t["ms_per_face_batch8"], t["torch_threads"], os.getloadavg()[0])
        return 0
    thr = antispoof.threshold
    rng = np.random.default_rng(0)
    result: dict = {"threshold": thr, "stride": args.stride, "attempt_frames": args.attempt_frames,
                    "videos": [], "stills": [], "gif": []}

    for name in (*LIVE_STILLS, *ATTACK_STILLS):
        rgb = read_rgb(args.videos / name)
        face = largest_face(detector, rgb)
        if face is None:
            raise SystemExit(f"{name}: no face found")
        jit = antispoof.score_batch(jittered(rgb, face.bbox, args.jitter, rng)).tolist()
        entry = {"file": name, "live": name in LIVE_STILLS, "kind": ATTACK_STILLS.get(name, "live"),
                 "score": antispoof.score(rgb, face.bbox), "jitter_scores": jit,
                 "bbox": [face.bbox.x1, face.bbox.y1, face.bbox.x2, face.bbox.y2]}
        result["stills"].append(entry)
        log.info("%-45s %-6s score %.4f  jittered min/median/max %.3f/%.3f/%.3f", name, entry["kind"],
                 entry["score"], min(jit), float(np.median(jit)), max(jit))
        if name == LIVE_STILLS[0]:
            result["timing"] = timing(antispoof, rgb, face.bbox)
            log.info("time: %.2f ms a face (one at a time), %.2f ms a face in batches of 8, %d torch threads",
                     result["timing"]["ms_per_face"], result["timing"]["ms_per_face_batch8"],
                     result["timing"]["torch_threads"])

    gif = args.videos / GIF
    if gif.is_file():
        cap = cv2.VideoCapture(str(gif))
        i, seg_scores = 0, {s[0]: [] for s in GIF_SEGMENTS}
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            face = largest_face(detector, rgb)
            if face is not None:
                label = next(s[0] for s in GIF_SEGMENTS if s[1] <= i <= s[2])
                seg_scores[label].append(antispoof.score(rgb, face.bbox))
            i += 1
        for label, _, _ in GIF_SEGMENTS:
            result["gif"].append({"segment": label, "scores": seg_scores[label]})
            log.info("demo.gif %-13s %d faces, min/5%%/median/max %s", label, len(seg_scores[label]),
                     quantiles(seg_scores[label]))

    videos = sorted(args.videos.glob("*.mp4"))
    if args.only:
        videos = [v for v in videos if v.name in args.only]
    for path in videos:
        t0 = time.perf_counter()
        v = score_video(path, detector, antispoof, args.stride)
        result["videos"].append(v)
        att = attempts_of(v["scores"], args.attempt_frames)
        log.info("%-50s %3d faces (%d none)  min/5%%/median/max %s  frames live %.3f  attempts live %d/%d  (%.0f s)",
                 path.name, len(v["scores"]), v["no_face"], quantiles(v["scores"]),
                 float(np.mean(np.asarray(v["scores"]) >= thr)) if v["scores"] else float("nan"),
                 sum(a >= thr for a in att), len(att), time.perf_counter() - t0)

    md = render(result, args)
    log.info("\n%s", md)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(md, encoding="utf-8")
    return 0


REFERENCE_FRAMES = (  # (file, frame index or None for a still)
    ("Silent-Face-Anti-Spoofing_image_T1.jpg", None), ("Silent-Face-Anti-Spoofing_image_F1.jpg", None),
    ("Silent-Face-Anti-Spoofing_image_F2.jpg", None), ("LivePortrait_source_s11.jpg", None),
    ("LivePortrait_driving_d18.mp4", 30), ("LivePortrait_driving_d9.mp4", 100), ("LivePortrait_source_s18.mp4", 60),
)


def read_frame(path: Path, index: int | None) -> np.ndarray:
    if index is None:
        return read_rgb(path)
    cap = cv2.VideoCapture(str(path))
    ok = all(cap.grab() for _ in range(index))  # decode from the start: seeking is not exact for every codec
    ok, bgr = cap.read() if ok else (False, None)
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read frame {index} of {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_reference(out: Path, videos: Path, detector, antispoof: AntiSpoof) -> None:
    """The stored reference of tests/test_antispoof.py: per frame the detector's box, each
    network's crop box and the ensemble's probabilities (no pixels)."""
    entries = []
    for name, index in REFERENCE_FRAMES:
        rgb = read_frame(videos / name, index)
        face = largest_face(detector, rgb)
        if face is None:
            raise SystemExit(f"{name}: no face found")
        b = face.bbox
        bbox = BBox(*(round(float(v), 2) for v in (b.x1, b.y1, b.x2, b.y2)))
        crops = [box.as_tuple() for _, box in antispoof.crops(rgb, bbox)]
        probs = antispoof.probabilities_batch([(rgb, bbox)])[0]
        entries.append({"file": name, "frame": index, "size": [rgb.shape[1], rgb.shape[0]],
                        "bbox": [bbox.x1, bbox.y1, bbox.x2, bbox.y2], "crops": crops,
                        "probabilities": [round(float(p), 6) for p in probs]})
        log.info("%s [%s]: live %.4f crops %s", name, index, probs[antispoof.spec.live_class], crops)
    data = {"model_id": antispoof.spec.model_id, "command": "python scripts/eval_antispoof.py --write-reference "
            "tests/data/antispoof_reference.json", "frames": entries}
    out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def render(result: dict, args) -> str:
    thr, k = result["threshold"], result["attempt_frames"]
    lines = [f"Threshold {thr:.2f} (frame live if score >= threshold; attempt live if the median of its frames is).",
             "", "| material | frames | live score min / 5% / median / max | frames live | attempts live |",
             "|---|---|---|---|---|"]
    all_live, all_att = [], []
    for v in result["videos"]:
        s = v["scores"]
        att = attempts_of(s, k)
        all_live += s
        all_att += att
        rate = f"{np.mean(np.asarray(s) >= thr):.3f}" if s else "-"
        lines.append(f"| {v['file']} (live) | {len(s)} | {quantiles(s)} | {rate} | {sum(a >= thr for a in att)}/{len(att)} |")
    if all_live:
        lines.append(f"| **all videos (live)** | {len(all_live)} | {quantiles(all_live)} | "
                     f"{np.mean(np.asarray(all_live) >= thr):.3f} | {sum(a >= thr for a in all_att)}/{len(all_att)} |")
    for st in result["stills"]:
        jit = st["jitter_scores"]
        att = float(np.median(jit))
        lines.append(f"| {st['file']} ({st['kind']}) | 1 + {len(jit)} jittered | {st['score']:.3f}; jittered "
                     f"{quantiles(jit)} | {int(st['score'] >= thr)}/1; {sum(x >= thr for x in jit)}/{len(jit)} | "
                     f"{int(att >= thr)}/1 |")
    for g in result["gif"]:
        s = g["scores"]
        att = attempts_of(s, k)
        lines.append(f"| demo.gif {g['segment']} (degraded) | {len(s)} | {quantiles(s)} | "
                     f"{np.mean(np.asarray(s) >= thr):.3f} | {sum(a >= thr for a in att)}/{len(att)} |" if s else
                     f"| demo.gif {g['segment']} | 0 | - | - | - |")
    t = result.get("timing")
    if t:
        lines += ["", f"Time: {t['ms_per_face']:.1f} ms a face one at a time, {t['ms_per_face_batch8']:.1f} ms a "
                  f"face in batches of 8 ({t['torch_threads']} torch threads; crops included, detection not)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

"""The door on real video: run :class:`faceapp.door.DoorMachine` over each clip of a folder on
video time (not wall time) and count who gets in.

Enrollment: one still (``--enroll NAME=FILE``; default: the d18 man from
``LivePortrait_driving_d19.jpg``, who appears in ``LivePortrait_driving_d18.mp4``) and, in the
"all clips" galleries, one chosen frame of every other clip as its own person (a frame that
is not among the frames the door sees). LFW people (first image of each, LFW View 1 DevTest
people first, then DevTrain) are added as distractors: ``--distractors 0,50,1000,5000``.

Each clip is played to a recognize-mode door with the settings in force (every ``--step``-th
frame, at its video time); after a decision the door resets after ``door_reset_s`` and the next
attempt begins. An attempt is a *genuine grant* when the person granted is the clip's own
(the d18 man for d18; the clip itself when it is enrolled), a *wrong-person grant* when it is
anybody else, *not recognized* when the door decided NOT_RECOGNIZED, *timeout* when no decision
came in time, *unfinished* when the clip ended first. Time to decision is video seconds from
the attempt's start.

Frames are decoded, detected and encoded once per clip and cached (keyed by the clip, the
step and a hash of the pipeline's source and quality settings), so a rerun takes seconds:

    OMP_NUM_THREADS=2 .venv/bin/python scripts/eval_door.py --json docs/door-benchmark-after.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceapp import paths  # noqa: E402
from faceapp.config import Settings  # noqa: E402
from faceapp.door import DoorMachine, DoorMode, DoorPhase  # noqa: E402
from faceapp.imageio import load_image  # noqa: E402
from faceapp.match.gallery import Gallery  # noqa: E402
from faceapp.pipeline import FaceEngine, FaceObservation, FacePipeline, FaceResult, FrameResult  # noqa: E402
from faceapp.types import AlignedFace, BBox, Detection, Landmarks, QualityIssue, QualityReport  # noqa: E402

log = logging.getLogger("eval_door")
ROOT = Path(__file__).resolve().parents[1]
# the code whose change changes what a frame reads as (the cache is keyed by it)
CODE = ["faceapp/pipeline.py", "faceapp/detect/quality.py", "faceapp/detect/align.py", "faceapp/detect/detector.py"]
VIDEO_EXT = (".mp4", ".avi", ".mov", ".mkv", ".gif")
GENUINE_CLIP = "LivePortrait_driving_d18"
GENUINE_NAME = "d18-man"


def code_signature(engine: FaceEngine) -> str:
    h = hashlib.sha1()
    for rel in CODE:
        h.update((ROOT / rel).read_bytes())
    s = engine.settings
    h.update(json.dumps([engine.model_id, s.min_face_size, s.min_detection_score, s.min_brightness, s.max_brightness,
                         s.min_sharpness, getattr(s, "brightness_normalize", None)]).encode())
    return h.hexdigest()[:10]


# -- encoding (cached) -------------------------------------------------------------------------
def read_frames(path: Path, wanted):
    """(index, RGB frame) for the wanted frame indices (a set, or None for all); and the fps."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    out, i = [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if wanted is None or i in wanted:
            out.append((i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        i += 1
    cap.release()
    return out, float(fps), i


def _det_record(d: Detection) -> list:
    return [[d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2], d.score, d.landmarks.points.tolist()]


def _frame_record(r: FrameResult) -> tuple[dict, list[np.ndarray]]:
    faces, embs = [], []
    for f in r.faces:
        q = f.observation.quality
        faces.append({"det": _det_record(f.observation.detection),
                      "q": [q.face_size, q.brightness, q.sharpness, q.score], "issues": [i.value for i in q.issues]})
        embs.append(np.asarray(f.observation.embedding, np.float32))
    return {"index": r.index, "all": [_det_record(d) for d in r.all_detections], "faces": faces}, embs


def encode_clip(pipe: FacePipeline, path: Path, step: int, cache: Path, sig: str, darken: float = 1.0) -> dict:
    st = path.stat()
    dim = "" if darken == 1.0 else f"-x{darken:g}"
    f = cache / f"{path.stem}-{st.st_size}-{int(st.st_mtime)}-s{step}{dim}-{sig}.npz"
    if f.is_file():
        with np.load(f, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            meta["emb"] = z["emb"]
        return meta
    t0 = time.perf_counter()
    _, fps, n = read_frames(path, set())
    frames, _, _ = read_frames(path, set(range(0, n, step)))
    if darken != 1.0:  # a dim camera: every pixel value scaled
        frames = [(i, (fr.astype(np.float32) * darken).astype(np.uint8)) for i, fr in frames]
    records, embs = [], []
    for i, frame in frames:
        rec, e = _frame_record(pipe.process(frame, i))
        rec["emb_rows"] = list(range(len(embs), len(embs) + len(e)))
        embs.extend(e)
        records.append(rec)
    # the enrollment frame: the first frame from 40% of the clip on, not one the door sees,
    # with exactly one face of good quality
    enroll = None
    start = int(0.4 * n)
    cands = [i for i in range(start, n) if i % step] or list(range(start, n))
    for batch_start in range(0, len(cands), 8):
        for i, frame in read_frames(path, set(cands[batch_start:batch_start + 8]))[0]:
            r = pipe.process(frame, i)  # enrolled from an undimmed frame
            if len(r.faces) == 1 and r.faces[0].observation.quality.ok:
                rec, e = _frame_record(r)
                rec["emb_rows"] = [len(embs)]
                embs.extend(e)
                enroll = rec
                break
        if enroll is not None or batch_start >= 40:
            break
    meta = {"clip": path.name, "fps": fps, "frames": n, "step": step, "records": records, "enroll": enroll,
            "encode_s": round(time.perf_counter() - t0, 1)}
    cache.mkdir(parents=True, exist_ok=True)
    emb = np.stack(embs) if embs else np.empty((0, pipe.engine.spec.embedding_dim), np.float32)
    np.savez(f, meta=json.dumps(meta), emb=emb)
    meta["emb"] = emb
    return meta


# -- replay --------------------------------------------------------------------------------------
def _detection(rec) -> Detection:
    return Detection(BBox(*rec[0]), float(rec[1]), Landmarks(np.asarray(rec[2], np.float32)))


_NO_CHIP = np.zeros((1, 1, 3), np.uint8)
_HAS_GALLERY_SIZE = "gallery_size" in {f.name for f in dataclasses.fields(FrameResult)}


def frame_results(clip: dict, gallery: Gallery, threshold: float, top_k: int) -> list[FrameResult]:
    people = len(gallery.people)
    out = []
    for rec in clip["records"]:
        faces = []
        for face, row in zip(rec["faces"], rec["emb_rows"], strict=True):
            det = _detection(face["det"])
            q = QualityReport(*face["q"], issues=tuple(QualityIssue(i) for i in face["issues"]))
            e = clip["emb"][row]
            obs = FaceObservation(AlignedFace(_NO_CHIP, det, np.eye(2, 3)), q, e)
            faces.append(FaceResult(obs, tuple(gallery.nearest(e, top_k)), threshold))
        kw = {"gallery_size": people} if _HAS_GALLERY_SIZE else {}
        out.append(FrameResult(rec["index"], _NO_CHIP, tuple(faces), {}, tuple(_detection(d) for d in rec["all"]), **kw))
    return out


def run_door(settings: Settings, threshold: float, clip: dict, results: list[FrameResult], own: str | None) -> list[dict]:
    """Every attempt of a clip: its outcome and how it counts (``own``: the clip's enrolled name)."""
    now = [0.0]
    machine = DoorMachine.from_settings(settings, DoorMode.RECOGNIZE, threshold=threshold, clock=lambda: now[0])
    attempts, started = [], None
    for r in results:
        now[0] = r.index / clip["fps"]
        state = machine.feed(r)
        if started is None and (state.phase is DoorPhase.WATCHING or state.decided_now):
            started = now[0]  # an attempt began with this frame (also right after a reset)
        if state.decided_now:
            o = state.outcome
            kind = "timeout" if o.decision.value == "timeout" else "not_recognized"
            if o.granted:
                kind = "genuine_grant" if own is not None and o.name == own else "wrong_grant"
            attempts.append({"kind": kind, "decision": o.decision.value, "name": o.name, "distance": o.distance,
                             "start_s": round(started or 0.0, 3), "decided_s": round(now[0], 3),
                             "time_to_decision_s": round(now[0] - (started or 0.0), 3), "detail": o.detail})
            started = None
        elif state.phase is DoorPhase.WAITING:
            started = None
    if machine.state.phase is DoorPhase.WATCHING:
        attempts.append({"kind": "unfinished", "start_s": round(started or 0.0, 3)})
    return attempts


def summarise(per_clip: dict[str, list[dict]], genuine_clips: set[str]) -> dict:
    kinds = ("genuine_grant", "wrong_grant", "not_recognized", "timeout", "unfinished")
    total = {k: 0 for k in kinds}
    for atts in per_clip.values():
        for a in atts:
            total[a["kind"]] += 1
    decided = [a for atts in per_clip.values() for a in atts if a["kind"] != "unfinished"]
    wrong_people = sorted({f"{c} as {a['name']}" for c, atts in per_clip.items() for a in atts if a["kind"] == "wrong_grant"})
    gen = {c: per_clip[c] for c in genuine_clips if c in per_clip}
    first = [next((a for a in atts if a["kind"] == "genuine_grant"), None) for atts in gen.values()]
    ttd = [a["time_to_decision_s"] for a in first if a is not None]
    stranger = [a for c, atts in per_clip.items() if c not in genuine_clips for a in atts if a["kind"] != "unfinished"]
    return {
        **total,
        "attempts": len(decided),
        "clips_with_a_genuine_grant": sum(a is not None for a in first),
        "genuine_clips": len(gen),
        "genuine_first_attempt_granted": sum(bool(atts) and atts[0]["kind"] == "genuine_grant" for atts in gen.values()),
        "median_time_to_genuine_grant_s": float(np.median(ttd)) if ttd else None,
        "wrong_grants_per_attempt": (total["wrong_grant"] / len(decided)) if decided else None,
        "stranger_attempts": len(stranger),
        "stranger_grants": sum(a["kind"] == "wrong_grant" for a in stranger),
        "wrong_grants": wrong_people,
    }


# -- galleries ----------------------------------------------------------------------------------
def lfw_distractors(engine: FaceEngine, lfw: Path, n: int, cache_root: Path, sig: str):
    if n <= 0:
        return [], np.empty((0, engine.spec.embedding_dim), np.float32)
    from faceapp.evaluation.protocols import read_lfw_people
    from faceapp.evaluation.runner import EvalCache, embed_images

    names = []
    for which in ("devtest", "devtrain"):
        names += sorted(read_lfw_people(lfw, which))
    names = names[:n]
    folder = cache_root / f"lfw-{sig}"
    shared = paths.cache_dir() / "eval" / "detections.json"  # detections are model- and code-free
    if not (folder / "detections.json").is_file() and shared.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared, folder / "detections.json")
    table = embed_images(engine, [lfw / "images" / m / f"{m}_0001.jpg" for m in names], cache=EvalCache(engine, folder))
    return [f"lfw:{m}" for m in names], table.embeddings


def enroll_still(engine: FaceEngine, path: Path) -> tuple[np.ndarray, dict]:
    img = load_image(path, max_side=engine.settings.max_image_side)
    dets = engine.relevant(engine.detect(img))
    if not dets:
        raise SystemExit(f"no face in {path}")
    obs = engine.observe(img, dets[:1])[0]
    return obs.embedding, {"faces": len(dets), "quality_ok": obs.quality.ok, "brightness": round(obs.quality.brightness, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("videos", nargs="?", default=os.environ.get("FACEAPP_VIDEOS", str(ROOT.parent / "shared" / "videos")))
    ap.add_argument("--lfw", default=os.path.join(os.environ.get("FACEAPP_DATASETS", str(ROOT.parent / "shared" / "datasets")), "lfw"))
    ap.add_argument("--step", type=int, default=3, help="use every STEP-th frame (at its own video time)")
    ap.add_argument("--distractors", default="0,50,1000", help="LFW distractor counts, comma-separated")
    ap.add_argument("--enroll", action="append", default=None, help="NAME=STILL (default: d18-man=LivePortrait_driving_d19.jpg)")
    ap.add_argument("--genuine", action="append", default=None, help="CLIP=NAME: the clip shows NAME (default: d18 -> d18-man)")
    ap.add_argument("--darken", type=float, default=1.0, help="scale every pixel of the clips by this (a dim camera)")
    ap.add_argument("--clips", help="only the clips whose name contains one of these, comma-separated")
    ap.add_argument("--cache", default=str(paths.cache_dir() / "door-eval"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--label", default="", help="a label stored in the JSON (e.g. before / after)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    videos = Path(args.videos)
    settings = Settings(device=args.device)
    engine = FaceEngine(settings)
    pipe = FacePipeline(engine, lambda: Gallery.empty(engine.spec.embedding_dim, engine.model_id), top_k=settings.top_k)
    sig = code_signature(engine)
    cache = Path(args.cache)
    enroll = args.enroll or [f"{GENUINE_NAME}=LivePortrait_driving_d19.jpg"]
    genuine = dict(g.split("=", 1) for g in (args.genuine or [f"{GENUINE_CLIP}={GENUINE_NAME}"]))
    stills = {}
    for item in enroll:
        name, file = item.split("=", 1)
        p = Path(file) if os.path.isabs(file) else videos / file
        stills[name] = enroll_still(engine, p)
    clips = {}
    for p in sorted(videos.iterdir()):
        if p.suffix.lower() in VIDEO_EXT and (not args.clips or any(c in p.name for c in args.clips.split(","))):
            clips[p.stem] = encode_clip(pipe, p, args.step, cache, sig, args.darken)
            log.info("%s: %d frames, %d sampled (%.1f s to encode)", p.name, clips[p.stem]["frames"],
                     len(clips[p.stem]["records"]), clips[p.stem]["encode_s"])
    threshold = engine.threshold
    out = {"label": args.label, "command": " ".join(["scripts/eval_door.py"] + sys.argv[1:]), "step": args.step,
           "darken": args.darken,
           "threshold_in_force": threshold, "code_signature": sig,
           "settings": {k: getattr(settings, k) for k in ("door_frames", "door_timeout_s", "door_reset_s", "min_detection_score",
                                                          "min_brightness", "liveness")},
           "stills": {k: v[1] for k, v in stills.items()}, "clips": {}, "galleries": {}}
    for name, c in clips.items():
        faces = [len(r["faces"]) for r in c["records"]]
        out["clips"][name] = {"frames": c["frames"], "fps": c["fps"], "sampled": len(faces),
                              "frames_with_several_faces": sum(f > 1 for f in faces),
                              "frames_without_face": sum(f == 0 for f in faces),
                              "frames_low_quality": sum(1 for r in c["records"] if len(r["faces"]) == 1 and r["faces"][0]["issues"]),
                              "frames_too_dark": sum(1 for r in c["records"] if len(r["faces"]) == 1 and "too_dark" in r["faces"][0]["issues"]),
                              "enroll_frame": c["enroll"]["index"] if c["enroll"] else None}
    # enrolled templates of the clips (not the genuine clip: its person is enrolled from the still)
    own_names, own_embs = [], []
    for name, c in clips.items():
        if name in genuine or c["enroll"] is None:
            continue
        own_names.append(name)
        own_embs.append(c["emb"][c["enroll"]["emb_rows"][0]])
    for n in [int(x) for x in args.distractors.split(",") if x.strip()]:
        lfw_names, lfw_embs = lfw_distractors(engine, Path(args.lfw), n, cache, sig)
        for which in ("still only", "all clips"):
            names = list(stills) + lfw_names
            embs = [v[0] for v in stills.values()] + list(lfw_embs)
            if which == "all clips":
                names += own_names
                embs += own_embs
            gallery = Gallery(names, np.arange(len(names)), np.stack(embs), model_id=engine.model_id)
            per_clip = {}
            for cname, c in clips.items():
                own = genuine.get(cname) or (cname if which == "all clips" and cname in own_names else None)
                per_clip[cname] = run_door(settings, threshold, c, frame_results(c, gallery, threshold, settings.top_k), own)
            gen_clips = set(genuine) | (set(own_names) if which == "all clips" else set())
            key = f"{which}, {n} LFW"
            out["galleries"][key] = {"people": len(gallery.people), "summary": summarise(per_clip, gen_clips),
                                     "attempts": per_clip}
            s = out["galleries"][key]["summary"]
            log.info("%-22s %5d people: genuine %d, wrong %d, not recognized %d, timeout %d / %d attempts; d18 first attempt: %s",
                     key, len(gallery.people), s["genuine_grant"], s["wrong_grant"], s["not_recognized"], s["timeout"],
                     s["attempts"], per_clip.get(GENUINE_CLIP, [{}])[0].get("kind") if per_clip.get(GENUINE_CLIP) else None)
    print(markdown(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def markdown(out: dict) -> str:
    rows = ["| gallery | people | attempts | genuine grants | wrong-person grants | not recognized | timeouts | "
            "genuine clips granted (first attempt) | median s to genuine grant | wrong grants |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for key, g in out["galleries"].items():
        s = g["summary"]
        t = s["median_time_to_genuine_grant_s"]
        rows.append(f"| {key} | {g['people']} | {s['attempts']} | {s['genuine_grant']} | {s['wrong_grant']} | "
                    f"{s['not_recognized']} | {s['timeout']} | {s['clips_with_a_genuine_grant']}/{s['genuine_clips']} "
                    f"({s['genuine_first_attempt_granted']}) | {'-' if t is None else f'{t:.2f}'} | "
                    f"{'; '.join(s['wrong_grants']) or '-'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())

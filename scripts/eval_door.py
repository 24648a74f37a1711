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

Presentation attacks (played unless ``--no-attacks``): the print and screen stills
(``Silent-Face-Anti-Spoofing_image_F1/F2.jpg``, ``LivePortrait_source_s11.jpg``) are played as
clips of ``--still-seconds`` of a camera watching them (each sampled frame the still slightly
moved, scaled and turned, its brightness and contrast changed, sensor noise, JPEG), and the
Silent-Face demo GIF is played as its three segments (live, phone replay, print). In the "all
clips" galleries each attacked person is enrolled (F1, F2 from the untouched still; s11 shows the
d11 girl, enrolled from her clip; the GIF's person from its enrollment frame), so an attack
granted as the person shown is the attack working. Every other attempt is a *real* attempt.

``--antispoof`` runs the door with the anti-spoofing network (setting ``antispoof``): the live
score of the largest face of every sampled frame is computed once and cached (keyed by the clip
cache and the anti-spoofing model: its id, weights and code), and the door replays them. A real
attempt denied SPOOF is a false reject. ``--liveness`` adds the challenge (setting ``liveness``,
a random challenge per attempt, seeded): the 68 landmarks of every face are cached the same way.

Frames are decoded, detected and encoded once per clip and cached (keyed by the clip, the
step and a hash of the pipeline's source and quality settings), so a rerun takes seconds. The
pipeline tracks faces between the sampled frames as the door's does (the tracker is reset at each
clip and for each enrollment candidate); ``--no-track`` scans every frame whole:

    OMP_NUM_THREADS=2 .venv/bin/python scripts/eval_door.py --json docs/door-benchmark-after.json
    nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python scripts/eval_door.py --distractors 0 --antispoof --json on.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import random
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
CODE = ["faceapp/pipeline.py", "faceapp/detect/quality.py", "faceapp/detect/align.py", "faceapp/detect/detector.py",
        "faceapp/tracking.py"]
# what the anti-spoofing scores depend on besides the frames and boxes (the pad cache is keyed by it)
PAD_CODE = ["faceapp/antispoof/crop.py", "faceapp/antispoof/model.py", "faceapp/antispoof/network.py"]
LANDMARK_CODE = ["faceapp/landmarks/predict.py", "faceapp/landmarks/model.py"]
VIDEO_EXT = (".mp4", ".avi", ".mov", ".mkv", ".gif")
GENUINE_CLIP = "LivePortrait_driving_d18"
GENUINE_NAME = "d18-man"
# presentation attacks (../shared/videos/README.md, docs/antispoof.md)
ATTACK_STILLS = {
    "Silent-Face-Anti-Spoofing_image_F1.jpg": "print",
    "Silent-Face-Anti-Spoofing_image_F2.jpg": "screen",
    "LivePortrait_source_s11.jpg": "print",
}
ATTACK_PERSON = {"LivePortrait_source_s11": "LivePortrait_driving_d11"}  # the print shows the d11 girl
GIF = "Silent-Face-Anti-Spoofing_demo"
GIF_SEGMENTS = (("live", 0, 32, None), ("phone-replay", 33, 61, "screen"), ("print", 62, 87, "print"))
STILL_RECIPE = "still-v1"  # the camera imitation of still_frames (part of the cache key)


def code_signature(engine: FaceEngine, track: bool = True) -> str:
    h = hashlib.sha1()
    for rel in CODE:
        if (ROOT / rel).is_file():
            h.update((ROOT / rel).read_bytes())
    s = engine.settings
    h.update(json.dumps([engine.model_id, s.min_face_size, s.min_detection_score, s.min_brightness, s.max_brightness,
                         s.min_sharpness, getattr(s, "brightness_normalize", None), track]).encode())
    return h.hexdigest()[:10]


def files_signature(rels: list[str], *extra) -> str:
    h = hashlib.sha1()
    for rel in rels:
        if (ROOT / rel).is_file():
            h.update((ROOT / rel).read_bytes())
    h.update(json.dumps([str(x) for x in extra]).encode())
    return h.hexdigest()[:8]


def reset_tracking(pipe: FacePipeline) -> None:
    """A new stream (another clip, or frames that do not follow each other): forget the faces."""
    if getattr(pipe, "tracker", None) is not None:
        pipe.tracker.reset()


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


def still_frames(rgb: np.ndarray, wanted, seed: int):
    """(index, RGB frame) for the wanted indices: a camera watching a still (a print or a screen
    held up): each frame the picture moved by up to 2% of its size, scaled by 0.97-1.03 and turned
    by up to 2 degrees, brightness and contrast changed by up to 10%, sensor noise, JPEG 75-95."""
    import cv2

    h, w = rgb.shape[:2]
    out = []
    for i in sorted(wanted):
        rng = np.random.default_rng([seed, i])
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-2, 2), rng.uniform(0.97, 1.03))
        m[:, 2] += rng.uniform(-0.02, 0.02, 2) * (w, h)
        img = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        img = img.astype(np.float32) * rng.uniform(0.9, 1.1) + rng.uniform(-10, 10)
        img = np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 96))])
        out.append((i, cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()))
    return out


STILL_FPS = 30.0


def clip_frames(path: Path, wanted, still_s: float):
    """(index, RGB frame) of the wanted indices, fps and frame count of a video or of a still
    played for ``still_s`` seconds at STILL_FPS (``wanted`` None: all)."""
    if path.suffix.lower() in VIDEO_EXT:
        return read_frames(path, wanted)
    n = int(round(still_s * STILL_FPS))
    rgb = load_image(path)
    seed = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16)
    return still_frames(rgb, range(n) if wanted is None else [i for i in wanted if i < n], seed), STILL_FPS, n


def frame_size(path: Path) -> list[int]:
    """[width, height] of a clip's frames."""
    import cv2

    if path.suffix.lower() in VIDEO_EXT:
        cap = cv2.VideoCapture(str(path))
        size = [int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))]
        cap.release()
        return size
    h, w = load_image(path).shape[:2]
    return [int(w), int(h)]


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


def clip_cache_stem(path: Path, step: int, sig: str, darken: float = 1.0, still_s: float = 6.0) -> str:
    """The name (without suffix) of a clip's cache file; the extra caches (anti-spoofing scores,
    landmarks) add to it, so they follow the frames and boxes they were computed on."""
    st = path.stat()
    dim = "" if darken == 1.0 else f"-x{darken:g}"
    still = "" if path.suffix.lower() in VIDEO_EXT else f"-{STILL_RECIPE}-{still_s:g}s"
    return f"{path.stem}-{st.st_size}-{int(st.st_mtime)}-s{step}{dim}{still}-{sig}"


def encode_clip(pipe: FacePipeline, path: Path, step: int, cache: Path, sig: str, darken: float = 1.0,
                still_s: float = 6.0) -> dict:
    f = cache / f"{clip_cache_stem(path, step, sig, darken, still_s)}.npz"
    if f.is_file():
        with np.load(f, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            meta["emb"] = z["emb"]
        return meta
    t0 = time.perf_counter()
    is_still = path.suffix.lower() not in VIDEO_EXT
    _, fps, n = clip_frames(path, set(), still_s)
    frames, _, _ = clip_frames(path, set(range(0, n, step)), still_s)
    if darken != 1.0:  # a dim camera: every pixel value scaled
        frames = [(i, (fr.astype(np.float32) * darken).astype(np.uint8)) for i, fr in frames]
    records, embs = [], []
    reset_tracking(pipe)  # a new stream
    for i, frame in frames:
        rec, e = _frame_record(pipe.process(frame, i))
        rec["emb_rows"] = list(range(len(embs), len(embs) + len(e)))
        embs.extend(e)
        records.append(rec)
    enroll = None
    if is_still:
        # a still (an attack): its person is enrolled from the untouched picture (the largest face)
        reset_tracking(pipe)
        r = pipe.process(load_image(path), -1)
        if r.faces:
            k = max(range(len(r.faces)), key=lambda j: r.faces[j].observation.detection.bbox.area)
            rec, e = _frame_record(r)
            rec["faces"], rec["emb_rows"] = [rec["faces"][k]], [len(embs)]
            embs.append(e[k])
            enroll = rec
    else:
        # the enrollment frame: the first frame from 40% of the clip on, not one the door sees,
        # with exactly one face of good quality
        start = int(0.4 * n)
        cands = [i for i in range(start, n) if i % step] or list(range(start, n))
        for batch_start in range(0, len(cands), 8):
            for i, frame in read_frames(path, set(cands[batch_start:batch_start + 8]))[0]:
                reset_tracking(pipe)  # frames that do not follow each other: scanned whole
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
            "size": frame_size(path), "encode_s": round(time.perf_counter() - t0, 1)}
    cache.mkdir(parents=True, exist_ok=True)
    emb = np.stack(embs) if embs else np.empty((0, pipe.engine.spec.embedding_dim), np.float32)
    np.savez(f, meta=json.dumps(meta), emb=emb)
    meta["emb"] = emb
    return meta


def _largest(rec: dict) -> int | None:
    """The face of a frame record the door's per-frame checks look at (the largest box)."""
    if not rec["faces"]:
        return None
    area = [(f["det"][0][2] - f["det"][0][0]) * (f["det"][0][3] - f["det"][0][1]) for f in rec["faces"]]
    return int(np.argmax(area))


def _clip_extra(path: Path, clip: dict, cache_file: Path, compute, still_s: float, darken: float) -> np.ndarray:
    """An array computed from a clip's sampled frames and its cached boxes, cached in ``cache_file``
    (``compute(frame_rgb, record) -> array row``; records without faces get NaN rows)."""
    if cache_file.is_file():
        with np.load(cache_file, allow_pickle=False) as z:
            return z["values"]
    wanted = {r["index"] for r in clip["records"] if r["faces"]}
    frames, _, _ = clip_frames(path, wanted, still_s)
    by_index = dict(frames)
    rows = []
    for rec in clip["records"]:
        frame = by_index.get(rec["index"])
        if frame is not None and darken != 1.0:
            frame = (frame.astype(np.float32) * darken).astype(np.uint8)
        rows.append(None if frame is None else compute(frame, rec))
    shape = next((np.shape(r) for r in rows if r is not None), ())
    width = max([np.shape(r)[0] for r in rows if r is not None and np.ndim(r)] + [1])
    if shape:
        out = np.full((len(rows), width, *shape[1:]), np.nan, np.float32)
        for k, r in enumerate(rows):
            if r is not None and len(r):
                out[k, : len(r)] = r
    else:
        out = np.array([np.nan if r is None else float(r) for r in rows], np.float32)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache_file, values=out)
    return out


def pad_signature(antispoof) -> str:
    spec = antispoof.spec
    return f"pad-{spec.model_id}-" + files_signature(PAD_CODE, [n.sha256 for n in spec.networks], spec.input_size,
                                                      spec.channel_order, spec.pixel_scale, spec.live_class)


def clip_pad_scores(path: Path, clip: dict, stem: str, cache: Path, antispoof, still_s: float, darken: float) -> np.ndarray:
    """(S,) live score of the largest face of each sampled frame (NaN: no face), cached."""
    def score(frame, rec):
        k = _largest(rec)
        return np.nan if k is None else antispoof.score(frame, BBox(*rec["faces"][k]["det"][0]))

    return _clip_extra(path, clip, cache / f"{stem}-{pad_signature(antispoof)}.npz", score, still_s, darken)


def clip_landmarks(path: Path, clip: dict, stem: str, cache: Path, predictor, model: str, still_s: float,
                   darken: float) -> np.ndarray:
    """(S, F, 68, 2) landmarks of every face of each sampled frame (NaN-padded), cached."""
    sig = f"lm-{model}-" + files_signature(LANDMARK_CODE, model)

    def points(frame, rec):
        return predictor.predict_many(frame, [_detection(f["det"]) for f in rec["faces"]])

    return _clip_extra(path, clip, cache / f"{stem}-{sig}.npz", points, still_s, darken)


class CachedAntiSpoof:
    """Stands in for :class:`faceapp.antispoof.AntiSpoof` in a replay: the live score of a face is
    looked up by its box (the scores were computed on the clip's frames, :func:`clip_pad_scores`)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.table: dict[tuple, float] = {}

    @staticmethod
    def key(bbox) -> tuple:
        return tuple(round(float(v), 3) for v in (bbox.x1, bbox.y1, bbox.x2, bbox.y2))

    def load(self, clip: dict, scores: np.ndarray) -> None:
        self.table = {}
        for rec, score in zip(clip["records"], scores, strict=True):
            k = _largest(rec)
            if k is not None:
                self.table[self.key(BBox(*rec["faces"][k]["det"][0]))] = float(score)

    def score(self, frame_rgb, bbox) -> float:
        return self.table[self.key(bbox)]  # a KeyError: the door looked at a face the cache did not score


# -- replay --------------------------------------------------------------------------------------
def _detection(rec) -> Detection:
    return Detection(BBox(*rec[0]), float(rec[1]), Landmarks(np.asarray(rec[2], np.float32)))


_NO_CHIP = np.zeros((1, 1, 3), np.uint8)
_HAS_GALLERY_SIZE = "gallery_size" in {f.name for f in dataclasses.fields(FrameResult)}


def frame_results(clip: dict, gallery: Gallery, threshold: float, top_k: int) -> list[FrameResult]:
    people = len(gallery.people)
    w, h = clip.get("size") or (1, 1)
    frame = np.broadcast_to(_NO_CHIP, (h, w, 3))  # the frame's size (the head pose needs it), no pixels
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
        out.append(FrameResult(rec["index"], frame, tuple(faces), {}, tuple(_detection(d) for d in rec["all"]), **kw))
    return out


def run_door(settings: Settings, threshold: float, clip: dict, results: list[FrameResult], own: str | None, *,
             antispoof=None, landmarks: np.ndarray | None = None, seed: int = 0) -> list[dict]:
    """Every attempt of a clip: its outcome and how it counts (``own``: the clip's enrolled name).
    ``antispoof``: a :class:`CachedAntiSpoof` loaded with the clip's scores (setting ``antispoof``
    on); ``landmarks``: the clip's (S, F, 68, 2) points (setting ``liveness`` on; challenges drawn
    with a generator seeded by ``seed``)."""
    from faceapp.antispoof import antispoof_factory
    from faceapp.door import liveness_factory

    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    pad = antispoof_factory(settings, antispoof=antispoof) if antispoof is not None else None
    live = liveness_factory(settings, clock=clock, rng=random.Random(seed)) if landmarks is not None else None
    machine = DoorMachine.from_settings(settings, DoorMode.RECOGNIZE, threshold=threshold, clock=clock,
                                        antispoof=pad, liveness=live)
    attempts, started = [], None
    for k, r in enumerate(results):
        now[0] = r.index / clip["fps"]
        pts = None
        if landmarks is not None:
            pts = [p for p in landmarks[k][: len(r.faces)]]
        state = machine.feed(r, pts)
        if started is None and (state.phase is DoorPhase.WATCHING or state.decided_now):
            started = now[0]  # an attempt began with this frame (also right after a reset)
        if state.decided_now:
            o = state.outcome
            kind = {"timeout": "timeout", "not_recognized": "not_recognized", "spoof": "spoof"}.get(
                o.decision.value, "liveness_failed")
            if o.granted:
                kind = "genuine_grant" if own is not None and o.name == own else "wrong_grant"
            attempts.append({"kind": kind, "decision": o.decision.value, "name": o.name, "distance": o.distance,
                             "start_s": round(started or 0.0, 3), "decided_s": round(now[0], 3),
                             "time_to_decision_s": round(now[0] - (started or 0.0), 3), "detail": o.detail,
                             "challenge": state.liveness.kind.value if state.liveness is not None else None})
            started = None
        elif state.phase is DoorPhase.WAITING:
            started = None
    if machine.state.phase is DoorPhase.WATCHING:
        attempts.append({"kind": "unfinished", "start_s": round(started or 0.0, 3)})
    return attempts


def run_verify(settings: Settings, threshold: float, clip: dict, results: list[FrameResult], claim: str,
               gallery: Gallery, *, antispoof=None) -> list[dict]:
    """Verify mode (1:1): the visitor of the clip claims ``claim`` at the clip's first frame and
    again whenever the door is waiting after a decision; every attempt's outcome. A grant is a
    false accept unless the clip shows ``claim`` (the caller knows)."""
    from faceapp.antispoof import antispoof_factory

    now = [0.0]
    clock = lambda: now[0]  # noqa: E731
    pad = antispoof_factory(settings, antispoof=antispoof) if antispoof is not None else None
    machine = DoorMachine.from_settings(settings, DoorMode.VERIFY, threshold=threshold, clock=clock,
                                        distance_to=gallery.distance_to, antispoof=pad)
    attempts, started = [], None
    for r in results:
        now[0] = r.index / clip["fps"]
        if machine.state.phase is DoorPhase.WAITING:
            machine.claim(claim)
            started = now[0]
        state = machine.feed(r)
        if state.decided_now:
            o = state.outcome
            attempts.append({"decision": o.decision.value, "granted": o.granted, "distance": o.distance,
                             "start_s": round(started or 0.0, 3), "decided_s": round(now[0], 3)})
    if machine.state.phase is DoorPhase.WATCHING and started is not None:
        attempts.append({"decision": "unfinished", "granted": False, "start_s": round(started, 3)})
    return attempts


def verify_summary(per_claim: dict[str, dict[str, list[dict]]], shows: dict[str, str | None],
                   attack_clips: dict[str, str]) -> dict:
    """Counts over every (clip, claimed person): ``shows`` gives the person each clip shows
    (None: nobody enrolled). Impostor claims are those of another person than the one shown."""
    out = {"genuine_claims": 0, "genuine_attempts": 0, "genuine_granted": 0, "impostor_claims": 0,
           "impostor_attempts": 0, "false_accepts": 0, "claims_falsely_accepted": [], "attack_claims": 0,
           "attack_attempts": 0, "attacks_granted": 0}
    for clip, claims in per_claim.items():
        for claim, atts in claims.items():
            decided = [a for a in atts if a["decision"] != "unfinished"]
            granted = [a for a in decided if a["granted"]]
            if clip in attack_clips:
                if claim == shows.get(clip):
                    out["attack_claims"] += 1
                    out["attack_attempts"] += len(decided)
                    out["attacks_granted"] += len(granted)
                continue
            if claim == shows.get(clip):
                out["genuine_claims"] += 1
                out["genuine_attempts"] += len(decided)
                out["genuine_granted"] += len(granted)
            else:
                out["impostor_claims"] += 1
                out["impostor_attempts"] += len(decided)
                out["false_accepts"] += len(granted)
                if granted:
                    distances = ", ".join(f"{a['distance']:.3f}" for a in granted)
                    out["claims_falsely_accepted"].append(f"{clip} as {claim} ({distances})")
    return out


def verify_run(settings: Settings, threshold: float, clips: dict, gallery: Gallery, claims: list[str],
               genuine: dict[str, str], own_names: list[str], attack_clips: dict[str, str], cached_pad) -> dict:
    """Verify mode over every clip and every claim of ``claims`` (the enrolled real people)."""
    shows = {cname: genuine.get(cname) or (c.get("person", cname) if c.get("person", cname) in own_names else None)
             for cname, c in clips.items()}
    per_claim: dict[str, dict[str, list[dict]]] = {}
    for cname, c in clips.items():
        if cached_pad is not None:
            cached_pad.load(c, c["pad"])
        results = frame_results(c, gallery, threshold, settings.top_k)
        per_claim[cname] = {claim: run_verify(settings, threshold, c, results, claim, gallery, antispoof=cached_pad)
                            for claim in claims}
    v = verify_summary(per_claim, shows, attack_clips)
    log.info("verify, %d people: genuine %d/%d attempts granted (%d claims); impostors %d false accepts in %d "
             "attempts (%d claims)%s; attacks granted %d / %d", len(gallery.people), v["genuine_granted"],
             v["genuine_attempts"], v["genuine_claims"], v["false_accepts"], v["impostor_attempts"],
             v["impostor_claims"], (": " + "; ".join(v["claims_falsely_accepted"])) if v["claims_falsely_accepted"] else "",
             v["attacks_granted"], v["attack_attempts"])
    return {"people": len(gallery.people), "threshold": threshold, "summary": v, "attempts": per_claim}


def _median(xs) -> float | None:
    return float(np.median(xs)) if len(xs) else None


def summarise(per_clip: dict[str, list[dict]], genuine_clips: set[str], attack_clips: dict[str, str] | None = None) -> dict:
    """Counts over the real clips (the top level, as before attacks were played) and, apart, over
    the attack clips (``attack_clips``: clip -> print / screen). ``genuine_clips``: the real clips
    whose person is enrolled (their attempts are the genuine attempts)."""
    attack_clips = attack_clips or {}
    real = {c: atts for c, atts in per_clip.items() if c not in attack_clips}
    kinds = ("genuine_grant", "wrong_grant", "not_recognized", "timeout", "spoof", "liveness_failed", "unfinished")
    total = {k: 0 for k in kinds}
    for atts in real.values():
        for a in atts:
            total[a["kind"]] += 1
    decided = [a for atts in real.values() for a in atts if a["kind"] != "unfinished"]
    wrong_people = sorted({f"{c} as {a['name']}" for c, atts in real.items() for a in atts if a["kind"] == "wrong_grant"})
    gen = {c: real[c] for c in genuine_clips if c in real}
    first = [next((a for a in atts if a["kind"] == "genuine_grant"), None) for atts in gen.values()]
    ttd = [a["time_to_decision_s"] for a in first if a is not None]
    gen_attempts = [a for atts in gen.values() for a in atts if a["kind"] != "unfinished"]
    gen_granted = [a for a in gen_attempts if a["kind"] == "genuine_grant"]
    stranger = [a for c, atts in real.items() if c not in genuine_clips for a in atts if a["kind"] != "unfinished"]
    spoofed = sorted({c for c, atts in real.items() for a in atts if a["kind"] == "spoof"})
    att = [dict(a, clip=c, attack=attack_clips[c]) for c, atts in per_clip.items() if c in attack_clips
           for a in atts if a["kind"] != "unfinished"]
    att_granted = [a for a in att if a["kind"] in ("genuine_grant", "wrong_grant")]
    denials: dict[str, int] = {}
    for a in att:
        if a not in att_granted:
            denials[a["decision"]] = denials.get(a["decision"], 0) + 1
    return {
        **total,
        "attempts": len(decided),
        "clips_with_a_genuine_grant": sum(a is not None for a in first),
        "genuine_clips": len(gen),
        "genuine_first_attempt_granted": sum(bool(atts) and atts[0]["kind"] == "genuine_grant" for atts in gen.values()),
        "median_time_to_genuine_grant_s": _median(ttd),
        "genuine_attempts": len(gen_attempts),
        "genuine_accepted": len(gen_granted),
        "genuine_acceptance": (len(gen_granted) / len(gen_attempts)) if gen_attempts else None,
        "median_time_to_any_genuine_grant_s": _median([a["time_to_decision_s"] for a in gen_granted]),
        "real_spoof_denials": total["spoof"],
        "real_spoof_denial_rate": (total["spoof"] / len(decided)) if decided else None,
        "real_clips_denied_spoof": spoofed,
        "wrong_grants_per_attempt": (total["wrong_grant"] / len(decided)) if decided else None,
        "stranger_attempts": len(stranger),
        "stranger_grants": sum(a["kind"] == "wrong_grant" for a in stranger),
        "wrong_grants": wrong_people,
        "attacks": {
            "attempts": len(att),
            "granted": len(att_granted),
            "granted_as_person_shown": sum(a["kind"] == "genuine_grant" for a in att),
            "denied": len(att) - len(att_granted),
            "denied_by": denials,
            "median_time_to_spoof_s": _median([a["time_to_decision_s"] for a in att if a["kind"] == "spoof"]),
            "granted_attempts": [f"{a['clip']} ({a['attack']}) as {a['name']}" for a in att_granted],
        },
    }


# -- galleries ----------------------------------------------------------------------------------
def lfw_distractors(engine: FaceEngine, lfw: Path, n: int, cache_root: Path, sig: str):
    if n <= 0:
        return [], np.empty((0, engine.spec.embedding_dim), np.float32)
    from faceapp.evaluation.protocols import read_lfw_people
    from faceapp.evaluation.runner import FRONT_END, EvalCache, embed_images

    names = []
    for which in ("devtest", "devtrain"):
        names += sorted(read_lfw_people(lfw, which))
    names = names[:n]
    folder = cache_root / f"lfw-{sig}"
    det_name = f"detections-{FRONT_END}.json"  # detections are model-free; the name carries the front end's version
    shared = paths.cache_dir() / "eval" / det_name
    if not (folder / det_name).is_file() and shared.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared, folder / det_name)
    table = embed_images(engine, [lfw / "images" / m / f"{m}_0001.jpg" for m in names], cache=EvalCache(engine, folder))
    return [f"lfw:{m}" for m in names], table.embeddings


def enroll_still(engine: FaceEngine, path: Path) -> tuple[np.ndarray, dict]:
    img = load_image(path, max_side=engine.settings.max_image_side)
    dets = engine.relevant(engine.detect(img))
    if not dets:
        raise SystemExit(f"no face in {path}")
    obs = engine.observe(img, dets[:1])[0]
    return obs.embedding, {"faces": len(dets), "quality_ok": obs.quality.ok, "brightness": round(obs.quality.brightness, 1)}


def split_gif(clips: dict[str, dict]) -> None:
    """The Silent-Face demo GIF as its three segments (live, phone replay, print), each a clip."""
    gif = clips.pop(GIF, None)
    if gif is None:
        return
    for label, lo, hi, attack in GIF_SEGMENTS:
        keep = [k for k, r in enumerate(gif["records"]) if lo <= r["index"] <= hi]
        part = {**gif, "records": [gif["records"][k] for k in keep], "attack": attack, "person": GIF}
        for extra in ("pad", "lm"):
            if gif.get(extra) is not None:
                part[extra] = gif[extra][keep]
        clips[f"{GIF}#{label}"] = part


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
    ap.add_argument("--galleries", default="still only,all clips", help="which galleries, comma-separated")
    ap.add_argument("--antispoof", action="store_true", help="the door with the anti-spoofing network (setting antispoof)")
    ap.add_argument("--antispoof-threshold", type=float, default=None, help="setting antispoof_threshold")
    ap.add_argument("--liveness", action="store_true", help="the door with the liveness challenge (setting liveness)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the liveness challenges drawn")
    ap.add_argument("--no-attacks", dest="attacks", action="store_false",
                    help="do not play the print / screen stills as clips (the GIF is still split)")
    ap.add_argument("--still-seconds", type=float, default=6.0, help="how long a still (an attack) is held up")
    ap.add_argument("--no-track", dest="track", action="store_false",
                    help="scan every sampled frame whole (the door's pipeline tracks faces by default)")
    ap.add_argument("--verify", action="store_true",
                    help="also verify mode (1:1) in each 'all clips' gallery: every clip claims every enrolled "
                         "real person (the still's and the clips'), at its start and again after each decision")
    ap.add_argument("--cache", default=str(paths.cache_dir() / "door-eval"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--label", default="", help="a label stored in the JSON (e.g. before / after)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    videos = Path(args.videos)
    settings = Settings(device=args.device, antispoof=args.antispoof, antispoof_threshold=args.antispoof_threshold,
                        liveness=args.liveness)
    engine = FaceEngine(settings)
    pipe = FacePipeline(engine, lambda: Gallery.empty(engine.spec.embedding_dim, engine.model_id), top_k=settings.top_k,
                        track=args.track)
    sig = code_signature(engine, args.track)
    cache = Path(args.cache)
    enroll = args.enroll or [f"{GENUINE_NAME}=LivePortrait_driving_d19.jpg"]
    genuine = dict(g.split("=", 1) for g in (args.genuine or [f"{GENUINE_CLIP}={GENUINE_NAME}"]))
    stills = {}
    for item in enroll:
        name, file = item.split("=", 1)
        p = Path(file) if os.path.isabs(file) else videos / file
        stills[name] = enroll_still(engine, p)
    antispoof = predictor = None
    pad_model = None
    if args.antispoof:
        from faceapp.antispoof import AntiSpoof

        antispoof = AntiSpoof(device=args.device)
        pad_model = {"model": antispoof.spec.model_id, "signature": pad_signature(antispoof),
                     "threshold": settings.antispoof_threshold if settings.antispoof_threshold is not None
                     else antispoof.threshold, "min_frames": settings.antispoof_min_frames}
    if args.liveness:
        from faceapp.landmarks.predict import LandmarkPredictor

        predictor = LandmarkPredictor(model=settings.landmark_model, device=args.device)
    clips = {}
    for p in sorted(videos.iterdir()):
        playable = p.suffix.lower() in VIDEO_EXT or (args.attacks and p.name in ATTACK_STILLS)
        if playable and (not args.clips or any(c in p.name for c in args.clips.split(","))):
            c = clips[p.stem] = encode_clip(pipe, p, args.step, cache, sig, args.darken, args.still_seconds)
            c["attack"], c["person"] = ATTACK_STILLS.get(p.name), ATTACK_PERSON.get(p.stem, p.stem)
            stem = clip_cache_stem(p, args.step, sig, args.darken, args.still_seconds)
            t0 = time.perf_counter()
            if antispoof is not None:
                c["pad"] = clip_pad_scores(p, c, stem, cache, antispoof, args.still_seconds, args.darken)
            if predictor is not None:
                c["lm"] = clip_landmarks(p, c, stem, cache, predictor, settings.landmark_model, args.still_seconds,
                                         args.darken)
            pad = c.get("pad")
            log.info("%s: %d frames, %d sampled (%.1f s to encode, %.1f s for the extras)%s", p.name, c["frames"],
                     len(c["records"]), c["encode_s"], time.perf_counter() - t0,
                     "" if pad is None or not np.isfinite(pad).any() else
                     f"; live score median {np.nanmedian(pad):.3f}, min {np.nanmin(pad):.3f}")
    split_gif(clips)
    attack_clips = {name: c["attack"] for name, c in clips.items() if c.get("attack")}
    threshold = engine.threshold
    out = {"label": args.label, "command": " ".join(["scripts/eval_door.py"] + sys.argv[1:]), "step": args.step,
           "darken": args.darken, "track": args.track, "still_seconds": args.still_seconds,
           "threshold_in_force": threshold, "code_signature": sig, "antispoof_model": pad_model,
           "settings": {k: getattr(settings, k) for k in ("door_frames", "door_timeout_s", "door_reset_s", "min_detection_score",
                                                          "min_brightness", "liveness", "antispoof", "antispoof_threshold",
                                                          "antispoof_min_frames")},
           "stills": {k: v[1] for k, v in stills.items()}, "attack_clips": attack_clips, "clips": {}, "galleries": {}}
    for name, c in clips.items():
        faces = [len(r["faces"]) for r in c["records"]]
        pad = c.get("pad")
        out["clips"][name] = {"frames": c["frames"], "fps": c["fps"], "sampled": len(faces),
                              "frames_with_several_faces": sum(f > 1 for f in faces),
                              "frames_without_face": sum(f == 0 for f in faces),
                              "frames_low_quality": sum(1 for r in c["records"] if len(r["faces"]) == 1 and r["faces"][0]["issues"]),
                              "frames_too_dark": sum(1 for r in c["records"] if len(r["faces"]) == 1 and "too_dark" in r["faces"][0]["issues"]),
                              "enroll_frame": c["enroll"]["index"] if c["enroll"] else None,
                              "attack": c.get("attack"),
                              "live_scores": None if pad is None else [None if not np.isfinite(x) else round(float(x), 4)
                                                                       for x in pad]}
    # enrolled templates of the clips (not the genuine clip: its person is enrolled from the still;
    # not s11: the print shows the d11 girl, enrolled from her clip)
    own_names, own_embs = [], []
    for name, c in clips.items():
        person = c.get("person", name)
        if name in genuine or c["enroll"] is None or person != c["clip"].rsplit(".", 1)[0] or person in own_names:
            continue
        own_names.append(person)
        own_embs.append(c["emb"][c["enroll"]["emb_rows"][0]])
    cached_pad = CachedAntiSpoof(pad_model["threshold"]) if pad_model else None
    for n in [int(x) for x in args.distractors.split(",") if x.strip()]:
        lfw_names, lfw_embs = lfw_distractors(engine, Path(args.lfw), n, cache, sig)
        for which in [w.strip() for w in args.galleries.split(",")]:
            names = list(stills) + lfw_names
            embs = [v[0] for v in stills.values()] + list(lfw_embs)
            if which == "all clips":
                names += own_names
                embs += own_embs
            gallery = Gallery(names, np.arange(len(names)), np.stack(embs), model_id=engine.model_id)
            per_clip = {}
            for seed, (cname, c) in enumerate(clips.items()):
                person = c.get("person", cname)
                own = genuine.get(cname) or (person if which == "all clips" and person in own_names else None)
                if cached_pad is not None:
                    cached_pad.load(c, c["pad"])
                per_clip[cname] = run_door(settings, threshold, c, frame_results(c, gallery, threshold, settings.top_k), own,
                                           antispoof=cached_pad, landmarks=c.get("lm"), seed=args.seed * 1000 + seed)
            gen_clips = set(genuine) | ({c for c, v in clips.items() if v.get("person", c) in own_names and c not in attack_clips}
                                        if which == "all clips" else set())
            key = f"{which}, {n} LFW"
            out["galleries"][key] = {"people": len(gallery.people), "summary": summarise(per_clip, gen_clips, attack_clips),
                                     "attempts": per_clip}
            s = out["galleries"][key]["summary"]
            log.info("%-22s %5d people: genuine %d/%d, wrong %d, not recognized %d, timeout %d, SPOOF (real) %d, "
                     "liveness failed %d / %d real attempts; attacks granted %d / %d; d18 first attempt: %s",
                     key, len(gallery.people), s["genuine_accepted"], s["genuine_attempts"], s["wrong_grant"],
                     s["not_recognized"], s["timeout"], s["spoof"], s["liveness_failed"], s["attempts"],
                     s["attacks"]["granted"], s["attacks"]["attempts"],
                     per_clip.get(GENUINE_CLIP, [{}])[0].get("kind") if per_clip.get(GENUINE_CLIP) else None)
            if args.verify and which == "all clips":
                out.setdefault("verify", {})[key] = verify_run(settings, threshold, clips, gallery, list(stills) + own_names,
                                                               genuine, own_names, attack_clips, cached_pad)
    print(markdown(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


def markdown(out: dict) -> str:
    rows = ["| gallery | people | real attempts | genuine accepted / genuine attempts | wrong-person grants | "
            "not recognized | timeouts | SPOOF (real people) | liveness failed | attacks granted / attempts | "
            "median s to genuine grant (first / all) | median s to SPOOF (attacks) | wrong grants |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def sec(t):
        return "-" if t is None else f"{t:.2f}"

    for key, g in out["galleries"].items():
        s = g["summary"]
        at = s["attacks"]
        rows.append(f"| {key} | {g['people']} | {s['attempts']} | {s['genuine_accepted']} / {s['genuine_attempts']} | "
                    f"{s['wrong_grant']} | {s['not_recognized']} | {s['timeout']} | {s['spoof']} | {s['liveness_failed']} | "
                    f"{at['granted']} / {at['attempts']} | {sec(s['median_time_to_genuine_grant_s'])} / "
                    f"{sec(s['median_time_to_any_genuine_grant_s'])} | {sec(at['median_time_to_spoof_s'])} | "
                    f"{'; '.join(s['wrong_grants'] + at['granted_attempts']) or '-'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())

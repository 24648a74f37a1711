"""``faceapp benchmark``: latency on this machine (medians of repeated runs, milliseconds).

- pipeline: detect + align + embed of one 640x480 frame holding one face;
- landmarks: the 68-point landmark CNN with the eye aspect ratio and head pose of that face (what
  the live view's drawing and the door's liveness challenge add to each frame);
- enroll: a whole enrollment (load, detect, align, quality, 68-point eyes / head-pose check, embed,
  duplicate check, store write);
- identify: gallery search alone, for galleries of synthetic unit-length templates;
- live loop: frames per second over a video (``--video``, any size), with the pipeline's face
  tracking (``--no-track``: every frame scanned whole) and, with ``--liveness`` (or the setting),
  the 68 landmarks of each frame as the door's liveness challenge needs them, and with the setting
  ``antispoof`` (on by default) the anti-spoofing score of each frame's face, as the door computes it.

The networks run on the inference runtime :func:`faceapp.runtime.backend` picks (by default ONNX
Runtime on a CPU, torch on a GPU; ``FACEAPP_BACKEND`` overrides it); the JSON says which
(``backend``: the embedder's; ``backends``: each network's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from faceapp.cli.exit_codes import Exit


def _median_ms(fn, runs: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _default_image() -> Path | None:
    root = os.environ.get("FACEAPP_DATASETS")
    p = Path(root) / "lfw" / "images" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg" if root else None
    return p if p and p.is_file() else None


def frame_with_face(face: np.ndarray, size=(480, 640)) -> np.ndarray:
    """A grey 640x480 frame with the photo pasted in its centre (as a webcam would see it)."""
    frame = np.full((*size, 3), 110, dtype=np.uint8)
    h, w = min(face.shape[0], size[0]), min(face.shape[1], size[1])
    y, x = (size[0] - h) // 2, (size[1] - w) // 2
    frame[y : y + h, x : x + w] = face[:h, :w]
    return frame


def live_loop(engine, frame: np.ndarray, *, svc_gallery, video: str | None, frames: int,
              analyzer=None, track: bool = True, antispoof=None) -> dict:
    """Frames per second of the live loop (capture -> detect -> align -> embed -> match) over a
    video file: the given one (any size), or a 640x480 MJPG video of ``frame`` written to a temp
    folder. ``analyzer`` (liveness on): the 68 landmarks of every frame with a face, as the door
    computes them for its challenge. ``track``: the pipeline's face tracking (off: every frame
    scanned whole, as before issue 16 item 6). ``antispoof`` (the setting, on by default): a maker
    of :class:`faceapp.antispoof.AntiSpoofAttempt`; every frame's largest face is scored (the
    door's worst case: it scores each frame of an attempt's agreeing run)."""
    import cv2

    from faceapp.capture.sources import VideoFileSource
    from faceapp.match.gallery import Gallery
    from faceapp.pipeline import FacePipeline

    rng = np.random.default_rng(0)
    n = 200
    m = rng.standard_normal((n, engine.spec.embedding_dim), dtype=np.float32)
    gallery = Gallery([f"p{i}" for i in range(n)], np.arange(n), m / np.linalg.norm(m, axis=1, keepdims=True))
    with tempfile.TemporaryDirectory() as tmp:
        if video is None:
            video = str(Path(tmp) / "bench.avi")
            w = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (frame.shape[1], frame.shape[0]))
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            for i in range(frames):
                w.write(np.roll(bgr, i % 20, axis=1))  # the face drifts a little, like a person
            w.release()
        source = VideoFileSource(video)
        pipe = FacePipeline(engine, lambda: gallery, track=track)
        stages: dict[str, list[float]] = {}
        scans = faced = 0
        size = ""
        t0 = time.perf_counter()
        count = 0
        attempt = antispoof() if antispoof is not None else None
        for r in pipe.run(source.frames()):
            count += 1
            if attempt is not None and r.faces:
                t = time.perf_counter()
                attempt.feed_result(r)
                r.timings["antispoof"] = (time.perf_counter() - t) * 1e3
            size = f"{r.frame.shape[1]}x{r.frame.shape[0]}"
            if analyzer is not None and r.faces:
                t = time.perf_counter()
                analyzer.analyze_frame(r)
                r.timings["landmarks"] = (time.perf_counter() - t) * 1e3
            faced += bool(r.faces)
            scans += pipe.tracker is None or pipe.tracker.last.mode == "scan"
            for k, v in r.timings.items():
                stages.setdefault(k, []).append(v)
            if count >= frames:
                break
        elapsed = time.perf_counter() - t0
        source.close()
    return {
        "source": Path(video).name if video else "synthetic",
        "size": size,
        "tracking": track,
        "liveness": analyzer is not None,
        "antispoof": antispoof is not None,
        "frames_with_face": faced,
        "full_scans": scans,
        "frames": count,
        "fps": count / elapsed if elapsed else 0.0,
        "stages_ms": {k: round(statistics.median(v), 2) for k, v in stages.items()},
    }


def _threads(backend: str) -> int:
    """The inference threads: torch's pool, or what the ONNX Runtime sessions were given."""
    if backend == "torch":
        import torch

        return torch.get_num_threads()
    from faceapp import runtime

    return runtime.session_threads()


def cmd_benchmark(args: argparse.Namespace) -> int:
    from faceapp.antispoof import antispoof_factory
    from faceapp.cli.main import _settings
    from faceapp.imageio import load_image
    from faceapp.match.gallery import Gallery
    from faceapp.pipeline import FaceEngine
    from faceapp.services import FaceService

    image = Path(args.image) if args.image else _default_image()
    if image is None:
        print("faceapp: benchmark needs --image PHOTO (or FACEAPP_DATASETS with LFW)", file=sys.stderr)
        return int(Exit.USAGE)
    settings = _settings(args)
    engine = FaceEngine(settings)
    t0 = time.perf_counter()
    engine.warm_up()
    load_ms = (time.perf_counter() - t0) * 1e3
    frame = frame_with_face(load_image(image))
    if not engine.detect(frame):
        print(f"faceapp: no face found in {image}", file=sys.stderr)
        return int(Exit.NO_FACE)

    def pipeline_once():
        dets = engine.relevant(engine.detect(frame))
        engine.embedder.embed([engine.align(frame, d).image for d in dets])

    stages = {}
    dets = engine.detect(frame)
    stages["detect"] = _median_ms(lambda: engine.detect(frame), args.runs)
    stages["align"] = _median_ms(lambda: engine.align(frame, dets[0]), args.runs)
    chip = engine.align(frame, dets[0]).image
    stages["embed"] = _median_ms(lambda: engine.embedder.embed([chip]), args.runs)
    total = _median_ms(pipeline_once, args.runs)
    from faceapp.landmarks.analyze import LandmarkAnalyzer

    analyzer = LandmarkAnalyzer(settings)
    t0 = time.perf_counter()
    analyzer.warm_up()
    landmark_load_ms = (time.perf_counter() - t0) * 1e3
    landmarks_ms = _median_ms(lambda: analyzer.analyze(frame, dets[0]), args.runs)

    with tempfile.TemporaryDirectory() as tmp:
        svc = FaceService(settings.replace(db_url=f"sqlite:///{tmp}/bench.db"), engine=engine, analyzer=analyzer)
        counter = iter(range(10**9))
        enroll_ms = _median_ms(lambda: svc.enroll(f"person-{next(counter)}", image, largest=True, force=True), max(3, args.runs // 4))
        svc.close()

    rng = np.random.default_rng(0)
    identify = {}
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        m = rng.standard_normal((n, 128), dtype=np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        g = Gallery([f"p{i}" for i in range(n)], np.arange(n), m)
        probe = m[n // 2] + 0.05 * rng.standard_normal(128, dtype=np.float32)
        probe /= np.linalg.norm(probe)
        identify[str(n)] = _median_ms(lambda: g.nearest(probe, 5), max(3, args.runs // 2), warmup=1)
        del m, g

    live = live_loop(engine, frame, svc_gallery=Gallery.empty(engine.spec.embedding_dim), video=args.video,
                     frames=args.frames, analyzer=analyzer if (settings.liveness or args.liveness) else None,
                     track=not args.no_track, antispoof=antispoof_factory(settings))

    result = {
        "device": str(engine.embedder.device),
        "backend": engine.embedder.backend,
        "backends": {"detector": engine.detector.backend, "embedder": engine.embedder.backend,
                     "landmarks": analyzer.predictor.backend},
        "threads": _threads(engine.embedder.backend),
        "model_id": engine.model_id,
        "frame": "640x480, one face",
        "model_load_ms": round(load_ms, 1),
        "pipeline_ms": round(total, 1),
        "stages_ms": {k: round(v, 2) for k, v in stages.items()},
        "landmark_model_load_ms": round(landmark_load_ms, 1),
        "landmarks_ms": round(landmarks_ms, 2),
        "enroll_ms": round(enroll_ms, 1),
        "identify_ms": {k: round(v, 3) for k, v in identify.items()},
        "runs": args.runs,
        "live_loop": live,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"device {result['device']} ({result['backend']}, {result['threads']} threads), model {engine.model_id}")
        print(f"  models loaded in            {load_ms:8.1f} ms")
        print(f"  detect+align+embed (640x480) {total:8.1f} ms  (median of {args.runs})")
        for k, v in stages.items():
            print(f"    {k:26s} {v:8.2f} ms")
        print(f"  68 landmarks + pose + eyes  {landmarks_ms:8.2f} ms  (model loaded in {landmark_load_ms:.0f} ms)")
        print(f"  enroll (whole use case)     {enroll_ms:8.1f} ms")
        for k, v in identify.items():
            print(f"  identify, {int(k):>9,} templates {v:8.3f} ms")
        print(f"  live loop over {live['frames']} frames of {live['source']} ({live['size']}, tracking "
              f"{'on' if live['tracking'] else 'off'}, liveness {'on' if live['liveness'] else 'off'}, "
              f"anti-spoofing {'on' if live['antispoof'] else 'off'}, "
              f"{live['full_scans']} full scans): {live['fps']:.1f} frames/s")
        for k, v in live["stages_ms"].items():
            print(f"    {k:26s} {v:8.2f} ms (median)")
    return int(Exit.OK)

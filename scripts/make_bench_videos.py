"""Test videos for ``faceapp benchmark --video`` at three camera sizes (issue 16 item 6).

    python scripts/make_bench_videos.py [--out /tmp/bench_videos] [--frames 150]

Reads ``LivePortrait_source_s18.mp4`` (one woman indoors, 1280x720) from ``$FACEAPP_VIDEOS``
(default ../shared/videos) and writes MJPG videos of its first frames, outside the repository:
``s18_640x480.avi`` (the centre 960x720, resized: no squashed face), ``s18_1280x720.avi`` (as
is) and ``s18_1920x1080.avi`` (upscaled, as a 1080p camera would see the same scene). Never
write them into the repository (the clip's rights are the people's, not ours).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2

SIZES = ((640, 480), (1280, 720), (1920, 1080))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/bench_videos")
    p.add_argument("--frames", type=int, default=150)
    args = p.parse_args()
    videos = Path(os.environ.get("FACEAPP_VIDEOS", Path(__file__).resolve().parents[2] / "shared" / "videos"))
    src = videos / "LivePortrait_source_s18.mp4"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*"MJPG")
    writers = {(w, h): cv2.VideoWriter(str(out / f"s18_{w}x{h}.avi"), fourcc, 30.0, (w, h)) for w, h in SIZES}
    cap = cv2.VideoCapture(str(src))
    n = 0
    while n < args.frames:
        ok, frame = cap.read()
        if not ok:
            break
        for (w, h), writer in writers.items():
            part = frame[:, 160:1120] if (w, h) == (640, 480) else frame  # 4:3 from the 16:9 centre
            interp = cv2.INTER_AREA if w <= frame.shape[1] else cv2.INTER_LINEAR
            writer.write(cv2.resize(part, (w, h), interpolation=interp))
        n += 1
    cap.release()
    for writer in writers.values():
        writer.release()
    print(f"{n} frames of {src.name} -> {', '.join(f's18_{w}x{h}.avi' for w, h in SIZES)} in {out}")
    return 0 if n else 1


if __name__ == "__main__":
    raise SystemExit(main())

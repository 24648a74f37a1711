"""How many photos does enrollment's eyes / head-pose check refuse? Measured on LFW news photos.

For the first photo of each of the first N people of ``peopleDevTest.txt`` (LFW View 1, 1,711
people), the product's own path runs as ``faceapp enroll`` would (MTCNN, the usual quality
checks, the 68-point landmark CNN) and the script counts the photos refused for EYES_CLOSED and
HEAD_TURNED at the limits in force (settings ``min_eye_aspect_ratio``, ``max_yaw_deg``,
``max_pitch_deg``), with the distributions of |yaw|, |pitch| and the eye aspect ratio and what
other limits would refuse. LFW's photos are of public figures at events, not door enrollment
photos, so this is an upper bound on what a cooperative user sees.

    FACEAPP_DATASETS=../shared/datasets python scripts/landmarks_enroll_gate.py --people 500 \\
        --json artifacts/landmarks/enroll_gate.json --plot docs/landmarks_enroll_gate.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=500, help="how many people of peopleDevTest.txt (default 500)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--plot", type=Path, help="write histograms of |yaw|, |pitch| and the eye aspect ratio (PNG)")
    args = ap.parse_args(argv)
    root = Path(os.environ.get("FACEAPP_DATASETS", "")) / "lfw"
    if not (root / "peopleDevTest.txt").is_file():
        raise SystemExit(f"LFW not found under {root} (set FACEAPP_DATASETS)")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from tqdm import tqdm

    from faceapp.config import Settings
    from faceapp.services import FaceService
    from faceapp.types import QualityIssue

    lines = (root / "peopleDevTest.txt").read_text().split()[1:]
    names = lines[0::2][: args.people]
    settings = Settings(device="cpu", db_url="sqlite://")
    service = FaceService(settings)
    rows = []
    for name in tqdm(names, desc="photos", unit="photo"):
        probe = service.probe(root / "images" / name / f"{name}_0001.jpg", check_landmarks=True)
        if probe.observation is None:
            rows.append({"name": name, "decision": probe.decision.value})
            continue
        q = probe.landmarks.quality
        rows.append({
            "name": name, "yaw": q.pose.yaw, "pitch": q.pose.pitch, "ear": q.eye_aspect_ratio,
            "issues": [i.value for i in probe.observation.quality.issues],
        })
    faced = [r for r in rows if "yaw" in r]
    yaw = np.abs([r["yaw"] for r in faced])
    pitch = np.abs([r["pitch"] for r in faced])
    ear = np.array([r["ear"] for r in faced])
    n = len(faced)

    def share(issue: QualityIssue) -> float:
        return sum(issue.value in r["issues"] for r in faced) / max(n, 1)

    refused = sum(bool({QualityIssue.EYES_CLOSED.value, QualityIssue.HEAD_TURNED.value} & set(r["issues"])) for r in faced)
    report = {
        "photos": len(rows), "with_a_face": n,
        "limits": {"min_eye_aspect_ratio": settings.min_eye_aspect_ratio, "max_yaw_deg": settings.max_yaw_deg,
                   "max_pitch_deg": settings.max_pitch_deg},
        "refused_by_landmarks": refused / max(n, 1),
        "head_turned": share(QualityIssue.HEAD_TURNED), "eyes_closed": share(QualityIssue.EYES_CLOSED),
        "abs_yaw_percentiles": {p: float(np.percentile(yaw, p)) for p in (50, 90, 95, 99)},
        "abs_pitch_percentiles": {p: float(np.percentile(pitch, p)) for p in (50, 90, 95, 99)},
        "ear_percentiles": {p: float(np.percentile(ear, p)) for p in (1, 5, 50)},
        "refused_at_other_yaw_limits": {str(lim): float(np.mean(yaw > lim)) for lim in (20, 25, 30, 35, 40)},
        "examples_refused": [r["name"] for r in faced if r["issues"]][:20],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"report": report, "photos": rows}, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for ax, values, limit, title in (
            (axes[0], yaw, settings.max_yaw_deg, "|yaw| (degrees)"),
            (axes[1], pitch, settings.max_pitch_deg, "|pitch| (degrees)"),
            (axes[2], ear, settings.min_eye_aspect_ratio, "eye aspect ratio"),
        ):
            ax.hist(values, bins=40, color="#2e86de")
            ax.axvline(limit, color="#c0392b", linestyle="--", label=f"limit {limit:g}")
            ax.set_title(title)
            ax.legend()
        fig.suptitle(f"Enrollment's landmark checks on the first photos of {n} LFW DevTest people: "
                     f"{100 * refused / max(n, 1):.1f}% refused")
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

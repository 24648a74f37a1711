"""SFace through OpenCV's own pipeline (YuNet + ``FaceRecognizerSF.alignCrop`` + ``feature``) on an
LFW protocol or a pairs CSV: the yardstick beside ``faceapp eval ... --model sface-v1``.

The pipeline itself and its metrics are ``scripts/eval_reference.py --pipeline sface`` (YuNet
score >= 0.9 and NMS 0.3 as in OpenCV Zoo's demo, the face nearest the image centre, distance
1 - cosine, 10-fold accuracy and TAR at FAR 1e-3 by ``faceapp.match.calibration``, pairs without
a face counted wrong / rejected); this script only gives it LFW's own protocols: for ``--view``
it writes the view's pairs (``faceapp.evaluation.protocols.read_lfw_pairs``: View 1 DevTest,
or View 2 with its 10 folds) as a CSV with absolute paths under the cache folder, then runs it.

    FACEAPP_DATASETS=/work/shared/datasets .venv/bin/python scripts/eval_opencv_sface.py --view devtest
    .venv/bin/python scripts/eval_opencv_sface.py --view 10fold --json sface-opencv-view2.json
    .venv/bin/python scripts/eval_opencv_sface.py --pairs ~/.cache/faceapp/lfw-variants/tight-folds1-5.csv

OpenCV is all it needs (faceapp's .venv has it); with ``--python`` another interpreter (e.g. the
reference environment of ``scripts/setup_reference_env.sh``) runs the pipeline. Extra arguments
after ``--`` go to eval_reference.py (``--sface-onnx``, ``--wheel``, ``--yunet-score``...).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceapp.evaluation.protocols import datasets_dir, read_lfw_pairs  # noqa: E402

VIEWS = {"devtest": "devtest", "10fold": "10fold"}


def cache_dir() -> Path:
    env = os.environ.get("FACEAPP_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    from faceapp import paths

    return paths.cache_dir()


def write_view_csv(lfw: Path, view: str, out: Path) -> Path:
    """LFW's pairs of ``view`` as path_a,path_b,same,fold (absolute paths; View 2 folds 0..9)."""
    pairs = read_lfw_pairs(lfw, view)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path_a", "path_b", "same", "fold"])
        for p in pairs:
            w.writerow([str(Path(p.path_a).absolute()), str(Path(p.path_b).absolute()), int(p.same), p.fold])
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--view", choices=sorted(VIEWS), help="an LFW protocol")
    src.add_argument("--pairs", type=Path, help="a pairs CSV (path_a,path_b,same[,fold])")
    ap.add_argument("--lfw", type=Path, help="LFW folder (default: $FACEAPP_DATASETS/lfw)")
    ap.add_argument("--json", type=Path, help="write the results here too")
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs eval_reference.py")
    args = ap.parse_args(argv)

    if args.view:
        lfw = args.lfw or ((datasets_dir() or Path("../shared/datasets")) / "lfw")
        csv_path = write_view_csv(lfw, VIEWS[args.view], cache_dir() / "lfw-views" / f"{args.view}.csv")
    else:
        csv_path = args.pairs
    cmd = [args.python, str(REPO / "scripts" / "eval_reference.py"), str(csv_path), "--pipeline", "sface"]
    if args.json:
        cmd += ["--json", str(args.json)]
    return subprocess.call(cmd + extra)


if __name__ == "__main__":
    raise SystemExit(main())

"""Write LFW View 2 pair sets for the framing variants of issue 13 (faceapp.evaluation.variants).

For each variant, every image of the chosen View 2 folds is transformed once and written under
the cache folder (never the repository), with a pairs CSV that ``faceapp eval pairs`` and
``scripts/eval_reference.py`` read::

    OUT/VARIANT/images/<Name>/<Name>_<nnnn>.jpg
    OUT/VARIANT.csv              all 10 folds (path_a,path_b,same,fold; paths relative to OUT)
    OUT/VARIANT-folds1-5.csv     with --folds 1-5: only those folds' pairs

``fold`` is LFW's fold number, 1..10. Images are JPEG quality 95 without chroma subsampling
(except ``jpeg``, whose file is the quality-15 JPEG itself); LFW's originals are JPEGs too.

Idempotent: an image already written with the same variant parameters is left alone (files are
written to a temporary name and renamed, so an interrupted run leaves no half-written file);
OUT/VARIANT/params.json records the parameters, and a change of them rewrites that variant.

Usage::

    FACEAPP_DATASETS=/work/shared/datasets .venv/bin/python scripts/make_lfw_variants.py \
        --variant tight --folds 1-5
    .venv/bin/python scripts/make_lfw_variants.py --variant all      # every variant, all folds

OUT defaults to $FACEAPP_CACHE/lfw-variants, else faceapp's cache folder
(~/.cache/faceapp/lfw-variants on Linux).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faceapp.evaluation import variants as V  # noqa: E402
from faceapp.evaluation.protocols import Pair, datasets_dir, read_lfw_pairs  # noqa: E402

log = logging.getLogger("make_lfw_variants")

STORE_QUALITY = 95


def default_out() -> Path:
    env = os.environ.get("FACEAPP_CACHE", "").strip()
    if env:
        return Path(env).expanduser() / "lfw-variants"
    from faceapp import paths

    return paths.cache_dir() / "lfw-variants"


def variant_params(name: str) -> dict:
    """What the files of a variant depend on (recorded in params.json)."""
    common = {"variant": name, "store": "jpeg" if name == "jpeg" else f"jpeg q{STORE_QUALITY} 4:4:4"}
    specific = {
        "tight": {"box": list(V.TIGHT_BOX)},
        "small": {"frame": list(V.SMALL_FRAME), "scale": V.SMALL_SCALE, "grey": V.SMALL_GREY},
        "rotated": {"degrees": V.ROTATION_DEGREES, "sign": "odd image number +, even -", "border": "reflect101"},
        "lowres": {"size": V.LOWRES_SIZE, "down": "area", "up": "bilinear"},
        "jpeg": {"quality": V.JPEG_QUALITY, "subsampling": "4:2:0"},
        "dark": {"gamma": V.DARK_GAMMA},
    }[name]
    return {**common, **specific}


def parse_folds(text: str) -> list[int]:
    """``"1-5"``, ``"1,3,7"`` or ``"all"`` -> sorted LFW fold numbers (1..10)."""
    if text.strip().lower() == "all":
        return list(range(1, 11))
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad folds {text!r}: expected e.g. 1-5, 1,3 or all") from None
        if not 1 <= a <= b <= 10:
            raise argparse.ArgumentTypeError(f"folds must lie in 1..10, got {part!r}")
        out.update(range(a, b + 1))
    return sorted(out)


def encode(name: str, img: np.ndarray, src: Path) -> bytes:
    """The variant's file bytes."""
    if name == "jpeg":
        return V.jpeg_bytes(img)
    out = V.apply_variant(name, img, src)
    buf = io.BytesIO()
    Image.fromarray(out, "RGB").save(buf, format="JPEG", quality=STORE_QUALITY, subsampling=0)
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    tmp.replace(path)


def _relative_image(src: Path, lfw_images: Path) -> Path:
    return src.relative_to(lfw_images)


def write_variant(name: str, pairs: list[Pair], lfw_images: Path, out: Path, folds: list[int]) -> tuple[Path, int]:
    """Write the images and CSV of one variant; returns (csv path, images newly written)."""
    vdir = out / name
    params = variant_params(name)
    pfile = vdir / "params.json"
    rewrite = False
    if pfile.is_file():
        try:
            rewrite = json.loads(pfile.read_text(encoding="utf-8")) != params
        except ValueError:
            rewrite = True
        if rewrite:
            log.info("%s: parameters changed since the last run, rewriting its images", name)
    vdir.mkdir(parents=True, exist_ok=True)
    _atomic_write(pfile, json.dumps(params, indent=2) + "\n")

    chosen = [p for p in pairs if p.fold + 1 in folds]
    sources = sorted({p.path_a for p in chosen} | {p.path_b for p in chosen})
    written = 0
    for i, src in enumerate(sources, 1):
        dst = vdir / "images" / _relative_image(src, lfw_images)
        if dst.is_file() and not rewrite:
            continue
        with Image.open(src) as im:
            img = np.asarray(im.convert("RGB"))
        _atomic_write(dst, encode(name, img, src))
        written += 1
        if i % 1000 == 0:
            log.info("%s: %d / %d images", name, i, len(sources))

    suffix = "" if folds == list(range(1, 11)) else "-folds" + _fold_label(folds)
    csv_path = out / f"{name}{suffix}.csv"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path_a", "path_b", "same", "fold"])
    for p in chosen:
        a = (Path(name) / "images" / _relative_image(p.path_a, lfw_images)).as_posix()
        b = (Path(name) / "images" / _relative_image(p.path_b, lfw_images)).as_posix()
        w.writerow([a, b, int(p.same), p.fold + 1])
    text = buf.getvalue()
    if not csv_path.is_file() or csv_path.read_text(encoding="utf-8") != text:
        _atomic_write(csv_path, text)
    return csv_path, written


def _fold_label(folds: list[int]) -> str:
    if folds == list(range(folds[0], folds[-1] + 1)):
        return f"{folds[0]}-{folds[-1]}" if len(folds) > 1 else str(folds[0])
    return "_".join(str(f) for f in folds)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", action="append", choices=[*V.VARIANTS, "all"], required=True,
                    help="variant to write (repeatable; 'all' for every one)")
    ap.add_argument("--folds", type=parse_folds, default=list(range(1, 11)),
                    help="View 2 folds, 1..10: e.g. 1-5 (default: all)")
    ap.add_argument("--lfw", type=Path, help="LFW folder (default: $FACEAPP_DATASETS/lfw)")
    ap.add_argument("--out", type=Path, help="output folder (default: $FACEAPP_CACHE/lfw-variants "
                    "or faceapp's cache folder)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    lfw = args.lfw or (datasets_dir() / "lfw" if datasets_dir() else None)
    if lfw is None or not (lfw / "pairs.txt").is_file():
        ap.error("LFW not found: pass --lfw DIR or set FACEAPP_DATASETS")
    out = (args.out or default_out()).expanduser().resolve()
    if out == REPO or REPO in out.parents:
        ap.error(f"{out} is inside the repository; variants are written to a cache folder, never committed")
    lfw_images = lfw / "images" if (lfw / "images").is_dir() else lfw
    pairs = read_lfw_pairs(lfw, "10fold")
    names = list(V.VARIANTS) if "all" in args.variant else list(dict.fromkeys(args.variant))
    for name in names:
        csv_path, written = write_variant(name, pairs, lfw_images, out, args.folds)
        log.info("%s: %s (%d images written now)", name, csv_path, written)
        print(csv_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The LFW framing variants of issue 13 (faceapp.evaluation.variants), their writer
(scripts/make_lfw_variants.py) and the reference pipelines' metrics (scripts/eval_reference.py)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceapp.errors import ImageError
from faceapp.evaluation import variants as V
from faceapp.evaluation.protocols import read_pairs_csv
from script_module import load_script

REPO = Path(__file__).resolve().parents[1]


def _coords_image(w: int = 250, h: int = 250) -> np.ndarray:
    """R = x, G = y, B = 7: every pixel says where it came from."""
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x, y, np.full_like(x, 7)]).astype(np.uint8)


def _load(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


# ------------------------------------------------------------------------------ tight


def test_tight_is_the_box_of_the_original(lfw_image):
    img = _load(lfw_image("Aaron_Peirsol", 1))
    out = V.tight(img)
    assert out.shape == (130, 110, 3)
    np.testing.assert_array_equal(out, img[65:195, 70:180])


def test_tight_box_corners():
    out = V.tight(_coords_image())
    assert tuple(out[0, 0, :2]) == (70, 65)  # top-left pixel of the box
    assert tuple(out[-1, -1, :2]) == (179, 194)  # bottom-right, x2/y2 exclusive
    with pytest.raises(ImageError, match="tight box"):
        V.tight(_coords_image(150, 150))


# ------------------------------------------------------------------------------ small


def test_small_is_half_size_at_the_centre_of_a_grey_frame():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 100, (250, 250, 3), dtype=np.uint8)  # never the frame's grey
    out = V.small(img)
    assert out.shape == (480, 640, 3)
    x, y = V.small_offset(img)
    assert (x, y) == (257, 177)
    inside = np.zeros(out.shape[:2], bool)
    inside[y : y + 125, x : x + 125] = True
    assert (out[~inside] == 128).all()
    assert (out[inside] < 100).all()
    # the pasted image is the original averaged over 2x2 blocks
    blocks = img.reshape(125, 2, 125, 2, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(out[y : y + 125, x : x + 125] - blocks).max() <= 1.0


# ---------------------------------------------------------------------------- rotated


def _bar_angle(img: np.ndarray) -> float:
    """Orientation in degrees of the bright pixels' main axis, counter-clockwise as displayed."""
    ys, xs = np.nonzero(img[..., 0] > 128)
    cov = np.cov(np.vstack([xs - xs.mean(), ys - ys.mean()]))
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, np.argmax(vals)]
    a = math.degrees(math.atan2(-vy, vx))  # image y points down
    return (a + 90) % 180 - 90


def test_rotation_sign_alternates_with_the_image_number():
    assert V.rotation_angle("x/Ann_Smith_0001.jpg") == 20.0
    assert V.rotation_angle("Ann_Smith_0002.jpg") == -20.0
    assert V.rotation_angle("Ann_Smith_0013.jpg") == 20.0
    with pytest.raises(ImageError, match="image number"):
        V.rotation_angle("photo.jpg")
    bar = np.zeros((250, 250, 3), np.uint8)
    bar[120:130, 40:210] = 255  # a horizontal bar through the centre
    assert abs(_bar_angle(bar)) < 0.5
    measured = [_bar_angle(V.apply_variant("rotated", bar, f"A_B_{n:04d}.jpg")) for n in (1, 2, 3, 4)]
    for got, want in zip(measured, (20, -20, 20, -20), strict=True):
        assert got == pytest.approx(want, abs=1.0)


def test_rotating_back_restores_the_image(lfw_image):
    img = _load(lfw_image("Aaron_Peirsol", 1))
    out = V.apply_variant("rotated", img, "Aaron_Peirsol_0001.jpg")  # +20
    assert out.shape == img.shape
    centre = (slice(60, 190), slice(60, 190))
    back = np.abs(V.rotated(out, -20)[centre].astype(int) - img[centre]).mean()
    further = np.abs(V.rotated(out, 20)[centre].astype(int) - img[centre]).mean()
    unrotated = np.abs(out[centre].astype(int) - img[centre]).mean()
    assert back < 6 < unrotated
    assert back < further / 4


# ----------------------------------------------------------------------------- lowres


def test_lowres_keeps_the_size_and_loses_detail(lfw_image):
    img = _load(lfw_image("Aaron_Peirsol", 1))
    out = V.lowres(img)
    assert out.shape == img.shape
    # all it holds is 64 x 64 pixels: going through 64 x 64 again changes it little ...
    again = np.abs(V.lowres(out).astype(int) - out).mean()
    lost = np.abs(out.astype(int) - img).mean()
    assert again < lost / 2
    # ... and detail finer than 250/64 pixels is gone: a 2-pixel checkerboard becomes flat grey
    checker = ((np.indices((250, 250)).sum(axis=0) % 2) * 255).astype(np.uint8)
    flat = V.lowres(np.dstack([checker] * 3))
    assert checker.std() > 120 and flat.std() < 6
    assert abs(flat.mean() - 127.5) < 3


# ------------------------------------------------------------------------------- jpeg

# The IJG (libjpeg) base luminance table; quality q < 50 scales it by 5000 // q percent.
_IJG_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]


def test_jpeg_is_quality_15(lfw_image):
    img = _load(lfw_image("Aaron_Peirsol", 1))
    data = V.jpeg_bytes(img)
    scale = 5000 // 15
    want = sorted(min(255, max(1, (b * scale + 50) // 100)) for b in _IJG_LUMA)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (250, 250)
        assert sorted(im.quantization[0]) == want
    q95 = io.BytesIO()
    Image.fromarray(img).save(q95, format="JPEG", quality=95)
    assert len(data) < len(q95.getvalue()) / 4
    out = V.jpeg(img)
    assert out.shape == img.shape
    # block artefacts: the steps across the 8x8 block borders grow much more than those inside
    # the blocks (LFW's originals are JPEGs already, with a little of it)
    def blockiness(x: np.ndarray) -> float:
        steps = np.abs(np.diff(_luma(x), axis=1))
        return steps[:, 7::8].mean() / np.delete(steps, np.s_[7::8], axis=1).mean()

    assert blockiness(out) > 1.4 * blockiness(img)
    assert np.abs(out.astype(int) - img).mean() > 3


# ------------------------------------------------------------------------------- dark


def test_dark_follows_gamma_2_5(lfw_image):
    levels = np.arange(256, dtype=np.uint8)
    ramp = np.dstack([np.tile(levels, (4, 1))] * 3)
    out = V.dark(ramp)
    want = 255.0 * (levels / 255.0) ** 2.5
    assert np.abs(out[0, :, 0] - want).max() <= 0.5
    for level in (64, 128, 200):  # grey: the luma follows the gamma exactly
        grey = np.full((8, 8, 3), level, np.uint8)
        assert _luma(V.dark(grey)).mean() == pytest.approx(255 * (level / 255) ** 2.5, abs=0.5)
    img = _load(lfw_image("Aaron_Peirsol", 1))
    d = V.dark(img)
    assert d.shape == img.shape and (d <= img).all()
    # on a colour photo the mean luma is that of the gamma-mapped luma, plus a little (the gamma
    # is convex and applied per channel), far below the original's
    y = _luma(img)
    want = (255 * (y / 255) ** 2.5).mean()
    assert want - 0.5 <= _luma(d).mean() <= want * 1.05 + 0.5
    assert _luma(d).mean() < 0.8 * y.mean()


def test_unknown_variant_and_bad_input():
    with pytest.raises(ImageError, match="unknown variant"):
        V.apply_variant("blurry", _coords_image(), "A_0001.jpg")
    with pytest.raises(ImageError, match="RGB uint8"):
        V.dark(np.zeros((10, 10), np.uint8))


# ---------------------------------------------------------------------------- writer


def _fake_lfw(root: Path) -> Path:
    """An LFW-shaped folder: 10 folds of 1 same + 1 different pair over synthetic 250x250 images."""
    rng = np.random.default_rng(1)
    lines = ["10\t1"]
    for f in range(10):
        a, b = f"Per_Son{f}", f"Oth_Er{f}"
        lines += [f"{a}\t1\t2", f"{a}\t1\t{b}\t1"]
        for name, n in ((a, 1), (a, 2), (b, 1)):
            p = root / "images" / name / f"{name}_{n:04d}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(p, quality=95)
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root


def test_make_lfw_variants_writes_once(tmp_path):
    mk = load_script("make_lfw_variants")
    lfw = _fake_lfw(tmp_path / "lfw")
    out = tmp_path / "variants"
    args = ["--variant", "tight", "--variant", "jpeg", "--folds", "1-2", "--lfw", str(lfw), "--out", str(out)]
    assert mk.main(args) == 0
    csv_path = out / "tight-folds1-2.csv"
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["same"], r["fold"]) for r in rows] == [("1", "1"), ("0", "1"), ("1", "2"), ("0", "2")]
    pairs = read_pairs_csv(csv_path)
    assert pairs[0].path_a == out / "tight/images/Per_Son0/Per_Son0_0001.jpg"
    files = sorted((out / "tight" / "images").rglob("*.jpg"))
    assert len(files) == 6  # 3 images per fold, folds 1 and 2 only
    src = _load(lfw / "images/Per_Son0/Per_Son0_0001.jpg")
    written = _load(pairs[0].path_a)
    assert written.shape == (130, 110, 3)
    assert np.abs(written.astype(int) - src[65:195, 70:180]).mean() < 4  # stored at JPEG q95
    # the jpeg variant's file is the quality-15 JPEG itself
    jpg = out / "jpeg/images/Per_Son0/Per_Son0_0001.jpg"
    assert jpg.read_bytes() == V.jpeg_bytes(src)
    # a second run writes nothing and leaves the files as they were
    stamps = {p: p.stat().st_mtime_ns for p in files}
    _, n = mk.write_variant("tight", mk.read_lfw_pairs(lfw, "10fold"), lfw / "images", out, [1, 2])
    assert n == 0 and {p: p.stat().st_mtime_ns for p in files} == stamps
    # all folds: the plain name
    assert mk.main(["--variant", "dark", "--lfw", str(lfw), "--out", str(out)]) == 0
    assert len(read_pairs_csv(out / "dark.csv")) == 20


def test_make_lfw_variants_refuses_the_repository(tmp_path):
    mk = load_script("make_lfw_variants")
    lfw = _fake_lfw(tmp_path / "lfw")
    with pytest.raises(SystemExit):
        mk.main(["--variant", "tight", "--lfw", str(lfw), "--out", str(REPO / "build" / "variants")])
    assert not (REPO / "build" / "variants").exists()


# ------------------------------------------------------------------ reference metrics


def test_reference_metrics_count_missing_faces_wrong():
    ref = load_script("eval_reference")
    rng = np.random.default_rng(2)
    n = 200
    same = np.arange(n) % 2 == 0
    d = np.where(same, rng.uniform(0.1, 0.4, n), rng.uniform(0.6, 0.9, n))  # separable
    folds = (np.arange(n) // 2) % 10  # each fold: 10 same and 10 different pairs
    valid = np.ones(n, bool)
    r = ref.reference_metrics(d, same, folds, valid)
    assert r["accuracy"] == 1.0 and r["tar_at_far_1e-3"] == 1.0
    valid[[0, 1, 2, 3]] = False  # two same and two different pairs without a face
    d_bad = d.copy()
    d_bad[~valid] = np.where(same[~valid], 3.0, 0.0)  # whatever they held, it must not count
    r = ref.reference_metrics(d_bad, same, folds, valid)
    assert r["pairs_with_no_face"] == 4
    assert r["accuracy"] == pytest.approx(1 - 4 / n)  # all four wrong
    assert r["accuracy_if_rejected"] == pytest.approx(1 - 2 / n)  # only the same pairs wrong
    assert r["tar_at_far_1e-3"] == pytest.approx(1 - 2 / (n / 2))
    assert r["accuracy_pairs_with_faces_only"] == 1.0
    # the thresholds are those of the pairs with faces alone: the missing ones do not move them
    from faceapp.match.calibration import kfold_accuracy

    kept = kfold_accuracy(d[valid], same[valid], folds[valid])
    assert r["fold_thresholds"] == pytest.approx(list(kept.fold_thresholds))


def test_central_face_choice():
    ref = load_script("eval_reference")
    assert ref.central([], 100, 100) is None
    assert ref.central([(0, 0, 20, 20), (40, 40, 60, 60), (80, 0, 100, 20)], 100, 100) == 1

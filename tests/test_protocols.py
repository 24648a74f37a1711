"""Tests of faceapp.evaluation.protocols: LFW protocol files and the pairs CSV."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from faceapp.evaluation.protocols import (
    Pair,
    datasets_dir,
    read_lfw_pairs,
    read_lfw_people,
    read_pairs_csv,
)

_DATASETS = datasets_dir()
_LFW = (_DATASETS if _DATASETS is not None else Path("FACEAPP_DATASETS-is-not-set")) / "lfw"
_HAVE_LFW = (_LFW / "pairs.txt").is_file()
# As in conftest.py: with FACEAPP_REQUIRE_DATASETS=1 (CI) a missing LFW fails, not skips.
_REQUIRED = os.environ.get("FACEAPP_REQUIRE_DATASETS") == "1"

requires_lfw = pytest.mark.skipif(
    not _HAVE_LFW and not _REQUIRED,
    reason="LFW not available: set FACEAPP_DATASETS to a folder holding lfw/pairs.txt",
)


def _name(path: Path) -> str:
    return path.parent.name


# ------------------------------------------------------------------------------ real LFW files


@pytest.mark.datasets
@requires_lfw
def test_lfw_view2_counts_and_folds():
    pairs = read_lfw_pairs(_LFW, "10fold")
    assert len(pairs) == 6000
    assert sum(p.same for p in pairs) == 3000
    per_fold = Counter(p.fold for p in pairs)
    assert sorted(per_fold) == list(range(10))
    assert set(per_fold.values()) == {600}
    same_per_fold = Counter(p.fold for p in pairs if p.same)
    assert set(same_per_fold.values()) == {300}
    # File order: fold 0's 600 pairs first, matched pairs before mismatched ones.
    assert [p.fold for p in pairs] == [i // 600 for i in range(6000)]
    assert all(p.same == (i % 600 < 300) for i, p in enumerate(pairs))
    for p in pairs:
        assert (_name(p.path_a) == _name(p.path_b)) == p.same


@pytest.mark.datasets
@requires_lfw
@pytest.mark.parametrize("view, n", [("devtrain", 2200), ("devtest", 1000)])
def test_lfw_view1_counts(view, n):
    pairs = read_lfw_pairs(_LFW, view)
    assert len(pairs) == n
    assert sum(p.same for p in pairs) == n // 2
    assert {p.fold for p in pairs} == {0}


@pytest.mark.datasets
@requires_lfw
@pytest.mark.parametrize("view", ["devtrain", "devtest", "10fold"])
def test_lfw_every_referenced_image_exists(view):
    pairs = read_lfw_pairs(_LFW, view)
    missing = sorted({str(q) for p in pairs for q in (p.path_a, p.path_b) if not q.is_file()})
    assert not missing, f"{len(missing)} missing images, e.g. {missing[:3]}"


@pytest.mark.datasets
@requires_lfw
def test_lfw_dev_people_are_disjoint():
    train = read_lfw_people(_LFW, "devtrain")
    test = read_lfw_people(_LFW, "devtest")
    assert len(train) == 4038 and len(test) == 1711
    assert not set(train) & set(test)
    # The pairs of each dev set only use that set's people.
    train_pairs = read_lfw_pairs(_LFW, "devtrain")
    test_pairs = read_lfw_pairs(_LFW, "devtest")
    train_names = {_name(q) for p in train_pairs for q in (p.path_a, p.path_b)}
    test_names = {_name(q) for p in test_pairs for q in (p.path_a, p.path_b)}
    assert not train_names & test_names
    assert train_names <= set(train) and test_names <= set(test)


@pytest.mark.datasets
@requires_lfw
def test_lfw_people_10fold_matches_pairs_and_images():
    folds = read_lfw_people(_LFW, "10fold")
    assert len(folds) == 10
    assert sum(len(f) for f in folds) == 5749
    assert sum(sum(f.values()) for f in folds) == 13233
    names = [n for f in folds for n in f]
    assert len(names) == len(set(names))  # the split is by person
    for p in read_lfw_pairs(_LFW, "10fold"):
        assert _name(p.path_a) in folds[p.fold] and _name(p.path_b) in folds[p.fold]


# ------------------------------------------------------------------------------ synthetic LFW files


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_read_lfw_pairs_synthetic(tmp_path):
    (tmp_path / "images").mkdir()
    _write(tmp_path / "pairs.txt", "2\t1\nAnn\t1\t2\nAnn\t1\tBob\t10\nBob 3 12\nCy  1  Dee  2\n")
    pairs = read_lfw_pairs(tmp_path, "10fold")
    img = tmp_path / "images"
    assert pairs == [
        Pair(img / "Ann/Ann_0001.jpg", img / "Ann/Ann_0002.jpg", True, 0),
        Pair(img / "Ann/Ann_0001.jpg", img / "Bob/Bob_0010.jpg", False, 0),
        Pair(img / "Bob/Bob_0003.jpg", img / "Bob/Bob_0012.jpg", True, 1),
        Pair(img / "Cy/Cy_0001.jpg", img / "Dee/Dee_0002.jpg", False, 1),
    ]


def test_read_lfw_pairs_dev_view_without_images_subfolder(tmp_path):
    # The original lfw.tgz layout: person folders directly in lfw_dir.
    _write(tmp_path / "pairsDevTest.txt", "1\nAnn 1 2\nAnn 1 Bob 1\n")
    pairs = read_lfw_pairs(tmp_path, "DevTest")
    assert pairs[0].path_a == tmp_path / "Ann" / "Ann_0001.jpg"
    assert [p.fold for p in pairs] == [0, 0]
    assert [p.same for p in pairs] == [True, False]


def test_read_lfw_pairs_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="pairsDevTrain.txt"):
        read_lfw_pairs(tmp_path, "devtrain")


def test_read_lfw_pairs_unknown_view(tmp_path):
    with pytest.raises(ValueError, match="view"):
        read_lfw_pairs(tmp_path, "view3")


@pytest.mark.parametrize(
    "text, match",
    [
        ("1\nAnn 1 2\nAnn 1 Bob\n", "line 3"),  # mismatched pair with 3 fields
        ("1\nAnn 1 Bob 2\nAnn 1 Bob 1\n", "line 2"),  # matched pair with 4 fields
        ("1\nAnn 1 x\nAnn 1 Bob 1\n", "line 2"),  # non-integer image number
        ("2\nAnn 1 2\nAnn 1 Bob 1\n", "header announces 4"),  # too few lines
        ("one\n", "line 1"),
        ("", "empty"),
    ],
)
def test_read_lfw_pairs_malformed(tmp_path, text, match):
    _write(tmp_path / "pairsDevTrain.txt", text)
    with pytest.raises(ValueError, match=match):
        read_lfw_pairs(tmp_path, "devtrain")


def test_read_lfw_people_synthetic(tmp_path):
    _write(tmp_path / "peopleDevTrain.txt", "2\nAnn\t3\nBob\t1\n")
    _write(tmp_path / "people.txt", "2\n1\nAnn 3\n2\nBob 1\nCy 4\n")
    assert read_lfw_people(tmp_path, "devtrain") == {"Ann": 3, "Bob": 1}
    assert read_lfw_people(tmp_path, "10fold") == [{"Ann": 3}, {"Bob": 1, "Cy": 4}]
    with pytest.raises(FileNotFoundError, match="peopleDevTest.txt"):
        read_lfw_people(tmp_path, "devtest")


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("people.txt", "2\n1\nAnn 3\n2\nBob 1\n", "found only 1 more"),
        ("people.txt", "1\n1\nAnn 3\nBob 1\n", "line 4"),
        ("people.txt", "3\n1\nAnn 3\n", "found only 1"),
        ("peopleDevTrain.txt", "2\nAnn 3\nAnn 1\n", "listed twice"),
        ("peopleDevTrain.txt", "1\nAnn three\n", "line 2"),
    ],
)
def test_read_lfw_people_malformed(tmp_path, name, text, match):
    _write(tmp_path / name, text)
    which = "10fold" if name == "people.txt" else "devtrain"
    with pytest.raises(ValueError, match=match):
        read_lfw_people(tmp_path, which)


# ------------------------------------------------------------------------------ CSV


def test_read_pairs_csv(tmp_path):
    absolute = tmp_path / "elsewhere" / "z.jpg"
    csv_path = _write(
        tmp_path / "sets" / "pairs.csv",
        "\ufeffpath_a,path_b,same,fold,note\n"
        f"a.jpg,sub/b.jpg,1,0,x\n"
        f"c.jpg,{absolute},FALSE,1,\n"
        "\n"
        "d.jpg, e.jpg ,Yes,2,\n"
        "f.jpg,g.jpg,no,2,\n"
        "h.jpg,i.jpg,true,3,\n"
        "j.jpg,k.jpg,0,3,\n",
    )
    pairs = read_pairs_csv(csv_path)
    base = tmp_path / "sets"
    assert pairs[0] == Pair(base / "a.jpg", base / "sub" / "b.jpg", True, 0)
    assert pairs[1] == Pair(base / "c.jpg", absolute, False, 1)
    assert pairs[2] == Pair(base / "d.jpg", base / "e.jpg", True, 2)
    assert [p.same for p in pairs] == [True, False, True, False, True, False]
    assert [p.fold for p in pairs] == [0, 1, 2, 2, 3, 3]


def test_read_pairs_csv_without_fold_column_and_reordered(tmp_path):
    csv_path = _write(tmp_path / "p.csv", "same,path_b,path_a\nyes,b.jpg,a.jpg\n")
    assert read_pairs_csv(csv_path) == [Pair(tmp_path / "a.jpg", tmp_path / "b.jpg", True, 0)]


@pytest.mark.parametrize(
    "body, match",
    [
        ("a.jpg,b.jpg,maybe\n", "line 3.*same"),
        ("a.jpg,b.jpg\n", "line 3.*fields"),
        ("a.jpg,b.jpg,1,extra\n", "line 3.*fields"),
        (",b.jpg,1\n", "line 3.*empty image path"),
        ("a.jpg,b.jpg,\n", "line 3.*same"),
    ],
)
def test_read_pairs_csv_bad_rows(tmp_path, body, match):
    csv_path = _write(tmp_path / "p.csv", "path_a,path_b,same\nx.jpg,y.jpg,0\n" + body)
    with pytest.raises(ValueError, match=match):
        read_pairs_csv(csv_path)


@pytest.mark.parametrize("fold, match", [("one", "fold.*integer"), ("-1", "fold.*negative")])
def test_read_pairs_csv_bad_fold(tmp_path, fold, match):
    csv_path = _write(tmp_path / "p.csv", f"path_a,path_b,same,fold\n\na.jpg,b.jpg,1,{fold}\n")
    with pytest.raises(ValueError, match=f"line 3.*{match}"):
        read_pairs_csv(csv_path)


def test_read_pairs_csv_bad_header(tmp_path):
    with pytest.raises(ValueError, match="same"):
        read_pairs_csv(_write(tmp_path / "a.csv", "path_a,path_b\nx,y\n"))
    with pytest.raises(ValueError, match="empty"):
        read_pairs_csv(_write(tmp_path / "b.csv", ""))
    with pytest.raises(ValueError, match="duplicate"):
        read_pairs_csv(_write(tmp_path / "c.csv", "path_a,path_b,same,same\nx,y,1,1\n"))
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_pairs_csv(tmp_path / "nope.csv")


# ------------------------------------------------------------------------------ datasets_dir


def test_datasets_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("FACEAPP_DATASETS", raising=False)
    assert datasets_dir() is None
    monkeypatch.setenv("FACEAPP_DATASETS", "")
    assert datasets_dir() is None
    monkeypatch.setenv("FACEAPP_DATASETS", str(tmp_path / "missing"))
    assert datasets_dir() is None
    monkeypatch.setenv("FACEAPP_DATASETS", str(tmp_path))
    assert datasets_dir() == tmp_path


def test_pair_is_frozen():
    p = Pair(Path("a"), Path("b"), True, 0)
    with pytest.raises(AttributeError):
        p.same = False  # type: ignore[misc]

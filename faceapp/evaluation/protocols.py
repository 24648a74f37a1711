"""Readers for face-verification pair protocols: LFW's text files and a simple CSV.

LFW layout (see ``README.txt`` of the LFW distribution)
------------------------------------------------------
``lfw_dir`` holds the protocol files and the images, either under ``lfw_dir/images/``
or directly in ``lfw_dir`` (the layout of the original ``lfw.tgz``)::

    lfw_dir/pairs.txt            View 2: "10 300", then per fold 300 matched + 300 mismatched
    lfw_dir/pairsDevTrain.txt    View 1: "1100", then 1100 matched + 1100 mismatched
    lfw_dir/pairsDevTest.txt     View 1: "500", then 500 matched + 500 mismatched
    lfw_dir/people.txt           View 2: "10", then per fold a count N and N "name count" lines
    lfw_dir/peopleDevTrain.txt   View 1: a count N and N "name count" lines
    lfw_dir/peopleDevTest.txt
    lfw_dir/images/<Name>/<Name>_<nnnn>.jpg   (nnnn: the image number, 4 digits, from 1)

A matched line is ``name n1 n2``, a mismatched line ``name1 n1 name2 n2`` (fields are
separated by tabs or spaces).

Nothing here opens an image; the paths are built from the protocol files only.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DATASETS_ENV",
    "Pair",
    "datasets_dir",
    "read_lfw_pairs",
    "read_lfw_people",
    "read_pairs_csv",
]

#: Environment variable naming the folder that holds the datasets (e.g. ``$X/lfw``).
DATASETS_ENV = "FACEAPP_DATASETS"

_PAIRS_FILES = {
    "devtrain": "pairsDevTrain.txt",
    "devtest": "pairsDevTest.txt",
    "10fold": "pairs.txt",
}
_PEOPLE_FILES = {
    "devtrain": "peopleDevTrain.txt",
    "devtest": "peopleDevTest.txt",
    "10fold": "people.txt",
}


@dataclass(frozen=True)
class Pair:
    """Two face images to compare.

    Attributes:
        path_a, path_b: the two image files.
        same: True when both show the same person.
        fold: the cross-validation fold the pair belongs to (0 when there is only one).
    """

    path_a: Path
    path_b: Path
    same: bool
    fold: int = 0


def datasets_dir() -> Path | None:
    """The datasets folder named by ``$FACEAPP_DATASETS``.

    Returns None when the variable is unset or empty, or when it does not name an
    existing directory. ``~`` is expanded.
    """
    value = os.environ.get(DATASETS_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


# --------------------------------------------------------------------------------------
# LFW
# --------------------------------------------------------------------------------------


def _check_choice(value: str, choices: dict[str, str], what: str) -> str:
    key = str(value).strip().lower()
    if key not in choices:
        raise ValueError(f"unknown LFW {what} {value!r}; expected one of {', '.join(choices)}")
    return key


def _protocol_file(lfw_dir: Path, name: str) -> Path:
    lfw_dir = Path(lfw_dir)
    path = lfw_dir / name
    if not path.is_file():
        raise FileNotFoundError(
            f"LFW protocol file {name} not found in {lfw_dir} (looked for {path}); "
            "it comes with the LFW distribution, next to the images folder"
        )
    return path


def _read_lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines as ``(1-based line number, whitespace-split fields)``."""
    with path.open(encoding="utf-8") as f:
        return [(no, line.split()) for no, line in enumerate(f, start=1) if line.strip()]


def _int_field(path: Path, line_no: int, text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(
            f"{path}, line {line_no}: {what} must be an integer, got {text!r}"
        ) from None
    if value < 0:
        raise ValueError(f"{path}, line {line_no}: {what} must not be negative, got {value}")
    return value


def _images_root(lfw_dir: Path) -> Path:
    images = lfw_dir / "images"
    return images if images.is_dir() else lfw_dir


def _image_path(root: Path, name: str, number: int) -> Path:
    return root / name / f"{name}_{number:04d}.jpg"


def read_lfw_pairs(lfw_dir: Path | str, view: str) -> list[Pair]:
    """Read LFW verification pairs.

    Args:
        lfw_dir: the LFW folder (holding the protocol files; images under ``images/`` or
            directly inside it).
        view: ``"devtrain"`` (pairsDevTrain.txt, 2200 pairs), ``"devtest"``
            (pairsDevTest.txt, 1000 pairs) -- both fold 0 -- or ``"10fold"`` (pairs.txt,
            View 2: 10 folds of 300 matched + 300 mismatched pairs, ``fold`` 0..9).

    Returns:
        The pairs in file order (within each fold: matched pairs first).

    Raises:
        FileNotFoundError: the protocol file is missing.
        ValueError: unknown view, or a malformed file (the message names the line).
    """
    key = _check_choice(view, _PAIRS_FILES, "pairs view")
    lfw_dir = Path(lfw_dir)
    path = _protocol_file(lfw_dir, _PAIRS_FILES[key])
    root = _images_root(lfw_dir)
    lines = _read_lines(path)
    if not lines:
        raise ValueError(f"{path} is empty")
    header_no, header = lines[0]
    if key == "10fold":
        if len(header) != 2:
            raise ValueError(
                f"{path}, line {header_no}: expected '<number of folds> <pairs per class>', "
                f"got {' '.join(header)!r}"
            )
        n_folds = _int_field(path, header_no, header[0], "number of folds")
        per_class = _int_field(path, header_no, header[1], "pairs per class")
    else:
        if len(header) != 1:
            raise ValueError(
                f"{path}, line {header_no}: expected '<pairs per class>', got {' '.join(header)!r}"
            )
        n_folds = 1
        per_class = _int_field(path, header_no, header[0], "pairs per class")

    body = lines[1:]
    expected = n_folds * 2 * per_class
    if len(body) != expected:
        raise ValueError(
            f"{path}: the header announces {expected} pair lines "
            f"({n_folds} fold(s) x 2 x {per_class}), found {len(body)}"
        )
    pairs: list[Pair] = []
    for i, (line_no, fields) in enumerate(body):
        fold, within = divmod(i, 2 * per_class)
        if within < per_class:
            if len(fields) != 3:
                raise ValueError(
                    f"{path}, line {line_no}: expected a matched pair 'name n1 n2', "
                    f"got {' '.join(fields)!r}"
                )
            name, n1, n2 = fields
            a = _image_path(root, name, _int_field(path, line_no, n1, "image number"))
            b = _image_path(root, name, _int_field(path, line_no, n2, "image number"))
            pairs.append(Pair(a, b, True, fold))
        else:
            if len(fields) != 4:
                raise ValueError(
                    f"{path}, line {line_no}: expected a mismatched pair 'name1 n1 name2 n2', "
                    f"got {' '.join(fields)!r}"
                )
            name1, n1, name2, n2 = fields
            a = _image_path(root, name1, _int_field(path, line_no, n1, "image number"))
            b = _image_path(root, name2, _int_field(path, line_no, n2, "image number"))
            pairs.append(Pair(a, b, False, fold))
    return pairs


def _read_people_block(
    path: Path, lines: list[tuple[int, list[str]]], start: int, count: int
) -> dict[str, int]:
    if start + count > len(lines):
        raise ValueError(
            f"{path}: expected {count} people after line {lines[start - 1][0]}, "
            f"found only {len(lines) - start} more lines"
        )
    people: dict[str, int] = {}
    for line_no, fields in lines[start : start + count]:
        if len(fields) != 2:
            raise ValueError(
                f"{path}, line {line_no}: expected 'name image_count', got {' '.join(fields)!r}"
            )
        name, n = fields
        if name in people:
            raise ValueError(f"{path}, line {line_no}: {name} is listed twice in the same set")
        people[name] = _int_field(path, line_no, n, "image count")
    return people


def read_lfw_people(lfw_dir: Path | str, which: str) -> dict[str, int] | list[dict[str, int]]:
    """Read LFW people lists (names with their number of images).

    Args:
        lfw_dir: the LFW folder.
        which: ``"devtrain"`` (peopleDevTrain.txt) or ``"devtest"`` (peopleDevTest.txt),
            returning one ``{name: image_count}`` dict, or ``"10fold"`` (people.txt),
            returning a list of one such dict per fold (10 for the official file).

    Raises:
        FileNotFoundError: the protocol file is missing.
        ValueError: unknown ``which``, or a malformed file (the message names the line).
    """
    key = _check_choice(which, _PEOPLE_FILES, "people set")
    path = _protocol_file(Path(lfw_dir), _PEOPLE_FILES[key])
    lines = _read_lines(path)
    if not lines:
        raise ValueError(f"{path} is empty")

    def single_int(index: int, what: str) -> int:
        line_no, fields = lines[index]
        if len(fields) != 1:
            raise ValueError(f"{path}, line {line_no}: expected {what}, got {' '.join(fields)!r}")
        return _int_field(path, line_no, fields[0], what)

    if key != "10fold":
        count = single_int(0, "the number of people")
        people = _read_people_block(path, lines, 1, count)
        if len(lines) != 1 + count:
            raise ValueError(
                f"{path}, line {lines[1 + count][0]}: unexpected line after {count} people"
            )
        return people

    n_folds = single_int(0, "the number of sets")
    folds: list[dict[str, int]] = []
    pos = 1
    for _ in range(n_folds):
        if pos >= len(lines):
            raise ValueError(f"{path}: announces {n_folds} sets, found only {len(folds)}")
        count = single_int(pos, "the number of people in a set")
        folds.append(_read_people_block(path, lines, pos + 1, count))
        pos += 1 + count
    if pos != len(lines):
        raise ValueError(f"{path}, line {lines[pos][0]}: unexpected line after {n_folds} sets")
    return folds


# --------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def read_pairs_csv(path: Path | str) -> list[Pair]:
    """Read pairs from a CSV file.

    Format: a header row with the columns ``path_a``, ``path_b`` and ``same``, and
    optionally ``fold`` (in any order; other columns are ignored), then one row per pair.
    Relative image paths are taken relative to the CSV file's folder; absolute ones are
    kept. ``same`` accepts ``1/0``, ``true/false``, ``yes/no`` (any case); ``fold`` is a
    non-negative integer and defaults to 0. Blank lines are skipped. Values are stripped
    of surrounding spaces; the file is read as UTF-8 (a BOM is allowed).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: no header, a missing required column, or a bad row -- the message
            names the line number (1-based, the header being line 1).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs CSV not found: {path}")
    base = path.absolute().parent
    pairs: list[Pair] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        for row in reader:
            if any(cell.strip() for cell in row):
                header = [cell.strip().lower() for cell in row]
                break
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header 'path_a,path_b,same[,fold]'")
        header_line = reader.line_num
        missing = [c for c in ("path_a", "path_b", "same") if c not in header]
        if missing:
            raise ValueError(
                f"{path}, line {header_line}: header lacks column(s) {', '.join(missing)} "
                f"(expected 'path_a,path_b,same[,fold]', got {','.join(header)!r})"
            )
        dupes = sorted({c for c in header if c and header.count(c) > 1})
        if dupes:
            raise ValueError(f"{path}, line {header_line}: duplicate column(s) {', '.join(dupes)}")
        col = {
            name: header.index(name)
            for name in ("path_a", "path_b", "same", "fold")
            if name in header
        }

        for row in reader:
            line_no = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"{path}, line {line_no}: expected {len(header)} fields, got {len(row)}"
                )
            cells = [cell.strip() for cell in row]
            a, b = cells[col["path_a"]], cells[col["path_b"]]
            if not a or not b:
                raise ValueError(f"{path}, line {line_no}: empty image path")
            same_text = cells[col["same"]].lower()
            if same_text in _TRUE:
                same = True
            elif same_text in _FALSE:
                same = False
            else:
                raise ValueError(
                    f"{path}, line {line_no}: 'same' must be 1/0, true/false or yes/no, "
                    f"got {cells[col['same']]!r}"
                )
            fold = 0
            if "fold" in col:
                text = cells[col["fold"]]
                try:
                    fold = int(text)
                except ValueError:
                    raise ValueError(
                        f"{path}, line {line_no}: 'fold' must be an integer, got {text!r}"
                    ) from None
                if fold < 0:
                    raise ValueError(
                        f"{path}, line {line_no}: 'fold' must not be negative, got {fold}"
                    )
            pairs.append(Pair(base / a, base / b, same, fold))
    return pairs

"""Identity lists, chip caches and identity-disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.training.data import ChipSet, decode_chips, encode_chips, folder_identities, split_identities


def test_folder_identities_one_folder_per_person(tmp_path):
    for name, n in (("alice", 3), ("bob", 1), ("carol", 2)):
        (tmp_path / name).mkdir()
        for i in range(n):
            (tmp_path / name / f"{i}.jpg").write_bytes(b"x")
    (tmp_path / "carol" / "notes.txt").write_text("not an image")
    ids = folder_identities(tmp_path, min_images=2)
    assert [i.name for i in ids] == ["alice", "carol"]
    assert [p.name for p in ids[1].images] == ["0.jpg", "1.jpg"]
    assert len(folder_identities(tmp_path, max_images=1)[0].images) == 1


def test_split_is_identity_disjoint_complete_and_deterministic():
    labels = np.repeat(np.arange(20), 3)
    train, val = split_identities(labels, (0.8, 0.2), seed=7)
    assert len(np.unique(labels[val])) == 4
    assert not set(labels[train]) & set(labels[val])
    assert sorted(np.r_[train, val].tolist()) == list(range(60))
    again = split_identities(labels, (0.8, 0.2), seed=7)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(split_identities(labels, (0.8, 0.2), seed=8)[1], val)


def _chips(n: int, size: int = 24) -> np.ndarray:
    # smooth gradients compress well and survive lossy coding almost unchanged
    y, x = np.mgrid[0:size, 0:size]
    return np.stack([np.stack([x * 8 + i, y * 8, (x + y) * 4 + 2 * i], -1) for i in range(n)]).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["webp", "jpg"])
def test_chip_coding_round_trip(fmt):
    chips = _chips(3)
    data, offsets = encode_chips(chips, fmt=fmt, quality=95)
    back = decode_chips(data, offsets)
    assert back.shape == chips.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - chips).mean() < 4  # lossy, but RGB order and geometry kept


def test_chipset_save_load_subset(tmp_path):
    cs = ChipSet(_chips(4), np.array([0, 0, 1, 1]), ["ann", "ben"], ["ann/1.jpg", "ann/2.jpg", "ben/1.jpg", "ben/2.jpg"],
                 ["ben/2.jpg"], {"input_size": 24})
    back = ChipSet.load(cs.save(tmp_path / "c.npz", quality=95))
    assert back.names == ["ann", "ben"] and back.labels.tolist() == [0, 0, 1, 1]
    assert back.sources == cs.sources and back.fallback == ["ben/2.jpg"] and back.meta["input_size"] == 24
    sub = back.subset([2, 3])
    assert sub.names == ["ben"] and sub.labels.tolist() == [0, 0] and sub.fallback == ["ben/2.jpg"]
    both = ChipSet.concat([back, sub], ["lfw/", "x/"])
    assert both.num_identities == 3 and both.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert both.names == ["lfw/ann", "lfw/ben", "x/ben"]

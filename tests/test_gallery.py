"""Distances and gallery search with hand-made unit vectors."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.match.gallery import Gallery, pair_distance, squared_distances


def unit(*v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_squared_distance_of_unit_vectors():
    a, b, c = unit(1, 0, 0), unit(0, 1, 0), unit(-1, 0, 0)
    m = np.stack([a, b, c])
    assert squared_distances(a, m) == pytest.approx([0.0, 2.0, 4.0], abs=1e-6)
    assert pair_distance(a, b) == pytest.approx(2.0)


def test_nearest_ranks_people_not_templates():
    names = ["ann", "ann", "bob", "cat"]
    m = np.stack([unit(1, 0, 0), unit(1, 0.1, 0), unit(0, 1, 0), unit(0, 0, 1)])
    g = Gallery(names, np.array([1, 1, 2, 3]), m)
    top = g.nearest(unit(1, 0.05, 0), k=3)
    assert [c.name for c in top] == ["ann", "bob", "cat"]
    assert top[0].distance < 0.01
    assert g.distance_to("bob", unit(0, 1, 0)) == pytest.approx(0.0, abs=1e-6)
    assert g.distance_to("zed", unit(0, 1, 0)) is None


def test_nearest_finds_k_people_when_one_person_has_many_templates():
    rng = np.random.default_rng(0)
    base = unit(1, 0, 0, 0)
    many = np.stack([unit(*(base + 0.01 * rng.normal(size=4))) for _ in range(50)])
    others = np.stack([unit(0, 1, 0, 0), unit(0, 0, 1, 0)])
    g = Gallery(["ann"] * 50 + ["bob", "cat"], np.array([1] * 50 + [2, 3]), np.vstack([many, others]))
    assert [c.name for c in g.nearest(base, k=3)] == ["ann", "bob", "cat"]


def test_empty_gallery():
    g = Gallery.empty(4)
    assert len(g) == 0 and g.nearest(unit(1, 0, 0, 0)) == []


def test_mismatched_rows_are_rejected():
    with pytest.raises(ValueError):
        Gallery(["a"], np.array([1, 2]), np.zeros((2, 3)))


def test_a_person_with_two_templates_is_matched_by_either():
    """One row per template; a person is as close as their nearest template (verify and identify)."""
    front, side, bob = unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)
    g = Gallery(["alice", "alice", "bob"], np.array([1, 1, 2]), np.stack([front, side, bob]))
    for probe in (unit(1, 0.1, 0), unit(0.1, 1, 0)):
        assert g.nearest(probe, 1)[0].name == "alice"
        assert g.nearest(probe, 1)[0].distance == pytest.approx(min(pair_distance(probe, front), pair_distance(probe, side)), abs=1e-6)
        assert g.distance_to("alice", probe) == pytest.approx(g.nearest(probe, 1)[0].distance, abs=1e-6)
        assert g.distance_to("alice", probe) < 0.1 < g.distance_to("bob", probe)
    assert [c.name for c in g.nearest(unit(1, 1, 0), 2)] == ["alice", "bob"]  # alice once, not per template

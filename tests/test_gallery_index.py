"""The approximate index: candidates from faiss, distances always exact; the size switch."""

from __future__ import annotations

import numpy as np
import pytest

from faceapp.match import gallery as gallery_module
from faceapp.match import index as index_module
from faceapp.match.gallery import Gallery, squared_distances

pytestmark = pytest.mark.skipif(not index_module.available(), reason="faiss-cpu is not installed")


def synthetic(n: int, dim: int = 32, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """n templates of n // 2 people (two each, close together), random unit vectors."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 2, dim)).astype(np.float32)
    m = np.repeat(centres, 2, axis=0) + 0.1 * rng.normal(size=(n // 2 * 2, dim)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    pids = np.repeat(np.arange(n // 2), 2)
    return [f"p{i}" for i in pids], pids, m


def noisy(row: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    p = row + scale * rng.normal(size=row.shape).astype(np.float32)
    return p / np.linalg.norm(p)


def test_indexed_search_gives_the_exact_top_people_and_exact_distances():
    names, pids, m = synthetic(6000)
    g = Gallery(names, pids, m, index_from=0)
    assert g.index is not None
    rng = np.random.default_rng(1)
    for row in rng.choice(len(g), 50, replace=False):
        probe = noisy(m[row], 0.05, rng)
        got, want = g.nearest(probe, 3), g.nearest_exact(probe, 3)
        assert got[0].person_id == want[0].person_id == pids[row]
        # re-ranked: each distance is the exact distance to that person's closest template
        for c in got:
            exact = squared_distances(probe, m[pids == c.person_id]).min()
            assert c.distance == pytest.approx(float(exact), abs=1e-5)
        assert got[0].distance == pytest.approx(want[0].distance, abs=1e-5)
        # far candidates (a stranger-like third person) may differ; the near ones may not
        near = [c.person_id for c in want if c.distance < 0.5]
        assert [c.person_id for c in got[:len(near)]] == near


def test_a_coarse_index_never_makes_anyone_nearer_than_they_are():
    """One cell searched out of many: the candidates may be wrong, but each distance is the exact
    distance to one of that person's templates, so never below the person's true distance
    (the index can miss a match, never make one)."""
    names, pids, m = synthetic(6000, seed=2)
    g = Gallery(names, pids, m, index_from=0)
    g.index.nprobe = 1
    rng = np.random.default_rng(3)
    for _ in range(20):
        probe = noisy(rng.normal(size=m.shape[1]).astype(np.float32), 0.0, rng)
        for c in g.nearest(probe, 5):
            mine = squared_distances(probe, m[pids == c.person_id])
            assert np.abs(mine - c.distance).min() < 1e-5
            assert c.distance >= mine.min() - 1e-6


def test_the_index_is_built_only_from_the_size_switch_on(monkeypatch):
    names, pids, m = synthetic(2000)
    assert Gallery(names, pids, m, index_from=2001).index is None
    assert Gallery(names, pids, m, index_from=2000).index is not None
    monkeypatch.setattr(index_module, "INDEX_FROM", 1000)
    assert Gallery(names, pids, m).index is not None
    monkeypatch.setattr(index_module, "INDEX_FROM", 5000)
    assert Gallery(names, pids, m).index is None


def test_without_faiss_every_search_is_exact(monkeypatch):
    monkeypatch.setattr(index_module, "faiss", None)
    names, pids, m = synthetic(2000)
    g = Gallery(names, pids, m, index_from=0)
    assert g.index is None
    assert g.nearest(m[7], 2)[0].person_id == pids[7]


def test_too_few_people_among_the_candidates_falls_back_to_exact(monkeypatch):
    """One person with many templates fills the candidates: the search widens, then goes exact."""
    rng = np.random.default_rng(4)
    base = rng.normal(size=16).astype(np.float32)
    many = np.stack([noisy(base, 0.01, rng) for _ in range(3000)])
    others = np.stack([noisy(rng.normal(size=16).astype(np.float32), 0.0, rng) for _ in range(5)])
    m = np.vstack([many, others])
    pids = np.array([0] * 3000 + [1, 2, 3, 4, 5])
    g = Gallery([f"p{i}" for i in pids], pids, m, index_from=0)
    monkeypatch.setattr(gallery_module, "RERANK", 16)
    got = g.nearest(base / np.linalg.norm(base), 6)
    assert [c.person_id for c in got] == [c.person_id for c in g.nearest_exact(base / np.linalg.norm(base), 6)]
    assert len(got) == 6


def near(row: np.ndarray, d: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at squared distance ``d`` from the unit vector ``row``."""
    noise = rng.normal(size=row.shape).astype(np.float32)
    noise -= (noise @ row) * row
    noise /= np.linalg.norm(noise)
    cos = 1 - d / 2
    return (cos * row + np.sqrt(1 - cos**2) * noise).astype(np.float32)


def test_the_default_cells_searched_find_every_match_within_tau_in_an_index_of_many_cells():
    """Random data (no clusters: the hard case for IVF) in an index of 500 cells, as many as at
    250,000 templates: the cells searched by default find every person within tau. The old
    fixed 32 cells (6% of them) missed one match in ten here."""
    rng = np.random.default_rng(5)
    m = rng.normal(size=(20_000, 32)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    pids = np.arange(len(m))
    g = Gallery([f"p{i}" for i in pids], pids, m, index_from=2**62)
    g.index = index_module.CandidateIndex(m, nlist=500)
    assert g.index.nprobe == index_module.default_nprobe(500)
    tau, within, found = 0.6, 0, 0
    for row in rng.choice(len(m), 150, replace=False):
        probe = near(m[row], float(rng.uniform(0.3, tau)), rng)
        want = {c.person_id for c in g.nearest_exact(probe, 5) if c.distance <= tau}
        within += len(want)
        found += len(want & {c.person_id for c in g.nearest(probe, 5) if c.distance <= tau})
    assert within >= 150
    assert found / within >= 0.99, f"{found}/{within} matches within tau found"

"""The gallery: every enrolled template of one model as one float32 matrix, searched with one
matrix product.

Distances are squared Euclidean distances between unit-length encodings (the course's
d(img1, img2) = ||f(img1) - f(img2)||^2), computed as 2 - 2 <a, b> and clipped to [0, 4].
A person with several templates is as close as their closest template.

From :data:`faceapp.match.index.INDEX_FROM` templates on (and with faiss installed) a search
first asks an approximate index for candidate rows, then ranks those with exact distances;
below it, or when the candidates do not hold k people, the search is exact over every row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceapp.match import index as _index
from faceapp.types import Candidate

RERANK = 256  # candidate templates re-ranked exactly per search (at least; more when k is large)


def squared_distances(probe: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Squared L2 distances from one unit vector (D,) to each row of a unit-row matrix (N, D)."""
    probe = np.asarray(probe, dtype=np.float32).reshape(-1)
    if matrix.shape[0] == 0:
        return np.empty(0, dtype=np.float32)
    d = 2.0 - 2.0 * (matrix @ probe)
    return np.clip(d, 0.0, 4.0, out=d)


def pair_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Squared L2 distance between two encodings (computed directly, not via the dot product)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(diff @ diff)


class Gallery:
    """Templates of one model: ``names[i]`` and ``person_ids[i]`` own row ``i`` of ``matrix``."""

    def __init__(self, names: Sequence[str], person_ids: np.ndarray, matrix: np.ndarray, *, model_id: str = "",
                 index_from: int | None = None) -> None:
        """``index_from``: build an approximate index when there are at least this many rows
        (default :data:`~faceapp.match.index.INDEX_FROM`; 0 always, a huge number never)."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or len(names) != matrix.shape[0] or len(person_ids) != matrix.shape[0]:
            raise ValueError("names, person_ids and matrix rows must agree")
        self.names = list(names)
        self.person_ids = np.asarray(person_ids, dtype=np.int64)
        self.matrix = matrix
        self.model_id = model_id
        threshold = _index.INDEX_FROM if index_from is None else int(index_from)
        self.index: _index.CandidateIndex | None = None
        if len(self) and len(self) >= threshold and _index.available():
            self.index = _index.CandidateIndex(matrix)

    @classmethod
    def empty(cls, dim: int = 128, model_id: str = "") -> Gallery:
        return cls([], np.empty(0, np.int64), np.empty((0, dim), np.float32), model_id=model_id)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    @property
    def people(self) -> set[str]:
        return set(self.names)

    def distance_to(self, name: str, probe: np.ndarray) -> float | None:
        """The probe's distance to ``name`` (their closest template); None if not in the gallery."""
        rows = [i for i, n in enumerate(self.names) if n == name]
        if not rows:
            return None
        return float(squared_distances(probe, self.matrix[rows]).min())

    def nearest(self, probe: np.ndarray, k: int = 5) -> list[Candidate]:
        """The k nearest people (not templates), closest first."""
        if len(self) == 0 or k <= 0:
            return []
        if self.index is not None:
            found = self._nearest_indexed(probe, k)
            if found is not None:
                return found
        return self.nearest_exact(probe, k)

    def nearest_exact(self, probe: np.ndarray, k: int = 5) -> list[Candidate]:
        """:meth:`nearest` over every row, without the index."""
        if len(self) == 0 or k <= 0:
            return []
        d = squared_distances(probe, self.matrix)
        n = len(d)
        # Look at a few more templates than k so that people with several templates still
        # give k distinct people; fall back to a full sort when that is not enough.
        take = min(n, max(4 * k, k + 8))
        while True:
            idx = np.argpartition(d, take - 1)[:take] if take < n else np.arange(n)
            idx = idx[np.argsort(d[idx], kind="stable")]
            out: list[Candidate] = []
            seen: set[int] = set()
            for i in idx:
                pid = int(self.person_ids[i])
                if pid in seen:
                    continue
                seen.add(pid)
                out.append(Candidate(self.names[i], float(d[i]), pid))
                if len(out) == k:
                    return out
            if take >= n:
                return out
            take = min(n, take * 4)

    def _nearest_indexed(self, probe: np.ndarray, k: int) -> list[Candidate] | None:
        """The k nearest people among the index's candidate rows, ranked by exact distance;
        None when the candidates never hold k people (the caller then searches exactly)."""
        probe = np.asarray(probe, dtype=np.float32).reshape(-1)
        take = max(RERANK, 8 * k)
        while take <= len(self) // 4:
            rows = np.sort(self.index.candidates(probe, take))  # row order breaks ties as exact search does
            d = squared_distances(probe, self.matrix[rows])
            order = np.argsort(d, kind="stable")
            out: list[Candidate] = []
            seen: set[int] = set()
            for j in order:
                pid = int(self.person_ids[rows[j]])
                if pid in seen:
                    continue
                seen.add(pid)
                out.append(Candidate(self.names[rows[j]], float(d[j]), pid))
                if len(out) == k:
                    return out
            take *= 4
        return None

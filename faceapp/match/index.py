"""Approximate candidate search for large galleries: a faiss inverted-file index over 8-bit
quantized unit vectors, searched by inner product.

It only *proposes* template rows; :meth:`faceapp.match.gallery.Gallery.nearest` re-ranks them
with exact distances from the float32 matrix, so every distance the open-set rule sees
(nearest, second-nearest, margin) is exact. What the index can do wrong is leave a row out:
``scripts/bench_gallery_scale.py`` measures how often against exact search.

faiss-cpu is optional: without it (:func:`available` False) every search is exact.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_UNLOADED = object()
# The faiss module, imported on first use (it takes ~0.3 s, and small galleries never need it);
# None when it is not installed (optional: requirements.txt installs it).
faiss: Any = _UNLOADED

# Galleries at least this large get an index; smaller ones are searched exactly (one matrix
# product). Set from scripts/bench_gallery_scale.py (docs/deployment.md): below ~100,000
# templates the exact product is a few ms and the index saves little. FACEAPP_INDEX_FROM
# overrides it (packaging/smoke_test.sh builds an index over a two-person gallery with it).
INDEX_FROM = int(os.environ.get("FACEAPP_INDEX_FROM", "100000"))

# The share of the cells searched per probe. A fixed number of cells searches a smaller share
# of a larger gallery and misses more: 32 cells gave a within-tau recall of 0.978 at 100,000
# random templates (316 cells) and 0.867 at 1,000,000 (1,000 cells). Searching a fixed share
# keeps the recall as the gallery grows: 40% found every match within tau at 100,000 and 300,000,
# and 134/135 and 135/135 in two runs at 1,000,000 (scripts/bench_gallery_scale.py, docs/deployment.md).
NPROBE_SHARE = 0.4


def available() -> bool:
    """Whether faiss is installed (imports it the first time)."""
    global faiss
    if faiss is _UNLOADED:
        try:
            faiss = importlib.import_module("faiss")
        except ImportError:
            log.info("faiss is not installed: large galleries are searched exactly")
            faiss = None
    return faiss is not None


def default_nprobe(nlist: int) -> int:
    """Cells searched per probe in an index of ``nlist`` cells: :data:`NPROBE_SHARE` of them."""
    return max(1, min(nlist, math.ceil(NPROBE_SHARE * nlist)))


class CandidateIndex:
    """IVF over ``matrix`` (N, D unit rows): ``nlist`` cells (about sqrt(N)), ``nprobe`` of them
    searched per probe (default :func:`default_nprobe`), vectors stored as 8-bit codes (a
    quarter of the float32 matrix)."""

    def __init__(self, matrix: np.ndarray, *, nlist: int | None = None, nprobe: int | None = None,
                 seed: int = 0) -> None:
        if not available():
            raise RuntimeError("faiss is not installed (pip install faiss-cpu)")
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        n, dim = matrix.shape
        self.nlist = int(nlist or max(1, min(int(math.sqrt(n)), n // 39)))
        quantizer = faiss.IndexFlatIP(dim)
        self._index = faiss.IndexIVFScalarQuantizer(quantizer, dim, self.nlist, faiss.ScalarQuantizer.QT_8bit,
                                                    faiss.METRIC_INNER_PRODUCT)
        self._quantizer = quantizer  # faiss does not own it from Python: keep it alive
        train = matrix
        limit = 64 * self.nlist  # k-means needs ~39 points per cell; more only costs time
        if n > limit:
            train = matrix[np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))]
        self._index.cp.seed = seed
        self._index.train(train)
        self._index.add(matrix)
        self.nprobe = default_nprobe(self.nlist) if nprobe is None else nprobe
        self.size = n
        log.info("approximate index (faiss %s): %d templates, %d cells, %d searched per probe",
                 faiss.__version__, n, self.nlist, self.nprobe)

    @property
    def nprobe(self) -> int:
        return int(self._index.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._index.nprobe = max(1, min(int(value), self.nlist))

    def candidates(self, probe: np.ndarray, n: int) -> np.ndarray:
        """Up to ``n`` row indices whose approximate inner product with ``probe`` is largest."""
        probe = np.ascontiguousarray(np.asarray(probe, dtype=np.float32).reshape(1, -1))
        _, idx = self._index.search(probe, int(min(n, self.size)))
        rows = idx[0]
        return rows[rows >= 0]

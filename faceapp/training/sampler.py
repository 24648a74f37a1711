"""P x K batch sampling: each batch holds P identities with K photos each, so every anchor in
the batch has K-1 positives and (P-1)K negatives to mine from."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["PKSampler"]


class PKSampler:
    """Batches of ``p`` identities x ``k`` sample indices, deterministic for (seed, epoch).

    Only identities with at least 2 samples are used (one photo gives no positive pair). An
    epoch deals the shuffled identities into groups of ``p`` (``len(sampler)`` batches, the
    incomplete last group is dropped); for each identity ``k`` of its samples are drawn
    without replacement, or with replacement when it has fewer than ``k`` (the repeated photo
    differs after augmentation). Indices within a batch are ordered identity by identity.

    ``set_epoch(e)`` selects the epoch's shuffle; iterating twice over the same epoch gives the
    same batches.
    """

    def __init__(self, labels: np.ndarray, p: int, k: int, *, seed: int = 0) -> None:
        if p < 2 or k < 2:
            raise ValueError(f"a P x K batch needs p >= 2 and k >= 2 (got p={p}, k={k})")
        labels = np.asarray(labels)
        ids, counts = np.unique(labels, return_counts=True)
        self.identities = ids[counts >= 2]
        if len(self.identities) < p:
            raise ValueError(
                f"only {len(self.identities)} identities have 2 or more samples; a batch needs p={p}"
            )
        self._members = {int(i): np.flatnonzero(labels == i) for i in self.identities}
        self.p, self.k, self.seed = int(p), int(k), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.identities) // self.p

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def __iter__(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.identities)
        for b in range(len(self)):
            batch = []
            for ident in order[b * self.p : (b + 1) * self.p]:
                members = self._members[int(ident)]
                replace = len(members) < self.k
                batch.append(rng.choice(members, size=self.k, replace=replace))
            yield np.concatenate(batch)

    def epoch_batches(self, epoch: int, steps: int) -> Iterator[np.ndarray]:
        """Exactly ``steps`` batches for training epoch ``epoch``: one pass over the identities
        (``set_epoch(epoch)``), continued with fresh, reproducible passes when ``steps`` is longer."""
        self.set_epoch(epoch)
        it = iter(self)
        for s in range(steps):
            try:
                yield next(it)
            except StopIteration:
                self.set_epoch(epoch * 1000 + s)
                it = iter(self)
                yield next(it)

"""Few-shot subsets of a training pool: exactly k windows per class, or a label fraction.

Both draw ONE seeded permutation per class and take a prefix of it, so subsets are nested:
the k=5 set contains the k=2 set, the 10 % set contains the 1 % set. A sweep over k then
measures the value of more labels, not the luck of a different draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harjax.data.errors import DataError


def _class_permutation(pool: np.ndarray, class_id: int, seed: int) -> np.ndarray:
    """The pool's windows of one class in a seeded order that does not depend on k."""
    rng = np.random.default_rng([int(seed), int(class_id)])
    return pool[rng.permutation(len(pool))]


def k_shot(
    labels: np.ndarray,
    pool_indices: np.ndarray,
    k: int,
    seed: int,
    class_names: Sequence[str],
) -> np.ndarray:
    """Exactly `k` windows of every class from `pool_indices` (sorted dataset indices).

    Raises DataError naming the class and its count when a class has fewer than k windows.
    """
    if k < 1:
        raise DataError(f"k_shot: k must be >= 1, found {k}")
    labels = np.asarray(labels)
    pool = np.unique(np.asarray(pool_indices, dtype=np.int64))  # sorted: order-independent
    chosen = []
    for class_id, name in enumerate(class_names):
        members = pool[labels[pool] == class_id]
        if len(members) < k:
            raise DataError(
                f"k_shot: class {name!r} has {len(members)} windows in the pool, fewer than k={k}"
            )
        chosen.append(_class_permutation(members, class_id, seed)[:k])
    return np.sort(np.concatenate(chosen))


def label_fraction(
    labels: np.ndarray, pool_indices: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """A stratified `fraction` of the pool: round(fraction * count) per class, at least one.

    Classes absent from the pool stay absent (there is nothing to draw).
    """
    if not 0 < fraction <= 1:
        raise DataError(f"label_fraction: fraction must be in (0, 1], found {fraction}")
    labels = np.asarray(labels)
    pool = np.unique(np.asarray(pool_indices, dtype=np.int64))
    chosen = []
    for class_id in np.unique(labels[pool]):
        members = pool[labels[pool] == class_id]
        count = max(1, int(round(fraction * len(members))))
        chosen.append(_class_permutation(members, int(class_id), seed)[:count])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)

"""Few-shot subsets of a training pool: exactly k windows per class, or a label fraction.

Both draw ONE seeded permutation per class and take a prefix of it, so subsets are nested:
the k=5 set contains the k=2 set, the 10 % set contains the 1 % set. A sweep over k then
measures the value of more labels, not the luck of a different draw. `training_windows` is
the one k-shot selection every sweep (few-shot, transfer) makes for a run: it draws from the
classes the dataset has windows of (a partial archive's absent classes, already named by the
build's warning, are left out). `check_shots` fails a sweep before it trains anything when a
k is more than a class has; `feasible_shots` instead names such a k so a few-shot sweep can
leave it out (a UEA set whose official TRAIN holds 3 cases of a class has no 5-shot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from harjax.data.errors import DataError

if TYPE_CHECKING:
    from harjax.data.bundle import DataBundle

ALL = "all"  # k = all: every training window of the split, no draw


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
    classes: np.ndarray | None = None,
) -> np.ndarray:
    """Exactly `k` windows of every class from `pool_indices` (sorted dataset indices);
    `classes` (a boolean mask over `class_names`) restricts the draw to those classes.

    Raises DataError naming the class and its count when a class has fewer than k windows.
    """
    if k < 1:
        raise DataError(f"k_shot: k must be >= 1, found {k}")
    labels = np.asarray(labels)
    pool = np.unique(np.asarray(pool_indices, dtype=np.int64))  # sorted: order-independent
    chosen = []
    for class_id, name in enumerate(class_names):
        if classes is not None and not classes[class_id]:
            continue
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


def training_windows(data: DataBundle, shots, seed: int, class_names=None) -> np.ndarray:
    """The windows a run with k = `shots` trains on: a nested k-shot draw, or the whole split.

    k = `ALL` (and k = 0, zero-shot transfer, which trains on nothing but is planned like any
    run) gives the whole training split; `class_names` (default: the bundle's) are the
    classes that must each have k windows (transfer: the fold's common classes).
    """
    if shots == ALL or shots == 0:
        return data.split.train
    targets = data.targets(np.arange(len(data.dataset)))
    names = data.class_names if class_names is None else class_names
    present = np.zeros(len(names), bool)
    present[np.unique(targets[(targets >= 0) & (targets < len(names))])] = True
    return k_shot(targets, data.split.train, int(shots), seed, names, classes=present)


def check_shots(data: DataBundle, shots: Sequence, seeds: int, where: str = "") -> None:
    """Fails before any training if a k exceeds what a class has in the training split."""
    numeric = [k for k in shots if k != ALL and k > 0]
    if not numeric:
        return
    for seed in range(seeds):
        try:
            training_windows(data, max(numeric), seed)
        except ValueError as error:
            raise ValueError(f"{where}{error}") from None


def feasible_shots(
    bundles: Sequence[DataBundle], shots: Sequence, seeds: int
) -> tuple[list, dict[int, str]]:
    """(the k of `shots` every bundle can draw for every seed, {left-out k: why}).

    A sweep's pairs need the same k on every split, so a k that one split cannot draw is left
    out of all of them; `all` (and 0) always stay. A k that NO class of a split can supply is
    a mistake, not a small class: a DataError (e.g. `--shots 100000`).
    """
    kept, dropped = [], {}
    for k in shots:
        if k == ALL or k == 0:
            kept.append(k)
            continue
        for data in bundles:
            pool = data.targets(np.asarray(data.split.train))
            largest = np.bincount(pool[pool >= 0]).max(initial=0)
            if k > largest:
                raise DataError(
                    f"k_shot: every class has fewer than k={k} windows in the training split "
                    f"(the largest has {largest})"
                )
        try:
            for data in bundles:
                for seed in range(seeds):
                    training_windows(data, k, seed)
        except ValueError as error:
            dropped[k] = str(error)
        else:
            kept.append(k)
    return kept, dropped

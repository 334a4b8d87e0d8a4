"""k-shot and label-fraction sampling: exact, nested, deterministic, clear errors."""

import numpy as np
import pytest

from harjax.data.errors import DataError
from harjax.data.sampling import k_shot, label_fraction

LABELS = np.array([0] * 30 + [1] * 12 + [2] * 5)
NAMES = ("walk", "sit", "jump")
POOL = np.arange(3, len(LABELS))  # the first three windows are not in the pool


def test_k_shot_exact_and_from_pool():
    chosen = k_shot(LABELS, POOL, 4, seed=0, class_names=NAMES)
    assert np.bincount(LABELS[chosen]).tolist() == [4, 4, 4]
    assert set(chosen) <= set(POOL) and len(set(chosen)) == 12


def test_k_shot_nested_and_deterministic():
    sets = {k: set(k_shot(LABELS, POOL, k, seed=7, class_names=NAMES)) for k in (1, 2, 5)}
    assert sets[1] <= sets[2] <= sets[5]
    assert set(k_shot(LABELS, POOL[::-1], 5, seed=7, class_names=NAMES)) == sets[5]
    assert set(k_shot(LABELS, POOL, 5, seed=8, class_names=NAMES)) != sets[5]


def test_k_shot_too_large_names_class_and_count():
    with pytest.raises(DataError, match=r"class 'jump' has 5 windows.*k=6"):
        k_shot(LABELS, POOL, 6, seed=0, class_names=NAMES)


def test_label_fraction_stratified_nested_at_least_one():
    small = label_fraction(LABELS, POOL, 0.01, seed=1)
    large = label_fraction(LABELS, POOL, 0.5, seed=1)
    assert np.bincount(LABELS[small]).tolist() == [1, 1, 1]
    assert np.bincount(LABELS[large]).tolist() == [14, 6, 2]  # round(0.5 * count)
    assert set(small) <= set(large) <= set(POOL)
    with pytest.raises(DataError, match="fraction"):
        label_fraction(LABELS, POOL, 0.0, seed=1)


def test_a_runs_training_windows_are_the_k_shot_draw_of_its_split_or_all_of_it():
    from types import SimpleNamespace

    from harjax.data.sampling import ALL, check_shots, training_windows

    bundle = SimpleNamespace(
        dataset=LABELS,  # only its length is read
        split=SimpleNamespace(train=POOL),
        class_names=NAMES,
        targets=lambda indices: LABELS[indices],
    )
    assert training_windows(bundle, ALL, seed=0) is POOL
    assert training_windows(bundle, 0, seed=0) is POOL  # zero-shot: planned like any run
    two, four = (training_windows(bundle, k, seed=1) for k in (2, 4))
    assert set(two) < set(four)  # nested across k for one seed
    np.testing.assert_array_equal(four, k_shot(LABELS, POOL, 4, 1, NAMES))
    check_shots(bundle, [1, 5, ALL], seeds=2)  # jump has 5 windows in the pool
    with pytest.raises(ValueError, match="split seed 3: k_shot: class 'jump' has 5 windows"):
        check_shots(bundle, [6], seeds=1, where="split seed 3: ")


def test_classes_absent_from_the_archive_are_not_drawn_and_infeasible_k_is_named():
    """A partial archive (a class with no window at all) still gets k-shot draws of the classes
    it has; a k some class cannot supply is left out by `feasible_shots`, with the reason."""
    import types

    from harjax.data.sampling import ALL, feasible_shots, training_windows

    labels = np.array([0] * 6 + [2] * 3)  # class 1 ('run') is absent from the archive
    pool = np.arange(9)
    bundle = types.SimpleNamespace(
        class_names=("walk", "run", "sit"),
        split=types.SimpleNamespace(train=pool),
        dataset=np.zeros(9),
        targets=lambda indices: labels[indices],
    )
    drawn = training_windows(bundle, 2, seed=0)
    assert sorted(np.bincount(labels[drawn], minlength=3).tolist()) == [0, 2, 2]
    kept, dropped = feasible_shots([bundle], [1, 3, 5, ALL], seeds=2)
    assert kept == [1, 3, ALL] and list(dropped) == [5]
    assert "'sit' has 3 windows" in dropped[5]
    with pytest.raises(DataError, match="every class has fewer than k=7 windows"):
        feasible_shots([bundle], [1, 7], seeds=1)

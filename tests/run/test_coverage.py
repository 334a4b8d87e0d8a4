"""Classes a run cannot learn or is not scored on are said, not silently averaged away."""

import types

import numpy as np

from harjax.data.bundle import DataBundle
from harjax.data.splits import Split
from harjax.run.result import class_coverage_warnings


def _bundle(train_labels, val_labels, test_labels):
    labels = np.asarray([*train_labels, *val_labels, *test_labels], np.int64)
    ends = np.cumsum([len(train_labels), len(val_labels), len(test_labels)])
    dataset = types.SimpleNamespace(
        labels=labels, common_labels=labels, class_names=("walk", "sit", "stand", "run")
    )
    split = Split(
        train=np.arange(0, ends[0]),
        val=np.arange(ends[0], ends[1]),
        test=np.arange(ends[1], ends[2]),
        train_subjects=("a",),
        val_subjects=("b",),
        test_subjects=("c",),
    )
    return DataBundle(dataset, split, "label")


def test_every_class_everywhere_gives_no_warning():
    data = _bundle([0, 1, 2, 3], [0, 1, 2, 3], [3, 2, 1, 0])
    assert class_coverage_warnings(data, data.split.train) == []


def test_a_class_only_in_test_subjects_and_one_only_in_training_subjects():
    data = _bundle([0, 1, 2, 2], [0, 1, 2], [0, 1, 3])
    warnings = class_coverage_warnings(data, data.split.train)
    assert "class 'run' is in the test subjects but not in the training subjects" in warnings
    assert (
        "class 'stand' is in the training subjects but not in the test subjects "
        "(left out of test macro-F1)"
    ) in warnings
    assert len(warnings) == 2


def test_a_k_shot_draw_that_misses_a_class_says_so():
    data = _bundle([0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3])
    subset = np.array([0, 1, 2])  # the k-shot windows lack 'run'
    warnings = class_coverage_warnings(data, subset)
    assert warnings == [
        "class 'run' is in the val subjects but not in this run's training windows",
        "class 'run' is in the test subjects but not in this run's training windows",
    ]

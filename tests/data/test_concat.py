"""Concatenated datasets (transfer's sources): offsets, prefixed names, signals, channels."""

import numpy as np
import pytest

from harjax.data.concat import concat_datasets
from harjax.sweeps.folds import load_bundles
from tests.transfer_data import make_config, write_all


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("concat_data"))


@pytest.fixture(scope="module")
def bundles(data):
    return load_bundles(make_config(data["data_dir"]), [data["a"], data["b"]])


def test_concat_datasets_offsets_names_and_signals(bundles, data):
    a, b = bundles[data["a"]].dataset, bundles[data["b"]].dataset
    joined = concat_datasets([a, b])
    assert len(joined) == len(a) + len(b) and list(joined.offsets) == [0, len(a), len(joined)]
    assert joined.class_names == tuple(f"{a.name}/{n}" for n in a.class_names) + tuple(
        f"{b.name}/{n}" for n in b.class_names
    )
    names = np.asarray(joined.class_names)[joined.labels]
    assert list(names[len(a) :]) == [f"{b.name}/{b.class_names[i]}" for i in b.labels]
    np.testing.assert_array_equal(joined.common_labels, np.r_[a.common_labels, b.common_labels])
    assert len(set(joined.subject_names)) == len(a.subject_names) + len(b.subject_names)
    assert joined.subject_names[joined.subjects[-1]] == f"{b.name}/{b.subject_names[-1]}"
    pick = np.array([len(a) + 3, 1, len(a)])
    np.testing.assert_array_equal(
        joined.read_signals(pick),
        np.r_[b.read_signals([3]), a.read_signals([1]), b.read_signals([0])],
    )
    with pytest.raises(IndexError):
        joined.read_signals([len(joined)])
    with pytest.raises(ValueError, match="listed twice"):
        concat_datasets([a, a])


def test_concat_refuses_mixed_channels(data):
    config = make_config(data["data_dir"])
    with pytest.raises(ValueError, match="--channels acc"):
        load_bundles(config, [data["a"], data["acc_only"]])
    config.data.channels = "acc"
    joined = load_bundles(config, [data["a"], data["acc_only"]])
    assert concat_datasets([b.dataset for b in joined.values()]).num_channels == 3

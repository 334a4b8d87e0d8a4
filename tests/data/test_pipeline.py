"""The grain pipeline: shapes, per-epoch reshuffle, resume, sharding, padded eval batches."""

import numpy as np
import pytest

from harjax.data import pipeline, source
from harjax.data.errors import DataError
from harjax.data.normalization import compute_stats
from tests.data.defaults import dataset_options

HEADER = "timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label,subject"


@pytest.fixture(scope="module", params=[True, False], ids=["in_memory", "streaming"])
def ds(request, tmp_path_factory):
    """4 subjects x 2 classes x 12 s at 50 Hz: 4 * 2 * 8 = 64 windows.

    Channel 0 holds 10 * subject + label, channel 1 the time: (ch0, ch1) at a window's first
    sample identifies the window.
    """
    folder = tmp_path_factory.mktemp("csv")
    for subject in range(4):
        for label in ("sit", "walk"):
            t = np.arange(600) / 50
            value = np.full((600, 6), subject * 10 + (label == "walk"), np.float64)
            value[:, 1] = t
            lines = [HEADER] + [
                f"{ti:.4f}," + ",".join(f"{v:g}" for v in row) + f",{label},s{subject}"
                for ti, row in zip(t, value)
            ]
            (folder / f"s{subject}_{label}.csv").write_text("\n".join(lines) + "\n")
    dataset = source.load_dataset(
        f"csv:{folder}",
        data_dir=tmp_path_factory.mktemp("tfds"),
        in_memory=request.param,
        **dataset_options(),
    )
    assert (dataset.signals is not None) == request.param
    return dataset


def _ids(batch):
    return [tuple(np.round(row, 3)) for row in batch["signal"][:, 0, :2]]


def test_dataset_arrays(ds):
    assert len(ds) == 64 and ds.num_classes == 2 and ds.labels.dtype == np.int64
    assert np.bincount(ds.labels).tolist() == [32, 32]
    assert ds.subject_names == ("s0", "s1", "s2", "s3")
    assert ds[0]["signal"].shape == (128, 6)
    signals, labels = pipeline.load_arrays(ds, np.arange(64))
    assert signals.shape == (64, 128, 6) and labels.dtype == np.int32
    np.testing.assert_array_equal(signals[:, 0, 0] % 10, labels)  # label travels with its window


def test_train_batches_shapes_reshuffle_and_resume(ds):
    stats = compute_stats(ds, np.arange(32))
    it = pipeline.train_batches(ds, np.arange(64), batch_size=16, seed=0, stats=stats)
    batch = next(it)
    assert batch["signal"].shape == (16, 128, 6) and batch["signal"].dtype == np.float32
    assert batch["label"].shape == (16,) and batch["label"].dtype == np.int32
    raw = pipeline.train_batches(ds, np.arange(64), batch_size=16, seed=0, stats=None)
    epochs = [sum((_ids(next(raw)) for _ in range(4)), []) for _ in range(2)]
    assert len(set(epochs[0])) == 64  # each epoch sees every window once ...
    assert set(epochs[0]) == set(epochs[1]) and epochs[0] != epochs[1]  # ... in a new order
    state = raw.get_state()
    expected = next(raw)
    resumed = pipeline.train_batches(ds, np.arange(64), batch_size=16, seed=0, stats=None)
    resumed.set_state(state)
    np.testing.assert_array_equal(next(resumed)["signal"], expected["signal"])


def test_small_index_set_repeats_to_fill_a_batch(ds):
    it = pipeline.train_batches(ds, [3, 40], batch_size=8, seed=1, stats=None, num_epochs=1)
    batches = list(it)
    assert len(batches) == 1 and batches[0]["signal"].shape[0] == 8
    assert set(batches[0]["label"].tolist()) == {int(ds.labels[3]), int(ds.labels[40])}


def test_two_process_shards_are_disjoint(ds):
    shards = []
    for shard in (0, 1):
        it = pipeline.train_batches(
            ds,
            np.arange(64),
            batch_size=16,
            seed=5,
            stats=None,
            num_epochs=1,
            shard_index=shard,
            shard_count=2,
        )
        batches = list(it)
        assert len(batches) == 4 and all(len(b["label"]) == 8 for b in batches)  # global 16 / 2
        shards.append(sum((_ids(b) for b in batches), []))
    assert len(set(shards[0])) == len(set(shards[1])) == 32
    assert not set(shards[0]) & set(shards[1])


def test_global_batches_do_not_depend_on_the_process_count(ds):
    """Process i's slice of every global batch is rows [i*B/P, (i+1)*B/P) of the one-process
    batch, so a multi-host step sees the same rows in the same order (dropout included)."""

    def batches(shard, count):
        it = pipeline.train_batches(
            ds,
            np.arange(50),
            batch_size=16,
            seed=3,
            stats=None,
            shard_index=shard,
            shard_count=count,
        )
        return [_ids(next(it)) for _ in range(6)]  # crosses an epoch boundary (50 windows)

    single = batches(0, 1)
    for count in (2, 4):
        shards = [batches(i, count) for i in range(count)]
        for b in range(6):
            assert sum((s[b] for s in shards), []) == single[b]


def test_eval_batches_pad_and_mask(ds):
    batches = list(pipeline.eval_batches(ds, np.arange(20), batch_size=8, stats=None))
    assert [b["signal"].shape[0] for b in batches] == [8, 8, 8]
    assert [b["mask"].sum() for b in batches] == [8, 8, 4]
    signals = np.concatenate([b["signal"] for b in batches])[:20]
    np.testing.assert_array_equal(signals, ds.read_signals(np.arange(20)))


def test_common_label_key_and_errors(ds):
    it = pipeline.train_batches(
        ds, np.arange(64), batch_size=8, seed=0, stats=None, label_key="common_label"
    )
    batch = next(it)
    assert set(batch["label"].tolist()) <= {0, 3}  # walk, sit in COMMON_LABELS
    with pytest.raises(DataError, match="not divisible"):
        pipeline.train_batches(
            ds, np.arange(64), batch_size=9, seed=0, stats=None, shard_index=0, shard_count=2
        )
    with pytest.raises(DataError, match="channels="):
        source.load_dataset("smartwatch", **dataset_options(channels="gyro"))


def test_augmentation_touches_training_batches_only_and_reproduces(ds):
    """Augmented training windows differ from the raw ones, repeat exactly on resume and
    across process splits; evaluation batches and in-memory arrays are never augmented."""
    from harjax.data.augment import AugmentConfig

    augment = AugmentConfig(transforms=("rotation", "jitter"))

    def stream(shard=0, count=1, config=augment):
        return pipeline.train_batches(
            ds,
            np.arange(64),
            batch_size=16,
            seed=2,
            stats=None,
            augment=config,
            shard_index=shard,
            shard_count=count,
        )

    plain, augmented = stream(config=None), stream()
    first_plain, first = next(plain), next(augmented)
    np.testing.assert_array_equal(first["label"], first_plain["label"])  # same windows ...
    assert not np.allclose(first["signal"], first_plain["signal"])  # ... augmented
    state = augmented.get_state()
    expected = next(augmented)
    resumed = stream()
    resumed.set_state(state)
    np.testing.assert_array_equal(next(resumed)["signal"], expected["signal"])
    halves = [next(stream(shard, 2))["signal"] for shard in (0, 1)]
    np.testing.assert_allclose(np.concatenate(halves), first["signal"], rtol=1e-6)
    np.testing.assert_array_equal(
        next(stream(config=AugmentConfig()))["signal"], first_plain["signal"]
    )
    evaluated = next(iter(pipeline.eval_batches(ds, np.arange(16), batch_size=16, stats=None)))
    signals, _ = pipeline.load_arrays(ds, np.arange(16))
    np.testing.assert_array_equal(evaluated["signal"], signals)
    np.testing.assert_array_equal(signals, np.stack([ds[i]["signal"] for i in range(16)]))

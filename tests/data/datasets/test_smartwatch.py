"""The embedded dataset, prepared from the real seglearn==1.2.5 wheel (pip download)."""

import numpy as np
import pytest

from harjax.data import source
from harjax.data.datasets.smartwatch import CLASS_NAMES
from harjax.data.signal import STANDARD_GRAVITY
from tests.data.defaults import dataset_options


@pytest.fixture(scope="module")
def smartwatch(tmp_path_factory):
    # The wheel cache lives in the session's base temp dir, shared by every module that needs it.
    cache = tmp_path_factory.getbasetemp() / "harjax_cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARJAX_CACHE", str(cache))
        ds = source.load_dataset(
            "smartwatch", data_dir=tmp_path_factory.mktemp("tfds"), **dataset_options()
        )
        ds.test_cache = cache  # where the raw member was extracted, for the length check
        yield ds


def test_classes_subjects_and_window_counts(smartwatch):
    ds = smartwatch
    assert ds.class_names == CLASS_NAMES and ds.num_classes == 7
    assert ds.subject_names == tuple(str(i) for i in range(1, 11))
    assert set(np.unique(ds.subjects)) == set(range(10))
    assert ds.official_split is None and ds.channel_names[3] == "gyro_x"
    report = ds.report
    assert report["recordings"] == 140 and report["recordings_too_short"] == []
    # Lengths are 50 Hz already: windows = sum over recordings of 1 + (n - 128) // 64.
    from harjax.weights.assets import wheel_member_path

    raw = np.load(
        wheel_member_path(
            "seglearn",
            "1.2.5",
            "seglearn/data/watch_dataset.npy",
            cache=ds.test_cache,
        ),
        allow_pickle=True,
    ).item()
    expected = sum(1 + (len(x) - 128) // 64 for x in raw["X"])
    assert len(ds) == expected == report["windows"]
    per_recording = np.bincount(ds.recordings)
    assert len(per_recording) == 140
    np.testing.assert_array_equal(per_recording, [1 + (len(x) - 128) // 64 for x in raw["X"]])
    assert sorted(set(ds.builder.info.metadata["report"]["windows_per_class"])) == sorted(
        CLASS_NAMES
    )


def test_units_are_si(smartwatch):
    signals = smartwatch.read_signals(np.arange(0, len(smartwatch), 7))
    acc_norm = np.linalg.norm(signals[..., :3], axis=-1)
    assert np.median(acc_norm) == pytest.approx(STANDARD_GRAVITY, rel=0.15)  # m/s^2, not g
    gyro = np.abs(signals[..., 3:])
    assert 0.05 < np.median(gyro) < 3.0  # rad/s: deg/s would be ~57x larger
    assert np.isfinite(signals).all()


def test_position_and_device(smartwatch):
    first = smartwatch[0]
    assert first["device"] == b"watch" and first["position"] in (b"left", b"right")
    assert first["signal"].shape == (128, 6) and first["common_label"] == -1

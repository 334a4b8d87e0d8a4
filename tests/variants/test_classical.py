import time

import numpy as np
import pytest
import scipy.stats

from harjax.variants import classical
from harjax.variants.classical import (
    PER_CHANNEL_FEATURES,
    ClassicalBaseline,
    extract_features,
    feature_names,
)

CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
RATE = 50.0


def _column(features, names, name):
    return features[:, names.index(name)]


def test_feature_count_matches_names():
    rng = np.random.default_rng(0)
    six = extract_features(rng.normal(size=(4, 64, 6)), CHANNELS, RATE)
    names = feature_names(CHANNELS)
    assert six.shape == (4, len(names)) and six.dtype == np.float32
    # 6 axes + acc and gyro magnitudes, each with every per-channel feature.
    assert len(names) == 8 * len(PER_CHANNEL_FEATURES) == len(set(names))
    assert names[0] == "acc_x/mean" and names[-len(PER_CHANNEL_FEATURES)] == "gyro_mag/mean"

    # None means the data contract's canonical order.
    acc_only = extract_features(rng.normal(size=(2, 64, 3)))
    assert acc_only.shape == (2, len(feature_names(CHANNELS[:3])))
    assert len(feature_names(CHANNELS[:3])) == 4 * len(PER_CHANNEL_FEATURES)
    # Channels that do not form a full x/y/z sensor get no magnitude.
    other = ["acc_x", "acc_y", "baro"]
    assert extract_features(rng.normal(size=(2, 64, 3)), other).shape[1] == 3 * len(
        PER_CHANNEL_FEATURES
    )


def test_feature_values_against_numpy_and_scipy():
    rng = np.random.default_rng(1)
    signals = rng.gamma(2.0, size=(5, 128, 6))  # skewed, so skewness/kurtosis are non-trivial
    features = extract_features(signals, CHANNELS, RATE)
    names = feature_names(CHANNELS)
    x = signals[..., 4]  # gyro_y
    expected = {
        "mean": x.mean(1),
        "std": x.std(1),
        "min": x.min(1),
        "max": x.max(1),
        "median": np.median(x, 1),
        "p10": np.percentile(x, 10, axis=1),
        "p25": np.percentile(x, 25, axis=1),
        "p75": np.percentile(x, 75, axis=1),
        "p90": np.percentile(x, 90, axis=1),
        "range": np.ptp(x, axis=1),
        "rms": np.sqrt((x**2).mean(1)),
        "skewness": scipy.stats.skew(x, axis=1),
        "kurtosis": scipy.stats.kurtosis(x, axis=1),
        "mean_abs_diff": np.abs(np.diff(x, axis=1)).mean(1),
    }
    for feature, value in expected.items():
        got = _column(features, names, f"gyro_y/{feature}")
        np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-5, err_msg=feature)
    magnitude = np.linalg.norm(signals[..., :3], axis=-1)
    np.testing.assert_allclose(
        _column(features, names, "acc_mag/p75"), np.percentile(magnitude, 75, axis=1), rtol=1e-5
    )


def test_spectral_and_crossing_features_of_a_sine():
    time_s = np.arange(128) / RATE
    frequency = 13 * RATE / 128  # exactly on FFT bin 13: 5.078 Hz
    sine = np.sin(2 * np.pi * frequency * time_s)
    slow = 0.5 * np.sin(2 * np.pi * (5 * RATE / 128) * time_s)  # 1.95 Hz
    signals = np.zeros((1, 128, 6))
    signals[0, :, 0] = sine + 9.81  # an offset (gravity) must not change the spectrum
    signals[0, :, 1] = slow
    names = feature_names(CHANNELS)
    features = extract_features(signals, CHANNELS, RATE)

    assert _column(features, names, "acc_x/dominant_freq_hz")[0] == pytest.approx(frequency)
    assert _column(features, names, "acc_x/band_5_10hz_energy_fraction")[0] == pytest.approx(1.0)
    assert _column(features, names, "acc_x/band_1_3hz_energy_fraction")[0] == pytest.approx(0.0)
    assert _column(features, names, "acc_y/band_1_3hz_energy_fraction")[0] == pytest.approx(1.0)
    assert _column(features, names, "acc_x/spectral_entropy")[0] == pytest.approx(0.0, abs=1e-5)
    # 13 periods -> ~26 sign changes over 127 sample pairs.
    assert _column(features, names, "acc_x/zero_crossing_rate")[0] == pytest.approx(26 / 127, 0.05)
    bands = [n for n in names if n.startswith("acc_x/band_")]
    assert sum(_column(features, names, n)[0] for n in bands) == pytest.approx(1.0)


def test_constant_and_silent_windows_give_finite_features():
    signals = np.zeros((3, 32, 6))
    signals[1] = 9.81
    features = extract_features(signals, CHANNELS, RATE)
    assert np.isfinite(features).all()
    with pytest.raises(ValueError, match="non-finite sample in window 2"):
        extract_features(np.where(np.arange(3)[:, None, None] == 2, np.nan, signals))
    with pytest.raises(ValueError, match=r"expected 6 distinct channel names"):
        extract_features(signals, ["acc_x"] * 6)
    with pytest.raises(ValueError, match=r"\(N, T, C\)"):
        extract_features(signals[0])


def test_chunks_do_not_change_features(monkeypatch):
    signals = np.random.default_rng(2).normal(size=(7, 48, 6)).astype(np.float32)
    whole = extract_features(signals, CHANNELS, RATE)
    monkeypatch.setattr(classical, "_CHUNK", 3)
    chunked = extract_features(signals, CHANNELS, RATE)
    np.testing.assert_array_equal(whole, chunked)


def test_feature_extraction_is_fast():
    signals = np.random.default_rng(3).normal(size=(10_000, 128, 6)).astype(np.float32)
    start = time.perf_counter()
    extract_features(signals, CHANNELS, RATE)
    elapsed = time.perf_counter() - start
    # ~1.5 s on a loaded 2-core CPU; a per-window Python loop would take far longer.
    assert elapsed < 10.0, f"10k windows took {elapsed:.1f} s"


def _synthetic(rng, num_per_class):
    """Three activities that differ by rhythm and intensity, under noise and random phase."""
    time_s = np.arange(128) / RATE
    signals, labels = [], []
    for label, (frequency, amplitude) in enumerate([(1.0, 1.0), (2.5, 3.0), (6.0, 0.5)]):
        for _ in range(num_per_class):
            phase = rng.uniform(0, 2 * np.pi, size=6)
            wave = amplitude * np.sin(2 * np.pi * frequency * time_s[:, None] + phase)
            signals.append(wave + rng.normal(scale=0.8, size=(128, 6)))
            labels.append(label)
    return np.array(signals, np.float32), np.array(labels)


def test_baseline_learns_a_separable_problem_and_is_deterministic():
    rng = np.random.default_rng(4)
    train_x, train_y = _synthetic(rng, 30)
    test_x, test_y = _synthetic(rng, 40)

    model = ClassicalBaseline(num_trees=40, seed=0, n_jobs=1).fit(train_x, train_y)
    predictions = model.predict(test_x)
    assert (predictions == test_y).mean() > 0.9
    assert model.predict_proba(test_x).shape == (120, 3)
    nodes = model.num_parameters()
    assert nodes == sum(tree.tree_.node_count for tree in model._forest.estimators_)
    assert nodes > 40  # at least one split per tree

    # Same seed -> same forest, whatever the number of jobs.
    again = ClassicalBaseline(num_trees=40, seed=0, n_jobs=2).fit(train_x, train_y)
    assert again.num_parameters() == nodes
    np.testing.assert_array_equal(again.predict_proba(test_x), model.predict_proba(test_x))
    # Another seed -> another forest.
    other = ClassicalBaseline(num_trees=40, seed=1, n_jobs=1).fit(train_x, train_y)
    assert not np.array_equal(other.predict_proba(test_x), model.predict_proba(test_x))


def test_baseline_keeps_the_label_space_and_checks_its_inputs():
    rng = np.random.default_rng(5)
    signals, labels = _synthetic(rng, 10)
    common = np.array([4, 9, 11])[labels]  # e.g. common-label indices, not 0..C-1
    model = ClassicalBaseline(num_trees=10, n_jobs=1)
    with pytest.raises(RuntimeError, match="call fit"):
        model.predict(signals)
    model.fit(signals, common)
    assert set(model.predict(signals)) <= {4, 9, 11}
    assert list(model.classes_) == [4, 9, 11]
    with pytest.raises(ValueError, match="expected labels"):
        ClassicalBaseline(num_trees=10).fit(signals, common[:-1])
    with pytest.raises(ValueError, match="num_trees"):
        ClassicalBaseline(num_trees=0)

"""The benchmark readers on real recordings: small excerpts of the releases in tests/data/real/.

Synthetic archives (archives_a.py, archives_b.py) test the quirks the excerpts lack; these test
what only real files show: HHAR's watch clock and late batches, RealWorld's timestamp gaps,
UCI-HAR's reduced copy of the official split. Counts are those the excerpts must give at the
pinned window config; units are checked physically (gravity at rest, gyroscopes in rad/s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harjax.data.datasets.hhar import REPEATED, RESORTED, Hhar
from harjax.data.datasets.realworld import RealWorld
from harjax.data.datasets.uci_har import UciHar
from tests.data.defaults import build_real, split_windows

REAL = Path(__file__).parents[1] / "real"
GRAVITY = 9.81  # m/s^2


def _build(cls, tmp_path: Path, folder: str):
    return build_real(cls, tmp_path, REAL / folder)


def _counts(names: list[str]) -> dict[str, int]:
    return {name: names.count(name) for name in sorted(set(names))}


def _at_rest_units(signals: np.ndarray) -> None:
    """Windows of a still wearer: |acc| is gravity in m/s^2, the gyroscope near 0 in rad/s."""
    magnitude = np.linalg.norm(signals[..., :3], axis=-1).mean(axis=1)
    np.testing.assert_allclose(magnitude, GRAVITY, atol=0.5)
    assert np.abs(signals[..., 3:]).mean() < 0.3  # deg/s would be ~57x larger


def test_uci_har_official_split_subjects_labels_and_units(tmp_path):
    builder = _build(UciHar, tmp_path, "uci_har")
    train, train_labels, train_subjects = split_windows(builder, "train")
    test, test_labels, test_subjects = split_windows(builder, "test")
    assert (len(train), len(test)) == (200, 77)
    assert _counts(train_subjects) == {"5": 91, "7": 109}
    assert _counts(test_subjects) == {"9": 77}
    assert _counts(train_labels) == {
        "LAYING": 34,
        "SITTING": 36,
        "STANDING": 34,
        "WALKING": 40,
        "WALKING_DOWNSTAIRS": 26,
        "WALKING_UPSTAIRS": 30,
    }
    assert set(test_labels) == set(UciHar.CLASS_NAMES)
    assert builder.report.classes_without_windows == []
    for signals, labels in ((train, train_labels), (test, test_labels)):
        still = np.isin(labels, ["LAYING", "SITTING", "STANDING"])
        _at_rest_units(signals[still])
        walking = np.isin(labels, ["WALKING"])
        assert np.linalg.norm(signals[walking, :, :3], axis=-1).std(axis=1).min() > 1.0


def test_hhar_watch_and_phone_clocks_rates_and_quirks(tmp_path, caplog):
    builder = _build(Hhar, tmp_path, "hhar")
    report = builder.report
    rates = report.sample_rates
    assert set(rates) == {"a/nexus4_1", "a/gear_1"}
    for sensor in ("accelerometer", "gyroscope"):  # Nexus 4 ~200 Hz, Gear ~100 Hz (Table 1)
        assert rates["a/nexus4_1"][sensor] == pytest.approx(198.6, abs=0.5)
        assert rates["a/gear_1"][sensor] == pytest.approx(100.3, abs=0.5)
    by_file = lambda counts: {Path(k).name: v for k, v in counts.items()}
    # Backward steps in file order and repeats, as counted on the CSVs by hand.
    assert by_file(report.rows_repaired[RESORTED]) == {
        "Phones_accelerometer.csv": 120,
        "Phones_gyroscope.csv": 122,
        "Watch_accelerometer.csv": 56,
        "Watch_gyroscope.csv": 63,
    }
    assert by_file(report.rows_dropped[REPEATED]) == {
        "Watch_accelerometer.csv": 4,
        "Watch_gyroscope.csv": 4,
    }
    # The excerpt holds user a standing (phone, watch) and sitting (watch): a partial archive.
    assert report.classes_without_windows == ["bike", "walk", "stairsup", "stairsdown"]
    assert "['bike', 'walk', 'stairsup', 'stairsdown'] have no windows" in caplog.text
    assert builder.info.features["label"].names == list(Hhar.CLASS_NAMES)
    signals, labels, subjects = split_windows(builder, "full")
    assert _counts(labels) == {"sit": 6, "stand": 19}
    assert set(subjects) == {"a"}
    _at_rest_units(signals)


def test_realworld_walking_shin_gaps_rate_and_units(tmp_path):
    builder = _build(RealWorld, tmp_path, "realworld")
    report = builder.report
    rates = report.sample_rates["proband1/walking/shin"]
    assert rates == pytest.approx({"accelerometer": 50.0, "gyroscope": 50.0}, abs=1.0)
    assert report.segments_split == 4  # the recording's own ~1 s timestamp gaps
    assert report.classes_without_windows == [c for c in RealWorld.CLASS_NAMES if c != "walking"]
    signals, labels, subjects = split_windows(builder, "full")
    assert (len(signals), set(labels), set(subjects)) == (177, {"walking"}, {"1"})
    magnitude = np.linalg.norm(signals[..., :3], axis=-1)
    assert 9.5 < magnitude.mean() < 13.0  # gravity plus the shin's swing, m/s^2
    # Walking moves: all but a few windows (pauses, 3 of 177) swing by more than 1 m/s^2.
    assert (magnitude.std(axis=1) > 1.0).mean() > 0.95
    assert 0.3 < np.abs(signals[..., 3:]).mean() < 5.0  # rad/s (deg/s would be ~80)

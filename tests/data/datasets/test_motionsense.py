"""MotionSense builder on tiny synthetic archives in the real layout (archives_a.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harjax.data.builder import HARConfig
from harjax.data.datasets.motionsense import CLASS_NAMES, MotionSense
from harjax.data.errors import DataError
from harjax.data.signal import STANDARD_GRAVITY
from tests.data.datasets import archives_a as A
from tests.data.defaults import har_config

GRAVITY_G = np.array([0.1, -0.9, 0.3])  # CoreMotion: g, iOS sign
USER_ACC_G = np.array([0.05, 0.02, -0.01])
RATE_RAD_S = np.array([0.4, -0.5, 0.6])
# Samples per trial (50 Hz): 1 + (n - 128) // 64 windows at the defaults.
LENGTHS = {"dws": 200, "ups": 300, "wlk": 420, "jog": 150, "std": 260, "sit": 192}


def _trial(act, trial, subject, n, *, user_acc=None):
    return A.MotionSenseTrial(
        act,
        trial,
        subject,
        gravity=np.tile(GRAVITY_G, (n, 1)),
        user_acceleration=np.tile(USER_ACC_G, (n, 1)) if user_acc is None else user_acc,
        rotation_rate=np.tile(RATE_RAD_S, (n, 1)),
        attitude=np.tile([1.5, -0.7, 0.6], (n, 1)),
    )


def _trials(subjects=(1, 2, 12)):
    """First trial number of each activity, for each subject; lengths vary by subject."""
    return [
        _trial(act, A.MOTIONSENSE_TRIALS[act][0], s, LENGTHS[act] + 64 * (s % 2))
        for act in CLASS_NAMES
        for s in subjects
    ]


def _windows(n: int) -> int:
    return 0 if n < 128 else 1 + (n - 128) // 64


def _prepare(tmp_path: Path, manual_dir: Path, config: HARConfig | None = None) -> MotionSense:
    builder = MotionSense(
        config=config or har_config(), data_dir=tmp_path / "tfds", manual_dir=manual_dir
    )
    builder.download_and_prepare()
    return builder


def _records(builder):
    source = builder.as_data_source()["full"]
    return [source[i] for i in range(len(source))]


def _manual(tmp_path: Path, trials) -> Path:
    tree = A.write_motionsense(tmp_path / "raw", trials)
    manual = tmp_path / "manual"
    manual.mkdir(exist_ok=True)
    A.write_motionsense_zip(tree, manual)
    return manual


def test_windows_labels_subjects_and_units(tmp_path):
    trials = _trials()
    builder = _prepare(tmp_path, _manual(tmp_path, trials))
    records = _records(builder)
    assert len(records) == sum(_windows(len(t.gravity)) for t in trials)
    subjects = builder.info.metadata["subject_names"]
    assert subjects == ["1", "2", "12"]  # natural order
    for act in CLASS_NAMES:
        for s in (1, 2, 12):
            mine = [
                r
                for r in records
                if CLASS_NAMES[r["label"]] == act and subjects[r["subject"]] == str(s)
            ]
            assert len(mine) == _windows(LENGTHS[act] + 64 * (s % 2)), (act, s)
    # iOS g (gravity + user acceleration, device-frame "down" sign) -> specific force in m/s^2.
    want = np.r_[-(GRAVITY_G + USER_ACC_G) * STANDARD_GRAVITY, RATE_RAD_S]
    for r in records:
        assert r["signal"].shape == (128, 6)
        np.testing.assert_allclose(r["signal"], np.tile(want, (128, 1)), rtol=1e-6)
        assert r["device"] == b"iphone6s" and r["position"] == b"front_pocket"
    common = {CLASS_NAMES[r["label"]]: int(r["common_label"]) for r in records}
    assert common == {"dws": 2, "ups": 1, "wlk": 0, "jog": 6, "std": 4, "sit": 3}
    assert len(builder.info.metadata["recording_ids"]) == len(trials)


def test_sine_keeps_frequency_after_resampling(tmp_path):
    freq, n = 2.5, 1000  # 2.5 Hz written at the native 50 Hz for 20 s
    t = np.arange(n) / 50.0
    user_acc = np.zeros((n, 3))
    user_acc[:, 1] = 0.3 * np.sin(2 * np.pi * freq * t)
    trials = _trials(subjects=(3,)) + [_trial("jog", 16, 3, n, user_acc=user_acc)]
    config = har_config(sample_rate=20.0, window_length=64, window_stride=32)
    builder = _prepare(tmp_path, _manual(tmp_path, trials), config)
    ids = builder.info.metadata["recording_ids"]
    jog = [r for r in _records(builder) if ids[r["recording"]] == "jog_16/sub_3"]
    assert len(jog) == (n * 20 // 50 - 64) // 32 + 1
    hz = np.fft.rfftfreq(64, d=1 / 20.0)  # 2.5 Hz is bin 8
    for r in jog:
        y = r["signal"][:, 1]
        # Gravity kept (-gravity.y g); each window holds 8 whole periods, so its mean is that.
        assert y.mean() == pytest.approx(-GRAVITY_G[1] * STANDARD_GRAVITY, abs=0.05)
        amplitude = 2 * np.abs(np.fft.rfft(y - y.mean())) / 64
        assert hz[np.argmax(amplitude)] == pytest.approx(freq)
        assert amplitude[8] == pytest.approx(0.3 * STANDARD_GRAVITY, rel=0.03)


def _edit_line(path: Path, number: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


WLK = "A_DeviceMotion_data/wlk_7"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: _edit_line(t / WLK / "sub_2.csv", 6, lambda s: s.rsplit(",", 1)[0]),
            r"wlk_7/sub_2.csv:6: expected 13 columns, found 12",
        ),
        (
            lambda t: _edit_line(t / WLK / "sub_2.csv", 8, lambda s: s.replace("0.4", "inf")),
            r"wlk_7/sub_2.csv:8: inf in gyro_x",
        ),
        (
            lambda t: (t / WLK).rename(t / "A_DeviceMotion_data/run_7"),
            r"run_7/sub_1.csv: unknown activity 'run' \(folder run_7\)",
        ),
        (
            lambda t: (t / WLK / "sub_12.csv").unlink(),
            r"wlk_7/sub_12.csv: missing",
        ),
        (
            lambda t: _edit_line(t / WLK / "sub_1.csv", 1, lambda s: s.replace("gravity.z", "g.z")),
            r"wlk_7/sub_1.csv:1: expected header",
        ),
    ],
    ids=["column_count", "inf", "unknown_activity", "missing_file", "header"],
)
def test_bad_input_names_file_and_line(tmp_path, edit, message):
    tree = A.write_motionsense(tmp_path / "raw", _trials())
    edit(tree)
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path, tree)  # the extracted folder is accepted too


def test_all_nan_channel_corrupt_zip_and_empty_class(tmp_path):
    trials = _trials()
    trials[0].rotation_rate = trials[0].rotation_rate.copy()
    trials[0].rotation_rate[:, 2] = np.nan
    with pytest.raises(DataError, match=r"dws_1/sub_1.csv: channel\(s\) \['gyro_z'\] are all NaN"):
        _prepare(tmp_path, _manual(tmp_path, trials))

    manual = tmp_path / "bad"
    manual.mkdir()
    good = A.write_motionsense_zip(A.write_motionsense(tmp_path / "r2", _trials()), tmp_path)
    (manual / "A_DeviceMotion_data.zip").write_bytes(good.read_bytes()[:-200])  # truncated
    with pytest.raises(DataError, match=r"A_DeviceMotion_data.zip: not a readable zip"):
        _prepare(tmp_path / "b", manual)

    short_sit = [t if t.activity != "sit" else _trial("sit", 5, t.subject, 100) for t in _trials()]
    # A partial archive builds; the missing class keeps its label id.
    partial = _prepare(tmp_path / "c", _manual(tmp_path / "c", short_sit))
    assert partial.report.classes_without_windows == ["sit"]
    assert "sit" in partial.info.features["label"].names


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("\n \n", "empty file"),
        (None, r"header only \(',attitude.roll,"),
    ],
    ids=["empty", "blank", "header_only"],
)
def test_an_empty_or_header_only_file_is_one_error_naming_it(tmp_path, content, message):
    tree = A.write_motionsense(tmp_path / "raw", _trials())
    path = tree / WLK / "sub_2.csv"
    path.write_text(path.read_text().splitlines()[0] + "\n" if content is None else content)
    with pytest.raises(DataError, match=rf"wlk_7/sub_2.csv: {message}"):
        _prepare(tmp_path, tree)


def test_utf16_files_are_read_and_missing_values_counted_by_line(tmp_path):
    tree = A.write_motionsense(tmp_path / "raw", _trials())
    expected = _records(_prepare(tmp_path / "utf8", tree))
    path = tree / WLK / "sub_2.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    found = _records(_prepare(tmp_path / "utf16", tree))
    assert [r["signal"].tolist() for r in found] == [r["signal"].tolist() for r in expected]
    path.write_text(path.read_text(encoding="utf-16"))
    _edit_line(path, 9, lambda s: ",".join(s.split(",")[:5] + [""] + s.split(",")[6:]))
    builder = _prepare(tmp_path / "missing", tree)
    missing = {"/".join(Path(k).parts[-2:]): v for k, v in builder.report.missing_values.items()}
    assert missing == {"wlk_7/sub_2.csv": {"rows": 1, "lines": [9]}}
    assert len(_records(builder)) == len(expected)  # interpolated: a one-sample gap

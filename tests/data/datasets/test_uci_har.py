"""UCI-HAR builder on tiny synthetic archives in the real layout (archives_a.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from harjax.data.builder import HARConfig
from harjax.data.datasets.uci_har import CLASS_NAMES, UciHar
from harjax.data.errors import DataError
from harjax.data.signal import STANDARD_GRAVITY
from tests.data.datasets import archives_a as A
from tests.data.defaults import har_config

TOTAL_ACC_G = np.array([0.1, -0.2, 0.9])  # raw units: g
GYRO_RAD_S = np.array([0.01, -0.02, 0.03])  # raw units: rad/s


def _segment(split, subject, activity, num_windows, *, offset=0.0):
    n = A.UCI_WINDOW + A.UCI_STEP * (num_windows - 1)
    ramp = offset + 1e-3 * np.arange(n)[:, None]  # distinct values: no accidental chaining
    return A.UciSegment(split, subject, activity, TOTAL_ACC_G + ramp, GYRO_RAD_S + ramp)


def _segments():
    """Train: subject 1 does all six activities; test: subject 2 walks and lies."""
    train = [_segment("train", 1, a, num_windows=a % 3 + 1, offset=a) for a in range(1, 7)]
    test = [_segment("test", 2, 1, 3, offset=10), _segment("test", 2, 6, 2, offset=20)]
    return train + test


def _prepare(tmp_path: Path, manual_dir: Path, config: HARConfig | None = None) -> UciHar:
    builder = UciHar(
        config=config or har_config(), data_dir=tmp_path / "tfds", manual_dir=manual_dir
    )
    builder.download_and_prepare()
    return builder


def _write(tmp_path: Path, segments=None) -> Path:
    """Writes the tree; a given list gets one test-split segment (tfds needs both splits)."""
    if segments is None:
        segments = _segments()
    elif not any(s.split == "test" for s in segments):
        segments = [*segments, _segment("test", 2, 1, 2, offset=30)]
    return A.write_uci_har(tmp_path / "raw", segments)


def _records(builder, split):
    source = builder.as_data_source()[split]
    return [source[i] for i in range(len(source))]


def _manual_zip(tmp_path: Path, tree: Path) -> Path:
    manual = tmp_path / "manual"
    manual.mkdir(exist_ok=True)
    A.write_uci_har_zip(tree, manual)
    return manual


def test_official_split_counts_labels_subjects_units(tmp_path):
    segments = _segments()
    tree = _write(tmp_path, segments)
    manual = tmp_path / "manual"
    manual.mkdir()
    A.write_uci_har_zip(tree, manual, official=True)  # the repository's zip-in-a-zip
    builder = _prepare(tmp_path, manual)

    for split in ("train", "test"):
        records = _records(builder, split)
        expected = [s for s in segments if s.split == split]
        assert len(records) == sum(s.num_windows for s in expected)
        got = sorted(CLASS_NAMES[r["label"]] for r in records)
        want = sorted(CLASS_NAMES[s.activity - 1] for s in expected for _ in range(s.num_windows))
        assert got == want
    subject_names = builder.info.metadata["subject_names"]
    assert subject_names == ["1", "2"]
    assert {int(r["subject"]) for r in _records(builder, "test")} == {subject_names.index("2")}
    # Rebuilt recordings give back exactly the official windows, converted to m/s^2.
    for split in ("train", "test"):
        signals = [r["signal"] for r in _records(builder, split)]
        assert all(s.shape == (128, 6) and s.dtype == np.float32 for s in signals)
        for seg in (s for s in segments if s.split == split):
            for w in range(seg.num_windows):
                rows = slice(64 * w, 64 * w + 128)
                want = np.concatenate(
                    [seg.total_acc[rows] * STANDARD_GRAVITY, seg.body_gyro[rows]], 1
                )
                hits = [s for s in signals if np.allclose(s, want, rtol=1e-6, atol=1e-5)]
                assert len(hits) == 1
    first = _records(builder, "test")[0]
    assert builder.info.metadata["uci_har_chaining"] == {"windows": 17, "recordings": 8}
    common = {CLASS_NAMES[r["label"]]: int(r["common_label"]) for r in _records(builder, "train")}
    assert common["LAYING"] == 5 and common["WALKING_UPSTAIRS"] == 1  # lie / upstairs
    assert first["device"] == b"galaxy_s2" and first["position"] == b"waist"


def test_constant_channels_converted_to_canonical_units(tmp_path):
    n = 128 + 64
    segments = [
        A.UciSegment("train", 3, a, np.tile(TOTAL_ACC_G, (n, 1)), np.tile(GYRO_RAD_S, (n, 1)))
        for a in range(1, 7)
    ]
    builder = _prepare(tmp_path, _write(tmp_path, segments))  # a folder
    assert len(_records(builder, "train")) == 12
    for record in _records(builder, "train"):
        np.testing.assert_allclose(
            record["signal"].mean(0),
            np.concatenate([TOTAL_ACC_G * STANDARD_GRAVITY, GYRO_RAD_S]),
            rtol=1e-6,
        )


def test_sine_keeps_frequency_after_resampling(tmp_path):
    freq, n = 2.5, 128 + 64 * 15  # 2.5 Hz written at the native 50 Hz, 20 s
    t = np.arange(n) / 50.0
    acc = np.tile([0.0, 0.0, 1.0], (n, 1))
    acc[:, 0] = 0.5 * np.sin(2 * np.pi * freq * t)
    segments = [_segment("train", 1, a, 2, offset=a) for a in range(2, 7)]
    segments.append(A.UciSegment("train", 1, 1, acc, np.zeros((n, 3))))
    config = har_config(sample_rate=20.0, window_length=64, window_stride=32)
    builder = _prepare(tmp_path, _write(tmp_path, segments), config)
    walking = [r for r in _records(builder, "train") if CLASS_NAMES[r["label"]] == "WALKING"]
    assert len(walking) == (n * 20 // 50 - 64) // 32 + 1  # one rebuilt 20 s recording
    for record in walking:
        spectrum = np.abs(np.fft.rfft(record["signal"][:, 0]))
        peak_hz = np.fft.rfftfreq(64, d=1 / 20.0)[np.argmax(spectrum)]
        assert peak_hz == pytest.approx(freq)
    middle = walking[len(walking) // 2]["signal"][:, 0]
    assert np.abs(middle).max() == pytest.approx(0.5 * STANDARD_GRAVITY, rel=0.03)


def test_chaining_needs_identical_overlap(tmp_path):
    # Two back-to-back walking segments of one subject: different values -> two recordings.
    segments = [_segment("train", 1, a, 2, offset=a) for a in range(1, 7)]
    segments.insert(1, _segment("train", 1, 1, 2, offset=50))
    builder = _prepare(tmp_path, _write(tmp_path, segments))
    assert builder.info.metadata["uci_har_chaining"] == {"windows": 16, "recordings": 8}
    assert len(builder.info.metadata["recording_ids"]) == 8


def _edit_line(path: Path, number: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


SIGNALS = "UCI HAR Dataset/train/Inertial Signals"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: _edit_line(
                t / SIGNALS / "total_acc_y_train.txt", 3, lambda s: s.rsplit(" ", 1)[0]
            ),
            r"total_acc_y_train.txt:3: expected 128 values, found 127",
        ),
        (
            lambda t: _edit_line(
                t / SIGNALS / "body_gyro_x_train.txt",
                2,
                lambda s: " ".join(["1", "inf", *s.split()[2:]]),
            ),
            r"body_gyro_x_train.txt:2: inf value",
        ),
        (
            lambda t: _edit_line(t / "UCI HAR Dataset/train/y_train.txt", 4, lambda s: "7"),
            r"y_train.txt:4: unknown activity id 7",
        ),
        (
            lambda t: (t / SIGNALS.replace("train", "test") / "body_gyro_y_test.txt").unlink(),
            r"expected exactly one file '.../test/Inertial Signals/body_gyro_y_test.txt', "
            r"found none",
        ),
        (
            lambda t: _edit_line(t / "UCI HAR Dataset/activity_labels.txt", 6, lambda s: "6 LYING"),
            r"activity_labels.txt:6: expected '6 LAYING', found '6 LYING'",
        ),
    ],
    ids=["column_count", "inf", "unknown_activity", "missing_file", "label_names"],
)
def test_bad_input_names_file_and_line(tmp_path, edit, message):
    tree = _write(tmp_path)
    edit(tree)
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path, _manual_zip(tmp_path, tree))


def test_all_nan_channel_names_file(tmp_path):
    tree = _write(tmp_path)
    path = tree / SIGNALS / "body_gyro_z_train.txt"
    rows = len(path.read_text().splitlines())
    path.write_text((" NaN" * 128 + "\n") * rows)
    with pytest.raises(DataError, match=r"Inertial Signals/\*_train.txt lines .*gyro_z.*all NaN"):
        _prepare(tmp_path, tree)


def test_corrupt_zip_and_empty_class(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "UCI HAR Dataset.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match=r"UCI HAR Dataset.zip: not a readable zip"):
        _prepare(tmp_path, manual)

    # A member whose bytes were damaged after zipping: the CRC check names it.
    tree = _write(tmp_path)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    path = A.write_uci_har_zip(tree, damaged)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("UCI HAR Dataset/train/y_train.txt")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + info.compress_size] = bytes(info.compress_size)
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"y_train.txt: corrupt archive member"):
        _prepare(tmp_path / "b", damaged)

    no_laying = [s for s in _segments() if s.activity != 6]
    # A partial archive builds; the missing class keeps its label id.
    partial = _prepare(tmp_path / "c", _write(tmp_path / "c", no_laying))
    assert partial.report.classes_without_windows == ["LAYING"]
    assert "LAYING" in partial.info.features["label"].names


def test_missing_archive_says_what_to_put_where(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    builder = UciHar(config=har_config(), data_dir=tmp_path / "tfds", manual_dir=empty)
    builder.URL = "file:///nonexistent/human+activity+recognition+using+smartphones.zip"
    with pytest.raises(DataError, match=r"expected one of .*'UCI HAR Dataset.zip'.* in .*empty/"):
        builder.download_and_prepare()


@pytest.mark.parametrize(
    "name",
    [
        f"{SIGNALS}/body_gyro_z_train.txt",
        "UCI HAR Dataset/test/y_test.txt",
        "UCI HAR Dataset/activity_labels.txt",
    ],
    ids=["signal", "labels", "activity_labels"],
)
@pytest.mark.parametrize("content", ["", "\n  \n"], ids=["empty", "blank"])
def test_an_empty_file_is_one_error_naming_it(tmp_path, name, content):
    """Headerless text: an empty file (no header-only case) is named as such, not as a row
    count that disagrees with another file."""
    tree = _write(tmp_path)
    (tree / name).write_text(content)
    with pytest.raises(DataError, match=rf"{Path(name).name}: empty file; expected"):
        _prepare(tmp_path, tree)


def test_utf16_files_are_read_and_missing_values_counted_by_line(tmp_path):
    tree = _write(tmp_path)
    expected = _records(_prepare(tmp_path / "utf8", tree), "train")
    path = tree / SIGNALS / "total_acc_x_train.txt"
    text = path.read_text()
    path.write_bytes(text.encode("utf-16"))
    found = _records(_prepare(tmp_path / "utf16", tree), "train")
    assert [r["signal"].tolist() for r in found] == [r["signal"].tolist() for r in expected]
    path.write_text(text)
    _edit_line(path, 2, lambda s: " ".join(["nan", *s.split()[1:]]))
    builder = _prepare(tmp_path / "missing", tree)
    missing = {Path(k).name: v for k, v in builder.report.missing_values.items()}
    assert missing == {"total_acc_x_train.txt": {"rows": 1, "lines": [2]}}

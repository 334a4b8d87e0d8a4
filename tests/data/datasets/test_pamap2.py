"""PAMAP2 builder on tiny synthetic archives in the real layout (archives_b.py)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from harjax.data.datasets.pamap2 import ACTIVITIES, CLASS_NAMES, Pamap2
from harjax.data.errors import DataError
from tests.data.datasets import archives_b as B
from tests.data.defaults import har_config

# Raw units are canonical already (m/s^2, rad/s); distinct constants per IMU and channel.
ACC = {"hand": (1.0, 2.0, 9.0), "chest": (-1.0, 9.5, 0.5), "ankle": (3.0, -4.0, 8.0)}
GYRO = {"hand": (0.1, 0.2, 0.3), "chest": (-0.1, 0.05, 0.0), "ankle": (1.0, -1.0, 0.5)}
OPTIONAL_IDS = (9, 10, 11, 18, 19, 20)
ROWS = 400  # 4 s at 100 Hz -> 200 samples at 50 Hz -> 2 windows of 128/64
TRANSIENT_ROWS = 50


def _blocks(ids, rows=ROWS):
    """Activity blocks separated by transient (activityID 0) rows, timestamps continuous."""
    blocks, t = [], 5.0
    for activity in ids:
        for a, n in ((0, TRANSIENT_ROWS), (activity, rows)):
            blocks.append(B.pamap2_block(a, n, acc16=ACC, gyro=GYRO, start_s=t))
            t += n / 100.0
    return blocks


def _files():
    protocol_ids = [i for i in ACTIVITIES if i not in OPTIONAL_IDS]
    return (
        {101: np.concatenate(_blocks(protocol_ids)), 102: np.concatenate(_blocks([4, 5]))},
        {101: np.concatenate(_blocks(OPTIONAL_IDS))},
    )


def _windows(samples_at_100hz):
    samples = -(-samples_at_100hz // 2)  # resample_poly 100 -> 50 Hz: ceil(n / 2)
    return 0 if samples < 128 else 1 + (samples - 128) // 64


def _prepare(tmp_path: Path, protocol=None, optional=None, config=None, **kwargs) -> Pamap2:
    if protocol is None:
        protocol, optional = _files()
    manual = tmp_path / "manual"
    B.write_pamap2(manual, protocol, optional, **kwargs)
    builder = Pamap2(config=config or har_config(), data_dir=tmp_path / "tfds", manual_dir=manual)
    builder.download_and_prepare()
    return builder


def _records(builder):
    source = builder.as_data_source()["full"]
    return [source[i] for i in range(len(source))]


def test_counts_labels_subjects_units_and_transient_rows(tmp_path):
    builder = _prepare(tmp_path)
    records = _records(builder)
    activities = len(ACTIVITIES) + 2  # subject 102 walks and runs too
    assert len(records) == activities * 3 * _windows(ROWS)
    counts = {name: 0 for name in CLASS_NAMES}
    for record in records:
        counts[CLASS_NAMES[record["label"]]] += 1
    assert counts["walking"] == counts["running"] == 2 * 3 * _windows(ROWS)
    assert counts["watching_tv"] == counts["rope_jumping"] == 3 * _windows(ROWS)
    meta = builder.info.metadata
    assert meta["subject_names"] == ["101", "102"]
    assert "Optional/subject101/001_watching_tv/ankle" in meta["recording_ids"]
    for record in records:
        position = record["position"].decode()
        want = np.r_[ACC[position], GYRO[position]]
        assert record["signal"].shape == (128, 6) and record["device"] == b"colibri_imu"
        np.testing.assert_allclose(record["signal"], np.tile(want, (128, 1)), rtol=1e-5)
    dropped = meta["report"]["rows_dropped"]["activityID 0 (transient)"]
    assert dropped == {
        f"{tmp_path}/manual/PAMAP2_Dataset.zip!PAMAP2_Dataset/Protocol/subject101.dat": 12 * 50,
        f"{tmp_path}/manual/PAMAP2_Dataset.zip!PAMAP2_Dataset/Protocol/subject102.dat": 2 * 50,
        f"{tmp_path}/manual/PAMAP2_Dataset.zip!PAMAP2_Dataset/Optional/subject101.dat": 6 * 50,
    }
    common = {CLASS_NAMES[r["label"]]: int(r["common_label"]) for r in records}
    assert common["cycling"] == 7 and common["ironing"] == -1  # bike / none


def test_nan_gaps_missing_timestamps_and_position_subset(tmp_path):
    protocol, optional = _files()
    table = protocol[102]
    walking = np.flatnonzero(table[:, 1] == 4)
    hand, chest = 3 + 1, 20 + 7  # hand acc_x, chest gyro_x
    table[walking[100:110], hand] = np.nan  # 10 samples: interpolated (<= 25 at 0.25 s)
    running = np.flatnonzero(table[:, 1] == 5)
    long_rows = 500
    long = B.pamap2_block(5, long_rows, acc16=ACC, gyro=GYRO, start_s=table[running[-1], 0] + 0.01)
    long[200:260, chest] = np.nan  # 60 samples (0.6 s): the chest recording is split here
    table = np.concatenate([table[: running[-1] + 1], long, table[running[-1] + 1 :]])
    table = np.delete(table, walking[300:303], axis=0)  # 3 missing timestamps: NaN, interpolated
    protocol[102] = table
    builder = _prepare(tmp_path, protocol, optional, har_config(positions=("hand", "chest")))
    report = builder.info.metadata["report"]
    # walking hand: 10 NaN + 3 missing rows; walking chest: 3 missing rows.
    assert report["samples_interpolated"] == 10 + 3 + 3 and report["gaps_interpolated"] == 3
    assert report["segments_split"] == 1 and report["samples_dropped_in_gaps"] == 60
    assert report["recordings_excluded"] == {"position not in ('hand', 'chest')": 20}
    records = _records(builder)
    assert {r["position"] for r in records} == {b"hand", b"chest"}
    runs_102 = [r for r in records if r["subject"] == 1 and CLASS_NAMES[r["label"]] == "running"]
    hand_windows = _windows(ROWS + long_rows)
    chest_windows = _windows(ROWS + 200) + _windows(long_rows - 260)
    assert len(runs_102) == hand_windows + chest_windows


def test_sine_at_100hz_keeps_frequency_at_50hz(tmp_path):
    freq, n = 50 / 128 * 10, 2000  # 3.90625 Hz = FFT bin 10 of a 128-sample window at 50 Hz
    protocol, optional = _files()
    walking = B.pamap2_block(4, n, acc16=ACC, gyro=GYRO, start_s=1.0)
    walking[:, 4] = 3.0 * np.sin(2 * np.pi * freq * np.arange(n) / 100.0)  # hand acc_x
    running = B.pamap2_block(5, ROWS, acc16=ACC, gyro=GYRO, start_s=1.0 + n / 100.0)
    protocol[102] = np.concatenate([walking, running])
    builder = _prepare(tmp_path, protocol, optional, har_config(positions=("hand",)))
    walks = [
        r["signal"][:, 0]
        for r in _records(builder)
        if r["subject"] == 1 and CLASS_NAMES[r["label"]] == "walking"
    ]
    assert len(walks) == _windows(n)
    for signal in walks:
        spectrum = np.abs(np.fft.rfft(signal))
        assert np.fft.rfftfreq(128, 1 / 50.0)[np.argmax(spectrum)] == pytest.approx(freq)
    assert np.median([np.abs(s).max() for s in walks]) == pytest.approx(3.0, rel=0.03)


def _dat(table):
    return B.pamap2_text(table).decode().splitlines()


def _member(folder, subject):
    return f"PAMAP2_Dataset/{folder}/subject{subject}.dat"


def _edited(line_number, edit):
    protocol, _ = _files()
    lines = _dat(protocol[102])
    lines[line_number - 1] = edit(lines[line_number - 1])
    return {_member("Protocol", 102): ("\n".join(lines) + "\n").encode()}


def _nan_chest_acc_y(table):
    running = table[:, 1] == 5
    table[running, 20 + 2] = np.nan
    return table


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            _edited(60, lambda line: line.rsplit(" ", 1)[0]),
            r"Protocol/subject102.dat:60: expected 54 space-separated columns, found 53",
        ),
        (
            _edited(61, lambda line: line.replace(" 4 ", " 8 ", 1)),
            r"Protocol/subject102.dat:61: unknown activityID 8.0",
        ),
        (
            _edited(70, lambda line: line.replace(" 9 ", " inf ", 1)),
            r"Protocol/subject102.dat:51-450 \(hand IMU\): inf in channel acc_z",
        ),
        (
            {_member("Protocol", 102): B.pamap2_text(_nan_chest_acc_y(_files()[0][102]))},
            r"Protocol/subject102.dat:501-900 \(chest IMU\): channel\(s\) \['acc_y'\] are all NaN",
        ),
    ],
    ids=["column_count", "unknown_activity", "inf", "all_nan"],
)
def test_bad_input_names_file_and_line(tmp_path, raw, message):
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path, raw=raw)


def test_corrupt_zip_missing_files_and_empty_class(tmp_path):
    manual = tmp_path / "manual"
    B.corrupt(B.write_pamap2(manual, *_files()))
    with pytest.raises(DataError, match=r"PAMAP2_Dataset.zip: not a readable zip"):
        Pamap2(
            config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual
        ).download_and_prepare()

    with pytest.raises(DataError, match=r"expected 'PAMAP2_Dataset/Protocol/subject<id>.dat'"):
        _prepare(tmp_path / "no_protocol", {}, _files()[1])

    protocol, optional = _files()
    optional[101] = optional[101][optional[101][:, 1] != 19]  # no house_cleaning anywhere
    # A partial archive builds; the missing class keeps its label id.
    partial = _prepare(tmp_path / "empty_class", protocol, optional)
    assert partial.report.classes_without_windows == ["house_cleaning"]
    assert "house_cleaning" in partial.info.features["label"].names


def test_reads_the_repository_zip_around_the_archive(tmp_path):
    inner = B.write_pamap2(tmp_path / "inner", *_files())
    manual = tmp_path / "manual"
    manual.mkdir()
    with zipfile.ZipFile(manual / "pamap2+physical+activity+monitoring.zip", "w") as outer:
        outer.write(inner, "PAMAP2_Dataset.zip")
        outer.writestr("readme.pdf", b"%PDF-1.4\n")
    builder = Pamap2(config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual)
    builder.download_and_prepare()
    assert len(_records(builder)) == (len(ACTIVITIES) + 2) * 3 * _windows(ROWS)


@pytest.mark.parametrize("content", [b"", b"\n \n"], ids=["empty", "blank"])
def test_an_empty_file_is_one_error_naming_it(tmp_path, content):
    """Headerless .dat files: only the empty case exists; it names the file."""
    with pytest.raises(DataError, match=r"Protocol/subject102.dat: empty file; expected 54"):
        _prepare(tmp_path, raw={_member("Protocol", 102): content})


def test_utf16_files_are_read_and_missing_values_counted_by_line(tmp_path):
    protocol, _ = _files()
    expected = _records(_prepare(tmp_path / "utf8"))
    text = B.pamap2_text(protocol[102]).decode()
    utf16 = {_member("Protocol", 102): text.encode("utf-16")}
    found = _records(_prepare(tmp_path / "utf16", raw=utf16))
    assert [r["signal"].tolist() for r in found] == [r["signal"].tolist() for r in expected]
    lines = text.splitlines()
    for number in (60, 75):  # a dropped packet: NaN in the hand IMU's gyroscope
        fields = lines[number - 1].split()
        fields[3 + 8] = "NaN"
        lines[number - 1] = " ".join(fields)
    raw = {_member("Protocol", 102): ("\n".join(lines) + "\n").encode()}
    builder = _prepare(tmp_path / "missing", raw=raw)
    missing = {k.rsplit("!", 1)[-1]: v for k, v in builder.report.missing_values.items()}
    assert missing == {"PAMAP2_Dataset/Protocol/subject102.dat": {"rows": 2, "lines": [60, 75]}}
    assert len(_records(builder)) == len(expected)  # interpolated: one-sample gaps

"""WISDM v1.1 builder on tiny synthetic archives in the real layout (archives_b.py)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from harjax.data.datasets.wisdm import CLASS_NAMES, Wisdm
from harjax.data.errors import DataError
from tests.data.datasets import archives_b as B
from tests.data.defaults import har_config

XYZ = np.array([-0.69, 12.68, 0.50])  # m/s^2 as Android writes it: no conversion
N = 100  # 5 s at 20 Hz -> 250 samples at 50 Hz -> 2 windows of 128/64
PERIOD_NS = 50_000_000


def _run(user, activity, n=N, start_ns=None, xyz=None):
    start = start_ns if start_ns is not None else 10**13 * user + 10**11 * len(activity)
    xyz = np.tile(XYZ, (n, 1)) if xyz is None else xyz
    return B.wisdm_lines(user, activity, xyz, start_ns=start)


def _lines():
    lines = []
    for user in (1, 2):
        for index, activity in enumerate(CLASS_NAMES):
            lines += _run(user, activity, start_ns=10**13 * user + 10**11 * index)
    return lines


def _windows(n):
    samples = -(-n * 5 // 2)  # resample_poly 20 -> 50 Hz: ceil(n * 5 / 2)
    return 0 if samples < 128 else 1 + (samples - 128) // 64


def _prepare(tmp_path: Path, lines=None, config=None, **kwargs) -> Wisdm:
    manual = tmp_path / "manual"
    B.write_wisdm(manual, _lines() if lines is None else lines, **kwargs)
    builder = Wisdm(config=config or har_config(), data_dir=tmp_path / "tfds", manual_dir=manual)
    builder.download_and_prepare()
    return builder


def _records(builder):
    source = builder.as_data_source()["full"]
    return [source[i] for i in range(len(source))]


def test_counts_labels_subjects_and_accelerometer_only_channels(tmp_path):
    builder = _prepare(tmp_path)
    records = _records(builder)
    assert len(records) == 2 * len(CLASS_NAMES) * _windows(N)
    assert sorted(CLASS_NAMES[r["label"]] for r in records) == sorted(
        a for a in CLASS_NAMES for _ in range(2 * _windows(N))
    )
    meta = builder.info.metadata
    assert meta["subject_names"] == ["1", "2"] and meta["channels"] == ["acc_x", "acc_y", "acc_z"]
    assert {int(r["subject"]) for r in records} == {0, 1}
    for record in records:
        assert record["signal"].shape == (128, 3)  # never zero-filled to 6 channels
        # 20 -> 50 Hz interpolates by 5: the polyphase filter's phases differ in DC gain by
        # < 0.1 %, so a constant comes back within that ripple (exact at 50 Hz / 100 Hz input).
        np.testing.assert_allclose(record["signal"], np.tile(XYZ, (128, 1)), rtol=2e-3)
        assert record["device"] == b"android_phone" and record["position"] == b"front_pocket"
    common = {CLASS_NAMES[r["label"]]: int(r["common_label"]) for r in records}
    assert common["Jogging"] == 6 and common["Upstairs"] == 1  # run / upstairs
    assert meta["wisdm_repairs"] == {}


def test_malformed_lines_are_repaired_or_dropped_and_counted(tmp_path):
    lines = _lines()
    # Real quirks, inside user 1's walking run (line numbers are 1-based).
    lines[3] = lines[3].replace(";", ",;")  # trailing comma (user 21 in the original)
    lines[5] = lines[5].rstrip(";")  # no final ';'
    lines[7] = lines[7] + lines.pop(8)  # two records on one line
    user, activity, ts, x, y, _ = lines[10].rstrip(";").split(",")
    glued = lines.pop(11).rstrip(";")
    lines[10] = f"{user},{activity},{ts},{x},{y},{glued};"  # z missing, next record glued
    fields = lines[20].split(",")
    lines[20] = ",".join([*fields[:3], "", *fields[4:]])  # an empty x field
    fields = lines[30].split(",")
    lines[30] = ",".join([fields[0], fields[1], "0", *fields[3:]])  # timestamp 0
    lines.insert(40, "")  # blank line
    builder = _prepare(tmp_path, lines)
    meta = builder.info.metadata
    assert meta["wisdm_repairs"] == {
        "trailing comma": 1,
        "line without final ';'": 1,
        "several records on one line": 1,
        "records glued without ';'": 1,
    }
    where = f"{tmp_path}/manual/WISDM_ar_latest.tar.gz!WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt"
    assert meta["report"]["rows_dropped"] == {
        "record with missing fields": {where: 1},
        "timestamp 0": {where: 1},
    }
    # The empty x is a missing value: counted with its line, the record left out.
    assert meta["report"]["missing_values"] == {where: {"rows": 1, "lines": [21]}}
    # Each dropped record leaves a 100 ms hole, bridged on the 20 Hz grid: same windows.
    assert len(_records(builder)) == 2 * len(CLASS_NAMES) * _windows(N)


def test_backwards_timestamps_and_long_gaps_split(tmp_path):
    lines = _lines()
    first = _run(1, "Walking", n=N, start_ns=10**13)
    jump = _run(1, "Walking", n=N, start_ns=10**13 + N * PERIOD_NS + 2 * 10**9)  # 2 s hole
    back = _run(1, "Walking", n=N, start_ns=10**12)  # clock went backwards
    lines = first + jump + back + lines[N:]
    builder = _prepare(tmp_path, lines)
    report = builder.info.metadata["report"]
    assert report["segments_split"] == 2
    walking = [r for r in _records(builder) if CLASS_NAMES[r["label"]] == "Walking"]
    assert len(walking) == 3 * _windows(N) + _windows(N)  # three pieces of user 1 + user 2
    ids = builder.info.metadata["recording_ids"]
    assert {"user1/000_Walking/part0", "user1/000_Walking/part2"} <= set(ids)


def test_sine_at_20hz_keeps_frequency_at_50hz(tmp_path):
    freq, n = 50 / 128 * 5, 400  # 1.953125 Hz = FFT bin 5 of a 128-sample window at 50 Hz
    xyz = np.tile(XYZ, (n, 1))
    xyz[:, 2] = 4.0 * np.sin(2 * np.pi * freq * np.arange(n) / 20.0)
    lines = _lines()
    lines = _run(1, "Walking", n=n, start_ns=10**13, xyz=xyz) + lines[N:]
    builder = _prepare(tmp_path, lines, har_config(window_length=128, window_stride=64))
    walks = [
        r["signal"][:, 2]
        for r in _records(builder)
        if r["subject"] == 0 and CLASS_NAMES[r["label"]] == "Walking"
    ]
    assert len(walks) == _windows(n)
    for signal in walks:
        spectrum = np.abs(np.fft.rfft(signal))
        assert np.fft.rfftfreq(128, 1 / 50.0)[np.argmax(spectrum)] == pytest.approx(freq)
    assert np.median([np.abs(s).max() for s in walks]) == pytest.approx(4.0, rel=0.03)


def _line(number, text):
    def edit(lines):
        lines[number - 1] = text
        return lines

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            _line(5, "1,Walking,10000000200000,1,2,3,4,5;"),
            r"WISDM_ar_v1.1_raw.txt:5: expected 6 fields user,activity,timestamp,x,y,z; found 8",
        ),
        (
            _line(6, "1,Dancing,10000000250000,1,2,3;"),
            r"WISDM_ar_v1.1_raw.txt:6: unknown activity 'Dancing'",
        ),
        (
            _line(7, "1,Walking,10000000300000,1,2,abc;"),
            r"WISDM_ar_v1.1_raw.txt:7: could not convert string to float: 'abc'",
        ),
        (
            _line(8, "1,Walking,10000000350000,1,inf,3;"),
            r"WISDM_ar_v1.1_raw.txt:8: infinite value",
        ),
        (
            lambda lines: [
                line if not line.startswith("2,Sitting") else line.rsplit(",", 1)[0] + ",NaN;"
                for line in lines
            ],
            r"WISDM_ar_v1.1_raw.txt:1001-\d+: \['acc_z'\] missing in all \d+ records",
        ),
    ],
    ids=["column_count", "unknown_activity", "not_a_number", "inf", "all_nan"],
)
def test_bad_input_names_file_and_line(tmp_path, edit, message):
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path, edit(_lines()))


def test_corrupt_archive_missing_file_and_empty_class(tmp_path):
    manual = tmp_path / "manual"
    B.corrupt(B.write_wisdm(manual, _lines()))
    with pytest.raises(DataError, match=r"WISDM_ar_latest.tar.gz: not a readable tar.gz"):
        Wisdm(
            config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual
        ).download_and_prepare()

    other = tmp_path / "other" / "WISDM_ar_latest.tar.gz"
    other.parent.mkdir()
    with tarfile.open(other, "w:gz") as archive:
        archive.add(B.write_wisdm(tmp_path / "x", _lines()), "WISDM_ar_v1.1/readme.txt")
    with pytest.raises(DataError, match=r"expected exactly one '.../WISDM_ar_v1.1_raw.txt'"):
        Wisdm(
            config=har_config(), data_dir=tmp_path / "tfds2", manual_dir=other.parent
        ).download_and_prepare()

    lines = [line for line in _lines() if ",Standing," not in line]
    # A partial archive builds; the missing class keeps its label id.
    partial = _prepare(tmp_path / "empty_class", lines)
    assert partial.report.classes_without_windows == ["Standing"]
    assert "Standing" in partial.info.features["label"].names


def test_reads_the_extracted_folder(tmp_path):
    manual = tmp_path / "manual" / "WISDM_ar_v1.1"
    manual.mkdir(parents=True)
    (manual / "WISDM_ar_v1.1_raw.txt").write_text("\n".join(_lines()) + "\n")
    builder = Wisdm(config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual.parent)
    builder.download_and_prepare()
    assert len(_records(builder)) == 2 * len(CLASS_NAMES) * _windows(N)


@pytest.mark.parametrize("raw_text", [b"", b"\n \n"], ids=["empty", "blank"])
def test_an_empty_file_is_one_error_naming_it(tmp_path, raw_text):
    """Headerless records: only the empty case exists; it names the file."""
    with pytest.raises(DataError, match=r"WISDM_ar_v1.1_raw.txt: empty file; expected records"):
        _prepare(tmp_path, raw_text=raw_text)


def test_utf16_file_is_read(tmp_path):
    expected = _records(_prepare(tmp_path / "utf8"))
    raw_text = ("\n".join(_lines()) + "\n").encode("utf-16")
    found = _records(_prepare(tmp_path / "utf16", raw_text=raw_text))
    assert [r["signal"].tolist() for r in found] == [r["signal"].tolist() for r in expected]

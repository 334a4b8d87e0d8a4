"""Bring-your-own CSV folders: 6-channel, accelerometer-only, irregular, and bad inputs."""

import os

import numpy as np
import pytest

from harjax.data import source
from harjax.data.datasets.csv_folder import CsvFolder
from harjax.data.errors import DataError
from tests.data.defaults import dataset_options, har_config

HEADER6 = "timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label,subject"


def write_csv(path, t, signal, labels, subject, header=HEADER6):
    rows = [header]
    for time, values, label in zip(t, signal, labels):
        rows.append(",".join([f"{time:.6f}", *(f"{v:.6f}" for v in values), label, subject]))
    path.write_text("\n".join(rows) + "\n")


def sine(t, freq, channels):
    return np.stack([np.sin(2 * np.pi * freq * t) + c for c in range(channels)], 1)


def make_folder(root, *, channels=6, irregular=False):
    """3 subjects; s1 changes label mid-file; s3 at 100 Hz; optional jittered timestamps."""
    root.mkdir()
    header = HEADER6 if channels == 6 else HEADER6.replace(",gyro_x,gyro_y,gyro_z", "")
    rng = np.random.default_rng(0)
    for subject, rate in (("s1", 50.0), ("s2", 50.0), ("s3", 100.0)):
        n = int(20 * rate)
        t = np.arange(n) / rate
        if irregular:
            t = np.cumsum(rng.uniform(0.5, 1.5, n)) / rate
        labels = ["walk"] * (n // 2) + ["sit"] * (n - n // 2) if subject == "s1" else ["sit"] * n
        write_csv(root / f"{subject}.csv", t, sine(t, 2.0, channels), labels, subject, header)
    return root


def test_six_channel_folder(tmp_path):
    folder = make_folder(tmp_path / "six")
    ds = source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    assert ds.class_names == ("sit", "walk") and ds.num_channels == 6
    assert ds.subject_names == ("s1", "s2", "s3")
    # s1: two runs of 10 s (500 samples) -> 6 windows each; s2 20 s -> 14; s3 100 Hz -> 14
    assert len(ds) == 6 + 6 + 14 + 14
    assert (ds.labels == 1).sum() == 6
    walk = ds.common_labels[ds.labels == 1]
    assert (walk == 0).all() and (ds.common_labels[ds.labels == 0] == 3).all()  # walk, sit
    signals = ds.read_signals(np.arange(len(ds)))
    spectrum = np.abs(np.fft.rfft(signals[:, :, 0] - signals[:, :, 0].mean(1, keepdims=True)))
    peaks = np.fft.rfftfreq(128, 1 / 50)[spectrum.argmax(1)]
    assert np.allclose(peaks, 2.0, atol=0.4)
    np.testing.assert_allclose(signals[..., 5].mean(), 5.0, atol=0.05)  # channel order kept


def test_acc_only_folder_and_channel_errors(tmp_path):
    folder = make_folder(tmp_path / "acc", channels=3)
    ds = source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    assert ds.channel_names == ("acc_x", "acc_y", "acc_z")
    assert ds.read_signals([0]).shape == (1, 128, 3)
    with pytest.raises(DataError, match="accelerometer-only"):
        source.load_dataset(
            f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options(channels="acc_gyro")
        )


def test_irregular_timestamps_are_resampled(tmp_path):
    folder = make_folder(tmp_path / "irr", irregular=True)
    ds = source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    signals = ds.read_signals(np.arange(len(ds)))
    spectrum = np.abs(np.fft.rfft(signals[:, :, 0] - signals[:, :, 0].mean(1, keepdims=True)))
    assert np.allclose(np.fft.rfftfreq(128, 1 / 50)[spectrum.argmax(1)], 2.0, atol=0.4)
    assert len(ds) > 30


def test_editing_the_folder_reprepares(tmp_path):
    folder = make_folder(tmp_path / "edit")
    first = source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    (folder / "s2.csv").unlink()
    second = source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    assert len(second) == len(first) - 14
    assert first.builder.data_dir != second.builder.data_dir


def set_field(lines, line_index, field, value):
    fields = lines[line_index].split(",")
    fields[field] = value
    return lines[:line_index] + [",".join(fields)] + lines[line_index + 1 :]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: [lines[0].replace(",label", ",activity")] + lines[1:], r":1: missing"),
        (lambda lines: lines[:5] + [lines[5].replace("0.", "x.", 1)] + lines[6:], r":6: column"),
        (lambda lines: lines[:3] + [lines[2]] + lines[4:], r":4: timestamps must increase"),
        (lambda lines: set_field(lines, 7, 2, "inf"), r":8: column 'acc_y' holds inf"),
        (lambda lines: set_field(lines, 9, 8, ""), r":10: empty subject"),
        (lambda lines: set_field(lines, 3, 3, "1,2"), r":4: 10 fields, expected 9"),
        (lambda lines: lines[:1], r": header only \('timestamp,acc_x,"),
        (lambda lines: [], ": empty file"),
        (lambda lines: ["", "  "], ": empty file"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, edit, message):
    folder = make_folder(tmp_path / "bad")
    path = folder / "s1.csv"
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(DataError, match=rf"s1\.csv{message}" if message[0] == ":" else message):
        CsvFolder(folder, config=har_config(), data_dir=tmp_path / "tfds").download_and_prepare()


def test_empty_folder_and_mixed_channels(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty folder"):
        CsvFolder(tmp_path / "empty", config=har_config())
    folder = make_folder(tmp_path / "mixed")
    t = np.arange(500) / 50
    write_csv(
        folder / "z.csv",
        t,
        sine(t, 1, 3),
        ["sit"] * 500,
        "s9",
        HEADER6.replace(",gyro_x,gyro_y,gyro_z", ""),
    )
    with pytest.raises(DataError, match=r"disagree on gyro.*z\.csv"):
        CsvFolder(folder, config=har_config())
    assert os.path.exists(folder / "z.csv")


@pytest.mark.parametrize("given_rate", [None, 50.0])
def test_millisecond_timestamps_are_an_error(tmp_path, given_rate):
    folder = tmp_path / "ms"
    folder.mkdir()
    t = np.arange(200) / 50.0  # 4 s at 50 Hz, written in milliseconds below
    write_csv(folder / "s1.csv", t * 1000, sine(t, 2.0, 6), ["sit"] * 200, "s1")
    builder = CsvFolder(
        folder, config=har_config(), data_dir=tmp_path / "tfds", sample_rate=given_rate
    )
    with pytest.raises(DataError, match=r"s1\.csv: .*timestamps must be in seconds"):
        builder.download_and_prepare()


def test_upper_case_extension_is_found(tmp_path):
    folder = make_folder(tmp_path / "upper")
    (folder / "s2.csv").rename(folder / "S2.CSV")
    ds = source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    assert set(ds.subject_names) == {"s1", "s2", "s3"}


def test_unknown_column_lists_every_allowed_name(tmp_path):
    folder = make_folder(tmp_path / "extra")
    path = folder / "s1.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0] + ",temp"] + [line + ",1" for line in lines[1:]]) + "\n")
    allowed = r"'timestamp', 'acc_x', 'acc_y', 'acc_z', 'label', 'subject', 'gyro_x', 'gyro_y', "
    with pytest.raises(DataError, match=rf"s1\.csv:1: unknown column\(s\) \['temp'\]; .*{allowed}"):
        CsvFolder(folder, config=har_config())


@pytest.mark.parametrize(
    "body, message",
    [
        (b"0.0,1,2,3,4,5,6,caf\xe9,s1\n", r":3: byte 0xe9 at column 20 is not UTF-8"),
        (b"\x00" * 100, r":3: NUL byte at column 1: a binary file"),
        (b"9" * 70_000, r":3: line longer than 65536 bytes"),
        (b"0.0,1,2,3,4,5,6," + b"w" * 300 + b",s1\n", r":3: field 8 is 300 characters long"),
    ],
    ids=["latin1", "binary", "no_line_breaks", "long_field"],
)
def test_bad_bytes_name_file_line_and_what_was_expected(tmp_path, body, message):
    folder = make_folder(tmp_path / "bytes")
    path = folder / "s1.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1] + body + b"".join(lines[2:]))
    with pytest.raises(DataError, match=rf"s1\.csv{message}"):
        CsvFolder(folder, config=har_config(), data_dir=tmp_path / "tfds").download_and_prepare()


def test_utf16_is_read_by_its_byte_order_mark(tmp_path):
    from harjax.data.datasets.csv_folder import read_csv

    folder = make_folder(tmp_path / "utf16")
    path = folder / "s1.csv"
    expected, text = read_csv(path), path.read_text()
    for encoding in ("utf-16", "utf-16-be", "utf-8-sig"):  # BOM: LE (Windows), BE, UTF-8
        bom = {"utf-16-be": "\ufeff"}.get(encoding, "")
        path.write_bytes((bom + text).encode(encoding))
        found = read_csv(path)
        np.testing.assert_array_equal(found.signal, expected.signal)
        assert list(found.labels) == list(expected.labels)
    path.write_bytes(b"\xff\xfe" + b"t\x00\x00\xd8")  # a lone surrogate: not UTF-16
    with pytest.raises(DataError, match=r"s1\.csv: UTF-16 text \(byte-order mark\) that does not"):
        read_csv(path)


def test_a_huge_sparse_file_stops_at_once_with_bounded_memory(tmp_path):
    import tracemalloc

    folder = make_folder(tmp_path / "huge")
    with open(folder / "zz.csv", "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB of NUL bytes, no line break
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"zz\.csv:1: NUL byte"):
            CsvFolder(folder, config=har_config(), data_dir=tmp_path / "tfds")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB while reading a 64 MiB file"


def test_an_edit_keeping_size_and_mtime_reprepares_and_unchanged_files_are_not_rehashed(
    tmp_path, monkeypatch
):
    import harjax.digests

    folder = make_folder(tmp_path / "same")
    first = source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    hashed = []
    real = harjax.digests.file_sha256
    monkeypatch.setattr(harjax.digests, "file_sha256", lambda p: hashed.append(p) or real(p))
    again = CsvFolder(folder, config=har_config(), data_dir=tmp_path / "tfds")
    assert hashed == [] and again.data_dir == first.builder.data_dir  # cached digests reused
    path = folder / "s2.csv"
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace(",1.000000,", ",1.500000,", 1))  # one value, same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # like `touch -r` or a copy tool
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    second = source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    assert [p.name for p in hashed] == ["s2.csv"]  # only the edited file is read again
    assert second.builder.data_dir != first.builder.data_dir
    assert second.builder.content_digest != first.builder.content_digest


def test_what_preparation_drops_or_interpolates_is_one_warning_line(tmp_path, caplog):
    folder = make_folder(tmp_path / "holes")
    path = folder / "s2.csv"
    lines = path.read_text().splitlines()
    blank = lambda line: ",".join(line.split(",")[:1] + [""] * 6 + line.split(",")[7:])
    holes = set(range(100, 103)) | set(range(400, 480))  # 3 rows bridged, 80 rows cut out
    path.write_text("\n".join(blank(x) if i in holes else x for i, x in enumerate(lines)) + "\n")
    with caplog.at_level("WARNING"):
        source.load_dataset(f"csv:{folder}", data_dir=tmp_path / "tfds", **dataset_options())
    (record,) = [r for r in caplog.records if r.getMessage().startswith("prepared")]
    assert record.levelname == "WARNING"  # shown by every command, not only in INFO logs
    assert "interpolated 3 samples in 1 gaps; dropped 80 samples in long or edge gaps" in (
        record.getMessage()
    )


def test_missing_values_are_gaps_counted_with_file_and_line(tmp_path):
    folder = make_folder(tmp_path / "missing")
    path = folder / "s2.csv"
    lines = set_field(set_field(path.read_text().splitlines(), 30, 2, ""), 41, 5, "nan")
    path.write_text("\n".join(lines) + "\n")
    builder = CsvFolder(folder, config=har_config(), data_dir=tmp_path / "tfds")
    builder.download_and_prepare()
    assert builder.report.missing_values == {str(path): {"rows": 2, "lines": [31, 42]}}
    assert builder.report.samples_interpolated == 2  # short gaps: interpolated

"""HHAR builder on tiny synthetic archives in the real layout (archives_a.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harjax.data.builder import HARConfig
from harjax.data.datasets.hhar import CLASS_NAMES, REPEATED, RESORTED, Hhar
from harjax.data.errors import DataError
from tests.data.datasets import archives_a as A
from tests.data.defaults import har_config

ACC = np.array([0.5, -1.0, 9.7])  # m/s^2, Android units = canonical units
GYRO = np.array([0.1, 0.2, -0.3])  # rad/s
# (gt, seconds). 3.2 s -> 1 window of 128 at 50 Hz, 4.48 s -> 2, 5.76 s -> 3 (mid-range
# lengths, so the jitter at the edges cannot change the count).
PLAN = (
    ("stand", 3.2),
    ("null", 1.0),
    ("sit", 3.2),
    ("walk", 4.48),
    ("null", 0.5),
    ("walk", 3.2),
    ("stairsup", 3.2),
    ("stairsdown", 3.2),
    ("bike", 5.76),
)
WINDOWS = {"stand": 1, "sit": 1, "walk": 3, "stairsup": 1, "stairsdown": 1, "bike": 3}
# (user, model, device, nominal Hz): each device samples at its own rate.
DEVICES = (
    ("a", "nexus4", "nexus4_1", 200.0),
    ("a", "samsungold", "samsungold_1", 50.0),
    ("b", "gear", "gear_1", 100.0),
)
START_NS = 1_424_696_631_913_248_572


def _labels(seconds: np.ndarray, plan) -> list[str]:
    ends = np.cumsum([d for _, d in plan])
    index = np.minimum(np.searchsorted(ends, seconds, side="right"), len(plan) - 1)
    return [plan[i][0] for i in index]


def _streams(user, model, device, rate, *, plan=PLAN, acc_fn=None, seed=0, jitter=0.1):
    """Accelerometer and gyroscope streams of one device, offset by a fraction of a period."""
    duration = sum(d for _, d in plan)
    streams = []
    for sensor, value, offset, fn in (
        ("accelerometer", ACC, 0.0, acc_fn),
        ("gyroscope", GYRO, 0.3, None),
    ):
        n = int(duration * rate) - 1
        start = START_NS + int(offset * 1e9 / rate)
        t_ns = A.irregular_times_ns(start, rate, n, jitter=jitter, seed=seed + len(streams))
        seconds = (t_ns - START_NS) / 1e9
        xyz = np.tile(value, (n, 1)) if fn is None else fn(seconds)
        gt = _labels(seconds, plan)
        streams.append(A.HharStream(user, model, device, sensor, t_ns, xyz, gt))
    return streams


def _all_streams():
    return [s for i, d in enumerate(DEVICES) for s in _streams(*d, seed=10 * i)]


def _prepare(tmp_path: Path, manual_dir: Path, config: HARConfig | None = None) -> Hhar:
    builder = Hhar(config=config or har_config(), data_dir=tmp_path / "tfds", manual_dir=manual_dir)
    builder.download_and_prepare()
    return builder


def _records(builder):
    source = builder.as_data_source()["full"]
    return [source[i] for i in range(len(source))]


def _manual(tmp_path: Path, streams, *, official=False) -> Path:
    tree = A.write_hhar(tmp_path / "raw", streams)
    manual = tmp_path / "manual"
    manual.mkdir(exist_ok=True)
    A.write_hhar_zip(tree, manual, official=official)
    return manual


def test_windows_labels_subjects_devices_units(tmp_path):
    streams = _all_streams()
    builder = _prepare(tmp_path, _manual(tmp_path, streams, official=True))
    records = _records(builder)
    assert len(records) == len(DEVICES) * sum(WINDOWS.values())
    for device in ("nexus4_1", "samsungold_1", "gear_1"):
        mine = [r for r in records if r["device"].decode() == device]
        counts = {name: 0 for name in CLASS_NAMES}
        for r in mine:
            counts[CLASS_NAMES[r["label"]]] += 1
        assert counts == WINDOWS, device
        position = {"gear_1": "wrist"}.get(device, "waist")
        assert {r["position"].decode() for r in mine} == {position}
    subjects = builder.info.metadata["subject_names"]
    assert subjects == ["a", "b"]
    gear = [r for r in records if r["device"] == b"gear_1"]
    assert {int(r["subject"]) for r in gear} == {subjects.index("b")}
    for r in records:  # constant raw values come out unchanged, in canonical order
        assert r["signal"].shape == (128, 6)
        np.testing.assert_allclose(r["signal"], np.tile(np.r_[ACC, GYRO], (128, 1)), rtol=1e-5)
    common = {CLASS_NAMES[r["label"]]: int(r["common_label"]) for r in records}
    assert common["stairsdown"] == 2 and common["bike"] == 7

    # Every `null` row is counted per file, none silently lost.
    dropped = builder.info.metadata["report"]["rows_dropped"]["gt is null"]
    for file_name in ("Phones_accelerometer.csv", "Phones_gyroscope.csv", "Watch_gyroscope.csv"):
        want = sum(list(s.gt).count("null") for s in streams if s.file_name == file_name)
        got = sum(n for where, n in dropped.items() if where.endswith(file_name))
        assert got == want > 0, file_name


def test_device_and_position_subsets(tmp_path):
    manual = _manual(tmp_path, _all_streams())
    builder = _prepare(tmp_path, manual, har_config(devices=("samsungold_1",)))
    assert {r["device"] for r in _records(builder)} == {b"samsungold_1"}
    assert len(_records(builder)) == sum(WINDOWS.values())
    assert builder.info.metadata["report"]["recordings_excluded"]
    builder = _prepare(tmp_path / "w", manual, har_config(positions=("wrist",)))
    assert {r["device"] for r in _records(builder)} == {b"gear_1"}


def test_sine_keeps_frequency_and_is_anti_aliased(tmp_path):
    freq, alias_source = 3.125, 60.0  # 3.125 Hz = bin 8 of a 128-window at 50 Hz
    plan = (("walk", 13.76),)  # 688 samples at 50 Hz: mid-range for 9 windows

    def acc_fn(seconds):
        x = np.sin(2 * np.pi * freq * seconds) + 0.5 * np.sin(2 * np.pi * alias_source * seconds)
        return np.column_stack([x, np.zeros_like(x), np.full_like(x, 9.8)])

    streams = _all_streams()
    streams += _streams("c", "s3", "s3_1", 150.0, plan=plan, acc_fn=acc_fn, seed=99, jitter=0.02)
    builder = _prepare(tmp_path, _manual(tmp_path, streams))
    sine = [r["signal"][:, 0] for r in _records(builder) if r["device"] == b"s3_1"]
    assert len(sine) == (688 - 128) // 64 + 1
    hz = np.fft.rfftfreq(128, d=1 / 50.0)
    for x in sine:
        amplitude = 2 * np.abs(np.fft.rfft(x)) / 128
        assert hz[np.argmax(amplitude)] == pytest.approx(freq)
        assert amplitude[8] == pytest.approx(1.0, abs=0.05)
        # 60 Hz would alias to 10 Hz without the anti-aliasing filter (amplitude ~0.5).
        assert amplitude[(hz > 8.5) & (hz < 11.5)].max() < 0.05


def _edit_line(path: Path, number: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


def _field(index: int, value: str):
    return lambda line: ",".join(value if i == index else f for i, f in enumerate(line.split(",")))


PHONES_ACC = "Activity recognition exp/Phones_accelerometer.csv"
WATCH_GYRO = "Activity recognition exp/Watch_gyroscope.csv"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: _edit_line(t / PHONES_ACC, 5, lambda s: s.rsplit(",", 1)[0]),
            r"Phones_accelerometer.csv:5: expected 10 columns, found 9",
        ),
        (
            lambda t: _edit_line(t / WATCH_GYRO, 7, _field(9, "jump")),
            r"Watch_gyroscope.csv:7: unknown activity 'jump'",
        ),
        (
            lambda t: _edit_line(t / PHONES_ACC, 9, _field(4, "inf")),
            r"Phones_accelerometer.csv:9: inf in x/y/z",
        ),
        (
            lambda t: _edit_line(t / PHONES_ACC, 1, lambda s: s.replace("gt", "label")),
            r"Phones_accelerometer.csv:1: expected header Index,.*,gt, found .*,label",
        ),
        (
            lambda t: (t / WATCH_GYRO).unlink(),
            r"expected exactly one file '.../Watch_gyroscope.csv'",
        ),
    ],
    ids=["column_count", "unknown_activity", "inf", "header", "missing_file"],
)
def test_bad_input_names_file_and_line(tmp_path, edit, message):
    tree = A.write_hhar(tmp_path / "raw", _all_streams())
    edit(tree)
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path, tree)  # the extracted folder is accepted too


def test_all_nan_channel_and_corrupt_zip(tmp_path):
    streams = _all_streams()
    for s in streams:
        if s.device == "gear_1" and s.sensor == "gyroscope":
            s.xyz = s.xyz.copy()
            s.xyz[:, 2] = np.nan
    with pytest.raises(
        DataError,
        match=r"Watch_accelerometer.csv \+ .*Watch_gyroscope.csv "
        r"\(user b, device gear_1\), lines .*gyro_z.*all NaN",
    ):
        _prepare(tmp_path, _manual(tmp_path, streams))

    manual = tmp_path / "bad"
    manual.mkdir()
    (manual / "Activity recognition exp.zip").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"Activity recognition exp.zip: not a readable zip"):
        _prepare(tmp_path / "b", manual)


def test_partial_archive_builds_with_a_warning_and_the_full_label_list(tmp_path, caplog):
    no_bike = tuple((gt if gt != "bike" else "null", d) for gt, d in PLAN)
    streams = [s for i, d in enumerate(DEVICES) for s in _streams(*d, plan=no_bike, seed=i)]
    builder = _prepare(tmp_path, _manual(tmp_path, streams))
    assert "classes ['bike'] have no windows" in caplog.text
    assert builder.report.classes_without_windows == ["bike"]
    assert builder.info.features["label"].names == list(CLASS_NAMES)
    labels = {CLASS_NAMES[r["label"]] for r in _records(builder)}
    assert labels == set(CLASS_NAMES) - {"bike"}

    nothing = streams  # every file keeps its rows, none of them labelled
    for s in nothing:
        s.gt = ["null"] * len(s.creation_ns)
    with pytest.raises(DataError, match=r"no usable recording in .*looked for rows with gt in"):
        _prepare(tmp_path / "b", _manual(tmp_path / "b", nothing))


def _watch_quirks(tree: Path) -> dict[str, int]:
    """Rewrites the watch files as the real release has them: Creation_Time in ns since boot at
    us resolution, rows delivered in late batches (Arrival_Time jumps by 30 s, some rows written
    after newer ones), and a repeated row. Returns the late rows per file."""
    late = {}
    for sensor in ("accelerometer", "gyroscope"):
        path = tree / "Activity recognition exp" / f"Watch_{sensor}.csv"
        header, *rows = path.read_text().splitlines()
        fields = [row.split(",") for row in rows]
        boot = int(fields[0][2]) - 27_920_678_471_000
        for i, f in enumerate(fields):
            f[2] = str((int(f[2]) - boot) // 1000 * 1000)
            f[1] = str(1_424_696_638_740 + 30_000 * (i // 300))
        swaps = range(10, len(fields) - 1, 97)
        for i in swaps:  # a late row: written after its successor
            fields[i], fields[i + 1] = fields[i + 1], fields[i]
        fields.insert(500, list(fields[499]))
        path.write_text("\n".join([header, *(",".join(f) for f in fields)]) + "\n")
        late[path.name] = len(swaps)
    return late


def test_watch_clock_since_boot_late_batches_and_repeats(tmp_path):
    streams = _all_streams()
    tree = A.write_hhar(tmp_path / "raw", streams)
    late = _watch_quirks(tree)
    manual = tmp_path / "manual"
    manual.mkdir()
    A.write_hhar_zip(tree, manual)
    builder = _prepare(tmp_path, manual)
    rates = builder.report.sample_rates
    assert set(rates) == {"a/nexus4_1", "a/samsungold_1", "b/gear_1"}
    for stream, nominal in (("a/nexus4_1", 200), ("a/samsungold_1", 50), ("b/gear_1", 100)):
        for sensor in ("accelerometer", "gyroscope"):
            assert rates[stream][sensor] == pytest.approx(nominal, rel=0.03), (stream, sensor)
    repaired = builder.report.rows_repaired[RESORTED]
    assert {Path(k).name: v for k, v in repaired.items()} == late
    dropped = builder.report.rows_dropped[REPEATED]
    assert {Path(k).name: v for k, v in dropped.items()} == {
        "Watch_accelerometer.csv": 1,
        "Watch_gyroscope.csv": 1,
    }
    records = _records(builder)
    assert len(records) == len(DEVICES) * sum(WINDOWS.values())


def test_a_clock_no_unit_explains_is_an_error_naming_the_stream(tmp_path):
    streams = _all_streams()
    for s in streams:
        if s.device == "gear_1":  # ticks of 10 ns: 10 kHz as ns, 10 Hz as us, near 100 Hz none
            s.creation_ns = s.creation_ns[0] + (s.creation_ns - s.creation_ns[0]) // 100
    with pytest.raises(
        DataError,
        match=r"user b, device gear_1\) \(accelerometer\): median positive Creation_Time step "
        r".*expected a rate within 3x of model gear's documented 100 Hz",
    ):
        _prepare(tmp_path, _manual(tmp_path, streams))


def test_first_download_records_its_checksum(tmp_path):
    archive = A.write_hhar_zip(
        A.write_hhar(tmp_path / "raw", _all_streams()), tmp_path, official=True
    )
    builder = Hhar(config=har_config(), data_dir=tmp_path / "tfds")  # no manual_dir: download
    builder.URL = archive.as_uri()  # a file:// URL stands in for the UCI server
    builder.download_and_prepare()
    record = tmp_path / "tfds" / "downloads" / (Hhar.ARCHIVE_NAME + ".sha256")
    assert len(record.read_text().strip()) == 64
    archive.write_bytes(archive.read_bytes() + b"tampered")
    (tmp_path / "tfds" / "downloads" / Hhar.ARCHIVE_NAME).unlink()
    again = Hhar(config=har_config(window_stride=32), data_dir=tmp_path / "tfds")
    again.URL = archive.as_uri()
    with pytest.raises(DataError, match=r"sha256 .*, expected .*\.sha256"):
        again.download_and_prepare()


def test_a_device_with_one_row_is_dropped_and_counted(tmp_path):
    lone = [
        A.HharStream("c", "s3", "s3_1", sensor, np.array([START_NS]), np.array([value]), "walk")
        for sensor, value in (("accelerometer", ACC), ("gyroscope", GYRO))
    ]
    builder = _prepare(tmp_path, _manual(tmp_path, _all_streams() + lone))
    dropped = builder.report.rows_dropped["fewer than 2 timestamps for this user/device"]
    assert {Path(k).name: v for k, v in dropped.items()} == {
        "Phones_accelerometer.csv": 1,
        "Phones_gyroscope.csv": 1,
    }
    assert "c/s3_1" not in builder.report.sample_rates


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\n  \n", "empty file"),
        (b"Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt\n", "header only"),
    ],
    ids=["empty", "blank", "header_only"],
)
def test_an_empty_or_header_only_file_is_one_error_naming_it(tmp_path, content, message):
    tree = A.write_hhar(tmp_path / "raw", _all_streams())
    (tree / WATCH_GYRO).write_bytes(content)
    with pytest.raises(DataError, match=rf"Watch_gyroscope.csv: {message}"):
        _prepare(tmp_path, tree)


def test_utf16_files_are_read_and_missing_values_counted_by_line(tmp_path):
    tree = A.write_hhar(tmp_path / "raw", _all_streams())
    expected = _records(_prepare(tmp_path / "utf8", tree))
    text = (tree / WATCH_GYRO).read_text()
    (tree / WATCH_GYRO).write_bytes(text.encode("utf-16"))  # what Excel's "Unicode text" saves
    found = _records(_prepare(tmp_path / "utf16", tree))
    assert len(found) == len(expected)
    np.testing.assert_array_equal(
        np.stack([r["signal"] for r in found]), np.stack([r["signal"] for r in expected])
    )
    _edit_line(tree / PHONES_ACC, 9, _field(4, ""))  # an empty cell: a missing value
    _edit_line(tree / PHONES_ACC, 12, _field(3, "nan"))
    builder = _prepare(tmp_path / "missing", tree)
    missing = builder.report.missing_values
    assert {Path(k).name: v for k, v in missing.items()} == {
        "Phones_accelerometer.csv": {"rows": 2, "lines": [9, 12]}
    }
    assert len(_records(builder)) == len(expected)  # bridged, as any gap up to max_gap_s

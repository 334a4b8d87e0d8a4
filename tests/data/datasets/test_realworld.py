"""RealWorld 2016 builder on tiny synthetic archives in the real layout (archives_b.py)."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from harjax.data.datasets.realworld import CLASS_NAMES, RealWorld
from harjax.data.errors import DataError
from tests.data.datasets import archives_b as B
from tests.data.defaults import har_config

ACC = np.array([1.5, -2.5, 9.0])  # m/s^2, as Android writes it
GYRO = np.array([0.1, -0.2, 0.3])  # rad/s
GYRO_OFFSET_MS = 100  # gyro starts 5 samples after acc: only the overlap is kept


def _part(subject, activity, position, n=300, **kwargs):
    return B.RealWorldPart(
        subject,
        activity,
        position,
        np.tile(ACC, (n, 1)),
        np.tile(GYRO, (n, 1)),
        gyro_offset_ms=GYRO_OFFSET_MS,
        **kwargs,
    )


def _parts():
    """Subject 1: every activity at chest + forearm (climbingup in two sessions, zip-in-zip);
    subject 2: walking at the waist under the `walking_2` anomaly name."""
    parts = []
    for activity in CLASS_NAMES:
        if activity == "climbingup":
            for session in (1, 2):
                parts += [_part(1, activity, p, session=session) for p in ("chest", "forearm")]
        else:
            parts += [_part(1, activity, p) for p in ("chest", "forearm")]
    parts.append(_part(2, "walking", "waist", n=400, file_tag="walking_2"))
    return parts


def _windows(n):
    aligned = n - GYRO_OFFSET_MS // 20  # overlap of the two 50 Hz streams
    return 1 + (aligned - 128) // 64


def _prepare(tmp_path: Path, parts=None, config=None, **write) -> RealWorld:
    manual = tmp_path / "manual"
    B.write_realworld(manual, _parts() if parts is None else parts, **write)
    builder = RealWorld(
        config=config or har_config(), data_dir=tmp_path / "tfds", manual_dir=manual
    )
    builder.download_and_prepare()
    return builder


def _records(builder):
    source = builder.as_data_source()["full"]
    return [source[i] for i in range(len(source))]


def test_counts_labels_subjects_positions_units(tmp_path):
    builder = _prepare(tmp_path)
    records = _records(builder)
    parts = _parts()
    assert len(records) == sum(_windows(len(p.acc)) for p in parts)
    got = sorted(CLASS_NAMES[r["label"]] for r in records)
    want = sorted(p.activity for p in parts for _ in range(_windows(len(p.acc))))
    assert got == want
    meta = builder.info.metadata
    assert meta["subject_names"] == ["1", "2"]
    assert "proband1/climbingup/forearm/session2" in meta["recording_ids"]
    assert "proband2/walking/waist" in meta["recording_ids"]
    subject2 = [r for r in records if r["subject"] == 1]
    assert len(subject2) == _windows(400)
    assert {(r["position"], r["device"]) for r in subject2} == {(b"waist", b"phone")}
    forearm = {r["device"] for r in records if r["position"] == b"forearm"}
    assert forearm == {b"watch"}
    # Channel order acc x,y,z then gyro x,y,z; no unit change (m/s^2 and rad/s already).
    for record in records:
        assert record["signal"].shape == (128, 6) and record["signal"].dtype == np.float32
        np.testing.assert_allclose(record["signal"], np.tile(np.r_[ACC, GYRO], (128, 1)), 1e-6)
    common = {CLASS_NAMES[r["label"]]: int(r["common_label"]) for r in records}
    assert common["climbingup"] == 1 and common["jumping"] == 8  # upstairs, jump
    assert meta["report"]["recordings"] == len(parts)


def test_position_subset_and_missing_positions_are_counted(tmp_path):
    parts = [p for p in _parts() if not (p.activity == "lying" and p.position == "forearm")]
    builder = _prepare(tmp_path, parts, har_config(positions=("chest",)))
    records = _records(builder)
    assert {r["position"] for r in records} == {b"chest"}
    chest = [p for p in parts if p.position == "chest"]
    assert len(records) == sum(_windows(len(p.acc)) for p in chest)
    excluded = builder.info.metadata["report"]["recordings_excluded"]
    # Every written (subject, activity) is read for all 7 positions; unwritten ones are holes.
    holes = sum(
        1
        for subject, activities in ((1, CLASS_NAMES), (2, ("walking",)))
        for activity in activities
        for position in ("chest", "forearm", "head", "shin", "thigh", "upperarm", "waist")
        if not any(
            p.subject == subject and p.activity == activity and p.position == position
            for p in parts
        )
    )
    assert excluded["position not in the archive"] == holes
    assert excluded["position not in ('chest',)"] == len(parts) - len(chest)


def test_sine_at_100hz_keeps_frequency_at_50hz(tmp_path):
    freq, n = 50 / 128 * 8, 1000  # 3.125 Hz = FFT bin 8 of a 128-sample window at 50 Hz
    t = np.arange(n) / 100.0
    acc = np.tile(ACC, (n, 1))
    acc[:, 0] = 2.0 * np.sin(2 * np.pi * freq * t)
    parts = [p for p in _parts() if not (p.activity == "running" and p.position == "chest")]
    parts.append(B.RealWorldPart(1, "running", "chest", acc, np.tile(GYRO, (n, 1)), acc_hz=100.0))
    builder = _prepare(tmp_path, parts)
    running = [
        r
        for r in _records(builder)
        if CLASS_NAMES[r["label"]] == "running" and r["position"] == b"chest"
    ]
    gyro_seconds = (n - 1) / 50.0  # gyro at 50 Hz covers 20 s, acc at 100 Hz covers 10 s
    overlap = min(gyro_seconds, (n - 1) / 100.0)
    assert len(running) == 1 + (int(overlap * 50) + 1 - 128) // 64
    for record in running:
        spectrum = np.abs(np.fft.rfft(record["signal"][:, 0]))
        assert np.fft.rfftfreq(128, 1 / 50.0)[np.argmax(spectrum)] == pytest.approx(freq)
        np.testing.assert_allclose(record["signal"][:, 3:], np.tile(GYRO, (128, 1)), 1e-5)
    middle = running[len(running) // 2]["signal"][:, 0]
    assert np.abs(middle).max() == pytest.approx(2.0, rel=0.03)


def _corrupt_inner(tmp_path):
    return {"proband1/data/gyr_sitting_csv.zip": b"PK\x03\x04 broken"}


def _with_csv(subject, sensor, activity, edit):
    """Replacement member: the sensor zip of `_parts()` with its chest CSV edited."""
    members = B.realworld_members(_parts())
    name = f"proband{subject}/data/{sensor}_{activity}_csv.zip"
    with zipfile.ZipFile(io.BytesIO(members[name])) as archive:
        inner = {n: archive.read(n) for n in archive.namelist()}
    csv = f"{B.REALWORLD_CSV_PREFIX[sensor]}_{activity}_chest.csv"
    lines = inner[csv].decode().splitlines()
    inner[csv] = ("\n".join(edit(lines)) + "\n").encode()
    return {name: B._zip_bytes(inner)}


def _set_line(number, text):
    def edit(lines):
        lines[number - 1] = text
        return lines

    return edit


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            lambda t: {"replace": _corrupt_inner(t)},
            r"realworld2016_dataset.zip!proband1/data/gyr_sitting_csv.zip: not a readable zip",
        ),
        (
            lambda t: {"drop": ["proband1/data/gyr_jumping_csv.zip"]},
            r"proband1/data/gyr_jumping_csv.zip: missing",
        ),
        (
            lambda t: {
                "replace": _with_csv(1, "acc", "lying", _set_line(4, "3,1435993763040,1,2"))
            },
            r"acc_lying_csv.zip!acc_lying_chest.csv:4: expected 5 comma-separated columns, found 4",
        ),
        (
            lambda t: {
                "replace": _with_csv(1, "gyr", "walking", _set_line(7, "6,1435993763100,1,inf,0"))
            },
            r"gyr_walking_csv.zip!Gyroscope_walking_chest.csv:7: inf value",
        ),
        (
            lambda t: {
                "replace": _with_csv(
                    1,
                    "acc",
                    "standing",
                    lambda ls: [ls[0]] + [",".join(row.split(",")[:4]) + ",NaN" for row in ls[1:]],
                )
            },
            r"acc_standing_csv.zip!acc_standing_chest.csv: a channel is all NaN",
        ),
        (
            lambda t: {
                "replace": {
                    "proband1/data/acc_dancing_csv.zip": B.realworld_members(_parts())[
                        "proband1/data/acc_walking_csv.zip"
                    ],
                    "proband1/data/gyr_dancing_csv.zip": b"",
                }
            },
            r"acc_dancing_csv.zip: unknown activity 'dancing'",
        ),
    ],
    ids=["corrupt_inner_zip", "missing_file", "column_count", "inf", "all_nan", "unknown_activity"],
)
def test_bad_input_names_file_and_line(tmp_path, write, message):
    with pytest.raises(DataError, match=message):
        _prepare(tmp_path, **write(tmp_path))


def test_corrupt_archive_missing_archive_and_empty_class(tmp_path, monkeypatch):
    manual = tmp_path / "manual"
    B.corrupt(B.write_realworld(manual, _parts()))
    builder = RealWorld(config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual)
    with pytest.raises(DataError, match=r"realworld2016_dataset.zip: not a readable zip"):
        builder.download_and_prepare()

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    empty = tmp_path / "empty"
    empty.mkdir()
    builder = RealWorld(config=har_config(), data_dir=tmp_path / "tfds2", manual_dir=empty)
    with pytest.raises(DataError, match=r"expected one of \['realworld2016_dataset.zip', .*empty"):
        builder.download_and_prepare()

    parts = [p for p in _parts() if p.activity != "jumping"]
    # A partial archive builds; the missing class keeps its label id.
    partial = _prepare(tmp_path / "no_jumping", parts)
    assert partial.report.classes_without_windows == ["jumping"]
    assert "jumping" in partial.info.features["label"].names


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines[:1], r"header only \('id,attr_time,attr_x,attr_y,attr_z'\)"),
        (lambda lines: [], "empty file"),
        (lambda lines: ["", " "], "empty file"),
    ],
    ids=["header_only", "empty", "blank"],
)
def test_an_empty_or_header_only_file_is_one_error_naming_it(tmp_path, edit, message):
    """A header-only gyroscope CSV was an IndexError traceback (issue 29)."""
    replace = _with_csv(1, "gyr", "walking", edit)
    with pytest.raises(DataError, match=rf"Gyroscope_walking_chest.csv: {message}"):
        _prepare(tmp_path, replace=replace)


def test_utf16_csv_is_read_and_missing_values_counted_by_line(tmp_path):
    expected = _records(_prepare(tmp_path / "utf8"))

    def utf16(name):
        members = B.realworld_members(_parts())
        with zipfile.ZipFile(io.BytesIO(members[name])) as archive:
            inner = {n: archive.read(n) for n in archive.namelist()}
        csv = next(n for n in inner if n.endswith("_chest.csv"))
        inner[csv] = inner[csv].decode().encode("utf-16")
        return {name: B._zip_bytes(inner)}

    replace = utf16("proband1/data/gyr_sitting_csv.zip")
    found = _records(_prepare(tmp_path / "utf16", replace=replace))
    assert [r["signal"].tolist() for r in found] == [r["signal"].tolist() for r in expected]

    def blank(lines):
        lines[9] = ",".join(lines[9].split(",")[:3]) + ",,0.5"  # an empty attr_y cell
        lines[11] = ",".join(lines[11].split(",")[:4]) + ",nan"
        return lines

    builder = _prepare(tmp_path / "missing", replace=_with_csv(1, "acc", "lying", blank))
    missing = {k.rsplit("!", 1)[-1]: v for k, v in builder.report.missing_values.items()}
    assert missing == {"acc_lying_chest.csv": {"rows": 2, "lines": [10, 12]}}
    assert len(_records(builder)) == len(expected)  # bridged like any short gap

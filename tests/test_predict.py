"""Reading a recording to classify: columns, holes, gaps and start times (no model needed)."""

import numpy as np
import pytest

from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS
from harjax.predict import read_recording


def _write(path, timestamps, columns=CANONICAL_CHANNELS, blank_rows=()):
    lines = [",".join(("timestamp", *columns))]
    for i, t in enumerate(timestamps):
        cells = [f"{np.sin(t) + c:.4f}" for c in range(len(columns))]
        if i in blank_rows:
            cells[0] = ""
        lines.append(",".join((f"{t:.3f}", *cells)))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_channels_the_model_needs_must_be_there(tmp_path):
    path = _write(tmp_path / "acc_only.csv", np.arange(0, 4, 0.02), CANONICAL_CHANNELS[:3])
    with pytest.raises(DataError, match=r"acc_only\.csv: missing column\(s\) \['gyro_x'"):
        read_recording(path, CANONICAL_CHANNELS, 50.0, 0.25)
    # An accelerometer-only model reads the accelerometer columns of a 6-channel file.
    path6 = _write(tmp_path / "six.csv", np.arange(0, 4, 0.02))
    ((start, segment),) = read_recording(path6, CANONICAL_CHANNELS[:3], 50.0, 0.25)
    assert start == 0.0 and segment.shape == (200, 3)
    np.testing.assert_allclose(segment[:, 2] - segment[:, 0], 2.0, atol=1e-3)


def test_short_holes_are_bridged_and_long_gaps_split_with_start_times(tmp_path):
    t = np.arange(0, 4, 0.02)
    bridged = _write(tmp_path / "hole.csv", t, blank_rows=(50, 51))  # 60 ms hole
    ((start, segment),) = read_recording(bridged, CANONICAL_CHANNELS, 50.0, 0.25)
    assert start == 0.0 and len(segment) == 200
    gap = np.concatenate([t, t + 10.0])  # 6 s without samples
    split = _write(tmp_path / "gap.csv", gap)
    pieces = read_recording(split, CANONICAL_CHANNELS, 50.0, 0.25)
    assert [round(s, 3) for s, _ in pieces] == [0.0, 10.0]
    assert [len(p) for _, p in pieces] == [200, 200]


def test_bad_values_name_the_file_and_line(tmp_path):
    path = _write(tmp_path / "bad.csv", np.arange(0, 1, 0.02))
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[2], "inf", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"bad\.csv:4"):
        read_recording(path, CANONICAL_CHANNELS, 50.0, 0.25)


def test_holes_are_handled_like_the_training_build(tmp_path, caplog):
    """12 empty rows at 50 Hz (max_gap_s 0.25 s = 12 samples): the csv: build interpolates
    them, so predict must too (bridging by time saw a 0.26 s gap and split the recording)."""
    t = np.arange(0, 4, 0.02)
    path = _write(tmp_path / "hole12.csv", t, blank_rows=range(50, 62))
    with caplog.at_level("WARNING"):
        ((start, segment),) = read_recording(path, CANONICAL_CHANNELS, 50.0, 0.25)
    assert start == 0.0 and len(segment) == 200 and np.isfinite(segment).all()
    assert "interpolated 12 samples in 1 gaps" in caplog.text
    edges = _write(tmp_path / "edges.csv", t, blank_rows=(0, 1, 2))  # cut, not interpolated
    ((start, segment),) = read_recording(edges, CANONICAL_CHANNELS, 50.0, 0.25)
    assert start == pytest.approx(0.06) and len(segment) == 197


def test_the_csv_checks_of_training_apply(tmp_path):
    path = _write(tmp_path / "latin1.csv", np.arange(0, 1, 0.02))
    lines = path.read_bytes().splitlines()
    lines[4] = lines[4] + b",\xe9"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=r"latin1\.csv:5: byte 0xe9 .* is not UTF-8"):
        read_recording(path, CANONICAL_CHANNELS, 50.0, 0.25)

"""Signal helpers: resampling, windows, gap filling, irregular timestamps, stream alignment."""

import numpy as np
import pytest

from harjax.data import signal as signal_lib
from harjax.data.errors import DataError


def _peak_hz(signal, rate):
    spectrum = np.abs(np.fft.rfft(signal - signal.mean()))
    return np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)]


@pytest.mark.parametrize("from_hz, to_hz, freq", [(100.0, 50.0, 3.0), (20.0, 50.0, 2.0)])
def test_resample_keeps_frequency(from_hz, to_hz, freq):
    t = np.arange(int(20 * from_hz)) / from_hz
    signal = np.stack([np.sin(2 * np.pi * freq * t), 9.81 + np.cos(2 * np.pi * freq * t)], 1)
    out = signal_lib.resample(signal, from_hz, to_hz)
    assert out.shape == (int(20 * to_hz), 2)
    assert _peak_hz(out[:, 0], to_hz) == pytest.approx(freq, abs=0.06)
    assert _peak_hz(out[:, 1], to_hz) == pytest.approx(freq, abs=0.06)
    # the offset (gravity) survives, without edge ringing
    assert np.abs(out[:, 1].mean() - 9.81) < 0.05


def test_resample_removes_aliasing():
    rate = 100.0
    t = np.arange(2000) / rate
    tone = np.sin(2 * np.pi * 40.0 * t)  # above the 25 Hz Nyquist limit of 50 Hz
    assert np.abs(signal_lib.resample(tone[:, None], rate, 50.0)[50:-50]).max() < 0.1


def test_windows_counts_and_content():
    signal = np.arange(300, dtype=np.float32)[:, None].repeat(3, 1)
    out = signal_lib.windows(signal, window_length=128, window_stride=64)
    assert out.shape == (1 + (300 - 128) // 64, 128, 3)
    np.testing.assert_array_equal(out[1, :, 0], np.arange(64, 192))
    assert signal_lib.windows(signal[:100], window_length=128, window_stride=64).shape[0] == 0


def test_split_on_label_change():
    runs = signal_lib.split_on_label_change(np.array(["a", "a", "b", "b", "b", "a"]))
    assert runs == [(0, 2, "a"), (2, 5, "b"), (5, 6, "a")]


def test_fill_gaps_interpolates_short_and_splits_long():
    signal = np.tile(np.arange(100.0)[:, None], (1, 3))
    signal[10:13] = np.nan  # short: interpolated
    signal[50:70, 1] = np.nan  # long: split
    signal[:2, 0] = np.nan  # leading: trimmed
    pieces, report = signal_lib.fill_gaps(signal, max_gap_samples=5, source="f.csv")
    assert [len(p) for p in pieces] == [48, 30]
    np.testing.assert_allclose(pieces[0][8:11, 0], [10, 11, 12])
    assert report.samples_interpolated == 3 and report.gaps_interpolated == 1
    assert report.gaps_split == 1 and report.samples_dropped == 22


def test_fill_gaps_rejects_all_nan_and_inf():
    signal = np.zeros((20, 6))
    signal[:, 4] = np.nan
    with pytest.raises(DataError, match=r"f\.csv.*gyro_y.*all NaN"):
        signal_lib.fill_gaps(signal, max_gap_samples=5, source="f.csv")
    signal = np.zeros((20, 3))
    signal[7, 2] = np.inf
    with pytest.raises(DataError, match=r"g\.dat.*inf.*acc_z.*sample 7"):
        signal_lib.fill_gaps(signal, max_gap_samples=5, source="g.dat")


def test_resample_irregular_and_align_streams():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.008, 0.012, 1000))
    t[600:] += 1.0  # a 1 s hole
    pieces = signal_lib.resample_irregular(
        t, np.sin(2 * np.pi * 2 * t)[:, None], 100.0, 0.25, source="t.csv"
    )
    assert len(pieces) == 2
    assert _peak_hz(pieces[0][:, 0], 100.0) == pytest.approx(2.0, abs=0.2)
    with pytest.raises(DataError, match=r"x\.csv.*row 3"):
        signal_lib.resample_irregular(
            np.array([0, 1, 2, 2.0]), np.zeros((4, 1)), 1.0, 0.25, source="x.csv"
        )
    ta, tg = np.arange(0, 10, 0.01), np.arange(0.5, 12, 0.02)
    out = signal_lib.align_streams(
        ta,
        np.ones((len(ta), 3)),
        tg,
        2 * np.ones((len(tg), 3)),
        to_hz=50.0,
        max_gap_s=0.25,
        source="s",
    )
    assert len(out) == 1 and out[0].shape[1] == 6
    assert len(out[0]) == pytest.approx((9.99 - 0.5) * 50, abs=1)
    np.testing.assert_array_equal(out[0][0], [1, 1, 1, 2, 2, 2])


def test_millisecond_timestamps_are_an_error_naming_the_source():
    milliseconds = np.arange(200) * 20.0  # 50 Hz written in ms
    with pytest.raises(DataError, match=r"rec\.csv: .*0\.05 Hz.*must be in seconds"):
        signal_lib.nominal_rate(milliseconds, source="rec.csv")
    # Against a known rate (a builder's own, or one given by the user) the unit error shows as
    # a median step of 1000 periods.
    with pytest.raises(DataError, match=r"rec\.csv: median timestamp step 20 .*must be in seconds"):
        signal_lib.check_timestamps(milliseconds, source="rec.csv", sample_rate=50.0)
    with pytest.raises(DataError, match=r"rec\.csv \(accelerometer\).*must be in seconds"):
        signal_lib.align_streams(
            milliseconds,
            np.zeros((200, 3)),
            milliseconds,
            np.zeros((200, 3)),
            to_hz=50.0,
            max_gap_s=0.25,
            source="rec.csv",
        )
    seconds = milliseconds / 1000
    assert signal_lib.nominal_rate(seconds, source="rec.csv") == pytest.approx(50.0)
    jittered = seconds + np.random.default_rng(0).uniform(-0.008, 0.008, len(seconds))
    signal_lib.check_timestamps(jittered, source="rec.csv", sample_rate=50.0)


def test_channel_check_names_the_source_and_the_channels():
    acc = signal_lib.ACC_CHANNELS
    assert signal_lib.check_channels(np.zeros((5, 3)), acc, source="a.csv").shape == (5, 3)
    with pytest.raises(
        DataError, match=r"a\.csv: expected a \(samples, 3\) signal .*acc_z.*\(5, 6\)"
    ):
        signal_lib.check_channels(np.zeros((5, 6)), acc, source="a.csv")
    columns = signal_lib.channel_columns(
        signal_lib.CANONICAL_CHANNELS, ("gyro_x", "acc_x"), source="m"
    )
    np.testing.assert_array_equal(columns, [3, 0])
    with pytest.raises(DataError, match=r"b\.csv: missing column\(s\) \['gyro_x'\]"):
        signal_lib.channel_columns(acc, ("acc_x", "gyro_x"), source="b.csv")

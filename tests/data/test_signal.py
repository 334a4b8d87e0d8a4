"""Core signal helpers and the HARBuilder base on a tiny in-memory builder."""

import numpy as np
import pytest

from harjax.data import core
from harjax.data.builder import HARBuilder, Recording
from harjax.data.errors import DataError
from tests.data.defaults import har_config


def _peak_hz(signal, rate):
    spectrum = np.abs(np.fft.rfft(signal - signal.mean()))
    return np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)]


@pytest.mark.parametrize("from_hz, to_hz, freq", [(100.0, 50.0, 3.0), (20.0, 50.0, 2.0)])
def test_resample_keeps_frequency(from_hz, to_hz, freq):
    t = np.arange(int(20 * from_hz)) / from_hz
    signal = np.stack([np.sin(2 * np.pi * freq * t), 9.81 + np.cos(2 * np.pi * freq * t)], 1)
    out = core.resample(signal, from_hz, to_hz)
    assert out.shape == (int(20 * to_hz), 2)
    assert _peak_hz(out[:, 0], to_hz) == pytest.approx(freq, abs=0.06)
    assert _peak_hz(out[:, 1], to_hz) == pytest.approx(freq, abs=0.06)
    # the offset (gravity) survives, without edge ringing
    assert np.abs(out[:, 1].mean() - 9.81) < 0.05


def test_resample_removes_aliasing():
    rate = 100.0
    t = np.arange(2000) / rate
    tone = np.sin(2 * np.pi * 40.0 * t)  # above the 25 Hz Nyquist limit of 50 Hz
    assert np.abs(core.resample(tone[:, None], rate, 50.0)[50:-50]).max() < 0.1


def test_windows_counts_and_content():
    signal = np.arange(300, dtype=np.float32)[:, None].repeat(3, 1)
    out = core.windows(signal, window_length=128, window_stride=64)
    assert out.shape == (1 + (300 - 128) // 64, 128, 3)
    np.testing.assert_array_equal(out[1, :, 0], np.arange(64, 192))
    assert core.windows(signal[:100], window_length=128, window_stride=64).shape[0] == 0


def test_split_on_label_change():
    runs = core.split_on_label_change(np.array(["a", "a", "b", "b", "b", "a"]))
    assert runs == [(0, 2, "a"), (2, 5, "b"), (5, 6, "a")]


def test_fill_gaps_interpolates_short_and_splits_long():
    signal = np.tile(np.arange(100.0)[:, None], (1, 3))
    signal[10:13] = np.nan  # short: interpolated
    signal[50:70, 1] = np.nan  # long: split
    signal[:2, 0] = np.nan  # leading: trimmed
    pieces, report = core.fill_gaps(signal, max_gap_samples=5, source="f.csv")
    assert [len(p) for p in pieces] == [48, 30]
    np.testing.assert_allclose(pieces[0][8:11, 0], [10, 11, 12])
    assert report.samples_interpolated == 3 and report.gaps_interpolated == 1
    assert report.gaps_split == 1 and report.samples_dropped == 22


def test_fill_gaps_rejects_all_nan_and_inf():
    signal = np.zeros((20, 6))
    signal[:, 4] = np.nan
    with pytest.raises(DataError, match=r"f\.csv.*gyro_y.*all NaN"):
        core.fill_gaps(signal, max_gap_samples=5, source="f.csv")
    signal = np.zeros((20, 3))
    signal[7, 2] = np.inf
    with pytest.raises(DataError, match=r"g\.dat.*inf.*acc_z.*sample 7"):
        core.fill_gaps(signal, max_gap_samples=5, source="g.dat")


def test_resample_irregular_and_align_streams():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.008, 0.012, 1000))
    t[600:] += 1.0  # a 1 s hole
    pieces = core.resample_irregular(t, np.sin(2 * np.pi * 2 * t)[:, None], 100.0, 0.25)
    assert len(pieces) == 2
    assert _peak_hz(pieces[0][:, 0], 100.0) == pytest.approx(2.0, abs=0.2)
    with pytest.raises(DataError, match=r"x\.csv.*row 3"):
        core.resample_irregular(np.array([0, 1, 2, 2.0]), np.zeros((4, 1)), 1.0, source="x.csv")
    ta, tg = np.arange(0, 10, 0.01), np.arange(0.5, 12, 0.02)
    out = core.align_streams(
        ta, np.ones((len(ta), 3)), tg, 2 * np.ones((len(tg), 3)), to_hz=50.0, source="s"
    )
    assert len(out) == 1 and out[0].shape[1] == 6
    assert len(out[0]) == pytest.approx((9.99 - 0.5) * 50, abs=1)
    np.testing.assert_array_equal(out[0][0], [1, 1, 1, 2, 2, 2])


class _Toy(HARBuilder, skip_registration=True):
    """Two classes; recordings with a label change, a gap, and one too short."""

    CLASS_NAMES = ("walk", "hop")
    LABEL_MAP = {"walk": "walk", "hop": None}

    def _archive(self, dl_manager):
        return None

    def _recordings(self, archive):
        t = np.arange(1000) / 100.0
        base = np.stack([np.sin(2 * np.pi * 2 * t)] * 6, 1)
        long_gap = base.copy()
        long_gap[400:450] = np.nan
        yield Recording(base, 100.0, "walk", "2", "a", "a.csv")
        yield Recording(long_gap, 100.0, "hop", "10", "b", "b.csv", device="d", position="wrist")
        yield Recording(base[:200], 100.0, "hop", "2", "c", "c.csv")


def test_builder_windows_never_cross_recordings_or_gaps(tmp_path):
    builder = _Toy(config=har_config(), data_dir=tmp_path)
    builder.download_and_prepare()
    report = builder.report
    # a: 500 samples at 50 Hz -> 6 windows; b: 200 + 275 samples -> 2 + 3; c: 100 -> too short
    assert report.windows_per_class == {"walk": 6, "hop": 5}
    assert report.recordings_too_short == ["c"] and report.segments_split == 1
    source = builder.as_data_source()["full"]
    examples = [source[i] for i in range(len(source))]
    assert len(examples) == 11
    meta = builder.info.metadata
    assert meta["subject_names"] == ["2", "10"]  # natural order
    by_recording = {e["recording"] for e in examples}
    assert by_recording == {0, 1}
    hop = [e for e in examples if e["label"] == 1]
    assert all(e["subject"] == 1 and e["common_label"] == -1 for e in hop)
    assert all(e["position"] == b"wrist" for e in hop)
    walk = [e for e in examples if e["label"] == 0]
    assert all(e["common_label"] == 0 and e["signal"].shape == (128, 6) for e in walk)
    assert not any(np.isnan(e["signal"]).any() for e in examples)


def test_builder_rejects_unknown_activity(tmp_path):
    class Bad(_Toy, skip_registration=True):
        def _recordings(self, archive):
            yield Recording(np.zeros((500, 6)), 50.0, "swim", "1", "x", "x.csv:3-502")

    with pytest.raises(DataError, match=r"x\.csv:3-502.*unknown activity 'swim'"):
        Bad(config=har_config(), data_dir=tmp_path).download_and_prepare()


def test_builder_rejects_empty_class(tmp_path):
    class OneClass(_Toy, skip_registration=True):
        def _recordings(self, archive):
            yield Recording(np.zeros((500, 6)), 50.0, "walk", "1", "x", "x.csv")

    with pytest.raises(DataError, match=r"classes \['hop'\] have no windows"):
        OneClass(config=har_config(), data_dir=tmp_path).download_and_prepare()


def test_config_name_encodes_parameters():
    assert har_config().name == "r50_w128_s64_g250ms"
    assert (
        har_config(sample_rate=20.5, positions=("waist",)).name == "r20p5_w128_s64_g250ms_pos-waist"
    )

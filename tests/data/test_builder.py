"""The HARBuilder base on a tiny in-memory builder: windows, gaps, checks, config names."""

from pathlib import Path

import numpy as np
import pytest

from harjax.data.builder import HARBuilder, Recording
from harjax.data.errors import DataError
from tests.data.defaults import har_config


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


def test_builder_warns_of_an_empty_class_and_keeps_its_label_id(tmp_path, caplog):
    class OneClass(_Toy, skip_registration=True):
        def _recordings(self, archive):
            yield Recording(np.zeros((500, 6)), 50.0, "hop", "1", "x", "x.csv")

    builder = OneClass(config=har_config(), data_dir=tmp_path)
    builder.download_and_prepare()
    assert "classes ['walk'] have no windows" in caplog.text
    assert builder.report.classes_without_windows == ["walk"]
    source = builder.as_data_source()["full"]
    assert builder.info.features["label"].names == list(_Toy.CLASS_NAMES)
    assert {source[i]["label"] for i in range(len(source))} == {1}  # 'hop' keeps id 1


def test_builder_without_a_usable_recording_names_what_it_looked_for(tmp_path):
    class TooShort(_Toy, skip_registration=True):
        LOOKED_FOR = "x.csv rows of walk or hop"

        def _recordings(self, archive):
            yield Recording(np.zeros((50, 6)), 50.0, "walk", "1", "x", "x.csv")

    with pytest.raises(DataError, match=r"no usable recording in .*\(looked for x.csv rows"):
        TooShort(config=har_config(), data_dir=tmp_path).download_and_prepare()


def test_config_name_encodes_parameters():
    assert har_config().name == "r50_w128_s64_g250ms"
    assert (
        har_config(sample_rate=20.5, positions=("waist",)).name == "r20p5_w128_s64_g250ms_pos-waist"
    )


def test_a_manual_archive_is_content_addressed_and_must_not_change_while_prepared(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "toy.bin").write_bytes(b"one")

    class FromArchive(_Toy, skip_registration=True):
        ACCEPTED = ("toy.bin",)

        def _archive(self, dl_manager):
            return self.manual_dir / "toy.bin"

    class Changing(FromArchive, skip_registration=True):
        def _recordings(self, archive):
            archive.write_bytes(b"two, longer")  # the user copies a new archive over it
            yield from super()._recordings(archive)

    first = FromArchive(config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual)
    assert first.raw_key and first.raw_key in first.data_dir
    builder = Changing(config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual)
    with pytest.raises(DataError, match=r"toy\.bin changed while it was being prepared"):
        builder.prepare()
    assert not builder.is_prepared()
    again = FromArchive(config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual)
    assert again.data_dir != first.data_dir  # other bytes, other folder
    again.prepare()
    assert again.is_prepared() and not Path(first.data_dir).exists()

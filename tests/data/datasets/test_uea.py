"""The UEA archive reader (`uea:NAME`): the `.ts` parser, the builder on real excerpts
(tests/data/real/uea/, cut from the archive's own files) and the case split."""

from __future__ import annotations

import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from configs import default
from harjax.data import registry, source
from harjax.data.bundle import load_data
from harjax.data.datasets.uea import UeaArchive, to_length
from harjax.data.errors import DataError
from harjax.data.signal import ACC_CHANNELS
from harjax.data.ts_format import parse_ts
from tests.data.defaults import dataset_options, har_config

REAL = Path(__file__).parents[1] / "real" / "uea"
SHARED = Path(__file__).parents[4] / "shared" / "data" / "uea"  # ../shared/data beside the repo
# (name, TRAIN cases, TEST cases, classes in header order, stated rate) of the excerpts.
EXCERPTS = (
    ("Epilepsy", 12, 8, ("EPILEPSY", "WALKING", "RUNNING", "SAWING"), 16.0),
    ("UWaveGestureLibrary", 16, 8, tuple(f"{i}.0" for i in range(1, 9)), None),
    ("Handwriting", 26, 26, tuple(f"{i}.0" for i in range(1, 27)), None),
)
HEADER = "#A toy set sampled at 25 Hz.\n@problemName Toy\n@timeStamps false\n@missing false\n"
HEADER += "@univariate false\n@dimensions 3\n@equalLength true\n@seriesLength 4\n"
HEADER += "@classLabel true walk run\n@data\n"
CASE = "1,2,3,4:0,0,0,0:9.8,9.8,9.8,9.8"


def _build(tmp_path: Path, name: str, manual: Path = REAL, **config) -> UeaArchive:
    builder = registry.get_builder(
        f"uea:{name}", config=har_config(**config), data_dir=tmp_path, manual_dir=manual
    )
    builder.download_and_prepare()
    return builder


@pytest.mark.parametrize("name, train, test, classes, rate", EXCERPTS)
def test_real_excerpts_cases_classes_rates(tmp_path, name, train, test, classes, rate):
    builder = _build(tmp_path, name)
    sources = builder.as_data_source()
    assert {split: len(s) for split, s in sources.items()} == {"train": train, "test": test}
    assert builder.info.features["label"].names == list(classes)
    assert builder.CHANNELS == ACC_CHANNELS
    example = sources["train"][0]
    assert example["signal"].shape == (128, 3) and np.isfinite(example["signal"]).all()
    meta = builder.info.metadata["uea"]["train"]
    assert meta["rate_hz"] == (rate or 50.0)
    assert meta["rate_from"] == ("header comment" if rate else "config.data.sample_rate")
    length = meta["series_lengths"][0]
    served = builder.report.sample_rates[f"{name}/train"]["served"]
    assert served == pytest.approx((rate or 50.0) * 128 / length, rel=1e-3)


def test_excerpt_case_is_the_file_case_resampled(tmp_path):
    builder = _build(tmp_path, "Epilepsy")
    with zipfile.ZipFile(REAL / "Epilepsy.zip") as archive:
        ts = parse_ts(archive.read("Epilepsy_TRAIN.ts").decode(), "Epilepsy_TRAIN.ts")
    assert ts.cases[0].shape == (3, 206)
    stored = {r["recording"]: r["signal"] for r in builder.as_data_source()["train"]}
    first = builder.info.metadata["recording_ids"].index("train/00000")
    np.testing.assert_allclose(stored[first], to_length(ts.cases[0], 128), atol=1e-5)


def test_to_length_keeps_shape_of_the_series():
    t = np.arange(315) / 315
    case = np.stack([np.sin(2 * np.pi * 3 * t), np.full(315, 9.8), t])  # 3 cycles, offset, ramp
    out = to_length(case, 128)
    assert out.shape == (128, 3)
    u = np.arange(128) / 128
    np.testing.assert_allclose(out[:, 0], np.sin(2 * np.pi * 3 * u), atol=0.02)
    np.testing.assert_allclose(out[:, 1], 9.8, atol=1e-3)  # no ringing at the ends
    np.testing.assert_allclose(out[:, 2], u, atol=0.01)


def test_case_split_is_official_stratified_and_seeded(tmp_path):
    config = default.get_config()
    config.dataset = "uea:UWaveGestureLibrary"
    config.data.manual_dir = str(REAL)
    config.data.data_dir = str(tmp_path)
    config.data.split = "subject"  # a set of cases has only its official split
    config.data.val_fraction = 0.5
    bundle = load_data(config)
    split, ds = bundle.split, bundle.dataset
    assert split.kind == "official"
    train_part = ds.split_names.index("train")
    assert (ds.splits[split.test] != train_part).all() and len(split.test) == 8
    assert (ds.splits[np.concatenate([split.train, split.val])] == train_part).all()
    assert np.bincount(ds.labels[split.val], minlength=8).tolist() == [1] * 8  # 1 of 2 per class
    assert np.bincount(ds.labels[split.train], minlength=8).tolist() == [1] * 8
    config.data.split_seed = 1
    other = load_data(config).split
    assert not np.array_equal(other.val, split.val)


def test_accelerometer_only_path(tmp_path):
    options = dataset_options(channels="acc")
    ds = source.load_dataset(
        "uea:Epilepsy", data_dir=tmp_path, manual_dir=REAL / "Epilepsy.zip", **options
    )
    assert ds.channel_names == ACC_CHANNELS and ds.read_signals([0]).shape == (1, 128, 3)
    with pytest.raises(DataError, match=r"missing column\(s\) \['gyro_x'"):
        source.load_dataset(
            "uea:Epilepsy",
            data_dir=tmp_path,
            manual_dir=REAL,
            **dataset_options(channels="acc_gyro"),
        )


def test_manual_dir_forms_and_missing_files(tmp_path):
    with zipfile.ZipFile(REAL / "Handwriting.zip") as archive:
        archive.extractall(tmp_path / "flat")
        archive.extractall(tmp_path / "nested" / "Handwriting")
    digests = set()
    for manual in (tmp_path / "flat", tmp_path / "nested", REAL / "Handwriting.zip"):
        builder = UeaArchive(
            "uea:Handwriting", config=har_config(), data_dir=tmp_path / "tfds", manual_dir=manual
        )
        assert len(builder.CLASS_NAMES) == 26
        digests.add(builder.content_digest)
    assert len(digests) == 1  # the files' content, whatever held them
    (tmp_path / "flat" / "Handwriting_TEST.ts").unlink()
    with pytest.raises(DataError, match=r"flat/Handwriting_TEST.ts: not found"):
        UeaArchive("uea:Handwriting", config=har_config(), manual_dir=tmp_path / "flat")
    with pytest.raises(DataError, match=r"expected Handwriting_TRAIN.ts and Handwriting_TEST.ts"):
        UeaArchive("uea:Handwriting", config=har_config(), manual_dir=tmp_path / "empty")
    with pytest.raises(DataError, match=r"expected 'uea:NAME'"):
        registry.check_spec("uea:../etc")
    registry.check_spec("uea:Epilepsy")  # a well-formed name is checked without any file


def test_header_rate_and_values(tmp_path):
    ts = parse_ts(
        "\ufeff" + HEADER.replace("@dimensions 3", "@dimensions\t3") + CASE + ":run\n", "toy.ts"
    )
    assert ts.stated_rate() == 25.0 and ts.class_names == ("walk", "run")
    assert ts.labels.tolist() == [1] and ts.cases[0].shape == (3, 4)
    assert (
        parse_ts(
            "#No rate here.\n" + HEADER[HEADER.index("@") :] + CASE + ":walk\n", "x"
        ).stated_rate()
        is None
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (HEADER.replace("@data\n", "") + CASE + ":run\n", r"toy.ts:10: '1,2,3,4.*before @data"),
        (HEADER.replace("@data\n", ""), r"toy.ts: no @data line"),
        (
            HEADER + CASE + ":run\n" + "1,2,3:0,0,0,0:1,1,1,1:run\n",
            r"toy.ts:12: ragged case.*\[3, 4, 4\]",
        ),
        (
            HEADER + "1,2,3:0,0,0:1,1,1:run\n",
            r"toy.ts:11: series of length 3; expected @seriesLength 4",
        ),
        (HEADER + CASE + ":jump\n", r"toy.ts:11: class label 'jump' is not in @classLabel"),
        (HEADER + "1,2,inf,4:0,0,0,0:1,1,1,1:run\n", r"toy.ts:11: dimension 1, value 3 is inf"),
        (HEADER + "1,2,3,4:0,x,0,0:1,1,1,1:run\n", r"toy.ts:11: dimension 2, value 2: 'x' is not"),
        ("", r"toy.ts: empty file"),
        ("\n\n", r"toy.ts: empty file"),
        (HEADER + "1,2,3,4:0,0,0,0:run\n", r"toy.ts:11: 2 dimensions; expected @dimensions 3"),
        (
            HEADER.replace("@classLabel true walk run", "@classLabel false"),
            r"toy.ts:9: @classLabel",
        ),
        (HEADER, r"toy.ts:10: header only \('@data'\), no data rows"),
    ],
)
def test_malformed_files_name_file_and_line(text, message):
    with pytest.raises(DataError, match=message):
        parse_ts(text, "toy.ts")


def test_malformed_file_in_an_archive_is_named(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "Toy_TRAIN.ts").write_text(HEADER + CASE + ":run\n")
    (manual / "Toy_TEST.ts").write_text(HEADER + CASE + ":swim\n")
    with pytest.raises(DataError, match=r"manual/Toy_TEST.ts:11: class label 'swim'"):
        UeaArchive("uea:Toy", config=har_config(), data_dir=tmp_path, manual_dir=manual)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared UEA files are not beside the repo")
def test_full_shared_sets_parse():
    expected = {
        "Epilepsy": (137, 138),
        "UWaveGestureLibrary": (120, 320),
        "Handwriting": (150, 850),
    }
    for name, counts in expected.items():
        found = []
        for split in ("TRAIN", "TEST"):
            path = SHARED / name / f"{name}_{split}.ts"
            found.append(len(parse_ts(path.read_text(errors="replace"), str(path)).cases))
        assert tuple(found) == counts, name


def test_download_when_no_manual_dir_records_its_checksum(tmp_path, monkeypatch):
    asked = []

    def serve(url, timeout):
        asked.append(url)
        return open(REAL / "Epilepsy.zip", "rb")

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    builder = UeaArchive("uea:Epilepsy", config=har_config(), data_dir=tmp_path)
    assert asked == ["https://www.timeseriesclassification.com/aeon-toolkit/Epilepsy.zip"]
    record = tmp_path / "downloads" / "uea_Epilepsy.zip.sha256"
    assert record.read_text().strip() and builder.CLASS_NAMES[0] == "EPILEPSY"
    UeaArchive("uea:Epilepsy", config=har_config(), data_dir=tmp_path)  # reused: no new download
    assert len(asked) == 1


def _toy(manual: Path, train: str, test: str = CASE + ":run\n", header: str = HEADER) -> Path:
    manual.mkdir(parents=True, exist_ok=True)
    (manual / "Toy_TRAIN.ts").write_text(header + train)
    (manual / "Toy_TEST.ts").write_text(header + test)
    return manual


def test_a_too_short_series_is_an_error_naming_the_case_and_its_length(tmp_path):
    """A length-1 series was reported as 'all NaN (128 samples)', which resampling made."""
    header = HEADER.replace("@equalLength true\n@seriesLength 4\n", "@equalLength false\n")
    manual = _toy(tmp_path / "m", CASE + ":walk\n" + "5:0:9.8:run\n", header=header)
    with pytest.raises(DataError, match=r"Toy_TRAIN.ts:11 \(case 1 of train\): series of length 1"):
        _build(tmp_path / "tfds", "Toy", manual)


def test_missing_values_are_filled_as_gaps_and_counted_by_line(tmp_path):
    manual = _toy(tmp_path / "m", CASE + ":walk\n" + "1,2,?,4:0,0,0,0:9.8,NaN,9.8,9.8:run\n")
    builder = _build(tmp_path / "tfds", "Toy", manual)
    expected = {str(manual / "Toy_TRAIN.ts"): {"rows": 1, "lines": [12]}}
    assert builder.report.missing_values == expected
    signals = [r["signal"] for r in builder.as_data_source()["train"]]
    assert len(signals) == 2 and all(np.isfinite(s).all() for s in signals)
    long_hole = "1,?,?,?,?,?,?,?,?,9:" + ",".join(["0"] * 10) + ":" + ",".join(["9.8"] * 10)
    header = HEADER.replace("@seriesLength 4", "@seriesLength 10")
    test = long_hole.replace("?", "5") + ":run\n"
    manual = _toy(tmp_path / "m2", long_hole + ":run\n", test, header)
    with pytest.raises(DataError, match=r"TRAIN.ts:11 \(case 0 of train\): missing values over"):
        _build(tmp_path / "tfds2", "Toy", manual)


def test_utf16_ts_files_are_read(tmp_path):
    manual = _toy(tmp_path / "m", CASE + ":walk\n")
    utf8 = _build(tmp_path / "a", "Toy", manual)
    expected = [r["signal"] for r in utf8.as_data_source()["train"]]
    for name in ("Toy_TRAIN.ts", "Toy_TEST.ts"):
        (manual / name).write_bytes((manual / name).read_text().encode("utf-16"))
    found = [r["signal"] for r in _build(tmp_path / "b", "Toy", manual).as_data_source()["train"]]
    np.testing.assert_array_equal(np.stack(found), np.stack(expected))


def test_manual_dir_without_the_files_is_an_error_never_a_download(tmp_path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(urllib.request, "urlopen", no_download)
    manual = _toy(tmp_path / "m", CASE + ":walk\n")
    (manual / "Toy_TRAIN.ts").unlink()  # only the TEST file is there
    with pytest.raises(DataError, match=r"Toy_TRAIN.ts: not found"):
        UeaArchive("uea:Toy", config=har_config(), data_dir=tmp_path, manual_dir=manual)
    with pytest.raises(DataError, match=r"expected Toy_TRAIN.ts .*manual_dir does not exist"):
        UeaArchive("uea:Toy", config=har_config(), data_dir=tmp_path, manual_dir=tmp_path / "typo")

"""Opening a prepared dataset: prepared windows are never served from other raw files."""

import shutil
import zipfile
from pathlib import Path

from harjax.data import source
from tests.data.defaults import dataset_options

REAL_UCI_HAR = Path(__file__).parent / "real" / "uci_har" / "UCI HAR Dataset.zip"


def _relabel(archive: Path) -> None:
    """The same archive with the first training window's label changed (5 -> 4)."""
    members = {}
    with zipfile.ZipFile(archive) as original:
        for name in original.namelist():
            members[name] = original.read(name)
    labels = members["UCI HAR Dataset/train/y_train.txt"].decode().splitlines()
    labels[0] = "4"
    members["UCI HAR Dataset/train/y_train.txt"] = ("\n".join(labels) + "\n").encode()
    with zipfile.ZipFile(archive, "w") as rewritten:
        for name, data in members.items():
            rewritten.writestr(name, data)


def test_an_edited_manual_archive_is_prepared_again(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    shutil.copy(REAL_UCI_HAR, manual / REAL_UCI_HAR.name)
    options = dict(dataset_options(), data_dir=tmp_path / "tfds", manual_dir=manual)
    before = source.load_dataset("uci_har", **options)
    assert before.builder.info.metadata["raw_content"]

    def counts(dataset):
        train = dataset.labels[dataset.splits == dataset.split_names.index("train")]
        return {name: int((train == i).sum()) for i, name in enumerate(dataset.class_names)}

    assert (counts(before)["STANDING"], counts(before)["SITTING"]) == (34, 36)
    _relabel(manual / REAL_UCI_HAR.name)
    after = source.load_dataset("uci_har", **options)
    assert (counts(after)["STANDING"], counts(after)["SITTING"]) == (33, 37)  # the new bytes
    assert after.builder.info.metadata["raw_content"] != before.builder.info.metadata["raw_content"]
    # Content-addressed: the new bytes have their own folder, the old windows are left alone.
    assert after.builder.data_dir != before.builder.data_dir
    assert (Path(before.builder.data_dir) / "dataset_info.json").exists()
    again = source.load_dataset("uci_har", **options)  # unchanged since: served as prepared
    assert again.builder.data_dir == after.builder.data_dir
    assert counts(again) == counts(after)

"""How the real fixtures beside this file were cut from the shared excerpts (see README.md).

    python tests/data/real/cut.py /path/to/shared/data

Every value is the release's own: rows and cases are selected, never edited. Rerunning it on
the same input gives the same files (fixed zip timestamps).
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).parent
STAMP = (2026, 12, 5, 0, 0, 0)  # fixed member timestamps: the same input gives the same zip

UCI_ROOT = "UCI HAR Dataset"
UCI_SUBJECTS = {"train": {"5", "7"}, "test": {"9"}}  # 2 training, 1 test subject
UCI_SIGNALS = [
    f"{kind}_{axis}" for kind in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"
]
HAPT_ARCHIVE = "HAPT Data Set.zip"
# Whole experiments: 17 and 18 (subject 9, an official test subject: all of UCI-HAR's test
# windows of subject 9 lie in them) and 9 (subject 5, training).
HAPT_EXPERIMENTS = (9, 17, 18)
HHAR_ROOT = "Activity recognition exp"
HHAR_PHONE_ROWS = slice(0, 4000)  # nexus4_1, stand, 20 s
HHAR_WATCH_ROWS = (slice(0, 2000), slice(5000, 7000))  # gear_1: stand, stand -> null -> sit
REALWORLD_ROWS = 12_000  # of 31,946: ~240 s of proband 1 walking at the shin
UEA_CASES = {  # name -> cases kept per class in (TRAIN, TEST), first in file order
    "Epilepsy": (3, 2),
    "UWaveGestureLibrary": (2, 1),
    "Handwriting": (1, 1),
}


def _write_zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for name, data in members.items():
            out.writestr(zipfile.ZipInfo(name, STAMP), data, zipfile.ZIP_DEFLATED)


def cut_uci_har(shared: Path) -> None:
    members = {}
    with zipfile.ZipFile(shared / "uci_har_reduced" / f"{UCI_ROOT}.zip") as source:
        read = lambda name: source.read(f"{UCI_ROOT}/{name}").decode().splitlines(keepends=True)
        members[f"{UCI_ROOT}/activity_labels.txt"] = source.read(f"{UCI_ROOT}/activity_labels.txt")
        for split, subjects in UCI_SUBJECTS.items():
            subject_lines = read(f"{split}/subject_{split}.txt")
            keep = [i for i, line in enumerate(subject_lines) if line.strip() in subjects]
            files = [f"subject_{split}.txt", f"y_{split}.txt"]
            files += [f"Inertial Signals/{signal}_{split}.txt" for signal in UCI_SIGNALS]
            for name in files:
                lines = read(f"{split}/{name}")
                members[f"{UCI_ROOT}/{split}/{name}"] = "".join(lines[i] for i in keep).encode()
    _write_zip(HERE / "uci_har" / f"{UCI_ROOT}.zip", members)


def cut_uci_hapt(shared: Path) -> None:
    members = {}
    with zipfile.ZipFile(shared / "uci_hapt" / HAPT_ARCHIVE) as source:
        names = source.namelist()
        members["activity_labels.txt"] = source.read("activity_labels.txt")
        for experiment in HAPT_EXPERIMENTS:
            for sensor in ("acc", "gyro"):
                prefix = f"RawData/{sensor}_exp{experiment:02d}_user"
                (name,) = [n for n in names if n.startswith(prefix)]
                members[name] = source.read(name)
        lines = source.read("RawData/labels.txt").decode().splitlines(keepends=True)
        kept = [line for line in lines if int(line.split()[0]) in HAPT_EXPERIMENTS]
        members["RawData/labels.txt"] = "".join(kept).encode()
    _write_zip(HERE / "uci_hapt" / HAPT_ARCHIVE, members)


def cut_hhar(shared: Path) -> None:
    members = {}
    with zipfile.ZipFile(shared / "hhar_excerpt" / f"{HHAR_ROOT}.zip") as source:
        for kind, ranges in (("Phones", (HHAR_PHONE_ROWS,)), ("Watch", HHAR_WATCH_ROWS)):
            for sensor in ("accelerometer", "gyroscope"):
                name = f"{HHAR_ROOT}/{kind}_{sensor}.csv"
                header, *rows = source.read(name).decode().splitlines(keepends=True)
                kept = [row for part in ranges for row in rows[part]]
                members[name] = (header + "".join(kept)).encode()
    _write_zip(HERE / "hhar" / f"{HHAR_ROOT}.zip", members)


def cut_realworld(shared: Path) -> None:
    members = {}
    with zipfile.ZipFile(shared / "realworld_excerpt" / "realworld2016_dataset.zip") as source:
        for name in source.namelist():
            if not name.endswith(".zip"):
                continue
            inner_members = {}
            with zipfile.ZipFile(io.BytesIO(source.read(name))) as inner:
                for csv_name in inner.namelist():
                    lines = inner.read(csv_name).decode().splitlines(keepends=True)
                    inner_members[csv_name] = "".join(lines[: REALWORLD_ROWS + 1]).encode()
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
                for csv_name, data in inner_members.items():
                    out.writestr(zipfile.ZipInfo(csv_name, STAMP), data, zipfile.ZIP_DEFLATED)
            members[name] = buffer.getvalue()
    _write_zip(HERE / "realworld" / "realworld2016_dataset.zip", members)


def cut_uea(shared: Path) -> None:
    for name, per_class in UEA_CASES.items():
        members = {}
        for split, count in zip(("TRAIN", "TEST"), per_class, strict=True):
            lines = (shared / "uea" / name / f"{name}_{split}.ts").read_bytes().splitlines(True)
            start = next(i for i, line in enumerate(lines) if line.strip().lower() == b"@data")
            kept, seen = [], {}
            for line in lines[start + 1 :]:
                label = line.rstrip().rsplit(b":", 1)[-1]
                seen[label] = seen.get(label, 0) + 1
                if line.strip() and seen[label] <= count:
                    kept.append(line)
            members[f"{name}_{split}.ts"] = b"".join(lines[: start + 1] + kept)
        _write_zip(HERE / "uea" / f"{name}.zip", members)


if __name__ == "__main__":
    shared_data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    cut_uci_har(shared_data)
    cut_uci_hapt(shared_data)
    cut_hhar(shared_data)
    cut_realworld(shared_data)
    cut_uea(shared_data)

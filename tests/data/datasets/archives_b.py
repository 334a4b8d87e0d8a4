"""Writers of tiny archives in the exact raw layouts of RealWorld 2016, PAMAP2 and WISDM v1.1.

The builders' tests prepare datasets from these archives, so every name, nesting level, column
and quirk below mirrors the official downloads (see docs/datasets/*.md). Values are chosen by
the tests (constants per channel, sines of known frequency) so converted outputs can be checked.
"""

from __future__ import annotations

import dataclasses
import io
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------
# RealWorld 2016: realworld2016_dataset.zip -> proband<N>/data/<sensor>_<activity>_csv.zip
# ---------------------------------------------------------------------------------------------
REALWORLD_ARCHIVE = "realworld2016_dataset.zip"
# Sensor prefix of the per-activity zip -> prefix of the CSVs inside it (real naming).
REALWORLD_CSV_PREFIX = {"acc": "acc", "gyr": "Gyroscope", "mag": "MagneticField"}


@dataclasses.dataclass
class RealWorldPart:
    """One position's acc + gyro of one subject/activity (one session when sessions are split).

    `acc`/`gyro` are (n, 3) in the raw units (m/s^2, rad/s), sampled at `acc_hz`/`gyro_hz`
    from `start_ms` (gyro from `start_ms + gyro_offset_ms`). `session` (1, 2, ...) writes the
    zip-in-zip layout of probands 4/7/14's climbing sessions; `file_tag` overrides the activity
    part of the CSV names (the real `walking_2` anomaly of e.g. proband 4).
    """

    subject: int
    activity: str
    position: str
    acc: np.ndarray
    gyro: np.ndarray | None
    start_ms: int = 1_435_993_763_000
    acc_hz: float = 50.0
    gyro_hz: float = 50.0
    gyro_offset_ms: int = 0
    session: int | None = None
    file_tag: str | None = None


def _realworld_csv(values: np.ndarray, start_ms: int, rate_hz: float) -> bytes:
    """CSV with the real header `id,attr_time,attr_x,attr_y,attr_z`; attr_time in epoch ms."""
    times = start_ms + np.round(np.arange(len(values)) * 1000.0 / rate_hz).astype(np.int64)
    lines = ["id,attr_time,attr_x,attr_y,attr_z"]
    for i, (t, row) in enumerate(zip(times, values)):
        lines.append(f"{i + 1},{t},{row[0]:.9g},{row[1]:.9g},{row[2]:.9g}")
    return ("\n".join(lines) + "\n").encode()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _readme(members: dict[str, bytes]) -> bytes:
    """The `readMe` member every real sensor zip carries (one `> entries` line per CSV)."""
    lines = []
    for name, data in members.items():
        lines.append(f"> file: {name}")
        entries = len(data.splitlines()) - 1  # minus the header
        lines.append(f"> entries: {entries}")
    return ("\n".join(lines) + "\n").encode()


def realworld_members(parts: Sequence[RealWorldPart]) -> dict[str, bytes]:
    """Archive members `proband<N>/data/<sensor>_<activity>_csv.zip` for the given parts."""
    # (subject, sensor, activity) -> session (None = flat) -> {csv name: bytes}
    groups: dict[tuple[int, str, str], dict[int | None, dict[str, bytes]]] = {}
    for part in parts:
        tag = part.file_tag or part.activity
        for sensor, values, rate, offset in (
            ("acc", part.acc, part.acc_hz, 0),
            ("gyr", part.gyro, part.gyro_hz, part.gyro_offset_ms),
        ):
            if values is None:
                continue
            prefix = REALWORLD_CSV_PREFIX[sensor]
            if part.session is not None and part.session > 1:
                name = f"{prefix}_{part.activity}_{part.session}_{part.position}.csv"
            else:
                name = f"{prefix}_{tag}_{part.position}.csv"
            csv = _realworld_csv(np.asarray(values), part.start_ms + offset, rate)
            key = (part.subject, sensor, part.activity)
            groups.setdefault(key, {}).setdefault(part.session, {})[name] = csv

    members: dict[str, bytes] = {}
    for (subject, sensor, activity), sessions in sorted(groups.items()):
        outer_name = f"proband{subject}/data/{sensor}_{activity}_csv.zip"
        if list(sessions) == [None]:
            csvs = sessions[None]
            members[outer_name] = _zip_bytes({**csvs, "readMe": _readme(csvs)})
            continue
        inner: dict[str, bytes] = {}
        for session, csvs in sorted(sessions.items()):
            # Real quirk: acc names its first inner zip `_1`, gyr leaves the number out.
            if session == 1 and sensor != "acc":
                inner_name = f"{sensor}_{activity}_csv.zip"
            else:
                inner_name = f"{sensor}_{activity}_{session}_csv.zip"
            inner[inner_name] = _zip_bytes({**csvs, "readMe": _readme(csvs)})
        members[outer_name] = _zip_bytes(inner)
    # Files the builder must ignore: magnetometer, sqlite exports, images.
    for subject in sorted({part.subject for part in parts}):
        members[f"proband{subject}/data/mag_walking_csv.zip"] = _zip_bytes(
            {"MagneticField_walking_chest.csv": b"id,attr_time,attr_x,attr_y,attr_z\n"}
        )
        members[f"proband{subject}/data/acc_walking_sqlite.zip"] = _zip_bytes({"db": b"\0"})
        members[f"proband{subject}/images/chest.jpg"] = b"\xff\xd8\xff"
    return members


def write_realworld(
    directory: Path,
    parts: Sequence[RealWorldPart],
    *,
    replace: dict[str, bytes] | None = None,
    drop: Sequence[str] = (),
) -> Path:
    """Write `realworld2016_dataset.zip` (probands at the archive root, as in the original).

    `replace` swaps member bytes (e.g. a corrupt inner zip), `drop` removes members.
    """
    members = realworld_members(parts)
    members.update(replace or {})
    for name in drop:
        del members[name]
    path = Path(directory) / REALWORLD_ARCHIVE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_zip_bytes(members))
    return path


# ---------------------------------------------------------------------------------------------
# PAMAP2: PAMAP2_Dataset.zip -> PAMAP2_Dataset/{Protocol,Optional}/subject10N.dat
# ---------------------------------------------------------------------------------------------
PAMAP2_ARCHIVE = "PAMAP2_Dataset.zip"
PAMAP2_POSITIONS = ("hand", "chest", "ankle")
PAMAP2_COLUMNS = 54


def pamap2_block(
    activity_id: int,
    num_rows: int,
    *,
    acc16: dict[str, np.ndarray] | np.ndarray | float = 0.0,
    gyro: dict[str, np.ndarray] | np.ndarray | float = 0.0,
    start_s: float = 0.0,
) -> np.ndarray:
    """`num_rows` rows of the 54-column layout at 100 Hz for one activity.

    Column 1 timestamp (s), 2 activityID, 3 heart rate (~9 Hz: NaN on most rows), then per
    IMU (hand, chest, ankle) 17 columns: temperature, acc ±16 g (m/s^2) x3, acc ±6 g x3,
    gyro (rad/s) x3, magnetometer (uT) x3, orientation x4 (invalid in this data collection).
    `acc16`/`gyro` are per-position (n, 3) arrays, one shared array, or a constant.
    """
    rows = np.zeros((num_rows, PAMAP2_COLUMNS))
    rows[:, 0] = start_s + np.arange(num_rows) / 100.0
    rows[:, 1] = activity_id
    rows[:, 2] = np.nan
    rows[::11, 2] = 100.0
    for index, position in enumerate(PAMAP2_POSITIONS):
        base = 3 + 17 * index
        acc = acc16[position] if isinstance(acc16, dict) else acc16
        rate = gyro[position] if isinstance(gyro, dict) else gyro
        rows[:, base] = 32.5  # temperature
        rows[:, base + 1 : base + 4] = acc
        rows[:, base + 4 : base + 7] = np.asarray(acc) * 0.97  # ±6 g copy (saturates in reality)
        rows[:, base + 7 : base + 10] = rate
        rows[:, base + 10 : base + 13] = (20.0, -40.0, 5.0)
        rows[:, base + 13 : base + 17] = (1.0, 0.0, 0.0, 0.0)
    return rows


def pamap2_text(rows: np.ndarray) -> bytes:
    """Space-separated `.dat` text as in the original (`NaN` for missing values)."""
    lines = []
    for row in rows:
        fields = [f"{row[0]:.2f}", f"{int(row[1])}" if np.isfinite(row[1]) else "NaN"]
        fields += ["NaN" if np.isnan(v) else f"{v:.6g}" for v in row[2:]]
        lines.append(" ".join(fields))
    return ("\n".join(lines) + "\n").encode()


def write_pamap2(
    directory: Path,
    protocol: dict[int, np.ndarray],
    optional: dict[int, np.ndarray] | None = None,
    *,
    raw: dict[str, bytes] | None = None,
) -> Path:
    """Write `PAMAP2_Dataset.zip` with `PAMAP2_Dataset/Protocol/subject<id>.dat` (+ Optional/).

    Keys are subject ids as in the file names (101 ... 109). `raw` adds/replaces members
    verbatim (e.g. a file with a wrong column count).
    """
    members: dict[str, bytes] = {
        "PAMAP2_Dataset/readme.pdf": b"%PDF-1.4\n",
        "PAMAP2_Dataset/subjectInformation.pdf": b"%PDF-1.4\n",
    }
    for folder, files in (("Protocol", protocol), ("Optional", optional or {})):
        for subject_id, rows in sorted(files.items()):
            members[f"PAMAP2_Dataset/{folder}/subject{subject_id}.dat"] = pamap2_text(rows)
    members.update(raw or {})
    path = Path(directory) / PAMAP2_ARCHIVE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_zip_bytes(members))
    return path


# ---------------------------------------------------------------------------------------------
# WISDM v1.1: WISDM_ar_latest.tar.gz -> WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt
# ---------------------------------------------------------------------------------------------
WISDM_ARCHIVE = "WISDM_ar_latest.tar.gz"
WISDM_RAW = "WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt"


def wisdm_lines(
    user: int,
    activity: str,
    xyz: np.ndarray,
    *,
    start_ns: int = 49_105_962_326_000,
    rate_hz: float = 20.0,
) -> list[str]:
    """Well-formed `user,activity,timestamp,x,y,z;` lines (timestamp in ns, 20 Hz)."""
    period_ns = int(round(1e9 / rate_hz))
    lines = []
    for i, (x, y, z) in enumerate(np.asarray(xyz)):
        lines.append(f"{user},{activity},{start_ns + i * period_ns},{x:.8g},{y:.8g},{z:.8g};")
    return lines


def write_wisdm(directory: Path, lines: Sequence[str], *, raw_text: bytes | None = None) -> Path:
    """Write `WISDM_ar_latest.tar.gz` holding the `WISDM_ar_v1.1/` folder of the original."""
    text = raw_text if raw_text is not None else ("\n".join(lines) + "\n").encode()
    members = {
        WISDM_RAW: text,
        "WISDM_ar_v1.1/WISDM_ar_v1.1_raw_about.txt": b"Raw Time Series Data\n",
        "WISDM_ar_v1.1/WISDM_ar_v1.1_trans_about.txt": b"Transformed Examples\n",
        "WISDM_ar_v1.1/WISDM_ar_v1.1_transformed.arff": b"@relation person_activities_labeled\n",
        "WISDM_ar_v1.1/readme.txt": b"WISDM Activity Prediction v1.1\n",
    }
    path = Path(directory) / WISDM_ARCHIVE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def corrupt(path: Path) -> Path:
    """Overwrite an archive with bytes no zip/tar reader accepts (keeps the name)."""
    Path(path).write_bytes(b"this is not an archive\x00\x01" * 8)
    return path

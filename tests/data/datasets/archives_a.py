"""Writers of tiny synthetic archives in the exact raw layout of UCI-HAR, HHAR and MotionSense.

The real archives cannot be downloaded here, so the builder tests write look-alikes: the same
member names and nesting, the same columns, headers, number formats and quirks (macOS
`__MACOSX/` junk, the UCI repository's zip-inside-a-zip, HHAR's `null` labels and irregular
per-device timestamps). Only the amount of data differs. Each writer produces a folder tree;
`zip_tree` / `nest_zip` turn it into the archives a user would download.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------
# Archive helpers


def zip_tree(src_root: Path, zip_path: Path, *, macosx_junk: bool = True) -> Path:
    """Zips every file under `src_root` (names relative to it), as macOS's Finder does.

    Finder adds directory entries and AppleDouble `__MACOSX/.../._name` files; the real
    UCI-HAR and MotionSense archives carry them, so builders must skip them.
    """
    files = sorted(p for p in Path(src_root).rglob("*") if p.is_file())
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        dirs = sorted({p.parent.relative_to(src_root) for p in files} - {Path(".")})
        for d in dirs:
            zf.writestr(d.as_posix() + "/", b"")
        for p in files:
            arcname = p.relative_to(src_root).as_posix()
            zf.write(p, arcname)
            if macosx_junk:
                parent, _, name = arcname.rpartition("/")
                junk = f"__MACOSX/{parent}/._{name}" if parent else f"__MACOSX/._{name}"
                zf.writestr(junk, b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    return Path(zip_path)


def nest_zip(inner_zip: Path, outer_zip: Path, extra_members: dict[str, bytes]) -> Path:
    """Wraps `inner_zip` in `outer_zip`, like archive.ics.uci.edu's `static/public/N/*.zip`."""
    with zipfile.ZipFile(outer_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(inner_zip, Path(inner_zip).name)
        for name, data in extra_members.items():
            zf.writestr(name, data)
    return Path(outer_zip)


def irregular_times_ns(start_ns: int, rate_hz: float, n: int, *, jitter: float, seed: int):
    """Timestamps (int64 ns) of a sensor with a nominal rate and per-sample jitter.

    `jitter` is the relative spread of each interval (0.2 -> intervals in [0.8, 1.2] / rate),
    as Android delivers `SENSOR_DELAY_FASTEST` events.
    """
    rng = np.random.default_rng(seed)
    period_ns = 1e9 / rate_hz
    intervals = period_ns * (1.0 + jitter * rng.uniform(-1.0, 1.0, size=n - 1))
    return start_ns + np.concatenate([[0.0], np.cumsum(intervals)]).round().astype(np.int64)


# ---------------------------------------------------------------------------------------------
# UCI-HAR: `UCI HAR Dataset/{train,test}/Inertial Signals/<signal>_<axis>_<split>.txt`

UCI_ACTIVITY_LABELS = (
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
)
UCI_WINDOW, UCI_STEP = 128, 64
UCI_SIGNALS = ("body_acc", "body_gyro", "total_acc")
UCI_NUM_FEATURES = 561


@dataclasses.dataclass
class UciSegment:
    """One continuous labelled segment; the writer cuts it into 128-sample, 50 %-overlap rows."""

    split: str  # "train" | "test"
    subject: int  # 1..30
    activity: int  # 1..6, index into activity_labels.txt
    total_acc: np.ndarray  # (n, 3) in g, gravity included
    body_gyro: np.ndarray  # (n, 3) in rad/s

    @property
    def num_windows(self) -> int:
        return (len(self.total_acc) - UCI_WINDOW) // UCI_STEP + 1


def uci_number(value: float) -> str:
    """One value as the UCI-HAR text files print it: ` 1.0128170e+000` (3-digit exponent)."""
    mantissa, exponent = f"{value: .7e}".split("e")
    return f" {mantissa}e{exponent[0]}{int(exponent[1:]):03d}"


def _uci_rows(matrix: np.ndarray) -> str:
    return "".join("".join(uci_number(v) for v in row) + "\n" for row in matrix)


def write_uci_har(root: Path, segments: Sequence[UciSegment]) -> Path:
    """Writes `root/UCI HAR Dataset/...` with every file of the real release; returns `root`.

    Rows keep the order of `segments` (the real files are ordered by subject, then by the
    order the activities were performed). `body_acc` is `total_acc` minus its mean (a stand-in
    for the authors' 0.3 Hz gravity filter; builders use `total_acc`). `X_*.txt` holds zeros
    with the real 561 columns; `features.txt` has placeholder names.
    """
    base = Path(root) / "UCI HAR Dataset"
    (base / "train" / "Inertial Signals").mkdir(parents=True, exist_ok=True)
    (base / "test" / "Inertial Signals").mkdir(parents=True, exist_ok=True)
    (base / "activity_labels.txt").write_text(
        "".join(f"{i} {name}\n" for i, name in enumerate(UCI_ACTIVITY_LABELS, start=1))
    )
    (base / "features.txt").write_text(
        "".join(f"{i} feature{i}()\n" for i in range(1, UCI_NUM_FEATURES + 1))
    )
    (base / "README.txt").write_text("Human Activity Recognition Using Smartphones Dataset\n")
    (base / "features_info.txt").write_text("Feature Selection\n")
    for split in ("train", "test"):
        windows = {f"{s}_{a}": [] for s in UCI_SIGNALS for a in "xyz"}
        labels, subjects = [], []
        for seg in (s for s in segments if s.split == split):
            signals = {
                "total_acc": np.asarray(seg.total_acc, float),
                "body_gyro": np.asarray(seg.body_gyro, float),
            }
            signals["body_acc"] = signals["total_acc"] - signals["total_acc"].mean(axis=0)
            for w in range(seg.num_windows):
                rows = slice(w * UCI_STEP, w * UCI_STEP + UCI_WINDOW)
                for name, values in signals.items():
                    for axis, column in zip("xyz", values[rows].T):
                        windows[f"{name}_{axis}"].append(column)
                labels.append(seg.activity)
                subjects.append(seg.subject)
        folder = base / split
        (folder / f"y_{split}.txt").write_text("".join(f"{y}\n" for y in labels))
        (folder / f"subject_{split}.txt").write_text("".join(f"{s}\n" for s in subjects))
        (folder / f"X_{split}.txt").write_text(_uci_rows(np.zeros((len(labels), 561))))
        for key, rows in windows.items():
            matrix = np.asarray(rows).reshape(len(rows), UCI_WINDOW)
            (folder / "Inertial Signals" / f"{key}_{split}.txt").write_text(_uci_rows(matrix))
    return Path(root)


def write_uci_har_zip(tree_root: Path, out_dir: Path, *, official: bool = False) -> Path:
    """`UCI HAR Dataset.zip`; with `official`, wrapped as the repository's download."""
    inner = zip_tree(tree_root, Path(out_dir) / "UCI HAR Dataset.zip")
    if not official:
        return inner
    outer = Path(out_dir) / "human+activity+recognition+using+smartphones.zip"
    nest_zip(inner, outer, {"UCI HAR Dataset.names": b"Human Activity Recognition\n"})
    inner.unlink()
    return outer


# ---------------------------------------------------------------------------------------------
# HHAR: `Activity recognition exp/{Phones,Watch}_{accelerometer,gyroscope}.csv`

HHAR_HEADER = "Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt"
HHAR_WATCH_MODELS = ("gear", "lgwatch")


@dataclasses.dataclass
class HharStream:
    """Rows of one device's sensor: Android units (m/s^2 with gravity, rad/s)."""

    user: str  # "a".."i"
    model: str  # nexus4, s3, s3mini, samsungold, gear, lgwatch
    device: str  # e.g. "nexus4_1"
    sensor: str  # "accelerometer" | "gyroscope"
    creation_ns: np.ndarray  # (n,) int64, the sensor event timestamp
    xyz: np.ndarray  # (n, 3)
    gt: Sequence[str]  # (n,) activity per row, "null" where unlabelled

    @property
    def file_name(self) -> str:
        kind = "Watch" if self.model in HHAR_WATCH_MODELS else "Phones"
        return f"{kind}_{self.sensor}.csv"


def write_hhar(root: Path, streams: Sequence[HharStream], *, arrival_lag_ms: int = 1500) -> Path:
    """Writes `root/Activity recognition exp/` with all four CSV files; returns `root`.

    Every file exists with its header even when empty. `Arrival_Time` (ms since the epoch) is
    the creation time plus a delivery lag, as in the release; `Creation_Time` is in ns.
    """
    base = Path(root) / "Activity recognition exp"
    base.mkdir(parents=True, exist_ok=True)
    lines = {
        f"{kind}_{sensor}.csv": [HHAR_HEADER]
        for kind in ("Phones", "Watch")
        for sensor in ("accelerometer", "gyroscope")
    }
    for stream in streams:
        rows = lines[stream.file_name]
        gts = [stream.gt] * len(stream.creation_ns) if isinstance(stream.gt, str) else stream.gt
        for t, (x, y, z), gt in zip(stream.creation_ns, stream.xyz, gts, strict=True):
            arrival = int(t) // 1_000_000 + arrival_lag_ms
            rows.append(
                f"{len(rows) - 1},{arrival},{int(t)},{float(x)!r},{float(y)!r},{float(z)!r},"
                f"{stream.user},{stream.model},{stream.device},{gt}"
            )
    for name, rows in lines.items():
        (base / name).write_text("\n".join(rows) + "\n")
    return Path(root)


def write_hhar_zip(tree_root: Path, out_dir: Path, *, official: bool = False) -> Path:
    """`Activity recognition exp.zip`; with `official`, inside the UCI repository's download."""
    inner = zip_tree(tree_root, Path(out_dir) / "Activity recognition exp.zip", macosx_junk=False)
    if not official:
        return inner
    still = io.BytesIO()
    with zipfile.ZipFile(still, "w") as zf:
        zf.writestr("Still exp/Phones_accelerometer.csv", HHAR_HEADER + "\n")
    outer = Path(out_dir) / "heterogeneity+activity+recognition.zip"
    nest_zip(inner, outer, {"Still exp.zip": still.getvalue()})
    inner.unlink()
    return outer


# ---------------------------------------------------------------------------------------------
# MotionSense: `A_DeviceMotion_data/<act>_<trial>/sub_<N>.csv`

MOTIONSENSE_COLUMNS = (
    "attitude.roll",
    "attitude.pitch",
    "attitude.yaw",
    "gravity.x",
    "gravity.y",
    "gravity.z",
    "rotationRate.x",
    "rotationRate.y",
    "rotationRate.z",
    "userAcceleration.x",
    "userAcceleration.y",
    "userAcceleration.z",
)
# The release's trial numbers per activity (codes/README.md of the dataset repository).
MOTIONSENSE_TRIALS = {
    "dws": (1, 2, 11),
    "ups": (3, 4, 12),
    "wlk": (7, 8, 15),
    "jog": (9, 16),
    "std": (6, 14),
    "sit": (5, 13),
}


@dataclasses.dataclass
class MotionSenseTrial:
    """One subject's trial, in CoreMotion units: attitude rad, gravity/userAcc g, rate rad/s."""

    activity: str  # dws, ups, wlk, jog, sit, std
    trial: int
    subject: int  # 1..24
    gravity: np.ndarray  # (n, 3)
    user_acceleration: np.ndarray  # (n, 3)
    rotation_rate: np.ndarray  # (n, 3)
    attitude: np.ndarray | None = None  # (n, 3) roll, pitch, yaw; zeros when None


def write_motionsense(root: Path, trials: Sequence[MotionSenseTrial]) -> Path:
    """Writes `root/A_DeviceMotion_data/<act>_<trial>/sub_<N>.csv`; returns `root`.

    The header starts with an empty name: the files were written by pandas with its index,
    so the first column is the row number (`Unnamed: 0` when read back by pandas).
    """
    for trial in trials:
        n = len(trial.gravity)
        attitude = np.zeros((n, 3)) if trial.attitude is None else trial.attitude
        table = np.column_stack(
            [attitude, trial.gravity, trial.rotation_rate, trial.user_acceleration]
        )
        folder = Path(root) / "A_DeviceMotion_data" / f"{trial.activity}_{trial.trial}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["," + ",".join(MOTIONSENSE_COLUMNS)]
        lines += [f"{i}," + ",".join(repr(float(v)) for v in row) for i, row in enumerate(table)]
        (folder / f"sub_{trial.subject}.csv").write_text("\n".join(lines) + "\n")
    return Path(root)


def write_motionsense_zip(tree_root: Path, out_dir: Path) -> Path:
    """`A_DeviceMotion_data.zip` as in the dataset repository's `data/` folder."""
    return zip_tree(tree_root, Path(out_dir) / "A_DeviceMotion_data.zip")

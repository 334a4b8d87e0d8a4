"""The data defaults of configs/default.py, for tests that open builders or datasets directly.

The library takes these as required arguments; tests read them from the one place they live.
"""

import numpy as np

from configs import default
from harjax.data.builder import HARConfig

DATA = default.get_config().data
BUILDER_KEYS = ("sample_rate", "window_length", "window_stride", "max_gap_s")


def har_config(**overrides) -> HARConfig:
    """A HARConfig with the default rate, window and gap limit, `overrides` replacing them."""
    return HARConfig(**{key: DATA[key] for key in BUILDER_KEYS} | overrides)


def dataset_options(**overrides) -> dict:
    """Keyword arguments of `source.load_dataset` at the defaults, `overrides` replacing them."""
    return {key: DATA[key] for key in (*BUILDER_KEYS, "channels")} | overrides


# Pinned for the real-file tests, so that a change of the defaults does not change what the
# excerpts must give.
REAL_CONFIG = {"sample_rate": 50.0, "window_length": 128, "window_stride": 64, "max_gap_s": 0.25}


def build_real(cls, data_dir, manual_dir):
    """A builder of `cls` at REAL_CONFIG on the files in `manual_dir`, prepared."""
    builder = cls(config=har_config(**REAL_CONFIG), data_dir=data_dir, manual_dir=manual_dir)
    builder.download_and_prepare()
    return builder


def split_windows(builder, split: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(signals (N, length, channels), class names, subject names) of one prepared split."""
    source = builder.as_data_source()[split]
    records = [source[i] for i in range(len(source))]
    subjects = builder.info.metadata["subject_names"]
    return (
        np.stack([r["signal"] for r in records]),
        [builder.CLASS_NAMES[r["label"]] for r in records],
        [subjects[r["subject"]] for r in records],
    )

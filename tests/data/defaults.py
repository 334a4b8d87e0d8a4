"""The data defaults of configs/default.py, for tests that open builders or datasets directly.

The library takes these as required arguments; tests read them from the one place they live.
"""

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

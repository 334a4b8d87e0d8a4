"""The study on UCI-HAR: the fair protocol on the benchmark the paper reports, official split.

    python launch/fewshot.py --config configs/study_uci_har.py \
        --config.data.manual_dir ../shared/data/uci_har_reduced \
        --workdir docs/results/uci_har/runs

`configs/study.py`'s protocol (learning rates 1e-3 and 3e-3 for every neural variant, chosen
per (variant, k) on validation; 100 or 300 trees for `classical`; 20 epochs clipped to 60-400
steps, early stopping after 4 validations without a better macro-F1) on UCI-HAR's own split:
test = the release's 9 test subjects, always; validation = subjects drawn from the 21 training
subjects (`data.val_fraction`), one draw per split seed, so `sweep.splits` 3 x `sweep.seeds` 3
gives 9 pairs per comparison. Every variant, `cnn` included; every neural variant trains on
windows rotated within +-15 degrees (`data.augment`, chosen on validation). UCI-HAR's windows
are the release's (128 samples at 50 Hz, 50 % overlap): the model's window is theirs.
Resumable: rerun the same command. `data.manual_dir` is the folder holding
`UCI HAR Dataset.zip` (the full release or the reduced real copy in ../shared/data; name
which in every table).
"""

from configs import presets
from configs.study import get_config as study_config


def get_config(arg: str | None = None):
    c = study_config()
    c.dataset = "uci_har"
    c.data.split = "official"
    c.data.sample_rate = 50.0
    c.data.window_length = 128
    # Chosen on UCI-HAR validation (docs/results/defaults/README.md, "Augmentation"): rotation
    # within +-15 degrees, for every neural variant alike.
    c.data.augment.transforms = "rotation"
    c.data.augment.rotation_degrees = 15.0
    return presets.apply(c, arg)

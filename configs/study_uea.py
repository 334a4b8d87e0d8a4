"""The study on a UEA accelerometer set: the fair protocol on the archive's official split.

    python launch/fewshot.py --config configs/study_uea.py --config.dataset uea:Epilepsy \
        --config.data.manual_dir ../shared/data/uea/Epilepsy --workdir docs/results/uea/Epilepsy

(and the same for UWaveGestureLibrary and Handwriting). `configs/study.py`'s protocol
(learning rates 1e-3 and 3e-3 for every neural variant, 100 or 300 trees, chosen per (variant,
k) on validation; 20 epochs clipped to 60-400 steps; early stopping after 4 validations) on
the archive's TRAIN/TEST files: test = the official TEST file, always; validation = 20 % of
each class's TRAIN cases, one seeded draw; 5 seeds, so 5 pairs per comparison. k = 1, 5 and
all training cases; a k that TRAIN cannot supply for every class is left out with a warning
(Handwriting: no 5-shot). Each case is resampled to the 128-sample window (docs/datasets/uea.md);
the sets are accelerometer-only (the `acc` channel path). No augmentation: what UCI-HAR's
validation chose was not checked on these sets. Resumable: rerun the same command.
"""

from configs import presets
from configs.study import get_config as study_config


def get_config(arg: str | None = None):
    c = study_config()
    c.dataset = "uea:Epilepsy"  # override: --config.dataset uea:NAME
    c.data.channels = "acc"
    c.sweep.shots = "1,5"
    c.sweep.seeds = 5
    c.sweep.splits = 1
    return presets.apply(c, arg)

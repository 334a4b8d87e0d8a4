"""The depth study: does the benefit of pretrained weights appear as more layers are kept?

    # k = 10 at 1, 3, 6, 12 and 30 of smollm2-135m's 30 layers (WORKDIR/layers<N>/)
    python launch/fewshot.py --config configs/study_depth.py \
        --config.data.manual_dir ../shared/data/uci_har_reduced \
        --workdir docs/results/depth/runs/k10
    # k = all at 3 and 30 layers
    python launch/fewshot.py --config configs/study_depth.py:sweep.shots=all \
        --config.sweep.num_layers 3,30 \
        --config.data.manual_dir ../shared/data/uci_har_reduced \
        --workdir docs/results/depth/runs/kall

The UCI-HAR study's protocol exactly (`configs/study_uci_har.py`: official split, 3
validation draws x 3 seeds = 9 pairs, learning rates 1e-3 / 3e-3 chosen per (variant, k,
depth) on validation, the same budget, early stopping and augmentation), with only
`pretrained` and its two controls, once per depth (`sweep.num_layers`): every paired
comparison is within one depth. `none` and `classical` have no depth: their rows are the UCI-HAR
study's (same splits, seeds and k-shot draws). Resumable: rerun the same command.
"""

from configs import presets
from configs.study_uci_har import get_config as uci_har_study


def get_config(arg: str | None = None):
    c = uci_har_study()
    c.sweep.variants = "pretrained,random,shuffled"
    c.sweep.shots = "10"
    c.sweep.with_all = False
    c.sweep.num_layers = "1,3,6,12,30"
    return presets.apply(c, arg)

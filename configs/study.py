"""The study: the fair protocol at full size, run in the background on a 2-core CPU.

    python launch/fewshot.py --config configs/study.py --workdir docs/results/study/runs

3 subject splits x 3 seeds x k = 1, 5, 10, all; every variant (pretrained, random, shuffled,
none, scratch, cnn, classical, rocket) with the same learning-rate grid for every neural variant
(chosen per (variant, k) on validation), a forest-size grid for classical and a ridge grid for
rocket (`pip install -e '.[baselines]'`); budget 20 epochs clipped to
60-400 steps with early stopping (patience 4 validations). Resumable: rerun the same command.
ARG (configs/presets.py) makes variants of the study, and the `sweep` section takes more axes,
e.g. the study at every depth (one sweep per depth in WORKDIR/layers<N>/, pairs within a depth):

    python launch/fewshot.py --config configs/study.py:float32 \
        --config.sweep.num_layers 1,3,6,12,30 --workdir runs/study_depths
"""

from configs import presets
from configs.fewshot import get_config as fewshot_config


def get_config(arg: str | None = None):
    c = fewshot_config()
    c.train.num_steps = 400
    c.train.epochs = 20.0
    c.train.min_steps = 60
    c.train.patience = 4
    c.train.checkpoint_every = 50
    c.sweep.seeds = 3
    c.sweep.splits = 3
    c.sweep.learning_rates = "1e-3,3e-3"
    c.sweep.classical_trees = "100,300"
    # rocket (the `baselines` extra) too; its ridge regularisation from the published range
    # (RidgeClassifierCV's 1e-3..1e3) up to where 49,728 standardised features start to shrink.
    c.sweep.variants = "pretrained,random,shuffled,none,scratch,cnn,classical,rocket"
    c.sweep.rocket_alphas = "1e-1,1e1,1e3,1e5"
    return presets.apply(c, arg)

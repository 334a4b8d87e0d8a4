"""The default k-shot sweep (`python launch/fewshot.py`): the fair protocol, sized for a 2-core CPU.

Every variant (pretrained, its random and shuffled controls, none, scratch, classical) on 2
subject splits x 2 seeds x k = 1, 5, 10, all; paired comparisons with 95 % intervals in
results.md. smollm2-135m keeps its first 3 layers; the projection emits 16 tokens (strides
2 x 4); batch 16; the budget is 10 epochs of the run's training windows, clipped to 40-200
steps, with early stopping after 3 validations (every 10 steps, at most 256 windows) without a
better macro-F1. Measured wall time is in the README. The full study is `configs/study.py`.
The sweep (`sweep` section) is what `launch/fewshot.py`, `notebooks/fewshot.ipynb` and
`harjax.sweeps.fewshot.run_sweep(get_config(), workdir)` all run; ARG: configs/presets.py.
"""

from configs import presets
from configs.default import get_config as default_config


def get_config(arg: str | None = None):
    c = default_config()
    c.backbone.num_layers = 3
    c.projection.strides = (2, 4)
    c.train.batch_size = 16
    c.train.num_steps = 200  # the largest budget (k = all)
    c.train.epochs = 10.0
    c.train.min_steps = 40
    c.train.patience = 3
    c.train.eval_every = 10
    c.train.checkpoint_every = 40
    c.train.max_eval_windows = 256
    c.train.eval_batch_size = 128
    c.optim.warmup_steps = 10
    c.classical.num_trees = 200
    c.sweep.seeds = 2
    c.sweep.splits = 2
    return presets.apply(c, arg)

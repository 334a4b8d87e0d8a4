"""The default k-shot sweep (`python launch/fewshot.py`): sized to finish on a 2-core CPU.

smollm2-135m keeps its first 3 layers; the projection emits 16 tokens (strides 2 x 4); 120 steps
of batch 16 per run; validation on at most 256 windows every 20 steps. Measured timings are in
the README. Scale up for real studies with e.g. `--config.backbone.num_layers 8
--config.train.num_steps 500 --config.projection.strides 2,2`.
"""

from configs.default import get_config as default_config


def get_config(arg: str | None = None):
    c = default_config(arg)
    c.backbone.num_layers = 3
    c.projection.strides = (2, 4)
    c.train.batch_size = 16
    c.train.num_steps = 120
    c.train.eval_every = 20
    c.train.checkpoint_every = 40
    c.train.max_eval_windows = 256
    c.train.eval_batch_size = 128
    c.optim.warmup_steps = 10
    c.classical.num_trees = 200
    return c

"""The linear probe (`python launch/probe.py`): frozen features per layer
(`harjax.sweeps.probe`).

The default experiment's data, projection and readout options, with 6 of smollm2-135m's layers
kept so that more layers are visible; all 30 layers over 3 seeds is
`--config configs/probe.py:backbone.num_layers=0,probe.seeds=3` (docs/results/depth/README.md).
`model.final_norm`, `model.skip_first_token` and `model.pooling` are the readout options the
probe shares with the HAR model. ARG: configs/presets.py.
"""

import ml_collections

from configs import presets
from configs.default import get_config as default_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = default_config()
    c.backbone.num_layers = 6
    c.probe = ml_collections.ConfigDict()
    c.probe.variants = ("pretrained", "random", "shuffled")  # projection-only is always added
    c.probe.c_grid = (0.01, 0.1, 1.0, 10.0)  # logistic regression C, chosen on validation
    c.probe.max_iter = 1000
    c.probe.batch_size = 128  # windows per jitted forward
    # Seeds config.seed, config.seed + 1, ...: each draws the projection's initialisation and
    # the controls' weights (random, shuffled); the split (data.split_seed) stays the same.
    c.probe.seeds = 1
    return presets.apply(c, arg)

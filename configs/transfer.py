"""Cross-dataset transfer (`python launch/transfer.py`): the few-shot sizes plus a pre-training.

Labels are the common label space (`data.label_key = 'common_label'`); all datasets are
resampled to `data.sample_rate` and cut into the same windows. Pre-training on the sources runs
`pretrain.num_steps` steps (validation on the sources' validation subjects); each k-shot
fine-tuning on the target runs `train.num_steps` steps, from the pre-trained tree or from a fresh
initialisation. Override e.g. `--config.pretrain.num_steps 2000 --config.data.channels acc`.

The `sweep` section is the transfer sweep's axes (folds, k, seeds), read by
`harjax.sweeps.transfer.run_transfer(config, workdir)`; the launch script's `--source`,
`--target`, `--leave-one-dataset-out`, `--shots` and `--seeds` only write into it. ARG:
configs/presets.py.
"""

import ml_collections

from configs import presets
from configs.fewshot import get_config as fewshot_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = fewshot_config()
    c.data.label_key = "common_label"
    c.data.split = "official"  # the official split where a dataset has one (UCI-HAR), else subjects
    c.pretrain = ml_collections.ConfigDict()
    c.pretrain.num_steps = 600
    c.pretrain.eval_every = 100
    c.pretrain.checkpoint_every = 200
    # Not the few-shot sweep's axes: transfer sweeps folds x k x seeds (x both inits).
    c.sweep = ml_collections.ConfigDict()
    c.sweep.source = ""  # comma-separated datasets to pre-train on
    c.sweep.target = ""  # the dataset to transfer to
    c.sweep.leave_one_dataset_out = ""  # or: each of these in turn the target, the rest sources
    c.sweep.shots = "0,1,5,10"  # 0 = zero-shot (no fine-tuning), 'all' = the whole split
    c.sweep.seeds = 3
    return presets.apply(c, arg)

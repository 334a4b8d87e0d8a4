"""Three synthetic CSV datasets for transfer tests (sweeps.transfer, data concatenation).

They share the common labels walk/sit/stand with the same physics (walk: 2 Hz swing, sit:
gravity on z, stand: gravity on x) but different subjects, rates and extra classes: `a` adds
`lie` (common, absent elsewhere), `b` records at 100 Hz and adds `fidget` (no common label),
`c` adds `run`.
"""

import numpy as np

from configs.transfer import get_config as transfer_config
from tests.helpers import tiny_config

HEADER = "timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,label,subject"
SHARED = ("walk", "sit", "stand")


def _signal(label, t, rng, channels):
    x = rng.normal(0.0, 0.3, (len(t), 6))
    swing = np.sin(2 * np.pi * 2.0 * t)
    if label == "walk":
        x[:, 0] += 3 * swing
        x[:, 3] += swing
    elif label in ("sit", "fidget"):
        x[:, 2] += 9.8
    elif label == "stand":
        x[:, 0] += 9.8
    elif label == "lie":
        x[:, 1] += 9.8
    elif label == "run":
        x[:, 1] += 6 * np.sin(2 * np.pi * 3.0 * t)
    return x[:, :channels]


def write_dataset(root, labels, subjects, *, rate=50.0, seed=0, channels=6, seconds=6.0):
    """One CSV per (subject, label) of `seconds` at `rate` Hz; returns the csv: spec."""
    root.mkdir(parents=True)
    header = HEADER if channels == 6 else HEADER.replace(",gyro_x,gyro_y,gyro_z", "")
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    for subject in subjects:
        for label in labels:
            x = _signal(label, t, rng, channels)
            lines = [header] + [
                f"{ti:.4f}," + ",".join(f"{v:.4f}" for v in row) + f",{label},{subject}"
                for ti, row in zip(t, x)
            ]
            (root / f"{subject}_{label}.csv").write_text("\n".join(lines) + "\n")
    return f"csv:{root}"


def make_config(data_dir, variant="none"):
    c = tiny_config(variant)
    c.pretrain = transfer_config().pretrain
    c.sweep = transfer_config().sweep  # the transfer sweep's axes: folds, shots, seeds
    c.data.label_key = "common_label"
    c.data.data_dir = data_dir
    c.data.window_stride = 32
    # Pre-training and fine-tuning share one compiled step: same step count (the schedule).
    c.pretrain.num_steps = c.train.num_steps = 12
    c.pretrain.eval_every = c.train.eval_every = 6
    c.pretrain.checkpoint_every = c.train.checkpoint_every = 12
    c.optim.warmup_steps = 2
    c.optim.learning_rate = 1e-2
    return c


def sweep_of(config, *, source=(), target="", leave_one_out=(), shots="0", seeds=1):
    """`config` with its `sweep` section set to these folds, k and seeds (what the flags do)."""
    config.sweep.update(
        source=",".join(source),
        target=target,
        leave_one_dataset_out=",".join(leave_one_out),
        shots=shots,
        seeds=seeds,
    )
    return config


def write_all(base):
    """The datasets of the module docstring under `base`; {name: csv spec, 'data_dir': ...}."""
    subjects = lambda p: [f"{p}{i}" for i in range(4)]  # 2 train, 1 val, 1 test each
    return {
        "a": write_dataset(base / "a", [*SHARED, "lie"], subjects("a"), seed=0),
        "b": write_dataset(base / "b", [*SHARED, "fidget"], subjects("b"), rate=100.0, seed=1),
        "c": write_dataset(base / "c", [*SHARED, "run"], subjects("c"), seed=2),
        "no_shared": write_dataset(base / "d", ["run", "bike"], subjects("d"), seed=3),
        "acc_only": write_dataset(base / "e", list(SHARED), subjects("e"), seed=4, channels=3),
        "data_dir": str(base / "tfds"),
    }

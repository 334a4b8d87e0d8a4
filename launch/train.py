"""Train one model and report test metrics.

    python launch/train.py [--dataset smartwatch] [--backbone smollm2-135m] [--workdir runs/train]
        [--config configs/default.py] [--config.model.variant random] [--config.lora.rank 4]

Writes WORKDIR/{config.json, metrics.jsonl, tensorboard/, checkpoints/, metrics.json,
confusion.png}. Rerunning resumes from the last checkpoint (or returns the finished result).
"""

import json

from absl import flags

from harjax import cli, variants
from harjax.data.bundle import load_data
from harjax.run import loop
from harjax.run.result import RESULT_FILE
from harjax.run.validate import check_config

cli.define_common_flags("default.py")
flags.DEFINE_string("variant", None, f"Model variant, one of {variants.NAMES}.")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {argv[1:]}")
    config = cli.resolved_config()
    if flags.FLAGS.variant:
        variants.get(flags.FLAGS.variant)  # an unknown name lists the known ones
        config.model.variant = flags.FLAGS.variant
    cli.validate_dataset(config.dataset)
    workdir = cli.prepare_workdir(flags.FLAGS.workdir, "runs/train")
    check_config(config)  # before the data loads, as the loop does
    data = load_data(config)
    print(data.describe())
    result = loop.train_and_evaluate(config, workdir, data=data, overwrite=flags.FLAGS.overwrite)
    summary = {k: result[k] for k in ("variant", "accuracy", "macro_f1", "trainable_params")}
    summary["per_class_f1"] = result["test"]["per_class_f1"]
    print(json.dumps(summary, indent=2))
    print(f"wrote {workdir / RESULT_FILE} and {workdir / 'confusion.png'}")


if __name__ == "__main__":
    cli.run(main)

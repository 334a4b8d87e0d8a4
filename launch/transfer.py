"""Cross-dataset transfer in the common label space, compared with no pre-training.

    python launch/transfer.py --source uci_har,hhar --target motionsense
        [--shots 0,1,5,10] [--seeds 3] [--channels acc] [--backbone smollm2-135m]
        [--workdir runs/transfer] [--config.pretrain.num_steps 600]
    python launch/transfer.py --leave-one-dataset-out uci_har,hhar,motionsense,wisdm --channels acc

Sources and target are registered names or csv:DIR folders whose labels are common-label names
(walk, sit, stand, ...). k = 0 evaluates the pre-trained model on the target without training.
Writes WORKDIR/results.csv (source, target, init, shots, seed, accuracy, macro_f1, ...),
results.md, transfer.png and one directory per fold; rerun the same command to resume.
"""

from absl import flags

from harjax import cli
from harjax.sweeps import folds as fold_plans
from harjax.sweeps import transfer

cli.define_common_flags("transfer.py")
flags.DEFINE_string("source", "", "Comma-separated source datasets to pre-train on.")
flags.DEFINE_string("target", "", "Target dataset (default: --dataset when given).")
flags.DEFINE_string(
    "leave_one_dataset_out",
    "",
    "Comma-separated datasets: each in turn is the target, the others the sources.",
)
flags.DEFINE_alias("leave-one-dataset-out", "leave_one_dataset_out")
flags.DEFINE_string("shots", "0,1,5,10", "Comma-separated k values; 0 = zero-shot, 'all' = all.")
flags.DEFINE_integer("seeds", 3, "Seeds per (init, k).")
flags.DEFINE_enum("channels", None, ["all", "acc"], "Channels ('acc' lets WISDM join).")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    config = cli.resolved_config()
    if f.channels:
        config.data.channels = f.channels
    target = f.target or (f.dataset or "")
    if f.target and f.dataset and f.target != f.dataset:
        raise ValueError(f"--dataset {f.dataset!r} and --target {f.target!r} disagree")
    folds = fold_plans.plan_folds(
        fold_plans.parse_names(f.source, "source"),
        target,
        fold_plans.parse_names(f.leave_one_dataset_out, "leave-one-dataset-out"),
    )
    for name in dict.fromkeys(n for fold in folds for n in (*fold.sources, fold.target)):
        cli.validate_dataset(name)
    fold_plans.check_config(config)
    shots = transfer.parse_shots(f.shots)
    workdir = cli.prepare_workdir(f.workdir, "runs/transfer")
    transfer.run_transfer(
        config, workdir, folds=folds, shots=shots, seeds=f.seeds, overwrite=f.overwrite
    )
    print((workdir / "results.md").read_text())
    print(f"wrote {workdir / 'results.csv'}, results.md, transfer.png")


if __name__ == "__main__":
    cli.run(main)

"""Cross-dataset transfer in the common label space, compared with no pre-training.

    python launch/transfer.py --source uci_har,hhar --target motionsense
        [--shots 0,1,5,10] [--seeds 3] [--channels acc] [--backbone smollm2-135m]
        [--workdir runs/transfer] [--config.pretrain.num_steps 600]
    python launch/transfer.py --leave-one-dataset-out uci_har,hhar,motionsense,wisdm --channels acc

Sources and target are registered names or csv:DIR folders whose labels are common-label names
(walk, sit, stand, ...). k = 0 evaluates the pre-trained model on the target without training.
Writes WORKDIR/results.csv (source, target, init, shots, seed, accuracy, macro_f1, ...),
results.md, transfer.png and one directory per fold; rerun the same command to resume.
The folds, k and seeds are the config's `sweep` section (configs/transfer.py); the flags only
write into it (`--seeds 3` is `--config.sweep.seeds 3`).
"""

from absl import flags

from harjax import cli
from harjax.sweeps import transfer

cli.define_common_flags("transfer.py")
flags.DEFINE_string("source", None, "Comma-separated source datasets to pre-train on.")
flags.DEFINE_string("target", None, "Target dataset (default: --dataset when given).")
flags.DEFINE_string(
    "leave_one_dataset_out",
    None,
    "Comma-separated datasets: each in turn is the target, the others the sources.",
)
flags.DEFINE_alias("leave-one-dataset-out", "leave_one_dataset_out")
flags.DEFINE_string("shots", None, "Comma-separated k values; 0 = zero-shot, 'all' = all.")
flags.DEFINE_integer("seeds", None, "Seeds per (init, k).")
flags.DEFINE_enum("channels", None, ["all", "acc"], "Channels ('acc' lets WISDM join).")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    config = cli.resolved_config()
    if f.target and f.dataset and f.target != f.dataset:
        raise ValueError(f"--dataset {f.dataset!r} and --target {f.target!r} disagree")
    # Flags only write into the config's `sweep` section; run_transfer reads it.
    for name in ("source", "leave_one_dataset_out", "shots", "seeds"):
        if getattr(f, name) is not None:
            config.sweep[name] = getattr(f, name)
    if f.target or f.dataset:
        config.sweep.target = f.target or f.dataset
    if f.channels:
        config.data.channels = f.channels
    axes = transfer.transfer_axes(config)
    for name in dict.fromkeys(n for fold in axes.folds for n in (*fold.sources, fold.target)):
        cli.validate_dataset(name)
    workdir = cli.prepare_workdir(f.workdir, "runs/transfer")
    transfer.run_transfer(config, workdir, overwrite=f.overwrite)
    print((workdir / "results.md").read_text())
    print(f"wrote {workdir / 'results.csv'}, results.md, transfer.png")


if __name__ == "__main__":
    cli.run(main)

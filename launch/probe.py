"""Linear probe on frozen pooled features, per backbone layer and variant.

    python launch/probe.py [--dataset smartwatch] [--backbone smollm2-135m] [--workdir runs/probe]
        [--config configs/probe.py] [--config.backbone.num_layers 4]
        [--config.model.skip_first_token True] [--config.probe.c_grid 0.1,1]
        [--config.probe.seeds 3]

Writes WORKDIR/{probe.csv, probe.md, probe.png}: one row per (variant, layer, seed) for the
pretrained, random and shuffled backbones, plus projection-only (no backbone); probe.md gives
each layer's mean over seeds with an interval and pretrained - control paired on seed.
Resumable: probe.csv is rewritten after every seed, and rerunning the same command (or one
with more seeds) keeps the finished seeds; `--overwrite` starts afresh.
"""

from absl import flags

from harjax import cli
from harjax.sweeps import probe

cli.define_common_flags("probe.py")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {argv[1:]}")
    config = cli.resolved_config()
    probe.check_config(config)  # before the dataset or the backbone loads
    cli.validate_dataset(config.dataset)
    workdir = cli.prepare_workdir(flags.FLAGS.workdir, "runs/probe")
    probe.run_probe(config, workdir, overwrite=flags.FLAGS.overwrite)
    print((workdir / "probe.md").read_text())
    print(f"wrote {workdir / 'probe.csv'}, {workdir / 'probe.md'} and {workdir / 'probe.png'}")


if __name__ == "__main__":
    cli.run(main)

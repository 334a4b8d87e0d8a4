"""The main job: a k-shot sweep over shots x seeds x variants, resumable.

    python launch/fewshot.py [--dataset smartwatch] [--backbone smollm2-135m]
        [--workdir runs/fewshot] [--shots 1,5,10] [--seeds 3]
        [--variants pretrained,random,none,scratch,classical]
        [--lora-ranks 0,16] [--kernel-sizes "3;3,5,9,15"] [--proj-channels 16,64]
        [--strides "4;2,2,2"] [--layers 1,6] [--ablate projection.norm=channel]
        [--config.train.num_steps 200]
        [--splits 3] [--learning-rates 1e-3,2e-3,5e-3] [--classical-trees 100,300]

Writes WORKDIR/results.csv, results.md (mean ± std tables of the settings chosen on validation,
paired differences against pretrained with 95 % intervals and their verdicts), shots.png,
convergence.png, params.png, differences.png and one run directory per (variant, setting,
split, k, seed); with a depth axis (`--config.sweep.num_layers 1,3,30`) all of these per depth
in WORKDIR/layers<N>/, and WORKDIR/depth.md, depth.png side by side. Rerun the same command to
resume after an interruption.

The sweep is the config's `sweep` section (configs/fewshot.py by default; the study is
`--config configs/study.py`): `harjax.sweeps.fewshot.run_sweep(config, workdir)` reads it, and
the flags above only write into it (`--seeds 3` is `--config.sweep.seeds 3`; the ablation flags
are rows of `config.sweep.ablate`), so the notebook and the tests run the same sweep from the
same config.
"""

import time

from absl import flags

from harjax import cli
from harjax.sweeps import fewshot

cli.define_common_flags("fewshot.py")
flags.DEFINE_string("shots", None, "Comma-separated k values ('all' is always added).")
flags.DEFINE_integer("seeds", None, "Seeds per (variant, k).")
flags.DEFINE_list("variants", None, "Base variants to run.")
flags.DEFINE_list("lora_ranks", [], "Extra 'pretrained' rows with these LoRA ranks (0 = frozen).")
flags.DEFINE_string("kernel_sizes", "", "Extra rows: projection kernel-size sets, ';'-separated.")
flags.DEFINE_list("proj_channels", [], "Extra rows: projection channels per branch.")
flags.DEFINE_string("strides", "", "Extra rows: projection stride lists, ';'-separated.")
flags.DEFINE_list("layers", [], "Extra rows: backbone layers kept.")
flags.DEFINE_multi_string(
    "ablate",
    [],
    "Extra 'pretrained' row with one config field changed, section.field=value (repeatable), "
    "e.g. --ablate projection.norm=channel --ablate model.skip_first_token=true. Any ablation "
    "flag replaces config.sweep.ablate.",
)
flags.DEFINE_integer(
    "splits", None, "Subject splits: split seeds config.data.split_seed + 0, 1, ..., N - 1."
)
flags.DEFINE_list(
    "learning_rates",
    None,
    "Learning rates every neural variant tries; the best mean validation macro-F1 per "
    "(variant, k) is kept (default: config.optim.learning_rate).",
)
flags.DEFINE_list(
    "classical_trees",
    None,
    "Forest sizes classical tries, chosen on validation (default: config.classical.num_trees).",
)
for _name in ("lora_ranks", "kernel_sizes", "proj_channels", "learning_rates", "classical_trees"):
    flags.DEFINE_alias(_name.replace("_", "-"), _name)  # --lora-ranks as in the README


def _int_lists(text: str, flag: str) -> list[tuple[int, ...]]:
    out = []
    for group in filter(None, (g.strip() for g in text.split(";"))):
        try:
            out.append(tuple(int(x) for x in group.split(",")))
        except ValueError:
            raise ValueError(f"--{flag}: {group!r} is not a list of integers") from None
    return out


def _ints(values: list[str], flag: str) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ValueError(f"--{flag}: {values} must be integers") from None


def _ablation_rows(f) -> list[str]:
    """The ablation flags as `config.sweep.ablate` rows, in the order the tables list them."""
    spell = lambda value: ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
    rows = []
    for key, values in (
        ("lora.rank", _ints(f.lora_ranks, "lora_ranks")),
        ("projection.kernel_sizes", _int_lists(f.kernel_sizes, "kernel_sizes")),
        ("projection.channels", _ints(f.proj_channels, "proj_channels")),
        ("projection.strides", _int_lists(f.strides, "strides")),
        ("backbone.num_layers", _ints(f.layers, "layers")),
    ):
        rows += [f"{key}={spell(value)}" for value in values]
    return rows + list(f.ablate)


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {argv[1:]}")
    config = cli.resolved_config()
    f = flags.FLAGS
    # Flags only write into the config's `sweep` section; run_sweep reads it (as the notebook's
    # and the tests' calls do).
    for name in ("shots", "seeds", "splits"):
        if getattr(f, name) is not None:
            config.sweep[name] = getattr(f, name)
    for name in ("variants", "learning_rates", "classical_trees"):
        if getattr(f, name) is not None:
            config.sweep[name] = ",".join(getattr(f, name))
    ablations = _ablation_rows(f)
    if ablations:
        config.sweep.ablate = ";".join(ablations)
    cli.validate_dataset(config.dataset)
    workdir = cli.prepare_workdir(f.workdir, "runs/fewshot")
    start = time.perf_counter()
    fewshot.run_sweep(config, workdir, overwrite=f.overwrite)
    report = fewshot.report_path(config, workdir)
    print(report.read_text())
    minutes, seconds = divmod(time.perf_counter() - start, 60)
    print(f"this invocation took {int(minutes)} min {seconds:.0f} s (finished runs are skipped)")
    tables = "results.csv, results.md, shots.png, convergence.png, differences.png"
    if fewshot.depth_axis(config):
        print(f"wrote {report}, depth.png and, per depth, {workdir}/layers<N>/ {tables}")
    else:
        print(f"wrote {workdir}/ {tables}")


if __name__ == "__main__":
    cli.run(main)

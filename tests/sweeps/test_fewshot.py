"""The few-shot sweep's table and its --shots parsing (verdicts: tests/sweeps/test_protocol.py)."""

import pytest

from harjax.sweeps import core
from harjax.sweeps.fewshot import summary_table
from tests.reporting.test_tables import _rows


def test_summary_table_exact():
    table = summary_table(_rows())
    assert table == (
        "| k | variant | runs | accuracy | macro-F1 | trainable params | train s "
        "| steps to 95 % |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|\n"
        "| 1 | pretrained | 3 | 0.700 ± 0.100 | 0.600 ± 0.100 | 1,000 | 20.0 | 200 |\n"
        "| 1 | random | 1 | 0.400 | 0.300 | 1,000 | 12.0 | 150 |\n"
        "| 1 | classical | 3 | 0.610 ± 0.017 | 0.560 ± 0.017 | 60 | 1.0 | – |\n"
        "| 10 | classical | 1 | 0.750 | 0.700 | 400 | 1.5 | – |\n"
        "| all | pretrained | 2 | 0.920 ± 0.014 | 0.910 ± 0.014 | 1,000 | 42.0 | 500 (1/2) |\n"
        "| all | classical | 2 | 0.860 ± 0.014 | 0.820 ± 0.028 | 6,000 | 3.0 | – |\n"
        "| all | mine | 1 | 0.500 | 0.500 | 12 | 1.0 | 10 |\n"
    )
    # A given order wins; variants it does not name still appear, after it.
    reordered = summary_table(_rows(), variant_order=["classical", "pretrained"])
    lines = reordered.splitlines()[2:]
    assert [line.split(" | ")[1] for line in lines] == [
        "classical",
        "pretrained",
        "random",
        "classical",
        "classical",
        "pretrained",
        "mine",
    ]


def test_fewshot_shots_are_sorted_unique_positive_with_all_last():
    assert core.parse_shots("10,1,5,5") == [1, 5, 10, "all"]
    assert core.parse_shots("") == ["all"]
    for bad in ("0", "-1", "x", "1.5"):
        with pytest.raises(ValueError, match="--shots"):
            core.parse_shots(bad)


def test_transfer_shots_admit_zero_and_no_implicit_all():
    assert core.parse_shots("5,0,1", zero_shot=True, always_all=False) == [0, 1, 5]
    with pytest.raises(ValueError, match="no value"):
        core.parse_shots("", zero_shot=True, always_all=False)


def test_settings_are_typed_like_the_config_field_and_bad_ones_name_the_text():
    from configs.default import get_config
    from harjax.sweeps.axes import make_variants, parse_setting

    config = get_config()
    assert parse_setting(config, "projection.norm=channel") == ("projection.norm", "channel")
    assert parse_setting(config, "model.skip_first_token=TRUE") == (
        "model.skip_first_token",
        True,
    )
    assert parse_setting(config, "projection.strides=4,4") == ("projection.strides", (4, 4))
    assert parse_setting(config, "projection.strides=4x4") == ("projection.strides", (4, 4))
    assert parse_setting(config, "dataset=uci_har") == ("dataset", "uci_har")
    assert parse_setting(config, "lora.alpha=8") == ("lora.alpha", 8.0)
    assert parse_setting(config, "lora.rank=4") == ("lora.rank", 4)
    variants = make_variants(["pretrained"], [("projection.norm", "channel"), ("lora.rank", 4)])
    assert [v.name for v in variants] == [
        "pretrained",
        "pretrained norm=channel",
        "pretrained rank=4",
    ]
    assert variants[1].apply(config).projection.norm == "channel"
    for text, message in (
        ("projection.nrom=time", "unknown config key 'projection.nrom'"),
        ("projection=time", "'projection' is a section"),
        ("projection.norm", "expected section.field=value"),
        ("model.skip_first_token=yes", "does not parse as bool"),
        ("lora.rank=two", "does not parse as int"),
        ("projcetion=time", "unknown config key 'projcetion'"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_setting(config, text)
    with pytest.raises(ValueError, match="duplicate variants"):
        make_variants(["pretrained"], [("lora.rank", 4), ("lora.rank", 4)])


def test_sweep_axes_read_the_config_sweep_section():
    from configs.fewshot import get_config
    from harjax.sweeps.axes import sweep_axes

    config = get_config()
    axes = sweep_axes(config)
    assert axes.shots == (1, 5, 10, "all") and axes.seeds == 2 and axes.splits == (0, 1)
    assert [v.name for v in axes.variants] == config.sweep.variants.split(",")
    assert axes.grids == {
        "learning_rates": (config.optim.learning_rate,),
        "classical_trees": (config.classical.num_trees,),
        "rocket_alphas": (config.rocket.ridge_alpha,),
    }
    config.sweep.update(
        variants="pretrained",
        ablate="lora.rank=0; projection.kernel_sizes=3,5",
        learning_rates="1e-3,3e-3",
        classical_trees="100",
        rocket_alphas="0.1,1e5",
    )
    config.data.split_seed = 4
    axes = sweep_axes(config)
    assert [v.name for v in axes.variants] == [
        "pretrained",
        "pretrained rank=0",
        "pretrained kernel_sizes=3x5",
    ]
    assert axes.splits == (4, 5) and axes.grids["learning_rates"] == (1e-3, 3e-3)
    assert axes.grids["classical_trees"] == (100,) and axes.grids["rocket_alphas"] == (0.1, 1e5)
    for key, value, message in (
        ("seeds", 0, "config.sweep.seeds must be an integer >= 1"),
        ("variants", "", "no variant"),
        ("variants", "pretrained,bogus", "unknown variant 'bogus'"),
        ("learning_rates", "1e-3,1e-3", "lists a value twice"),
        ("classical_trees", "ten", "must be ints"),
        ("rocket_alphas", "1,-1", "config.sweep.rocket_alphas: .* must all be positive"),
        ("ablate", "lora.rnk=0", "config.sweep.ablate 'lora.rnk=0': unknown config key"),
    ):
        bad = get_config()
        bad.sweep[key] = value
        with pytest.raises(ValueError, match=message):
            sweep_axes(bad)


def test_a_config_arg_selects_presets_and_fields_applied_last():
    from configs import default, fewshot, presets, study

    assert default.get_config("float32").backbone.dtype == "float32"
    config = study.get_config("sequential,backbone.num_layers=12,projection.strides=4x4")
    assert config.train.models_per_program == 1 and config.backbone.num_layers == 12
    assert config.projection.strides == (4, 4) and config.sweep.splits == 3  # still the study
    # The arg wins over the file's own settings (fewshot.py sets 3 layers).
    assert fewshot.get_config("backbone.num_layers=6").backbone.num_layers == 6
    assert fewshot.get_config().backbone.num_layers == 3
    uci_har = study.get_config("dataset=uci_har,data.split=official")
    assert (uci_har.dataset, uci_har.data.split) == ("uci_har", "official")
    for arg, message in (("fp16", "expected a preset"), ("lora.rnk=2", "unknown config key")):
        with pytest.raises(ValueError, match=message):
            presets.apply(default.get_config(), arg)


def test_a_sweep_of_one_k_leaves_all_out_only_when_asked():
    """The depth study runs k = 10 alone (k = all at 30 layers costs hours): `with_all`."""
    from configs.study_depth import get_config
    from harjax.sweeps.axes import sweep_axes

    assert sweep_axes(get_config()).shots == (10,)
    assert sweep_axes(get_config("sweep.shots=all")).shots == ("all",)
    config = get_config()
    config.sweep.with_all = True
    assert sweep_axes(config).shots == (10, "all")
    assert [v.name for v in sweep_axes(config).variants] == ["pretrained", "random", "shuffled"]

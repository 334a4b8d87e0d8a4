"""The variant table: every list of variants the layers read is derived from its entries."""

import pytest

from harjax import variants
from harjax.run.validate import problems
from harjax.sweeps import fewshot, folds, protocol
from tests.helpers import tiny_config


def test_derived_lists_follow_the_entries():
    assert variants.BACKBONE_VARIANTS == ("pretrained", "random", "shuffled")
    assert variants.REFERENCE == "pretrained"
    assert variants.CONTROLS == ("random", "shuffled", "none", "scratch")
    assert variants.BACKBONE_CONTROLS == ("random", "shuffled")
    assert variants.BASELINES == ("cnn", "classical", "rocket")
    assert folds.TRANSFER_VARIANTS == variants.TRANSFER_VARIANTS
    assert "random" not in variants.TRANSFER_VARIANTS  # its seed draws the frozen tree
    assert "classical" not in variants.TRANSFER_VARIANTS
    assert fewshot.DEFAULT_VARIANT_ORDER == variants.NAMES
    fitted = [name for name in variants.NAMES if not variants.get(name).neural]
    assert fitted == ["classical", "rocket"]
    assert not any(variants.get(name).program or variants.get(name).transferable for name in fitted)
    # pretrained and its controls differ only in frozen values: one program
    assert {variants.get(name).program for name in variants.BACKBONE_VARIANTS} == {"pretrained"}
    grids = {"learning_rates": [1e-3], "classical_trees": [10], "rocket_alphas": [0.5]}
    assert protocol.settings("classical", grids) == [("classical", "num_trees", 10)]
    assert protocol.settings("rocket", grids) == [("rocket", "ridge_alpha", 0.5)]
    assert protocol.settings("cnn", grids) == [("optim", "learning_rate", 1e-3)]
    assert variants.SETTING_FIELDS == ("learning_rate", "num_trees", "ridge_alpha")


def test_a_variant_has_one_role_and_one_way_to_learn():
    with pytest.raises(ValueError, match="role 'rival' is not one of"):
        variants.Variant("x", "rival", build=variants.build.cnn_model)
    with pytest.raises(ValueError, match="needs one of build"):
        variants.Variant("x", "baseline")


def test_the_summary_takes_its_roles_from_the_table(monkeypatch):
    """Controls and baselines are the table's roles, so one added to the table is compared."""
    from harjax.reporting import depth, summary

    assert summary.CONTROLS is variants.CONTROLS and summary.BASELINES is variants.BASELINES
    assert summary.REFERENCE == depth.REFERENCE == protocol.REFERENCE == variants.REFERENCE
    assert depth.CONTROLS == variants.BACKBONE_CONTROLS
    assert summary.PAIR_ON == depth.PAIR_ON == variants.PAIR_ON
    monkeypatch.setattr(summary, "CONTROLS", (*variants.CONTROLS, "half"))
    rows = [
        {"variant": v, "shots": 1, "split_seed": 0, "seed": s, "macro_f1": m + 0.01 * s}
        | {"val_macro_f1": val}
        for v, m, val in (("pretrained", 0.5, 0.5), ("none", 0.6, 0.6), ("half", 0.7, 0.9))
        for s in range(3)
    ]
    (comparison,) = summary.compare("d", rows)
    assert (comparison.rival, comparison.role) == ("half", "best control")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model variant 'nonsense'; expected one of"):
        variants.get("nonsense")


@pytest.mark.parametrize("name", variants.NAMES)
def test_every_variant_validates_and_only_backbone_variants_name_a_backbone(name):
    config = tiny_config(name)
    assert not [line for line in problems(config) if "model.variant" in line]
    source = variants.backbone_source(config)
    assert (source is not None) == (name in variants.BACKBONE_VARIANTS)
    if source is not None:
        assert source.spec == config.backbone.spec


def test_a_variants_own_checks_reach_validate():
    config = tiny_config("shuffled")
    config.model.random_weights = "init"
    assert "config.model.variant 'shuffled' needs config.model.random_weights 'matched'" in (
        problems(config)
    )

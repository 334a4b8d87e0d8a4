"""The variant table: every list of variants the layers read is derived from its entries."""

import pytest

from harjax import variants
from harjax.run.validate import problems
from harjax.sweeps import fewshot, folds, protocol
from tests.helpers import tiny_config


def test_derived_lists_follow_the_entries():
    assert variants.BACKBONE_VARIANTS == ("pretrained", "random", "shuffled")
    assert variants.CONTROLS == ("random", "shuffled")
    assert folds.TRANSFER_VARIANTS == variants.TRANSFER_VARIANTS
    assert "random" not in variants.TRANSFER_VARIANTS  # its seed draws the frozen tree
    assert "classical" not in variants.TRANSFER_VARIANTS
    assert fewshot.DEFAULT_VARIANT_ORDER == variants.NAMES
    assert [name for name in variants.NAMES if not variants.get(name).neural] == ["classical"]
    # pretrained and its controls differ only in frozen values: one program
    assert {variants.get(name).program for name in variants.BACKBONE_VARIANTS} == {"pretrained"}
    assert protocol.settings("classical", [1e-3], [10]) == [("classical", "num_trees", 10)]


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

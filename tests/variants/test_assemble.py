import jax
import numpy as np
import pytest

from harjax import lora
from harjax.variants import assemble
from tests.fakes import tiny_llama_backbone
from tests.helpers import tiny_config


def _build(variant, **kw):
    config = tiny_config(variant)
    for key, value in kw.items():
        section, name = key.split("__")
        config[section][name] = value
    backbone = tiny_llama_backbone() if variant in ("pretrained", "random") else None
    return assemble.assemble(
        config, num_classes=3, num_channels=6, rng=jax.random.key(0), backbone=backbone
    ), backbone


def test_pretrained_trainable_paths_are_exactly_projection_lora_head():
    built, backbone = _build("pretrained")
    paths = lora.param_paths(built.trainable)
    expected_lora = sorted(
        f"backbone/layers/{i}/self_attn/{p}/lora/{ab}"
        for i in range(2)
        for p in ("k_proj", "o_proj", "q_proj", "v_proj")
        for ab in "ab"
    )
    assert [p for p in paths if "/lora/" in p] == expected_lora
    others = {p.split("/")[0] for p in paths if "/lora/" not in p}
    assert others == {"projection", "head_norm", "head"}
    assert lora.param_paths(built.frozen) == [
        "backbone/" + p for p in lora.param_paths(backbone.params)
    ]
    # The frozen tree is the loaded checkpoint, untouched.
    for got, want in zip(
        jax.tree.leaves(built.frozen["backbone"]), jax.tree.leaves(backbone.params)
    ):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert built.backbone_hash == backbone.content_hash
    counts = built.param_counts()
    assert 0 < counts["fraction"] < 1


def test_random_variant_has_same_structure_but_other_weights():
    pre, _ = _build("pretrained")
    rnd, _ = _build("random")
    assert lora.param_paths(pre.frozen) == lora.param_paths(rnd.frozen)
    assert lora.param_paths(pre.trainable) == lora.param_paths(rnd.trainable)
    q_pre = pre.frozen["backbone"]["layers"]["0"]["self_attn"]["q_proj"]["kernel"]
    q_rnd = rnd.frozen["backbone"]["layers"]["0"]["self_attn"]["q_proj"]["kernel"]
    assert not np.allclose(np.asarray(q_pre), np.asarray(q_rnd))
    assert rnd.backbone_hash != pre.backbone_hash


def test_lora_rank_zero_freezes_the_whole_backbone():
    built, _ = _build("pretrained", lora__rank=0)
    assert not any("backbone" in p for p in lora.param_paths(built.trainable))


def test_tune_norms_adds_backbone_norm_scales_only():
    built, _ = _build("pretrained", model__tune_norms=True)
    extra = [
        p
        for p in lora.param_paths(built.trainable)
        if p.startswith("backbone/") and "/lora/" not in p
    ]
    assert extra and all(p.endswith("/weight") and "norm" in p for p in extra)


def test_none_and_scratch_variants():
    none, _ = _build("none")
    assert not none.frozen and "backbone" not in none.trainable
    scratch, _ = _build("scratch")
    assert not scratch.frozen and "backbone" in scratch.trainable
    assert not any("/lora/" in p for p in lora.param_paths(scratch.trainable))


def test_cnn_variant_trains_everything_and_has_no_backbone():
    cnn, _ = _build("cnn")
    assert not cnn.frozen and cnn.backbone_hash == "none"
    assert sorted(cnn.trainable) == ["conv_0", "conv_1", "conv_2", "head"]


def test_unknown_variant_and_mismatched_backbone_are_clear_errors():
    config = tiny_config("nonsense")
    with pytest.raises(ValueError, match="unknown model variant 'nonsense'"):
        assemble.assemble(config, num_classes=3, num_channels=6, rng=jax.random.key(0))
    backbone = tiny_llama_backbone()
    del backbone.params["layers"]["1"]
    with pytest.raises(ValueError, match="missing"):
        assemble.assemble(
            tiny_config("pretrained"),
            num_classes=3,
            num_channels=6,
            rng=jax.random.key(0),
            backbone=backbone,
        )

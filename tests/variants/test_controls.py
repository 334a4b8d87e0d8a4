"""Issue 10: honest controls (random = matched moments, shuffled = permuted), calibration,
readout options, LoRA presets and the tune_norms paths, on tiny LLaMA and GPT-2 backbones."""

import jax
import numpy as np
import pytest

from harjax import lora
from harjax.tree import flatten_params
from harjax.variants import assemble, calibration, controls
from harjax.weights import load_backbone
from tests.fakes import tiny_llama_backbone
from tests.helpers import tiny_config
from tests.models.test_gpt2 import save_tiny_gpt2


@pytest.fixture(scope="module")
def llama_backbone(tiny_llama_dir):
    return load_backbone(tiny_llama_dir)


@pytest.fixture(scope="module")
def gpt2_backbone(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2_controls")
    save_tiny_gpt2(directory)
    return load_backbone(directory)


def _build(backbone, variant="pretrained", seed=0, **overrides):
    config = tiny_config(variant)
    for key, value in overrides.items():
        section, name = key.split("__")
        config[section][name] = value
    return assemble.assemble(
        config, num_classes=3, num_channels=6, rng=jax.random.key(seed), backbone=backbone
    )


def _flat(tree):
    return {k: np.asarray(v) for k, v in flatten_params(tree).items()}


def test_random_matches_each_tensors_mean_and_std():
    keys = jax.random.split(jax.random.key(0), 3)
    # Tensors with distinct moments (and a skewed one), so a single global std would fail.
    pretrained = {
        "q_proj": {"kernel": 0.4 * jax.random.normal(keys[0], (64, 64)) + 0.1},
        "norm": {"weight": 0.002 + 0.02 * jax.random.exponential(keys[1], (4096,))},
        "small": {"bias": jax.random.normal(keys[2], (8,))},
    }
    drawn = _flat(controls.random_like(pretrained, jax.random.key(0)))
    for path, value in _flat(pretrained).items():
        assert drawn[path].shape == value.shape and drawn[path].dtype == value.dtype
        assert not np.allclose(drawn[path], value)
        if value.size < 1000:
            continue
        std = value.std()
        assert abs(drawn[path].std() - std) < 0.05 * std, path
        # 5 % of the mean, or 4x the sampling error of a mean of value.size draws if larger
        tolerance = max(0.05 * abs(value.mean()), 4 * std / np.sqrt(value.size))
        assert abs(drawn[path].mean() - value.mean()) < tolerance, path


def test_shuffled_keeps_each_tensors_values_but_not_their_order():
    pretrained = _flat(tiny_llama_backbone().params)
    shuffled = _flat(controls.shuffled_like(tiny_llama_backbone().params, jax.random.key(0)))
    for path, value in pretrained.items():
        assert shuffled[path].shape == value.shape
        np.testing.assert_array_equal(np.sort(shuffled[path], None), np.sort(value, None))
        if value.size > 16 and np.unique(value).size > 1:
            assert not np.array_equal(shuffled[path], value), path


@pytest.mark.parametrize("transform", [controls.random_like, controls.shuffled_like])
def test_controls_are_deterministic_per_seed_and_differ_across_seeds(transform):
    params = tiny_llama_backbone().params
    first = _flat(transform(params, jax.random.key(3)))
    again = _flat(transform(params, jax.random.key(3)))
    other = _flat(transform(params, jax.random.key(4)))
    path = "layers/0/self_attn/q_proj/kernel"
    np.testing.assert_array_equal(first[path], again[path])
    assert not np.array_equal(first[path], other[path])


@pytest.mark.parametrize("variant", ["random", "shuffled"])
def test_assembled_controls_hash_their_drawn_tree_and_keep_the_structure(llama_backbone, variant):
    pre = _build(llama_backbone)
    first, again, other = (_build(llama_backbone, variant, seed=s) for s in (0, 0, 1))
    assert lora.param_paths(first.frozen) == lora.param_paths(pre.frozen)
    assert lora.param_paths(first.trainable) == lora.param_paths(pre.trainable)
    assert first.backbone_hash == again.backbone_hash
    assert len({first.backbone_hash, other.backbone_hash, pre.backbone_hash}) == 3
    q_pre = _flat(pre.frozen)["backbone/layers/0/self_attn/q_proj/kernel"]
    q_control = _flat(first.frozen)["backbone/layers/0/self_attn/q_proj/kernel"]
    assert abs(q_control.std() - q_pre.std()) < 0.1 * q_pre.std()
    assert not np.allclose(q_control, q_pre)


def test_random_weights_init_is_the_old_architecture_init(llama_backbone):
    old = _build(llama_backbone, "random", model__random_weights="init")
    q = _flat(old.frozen)["backbone/layers/0/self_attn/q_proj/kernel"]
    assert abs(q.std() - 0.02) < 0.005
    with pytest.raises(ValueError, match="shuffled"):
        _build(llama_backbone, "shuffled", model__random_weights="init")


@pytest.mark.parametrize("which", ["llama", "gpt2"])
def test_calibration_matches_the_embedding_rms(request, which):
    backbone = request.getfixturevalue(f"{which}_backbone")
    target, source = calibration.embedding_rms(backbone)
    assert "embedding table" in source and target != calibration.INIT_EMBEDDING_RMS
    off = _build(backbone)
    assert off.calibration is None
    built = _build(backbone, projection__calibrate="embedding_rms")
    record = built.calibration_record()
    assert record["target_rms"] == pytest.approx(target)
    signal = jax.random.normal(jax.random.key(9), (8, 32, 6))
    projection = built.model.projection
    from harjax.models.projection import ConvProjection

    tokens = ConvProjection(projection, built.model.d_model).apply(
        {"params": built.trainable["projection"]}, signal
    )
    measured = float(calibration.median_token_rms(tokens))
    assert measured == pytest.approx(target, rel=0.2)
    assert record["output_scale"] == pytest.approx(target / record["rms_before"], rel=1e-5)


def test_tune_norms_trains_every_backbone_norm_the_final_one_included(
    llama_backbone, gpt2_backbone
):
    def norm_paths(backbone):
        built = _build(backbone, model__tune_norms=True)
        return [
            p
            for p in lora.param_paths(built.trainable)
            if p.startswith("backbone/") and "/lora/" not in p
        ]

    assert norm_paths(llama_backbone) == sorted(
        [
            f"backbone/layers/{i}/{n}/weight"
            for i in range(2)
            for n in ("input_layernorm", "post_attention_layernorm")
        ]
        + ["backbone/norm/weight"]
    )
    assert norm_paths(gpt2_backbone) == sorted(
        f"backbone/{scope}/{leaf}"
        for scope in [f"h/{i}/{n}" for i in range(3) for n in ("ln_1", "ln_2")] + ["ln_f"]
        for leaf in ("bias", "scale")
    )


def _adapted(built):
    return [
        p.removesuffix("/lora/a")
        for p in lora.param_paths(built.trainable)
        if p.endswith("/lora/a")
    ]


def test_lora_attention_plus_mlp_preset(llama_backbone, gpt2_backbone):
    llama = _adapted(_build(llama_backbone, lora__targets="attention+mlp"))
    assert [p for p in llama if p.startswith("backbone/layers/0/")] == [
        f"backbone/layers/0/{p}"
        for p in (
            "mlp/down_proj",
            "mlp/gate_proj",
            "mlp/up_proj",
            "self_attn/k_proj",
            "self_attn/o_proj",
            "self_attn/q_proj",
            "self_attn/v_proj",
        )
    ]
    gpt2 = _adapted(_build(gpt2_backbone, lora__targets="attention+mlp"))
    assert [p for p in gpt2 if p.startswith("backbone/h/0/")] == [
        f"backbone/h/0/{p}" for p in ("attn/c_attn", "attn/c_proj", "mlp/c_fc", "mlp/c_proj")
    ]
    default = _adapted(_build(llama_backbone, lora__targets="attention"))
    assert default == _adapted(_build(llama_backbone))

"""The benchmark harness measures what it claims: the PyTorch twin is the same model, PEFT adapts
the same targets as harjax, the FLOP count agrees with XLA, compilations are counted."""

import jax
import jax.numpy as jnp
import numpy as np
import peft  # noqa: F401  (a test dependency: fail loudly if missing, never skip)
import pytest
import torch

from bench import common
from bench.common import Variant


def test_torch_projection_matches_flax_projection():
    from bench.torch_twin import TorchProjection, projection_kwargs
    from configs.default import get_config
    from harjax.models.projection import ConvProjection
    from harjax.variants.build import projection_config

    config = get_config()
    flax_proj = ConvProjection(projection_config(config), d_model=16)
    signal = np.random.default_rng(0).standard_normal((2, 32, 6)).astype(np.float32)
    params = flax_proj.init(jax.random.key(0), jnp.asarray(signal))["params"]
    params = jax.tree.map(lambda x: x + 0.01, params)  # non-zero biases, non-unit norms
    twin = TorchProjection(6, 16, **projection_kwargs(config.projection))
    t = lambda x: torch.from_numpy(np.asarray(x).copy())
    conv = lambda p: (
        t(np.transpose(p["kernel"], (2, 1, 0))),
        t(p["bias"]),
    )  # (k,in,out)->(out,in,k)
    with torch.no_grad():
        for module, name in zip(twin.branches, ("conv_k3", "conv_k5", "conv_k9")):
            module.weight[:], module.bias[:] = conv(params[name])
        for i, module in enumerate(twin.down):
            module.weight[:], module.bias[:] = conv(params[f"down_{i}"])
        norms = [twin.norm_in, *twin.norm_down]
        for module, name in zip(norms, ("norm_in", "norm_down_0", "norm_down_1")):
            module.weight[:], module.bias[:] = t(params[name]["scale"]), t(params[name]["bias"])
        twin.to_model.weight[:] = t(params["to_model"]["kernel"]).T
        twin.to_model.bias[:] = t(params["to_model"]["bias"])
        twin.output_scale[:] = t(params["output_scale"])
        assert config.projection.norm == "amplitude"  # the default; its path is compared too
        twin.amplitude.weight[:] = t(params["amplitude"]["dense"]["kernel"]).T
        got = twin(torch.from_numpy(signal)).numpy()
    want = flax_proj.apply({"params": params}, jnp.asarray(signal))
    assert got.shape == want.shape == (2, 8, 16)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "shape, adapted",
    [
        ("smollm2", {"q_proj", "k_proj", "v_proj", "o_proj"}),
        ("gpt2", {"attn.c_attn", "attn.c_proj"}),  # not mlp.c_proj: harjax adapts attention only
    ],
)
def test_peft_adapts_the_same_targets_and_trains(shape, adapted):
    from bench.torch_twin import build_torch

    built = build_torch(Variant("t", framework="torch", shape=shape, layers=1, batch=2, tokens=4))
    model = built["model"]
    lora_a = {n for n, p in model.named_parameters() if "lora_A" in n and p.requires_grad}
    found = {n.split(".lora_A")[0].split(".0.", 1)[1].removeprefix("self_attn.") for n in lora_a}
    assert found == adapted
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all("lora_" not in n for n in frozen)
    assert all(p.requires_grad for p in model.projection.parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    built["step"]()
    assert any(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)


def test_analytic_flops_agree_with_xla_cost_analysis():
    variant = Variant("f", layers=1, batch=2, tokens=8)
    built = common.build_harjax(variant)
    analytic = common.matmul_flops(variant)
    xla = common.xla_flops(built["step_fn"], built["args"]())
    # XLA also counts elementwise work (norms, softmax, AdamW), so it may only be somewhat higher.
    assert 0.95 < xla / analytic["total"] < 1.5, (xla, analytic)
    assert analytic["frozen_dense"] > 10 * analytic["lora"] > 0


def test_lora_flops_vanish_at_rank_zero():
    assert common.matmul_flops(Variant("f", rank=0))["lora"] == 0


def test_compile_counter_counts_one_compile_per_shape():
    from bench.compiles import CompileCounter

    counter = CompileCounter()
    counter.active = True

    @jax.jit
    def bench_probe_fn(x):
        return x * 2

    for n in (3, 3, 4, 3):
        bench_probe_fn(jnp.ones(n)).block_until_ready()
    counter.active = False
    assert counter.snapshot().get("bench_probe_fn") == 2


def test_sweep_throughput_quick_mode_runs_both_paths(harjax_env, monkeypatch):
    from bench import sweep_throughput

    for key in ("HARJAX_CACHE", "HARJAX_DATA_DIR"):
        monkeypatch.setenv(key, harjax_env[key])
    results = sweep_throughput.run(quick=True)
    assert results["num_models"] == 4
    assert results["sequential"]["models_per_second"] > 0
    assert results["batched"]["models_per_second"] > 0
    # The same runs trained both ways end with the same validation scores.
    assert results["max_final_val_f1_difference"] < 1e-6
    assert results["same_best_step_fraction"] == 1.0

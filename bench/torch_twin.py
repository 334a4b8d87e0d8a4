"""The PyTorch twin of the harjax HAR model, written as a PyTorch + PEFT user would write it.

Same architecture as `harjax.models.projection.ConvProjection` + `harjax.models.har.HARModel`
(parallel 'SAME' convs -> LayerNorm -> tanh-GELU -> strided convs -> linear -> output scale;
mean pool -> LayerNorm -> dropout -> linear), an HF `LlamaModel` / `GPT2Model` built from the
same config dict and fed `inputs_embeds`, LoRA from PEFT's `get_peft_model` on the same targets
and rank, and `torch.optim.AdamW` with global-norm clipping, like `harjax.train.make_optimizer`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from bench.common import (
    HF_CONFIGS,
    NUM_CHANNELS,
    NUM_CLASSES,
    PEFT_TARGETS,
    Variant,
    experiment_config,
)

LAYER_NORM_EPS = 1e-6  # flax.linen.LayerNorm's default


class TorchProjection(nn.Module):
    """(B, window, C) -> (B, window / prod(strides), d_model); twin of `ConvProjection`."""

    def __init__(
        self,
        in_channels: int,
        d_model: int,
        *,
        kernel_sizes: Sequence[int],
        channels: int,
        strides: Sequence[int],
        output_scale_init: float,
        norm: str = "channel",
    ):
        super().__init__()
        if norm not in ("channel", "amplitude"):
            raise ValueError(f"TorchProjection has norm 'channel' or 'amplitude', got {norm!r}")
        self.branches = nn.ModuleList(
            nn.Conv1d(in_channels, channels, k, padding="same") for k in kernel_sizes
        )
        width = channels * len(kernel_sizes)
        self.norm_in = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        # 'amplitude': the window's log std per input channel, zero-initialised like
        # `harjax.models.projection.WindowAmplitude`.
        self.amplitude = None
        if norm == "amplitude":
            self.amplitude = nn.Linear(in_channels, width, bias=False)
            nn.init.zeros_(self.amplitude.weight)
        self.strides = [s for s in strides if s != 1]
        self.down = nn.ModuleList(nn.Conv1d(width, width, 2 * s, stride=s) for s in self.strides)
        self.norm_down = nn.ModuleList(
            nn.LayerNorm(width, eps=LAYER_NORM_EPS) for _ in self.strides
        )
        self.to_model = nn.Linear(width, d_model)
        self.output_scale = nn.Parameter(torch.full((1,), float(output_scale_init)))

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        x = signal.transpose(1, 2)  # torch convolutions are channels-first
        x = torch.cat([conv(x) for conv in self.branches], dim=1)
        normed = self.norm_in(x.transpose(1, 2))
        if self.amplitude is not None:
            variance = signal.var(dim=1, unbiased=False, keepdim=True)
            normed = normed + self.amplitude(0.5 * torch.log(variance + 1e-6))
        x = F.gelu(normed, approximate="tanh").transpose(1, 2)
        for stride, conv, norm in zip(self.strides, self.down, self.norm_down):
            # XLA 'SAME' for kernel 2s, stride s on a length divisible by s pads s//2 before
            # and s - s//2 after.
            x = conv(F.pad(x, (stride // 2, stride - stride // 2)))
            x = F.gelu(norm(x.transpose(1, 2)), approximate="tanh").transpose(1, 2)
        return self.to_model(x.transpose(1, 2)) * self.output_scale


class TorchHAR(nn.Module):
    """projection -> backbone(inputs_embeds) -> mean pool -> LayerNorm -> dropout -> linear.

    `config` is the harjax experiment config (`bench.common.experiment_config`): projection
    shape and head dropout are read from it, so both frameworks build the same model.
    """

    def __init__(self, backbone: nn.Module, d_model: int, config):
        super().__init__()
        if config.model.pooling != "mean":
            raise ValueError(f"TorchHAR pools by mean only, config says {config.model.pooling!r}")
        self.projection = TorchProjection(
            NUM_CHANNELS, d_model, **projection_kwargs(config.projection)
        )
        self.backbone = backbone
        self.head_norm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(float(config.model.head_dropout))
        self.head = nn.Linear(d_model, NUM_CLASSES)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(inputs_embeds=self.projection(signal)).last_hidden_state
        pooled = self.head_norm(hidden.mean(dim=1).float())
        return self.head(self.dropout(pooled))


def projection_kwargs(projection) -> dict:
    """`TorchProjection`'s keyword arguments from a config's `projection` block."""
    if projection.magnitude_channels:
        raise ValueError("TorchProjection has no magnitude channels; set magnitude_channels False")
    return {
        "kernel_sizes": tuple(projection.kernel_sizes),
        "channels": int(projection.channels),
        "strides": tuple(projection.strides),
        "output_scale_init": float(projection.output_scale_init),
        "norm": str(projection.norm),
    }


def hf_backbone(shape: str, layers: int) -> tuple[nn.Module, int]:
    """A randomly initialised HF backbone of `shape` with its first `layers` layers."""
    import transformers

    config = dict(HF_CONFIGS[shape])
    if config["model_type"] == "llama":
        config["num_hidden_layers"] = layers
        hf_config = transformers.LlamaConfig(**config)
        return transformers.LlamaModel(hf_config), hf_config.hidden_size
    config["n_layer"] = layers
    hf_config = transformers.GPT2Config(**config)
    return transformers.GPT2Model(hf_config), hf_config.n_embd


def build_torch(variant: Variant, device: str = "cpu") -> dict:
    """The PyTorch + PEFT train step of `variant`: {'step': () -> None, 'model': ...}.

    `device` 'cuda' runs it on a GPU (autocast on that device type; `step` synchronises).
    """
    from peft import LoraConfig, get_peft_model

    config = experiment_config(variant)
    torch.manual_seed(0)
    backbone, d_model = hf_backbone(variant.shape, variant.layers)
    if variant.rank > 0:
        backbone = get_peft_model(
            backbone,
            LoraConfig(
                r=variant.rank,
                lora_alpha=float(config.lora.alpha),
                lora_dropout=float(config.lora.dropout),
                target_modules=PEFT_TARGETS[variant.shape],
                fan_in_fan_out=variant.shape == "gpt2",  # GPT-2's Conv1D stores (in, out)
            ),
        )
    else:
        backbone.requires_grad_(False)
    model = TorchHAR(backbone, d_model, config).train().to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = config.optim
    optimizer = torch.optim.AdamW(
        params, lr=float(optim.learning_rate), weight_decay=float(optim.weight_decay)
    )
    generator = torch.Generator().manual_seed(0)
    window_length = int(config.data.window_length)
    signal = torch.randn(variant.batch, window_length, NUM_CHANNELS, generator=generator)
    label = torch.randint(0, NUM_CLASSES, (variant.batch,), generator=generator)
    signal, label = signal.to(device), label.to(device)
    device_type = torch.device(device).type
    autocast = variant.dtype != "float32"
    dtype = getattr(torch, variant.dtype)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=dtype, enabled=autocast):
            logits = model(signal)
        loss = F.cross_entropy(logits.float(), label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, float(optim.grad_clip))
        optimizer.step()
        if device_type == "cuda":
            torch.cuda.synchronize()

    return {"step": step, "model": model, "num_trainable": sum(p.numel() for p in params)}

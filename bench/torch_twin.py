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

from bench.common import HF_CONFIGS, NUM_CHANNELS, NUM_CLASSES, PEFT_TARGETS, Variant

LAYER_NORM_EPS = 1e-6  # flax.linen.LayerNorm's default


class TorchProjection(nn.Module):
    """(B, window, C) -> (B, window / prod(strides), d_model); twin of `ConvProjection`."""

    def __init__(
        self,
        in_channels: int,
        d_model: int,
        kernel_sizes: Sequence[int] = (3, 5, 9),
        channels: int = 32,
        strides: Sequence[int] = (2, 2),
    ):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv1d(in_channels, channels, k, padding="same") for k in kernel_sizes
        )
        width = channels * len(kernel_sizes)
        self.norm_in = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.strides = [s for s in strides if s != 1]
        self.down = nn.ModuleList(nn.Conv1d(width, width, 2 * s, stride=s) for s in self.strides)
        self.norm_down = nn.ModuleList(
            nn.LayerNorm(width, eps=LAYER_NORM_EPS) for _ in self.strides
        )
        self.to_model = nn.Linear(width, d_model)
        self.output_scale = nn.Parameter(torch.ones(1))

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        x = signal.transpose(1, 2)  # torch convolutions are channels-first
        x = torch.cat([conv(x) for conv in self.branches], dim=1)
        x = F.gelu(self.norm_in(x.transpose(1, 2)), approximate="tanh").transpose(1, 2)
        for stride, conv, norm in zip(self.strides, self.down, self.norm_down):
            # XLA 'SAME' for kernel 2s, stride s on a length divisible by s pads s//2 before
            # and s - s//2 after.
            x = conv(F.pad(x, (stride // 2, stride - stride // 2)))
            x = F.gelu(norm(x.transpose(1, 2)), approximate="tanh").transpose(1, 2)
        return self.to_model(x.transpose(1, 2)) * self.output_scale


class TorchHAR(nn.Module):
    """projection -> backbone(inputs_embeds) -> mean pool -> LayerNorm -> dropout -> linear."""

    def __init__(self, backbone: nn.Module, d_model: int, head_dropout: float = 0.1):
        super().__init__()
        self.projection = TorchProjection(NUM_CHANNELS, d_model)
        self.backbone = backbone
        self.head_norm = nn.LayerNorm(d_model, eps=LAYER_NORM_EPS)
        self.dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(d_model, NUM_CLASSES)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(inputs_embeds=self.projection(signal)).last_hidden_state
        pooled = self.head_norm(hidden.mean(dim=1).float())
        return self.head(self.dropout(pooled))


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

    torch.manual_seed(0)
    backbone, d_model = hf_backbone(variant.shape, variant.layers)
    if variant.rank > 0:
        backbone = get_peft_model(
            backbone,
            LoraConfig(
                r=variant.rank,
                lora_alpha=2 * variant.rank,  # harjax default alpha 16 at rank 8
                lora_dropout=0.0,
                target_modules=PEFT_TARGETS[variant.shape],
                fan_in_fan_out=variant.shape == "gpt2",  # GPT-2's Conv1D stores (in, out)
            ),
        )
    else:
        backbone.requires_grad_(False)
    model = TorchHAR(backbone, d_model).train().to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    signal = torch.randn(variant.batch, variant.tokens * 4, NUM_CHANNELS, generator=generator)
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
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if device_type == "cuda":
            torch.cuda.synchronize()

    return {"step": step, "model": model, "num_trainable": sum(p.numel() for p in params)}

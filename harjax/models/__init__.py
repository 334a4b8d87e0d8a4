"""Pure Flax Linen modules: the GPT-2 and LLaMA backbones, the IMU projection, the HAR model.

``gpt2.py`` and ``llama.py`` are the decoders (HF-Flax parameter names, fed ``inputs_embeds``;
Qwen2 is ``llama.py`` with q/k/v biases);
``attention.py`` is the causal attention both call and ``matmul.py`` their ``Dense`` factory with
f32-accumulating low-precision matmuls; ``projection.py`` maps an IMU window to token embeddings
and ``har.py`` chains projection, backbone, pooling and head. No LoRA, data or checkpoint code
lives here, and no experiment defaults: those are in ``configs/default.py``.
"""

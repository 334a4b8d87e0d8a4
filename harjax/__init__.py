"""harjax: human activity recognition on frozen pretrained LLM backbones (JAX/Flax)."""

__version__ = "0.1.0"

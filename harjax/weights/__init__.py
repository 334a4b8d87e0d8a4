"""Checkpoint readers: HF safetensors, HF Flax msgpack, GGUF -> Flax parameter trees."""

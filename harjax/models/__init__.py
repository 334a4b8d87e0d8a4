"""Backbones (GPT-2, LLaMA), the IMU projection and the HAR model. No LoRA, no data code."""

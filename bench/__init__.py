"""Benchmarks (not tests): harjax vs PyTorch + PEFT, roofline, LoRA overhead, memory, compiles.

Run from the repository root: `python -m bench.run_all` regenerates docs/performance.md.
"""

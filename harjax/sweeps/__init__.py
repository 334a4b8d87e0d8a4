"""Sweeps: many runs from one command, resumable, with one table. `core` is what every sweep
shares (shots, planned runs, fingerprints checked up front, backbone and compiled-step caches,
progress, rows read back from the run directories); `fewshot` (k x seeds x variants, read from
the config's `sweep` section) with `protocol` (settings chosen on validation, paired
comparisons against `pretrained`), and `transfer` (cross-dataset folds, read from the config's
`transfer` section) with `folds` (which datasets pre-train and which fine-tune, and their
common label space) specialise it. The k-shot draw itself is `harjax.data.sampling`.
"""

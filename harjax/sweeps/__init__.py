"""Sweeps: many runs from one command, resumable, with one table. `core` is what every sweep shares
(shots, planned runs, fingerprints checked up front, the backbone and compiled-step caches,
progress, rows read back from the run directories); `fewshot` (k x seeds x variants) with `axes`
(its config's `sweep` section, parsed and checked) and `protocol` (settings chosen on validation,
paired comparisons against `pretrained`), and `transfer` (cross-dataset folds, read from the
config's `sweep` section too) with `folds` (which datasets pre-train and which fine-tune, and their
common label space) specialise it. `probe` is a study of its own: a linear probe on the frozen
features, layer by layer. The k-shot draw itself is `harjax.data.sampling`.
"""

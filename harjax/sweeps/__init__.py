"""Sweeps: many runs from one command, resumable, with one table. `core` is what every sweep
shares (shots, planned runs, fingerprints checked up front, backbone and compiled-step caches,
progress, rows read back from the run directories); `fewshot` (k x seeds x variants) and
`transfer` (cross-dataset folds, with `folds` for their label spaces) specialise it.
"""

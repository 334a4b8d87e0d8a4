"""One training run, from a config and a run directory to a result.

`loop.train_and_evaluate` is the run loop (what `launch/train.py`, every sweep and the notebooks
call): train on the training subjects, select by validation macro-F1, report test metrics.
Around it: `result` (the explicit result record and `metrics.json`), `fingerprint` (what
determines a result; a run directory refuses to be reused for another one), `warm_start`
(starting from, or restoring, a trained tree: transfer and predict use the same path),
`compiled` (the jitted steps a sweep reuses between runs, held by an object the caller owns) and
`validate` (the resolved config checked once, before anything loads).
"""

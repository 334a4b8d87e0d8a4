"""Training runs, from a config and a run directory to a result.

`loop` is the one run loop (what `launch/train.py`, every sweep and the notebooks call):
`train_and_evaluate` trains one run, `train_group` several runs in one loop (`program`: each
model steps through the compiled program of its own config); train on the training
subjects, select by validation macro-F1, report test metrics. Around it: `budget` (steps,
evaluation cadence, early stopping), `checkpoint` (orbax saves of what trains, for resume and
the best state), `metrics_log` (the JSONL + TensorBoard log), `result` (the explicit result
record and `metrics.json`), `fingerprint` (what determines a result; a run directory refuses
to be reused for another one), `lock` (one writer per workdir), `environment` (the machine a
result was measured on, and `is_main_process`, the one gate for writing) with `code_version`
(the code that made it), `warm_start` (starting from, or restoring, a trained tree: transfer
and predict use the same path), `compiled` (the jitted steps a sweep reuses between runs, held
by an object the caller owns) and `validate` (a config's fields checked before anything loads:
once per sweep, once per run).
"""

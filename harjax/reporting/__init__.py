"""Numbers and reports of result rows, for every run and sweep: `metrics` (accuracy, macro-F1,
confusion, steps to 95 %: how every variant is scored), `stats` (paired differences with t
intervals and their verdicts), `tables` (the typed, atomic CSV, grouping, mean ± std, Markdown
tables), `plots` (one figure style) and `summary` (the cross-dataset summary: pretrained
against its best control, `cnn` and `classical`, per dataset and k), `depth` (the depth axis:
each backbone per depth, pretrained − its controls per depth). A sweep decides which
columns identify a row; nothing else here is specific to few-shot or transfer.
"""

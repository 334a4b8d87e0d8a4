"""Numbers and reports of result rows, for every run and sweep: `metrics` (accuracy, macro-F1,
confusion, steps to 95 %: how every variant is scored), `stats` (paired differences with t
intervals and their verdicts), `tables` (the typed, atomic CSV, grouping, mean ± std, Markdown
tables) and `plots` (one figure style). A sweep decides which columns identify a row; nothing
here is specific to few-shot or transfer.
"""

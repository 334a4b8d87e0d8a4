"""Reports of result rows, for every sweep: `tables` (the typed, atomic CSV, grouping,
mean ± std, Markdown tables) and `plots` (one figure style). A sweep decides which columns
identify a row; nothing here is specific to few-shot or transfer.
"""

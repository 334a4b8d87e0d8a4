"""The data layer: from raw benchmark archives (or a CSV folder) to device batches.

`signal` holds the array operations (timestamp checks, resampling, gap filling, windowing, the
channel check); `builder` the tfds builder base that applies them once to every dataset's
`Recording`s; `datasets/` one builder per dataset, found by name through `registry`; `archives`
reads and downloads the raw archives. `source` opens a prepared dataset as random-access windows,
`pipeline` batches them with grain, `concat` joins datasets for transfer, `splits` / `sampling` /
`normalization` / `labels` make subject-disjoint splits, few-shot subsets (the k-shot draw of every
sweep), train-only statistics and the common label space, and `bundle.load_data(config)` ties them
together for a run. Every bad input raises `errors.DataError`; every default lives in
`configs/default.py`.
"""

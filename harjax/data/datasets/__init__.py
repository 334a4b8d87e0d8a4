"""One tfds builder per dataset (a `HARBuilder` subclass from `harjax.data.builder`).

Each module only parses its raw archive into `Recording`s in canonical channels and units, and
registers its label map; gap filling, resampling and windowing are the base's. Modules are
imported lazily by `harjax.data.registry`, so nothing here is imported unless asked for: the
embedded `smartwatch`, the six public benchmarks, `uea` (a set of the UEA multivariate archive,
`uea:NAME`) and `csv_folder` for a user's own data.
"""

"""The variants of the comparison and how each is built: `assemble` (config -> model, trainable
and frozen trees), `controls` (the referee's random/shuffled backbones), `calibration` (the
projection's output scale), `classical` (features + ExtraTrees)."""

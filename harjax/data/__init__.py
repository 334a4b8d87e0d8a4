"""HAR datasets: tfds builders (one module per dataset), windows, labels, splits, pipeline."""

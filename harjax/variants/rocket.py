"""The Rocket-family baseline: MultiRocket features (sktime) + a ridge classifier.

MultiRocket (Tan et al. 2022) is the field's standard fast time-series classifier and the one
whose published UEA accuracies harjax's tables are read against, so it runs as published:
sktime's `MultiRocketMultivariate` transform (the authors' code, maintained in sktime; 6,250
kernels x 8 features by default) on the raw windows, features standardised on the training
windows, then a ridge classifier. Two choices differ from the published pipeline, both so that
it follows harjax's protocol like every other variant:
- the regularisation `rocket.ridge_alpha` is one value per run, chosen per (variant, k) on the
  validation subjects from the sweep's grid (`config.sweep.rocket_alphas`), where the published
  `RidgeClassifierCV` chooses among 10 alphas by leave-one-out on the training windows (with one
  window per class that leaves the left-out class out of training);
- it sees what every variant sees: the training windows of the run (k-shot or all), each
  resampled to the dataset's window length.
No input normalisation: Rocket's kernels and biases are fitted to the raw series (its biases
are quantiles of the training windows' convolution outputs), as in every published run; the
features are standardised instead.

sktime (with numba) is an optional dependency: `pip install -e '.[baselines]'`.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

EXTRA = "baselines"
_NEEDS = ("sktime", "numba")


def checks(config) -> list[str]:
    """The config problem of a `rocket` run without the extra, found before anything trains
    (a sweep checks every run's config up front: a study does not fail after hours)."""
    missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
    if not missing:
        return []
    return [
        f"config.model.variant 'rocket' needs {' and '.join(missing)}, harjax's optional "
        f"'{EXTRA}' extra: pip install -e '.[{EXTRA}]'"
    ]


def _multirocket():
    """sktime's MultiRocket, or an error that names the extra to install."""
    try:
        from sktime.transformations.rocket import MultiRocketMultivariate
    except ImportError as error:
        raise ImportError(
            "the 'rocket' variant needs sktime and numba, harjax's optional "
            f"'{EXTRA}' extra: pip install -e '.[{EXTRA}]' (import failed: {error})"
        ) from error
    return MultiRocketMultivariate


class RocketBaseline:
    """MultiRocket features -> standardised -> `RidgeClassifier(alpha)`; seeded, deterministic.

    `num_parameters()` is the ridge classifier's weights and biases (the kernels are drawn,
    not learned; the biases are fitted quantiles, counted too): the closest analogue of a
    trained weight count.
    """

    compute_dtype = {"name": "float64", "reason": "rocket baseline (sktime MultiRocket, numpy)"}

    def __init__(self, num_kernels: int = 6250, ridge_alpha: float = 1.0, seed: int = 0):
        if num_kernels < 1:
            raise ValueError(f"RocketBaseline: expected num_kernels >= 1, found {num_kernels}")
        if not ridge_alpha > 0:
            raise ValueError(f"RocketBaseline: expected ridge_alpha > 0, found {ridge_alpha}")
        self.num_kernels = int(num_kernels)
        self.ridge_alpha = float(ridge_alpha)
        self.seed = int(seed)
        self._transform = None
        self._scaler = None
        self._ridge = None

    @staticmethod
    def _panel(signals: Any) -> np.ndarray:
        """(N, T, C) windows -> sktime's (N, C, T) float64 panel."""
        signals = np.asarray(signals)
        if signals.ndim != 3:
            raise ValueError(f"RocketBaseline: expected signals (N, T, C), found {signals.shape}")
        return np.ascontiguousarray(signals.transpose(0, 2, 1), dtype=np.float64)

    def _features(self, signals: Any) -> np.ndarray:
        features = self._transform.transform(self._panel(signals))
        return np.asarray(features, dtype=np.float64)

    def fit(self, signals: Any, labels: Any) -> RocketBaseline:
        from sklearn.linear_model import RidgeClassifier
        from sklearn.preprocessing import StandardScaler

        panel, labels = self._panel(signals), np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(panel):
            raise ValueError(
                f"RocketBaseline.fit: expected labels (N,) for {len(panel)} windows, "
                f"found shape {labels.shape}"
            )
        # n_jobs=1: numba's thread count changes only the speed; one thread keeps a sweep
        # from taking every core of a shared machine.
        self._transform = _multirocket()(
            num_kernels=self.num_kernels, random_state=self.seed, n_jobs=1
        ).fit(panel)
        features = np.asarray(self._transform.transform(panel), dtype=np.float64)
        self._scaler = StandardScaler().fit(features)
        self._ridge = RidgeClassifier(alpha=self.ridge_alpha).fit(
            self._scaler.transform(features), labels
        )
        return self

    def _check_fitted(self, where: str):
        if self._ridge is None:
            raise RuntimeError(f"RocketBaseline.{where}: call fit(signals, labels) first")
        return self._ridge

    def predict(self, signals: Any) -> np.ndarray:
        """(N,) labels, in the same label space as `fit`'s labels."""
        ridge = self._check_fitted("predict")
        return ridge.predict(self._scaler.transform(self._features(signals)))

    @property
    def classes_(self) -> np.ndarray:
        return self._check_fitted("classes_").classes_

    def num_parameters(self) -> int:
        """Ridge weights and intercepts plus the transform's fitted biases."""
        ridge = self._check_fitted("num_parameters")
        transform = self._transform
        biases = sum(len(part[-1]) for part in (transform.parameter, transform.parameter1))
        return int(ridge.coef_.size + np.size(ridge.intercept_) + biases)

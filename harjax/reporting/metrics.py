"""Classification metrics and the convergence measure, in plain numpy.

Every variant — the neural ones and the classical baseline — is scored by the same two functions
here, so a table never compares numbers computed two different ways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_metrics(
    labels: Any,
    predictions: Any,
    class_names: Sequence[str],
    mask: Any = None,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class F1, confusion matrix and support of integer predictions.

    Args:
      labels: (N,) true class indices in [0, len(class_names)).
      predictions: (N,) predicted class indices, same range.
      class_names: one name per class index.
      mask: optional (N,) booleans; False rows are padding (eval batches are padded to a fixed
        size) and are left out of every number, including `num_examples`.

    Macro-F1 averages the F1 of the classes *present in the evaluated labels* only. A k-shot
    test split (or a subject-disjoint fold) may lack a class entirely; its F1 is undefined
    (0/0), and counting it as 0 would punish the model for a class it was never asked about.
    Nothing is forgiven, though: predicting an absent class is still an error — it is a false
    negative of the true class, so it lowers that (present) class's recall and F1. This equals
    `sklearn.metrics.f1_score(..., labels=<present classes>, average="macro")`.

    Returns a JSON-ready dict: `accuracy`, `macro_f1` (floats), `per_class_f1` ({name: float,
    or None for a class absent from the labels}), `confusion` (list of lists, rows = true
    class, columns = predicted class, over all classes), `support` ({name: count}),
    `num_examples`.
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    num_classes = len(class_names)
    if num_classes == 0:
        raise ValueError("classification_metrics: expected at least one class name, found none")
    if labels.ndim != 1 or predictions.shape != labels.shape:
        raise ValueError(
            "classification_metrics: expected labels and predictions of the same shape (N,), "
            f"found labels {labels.shape} and predictions {predictions.shape}"
        )
    for name, array in (("labels", labels), ("predictions", predictions)):
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"classification_metrics: expected integer class indices in {name}, found dtype "
                f"{array.dtype} (take the argmax of logits first)"
            )
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != labels.shape:
            raise ValueError(
                f"classification_metrics: expected mask of shape {labels.shape}, found {mask.shape}"
            )
        keep = mask.astype(bool)
        labels, predictions = labels[keep], predictions[keep]
    labels = labels.astype(np.int64)
    predictions = predictions.astype(np.int64)
    for name, array in (("labels", labels), ("predictions", predictions)):
        bad = (array < 0) | (array >= num_classes)
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"classification_metrics: expected {name} in [0, {num_classes}) for classes "
                f"{list(class_names)}, found {int(array[index])} at (unmasked) position {index}"
            )
    num_examples = int(labels.size)
    if num_examples == 0:
        raise ValueError("classification_metrics: no examples left to score (empty or all masked)")

    confusion = np.bincount(
        labels * num_classes + predictions, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    true_positives = np.diag(confusion)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (support + predicted); defined for support > 0.
    present = support > 0
    f1 = np.zeros(num_classes)
    f1[present] = 2 * true_positives[present] / (support[present] + predicted[present])

    return {
        "accuracy": float(true_positives.sum() / num_examples),
        "macro_f1": float(f1[present].mean()),
        "per_class_f1": {
            str(name): (float(f1[i]) if present[i] else None) for i, name in enumerate(class_names)
        },
        "confusion": confusion.tolist(),
        "support": {str(name): int(support[i]) for i, name in enumerate(class_names)},
        "num_examples": num_examples,
    }


def steps_to_fraction(
    steps: Sequence[int], values: Sequence[float], fraction: float = 0.95
) -> int | None:
    """First step at which `values` reaches `fraction` x its final value; None for no points.

    This is the paper's convergence measure ("steps needed to reach 95 % of each run's final
    validation macro-F1"). It is relative to the run's *own* end point, so a run that converges
    fast to a poor score is fast here; read it next to the final score, never alone.
    """
    steps = np.asarray(steps)
    values = np.asarray(values, dtype=np.float64)
    if steps.ndim != 1 or values.shape != steps.shape:
        raise ValueError(
            f"steps_to_fraction: expected steps and values of the same shape (N,), found "
            f"{steps.shape} and {values.shape}"
        )
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"steps_to_fraction: expected fraction in (0, 1], found {fraction}")
    if steps.size == 0:
        return None
    if not np.isfinite(values).all():
        index = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(
            f"steps_to_fraction: expected finite values, found {values[index]} at step "
            f"{steps[index]} (position {index})"
        )
    if (np.diff(steps) <= 0).any():
        index = int(np.flatnonzero(np.diff(steps) <= 0)[0]) + 1
        raise ValueError(
            f"steps_to_fraction: expected strictly increasing steps, found {steps[index]} after "
            f"{steps[index - 1]} at position {index}"
        )
    target = fraction * values[-1]
    # The final point qualifies whenever the final value is >= 0 (F1, accuracy); for a negative
    # one (a log-likelihood, say) nothing may qualify and the last step is the honest answer.
    reached = values >= target
    return int(steps[int(np.argmax(reached))]) if reached.any() else int(steps[-1])

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from harjax.reporting.metrics import classification_metrics, steps_to_fraction

NAMES = ["walk", "run", "sit", "stand", "lie"]


def test_metrics_match_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=500)
    predictions = np.where(rng.random(500) < 0.6, labels, rng.integers(0, 5, size=500))
    metrics = classification_metrics(labels, predictions, NAMES)

    assert metrics["num_examples"] == 500
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predictions), abs=1e-12)
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(labels, predictions, average="macro"), abs=1e-12
    )
    per_class = f1_score(labels, predictions, average=None)
    assert [metrics["per_class_f1"][name] for name in NAMES] == pytest.approx(per_class)
    assert metrics["confusion"] == confusion_matrix(labels, predictions).tolist()
    assert metrics["support"] == {name: int((labels == i).sum()) for i, name in enumerate(NAMES)}
    assert isinstance(metrics["accuracy"], float) and isinstance(metrics["confusion"][0][0], int)


def test_macro_f1_averages_only_classes_present_in_labels():
    # Class 2 ("sit") never occurs in the labels, yet the model predicts it twice.
    labels = np.array([0, 0, 1, 1, 3, 3, 4, 4])
    predictions = np.array([0, 2, 1, 1, 3, 2, 4, 0])
    metrics = classification_metrics(labels, predictions, NAMES)

    present = [0, 1, 3, 4]
    expected = f1_score(labels, predictions, labels=present, average="macro")
    assert metrics["macro_f1"] == pytest.approx(expected, abs=1e-12)
    # Not the all-class average, which would count the absent class as an F1 of 0.
    all_classes = f1_score(labels, predictions, labels=range(5), average="macro", zero_division=0)
    assert metrics["macro_f1"] > all_classes + 0.1
    assert metrics["per_class_f1"]["sit"] is None
    assert metrics["support"]["sit"] == 0
    # The wrong "sit" predictions are not forgiven: they cost walk's and stand's recall.
    assert metrics["per_class_f1"]["walk"] == pytest.approx(2 * 1 / (2 + 2))
    assert metrics["per_class_f1"]["stand"] == pytest.approx(2 * 1 / (2 + 1))
    assert [row[2] for row in metrics["confusion"]] == [1, 0, 0, 1, 0]


def test_mask_drops_padding():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, size=40)
    predictions = rng.integers(0, 5, size=40)
    mask = np.arange(40) < 29  # an eval batch of 40 with 11 padded rows
    padded_labels = np.where(mask, labels, 0)
    padded_predictions = np.where(mask, predictions, 3)
    masked = classification_metrics(padded_labels, padded_predictions, NAMES, mask=mask)
    assert masked == classification_metrics(labels[:29], predictions[:29], NAMES)
    assert masked["num_examples"] == 29


def test_metrics_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"found 5 at \(unmasked\) position 1"):
        classification_metrics([0, 5], [0, 1], NAMES)
    with pytest.raises(ValueError, match="integer class indices in predictions"):
        classification_metrics([0, 1], [0.0, 1.0], NAMES)
    with pytest.raises(ValueError, match="same shape"):
        classification_metrics([0, 1], [0, 1, 2], NAMES)
    with pytest.raises(ValueError, match="all masked"):
        classification_metrics([0, 1], [0, 1], NAMES, mask=[False, False])
    # Padding labels such as -1 are fine once masked out.
    metrics = classification_metrics([0, -1], [0, 4], NAMES, mask=[True, False])
    assert metrics["accuracy"] == 1.0


@pytest.mark.parametrize(
    "steps, values, fraction, expected",
    [
        ([10, 20, 30, 40], [0.1, 0.5, 0.9, 1.0], 0.95, 40),
        ([10, 20, 30, 40], [0.1, 0.5, 0.96, 1.0], 0.95, 30),
        # Reaches the target early, dips, recovers: the first crossing counts.
        ([0, 50, 100, 150], [0.2, 0.8, 0.4, 0.8], 0.95, 50),
        ([0, 50, 100], [0.3, 0.3, 0.3], 0.95, 0),
        ([5, 7], [0.2, 0.5], 0.5, 7),
        ([5, 7], [0.25, 0.5], 0.5, 5),
        ([1, 2, 3], [0.99, 1.0, 0.98], 1.0, 1),
        ([100], [0.4], 0.95, 100),
    ],
)
def test_steps_to_fraction(steps, values, fraction, expected):
    assert steps_to_fraction(steps, values, fraction) == expected


def test_steps_to_fraction_edge_cases():
    assert steps_to_fraction([], []) is None
    assert isinstance(steps_to_fraction(np.array([3, 4]), np.array([0.5, 0.5])), int)
    with pytest.raises(ValueError, match="strictly increasing"):
        steps_to_fraction([10, 10], [0.1, 0.2])
    with pytest.raises(ValueError, match="same shape"):
        steps_to_fraction([10, 20], [0.1])
    with pytest.raises(ValueError, match="finite"):
        steps_to_fraction([10, 20], [0.1, float("nan")])
    with pytest.raises(ValueError, match="fraction"):
        steps_to_fraction([10], [0.1], fraction=1.5)

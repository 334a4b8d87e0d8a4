"""Parsing --shots: one parser for the few-shot sweep and transfer."""

import pytest

from harjax import fewshot, transfer


def test_fewshot_shots_are_sorted_unique_positive_with_all_last():
    assert fewshot.parse_shots("10,1,5,5") == [1, 5, 10, "all"]
    assert fewshot.parse_shots("") == ["all"]
    for bad in ("0", "-1", "x"):
        with pytest.raises(ValueError, match="not a positive integer"):
            fewshot.parse_shots(bad)


def test_transfer_shots_admit_zero_and_no_implicit_all():
    assert transfer.parse_shots("5,0,1") == [0, 1, 5]
    with pytest.raises(ValueError, match="no value"):
        transfer.parse_shots("")

"""Starting a run from a trained tree: head re-initialisation rules and path/shape errors."""

import numpy as np
import pytest

from harjax.run.warm_start import InitTrainable, start_from


def test_start_from_reinitialises_only_a_head_of_another_shape():
    zeros, ones = (lambda *s: np.zeros(s, np.float32)), (lambda *s: np.ones(s, np.float32))
    fresh = {"projection": {"w": zeros(2, 3)}, "head": {"kernel": zeros(4, 3)}}
    old = {"projection": {"w": ones(2, 3)}, "head": {"kernel": ones(4, 5)}}
    out = start_from(fresh, InitTrainable(old, "h"))
    np.testing.assert_array_equal(out["projection"]["w"], 1.0)
    np.testing.assert_array_equal(out["head"]["kernel"], 0.0)  # 5 classes -> 3: fresh head
    same = {"projection": {"w": ones(2, 3)}, "head": {"kernel": ones(4, 3)}}
    np.testing.assert_array_equal(
        start_from(fresh, InitTrainable(same, "h"))["head"]["kernel"], 1.0
    )
    forced = InitTrainable(same, "h", reinit_head=True)
    np.testing.assert_array_equal(start_from(fresh, forced)["head"]["kernel"], 0.0)
    bad = {"projection": {"w": ones(2, 4)}, "extra": {"b": ones(1)}}
    with pytest.raises(ValueError, match=r"projection/w: expected \(2, 3\), found \(2, 4\)"):
        start_from(fresh, InitTrainable(bad, "h", source="here"))

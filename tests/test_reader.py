"""The scenario-table reader: a key given with the same value as its default is still
converted and checked (an identity test once returned 5 for ``x_mm = 5``, unscaled)."""

from __future__ import annotations

from ablasim.reader import Errors, Table


def test_a_value_equal_to_its_default_is_scaled_and_checked():
    errors = Errors()
    t = Table({"x_mm": 5, "n": -1}, "t", errors)
    assert t.number("x_mm", 5, scale=1e-3) == 0.005
    assert t.number("y_mm", 7, scale=1e-3) == 7  # absent: the default as given
    assert t.number("n", -1, min=0) is None  # checked, though equal to the default
    assert errors == ["t.n: must be >= 0, got -1"]

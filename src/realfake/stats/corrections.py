"""Multiple-testing corrections over many p-values, and how a p-value is printed."""

from __future__ import annotations

import math

import numpy as np

CORRECTIONS = ("holm", "bh")


def adjust_p_values(p_values: np.ndarray, method: str = "holm") -> np.ndarray:
    """Multiple-testing adjusted p-values; NaN entries stay NaN and do not count as tests.

    ``holm``: Holm's step-down, controls the family-wise error rate (the chance
    of any false flag). ``bh``: Benjamini-Hochberg step-up, controls the false
    discovery rate (the expected share of false flags). A hypothesis is
    rejected at level alpha when its adjusted p-value is below alpha.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown multiple-testing correction {method!r}; choose one of {', '.join(CORRECTIONS)}")
    p_values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p_values.shape, np.nan)
    valid = np.flatnonzero(np.isfinite(p_values))
    count = valid.size
    if count == 0:
        return adjusted
    order = valid[np.argsort(p_values[valid], kind="stable")]
    ranked = p_values[order]
    if method == "holm":
        values = np.maximum.accumulate((count - np.arange(count)) * ranked)
    else:
        values = np.minimum.accumulate((count / np.arange(1, count + 1) * ranked)[::-1])[::-1]
    adjusted[order] = np.minimum(values, 1.0)
    return adjusted


def format_p(p_value: float) -> str:
    """A p-value for a sentence: two significant digits, scientific below 0.001 ('3e-12'), '< 1e-300' at underflow."""
    if p_value is None or not math.isfinite(p_value):
        return "n/a"
    if p_value == 0.0:
        return "< 1e-300"
    if p_value < 1e-3:
        mantissa, exponent = f"{p_value:.0e}".split("e")
        return f"{mantissa}e-{int(exponent[1:])}"
    return f"{p_value:.2g}"

"""How sure is an accuracy? 95% intervals, seed spreads, and comparisons that say "better" only when it is.

An accuracy measured on ``n`` photos is a proportion: its 95% interval here is Wilson's (scipy's
``binomtest(...).proportion_ci``), which stays inside [0, 1] and behaves for small ``n``. A training run is
one draw: several seeds show how much the same recipe moves. A comparison calls one recipe better than
another only when their intervals do not overlap *and* every seed of the one beats every seed of the other.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest


def wilson(accuracy: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson interval of an accuracy measured on ``n`` photos."""
    interval = binomtest(round(accuracy * n), n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def describe(accuracy: float, n: int) -> str:
    """``'64.2% (95% interval 61.3-66.9%, 1,117 photos)'``."""
    low, high = wilson(accuracy, n)
    return f"{accuracy:.1%} (95% interval {100 * low:.1f}-{100 * high:.1f}%, {n:,} photos)"


def over_seeds(accuracies: dict[str, list[float]], n: int) -> pd.DataFrame:
    """One row per recipe: mean accuracy over its seeds, their range, and the Wilson interval of the mean (in %)."""
    rows = {}
    for name, values in accuracies.items():
        mean = float(np.mean(values))
        low, high = wilson(mean, n)
        rows[name] = {"seeds": len(values), "mean %": 100 * mean, "lowest seed %": 100 * min(values),
                      "highest seed %": 100 * max(values), "95% low %": 100 * low, "95% high %": 100 * high}
    return pd.DataFrame(rows).T.astype({"seeds": int}).round(1)


def separated(better: list[float], worse: list[float], n: int) -> bool:
    """Whether ``better`` beats ``worse`` clearly: intervals of the means apart, and no seed overlap."""
    return wilson(float(np.mean(better)), n)[0] > wilson(float(np.mean(worse)), n)[1] and min(better) > max(worse)


def compare(name_a: str, a: list[float], name_b: str, b: list[float], n: int) -> str:
    """A sentence that says which recipe is better only where :func:`separated` says so."""
    (high, lo), (name_hi, name_lo) = ((a, b), (name_a, name_b)) if np.mean(a) >= np.mean(b) else ((b, a), (name_b, name_a))
    shown = [round(100 * float(np.mean(x)), 1) for x in (high, lo)]  # the gap between the numbers as printed
    gap = shown[0] - shown[1]
    numbers = f"{shown[0]:.1f}% against {shown[1]:.1f}% on {n:,} photos ({len(high)} and {len(lo)} seeds)"
    if separated(high, lo, n):
        return f"{name_hi} beats {name_lo} by {gap:.1f} points: {numbers}; the intervals are apart and no seed overlaps."
    return (f"{name_hi} and {name_lo} are within noise of each other: {numbers}, {gap:.1f} points apart; "
            "the intervals overlap or the seeds interleave, so neither is shown better.")

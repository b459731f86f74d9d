"""How sure is an accuracy? 95% intervals, seed spreads, and comparisons that say "better" only when it is.

An accuracy measured on ``n`` photos is a proportion: Wilson's 95% interval (scipy's
``binomtest(...).proportion_ci``) stays inside [0, 1] and behaves for small ``n``, but it assumes the photos are
independent. Photos taken in bursts of near-duplicates are not: :func:`burst_interval` resamples whole bursts
instead (a cluster bootstrap), which gives the wider, honest interval where bursts exist. A training run is one
draw: several seeds show how much the same recipe moves. A comparison calls one recipe better than another only
when their intervals do not overlap *and* every seed of the one beats every seed of the other.
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


def burst_interval(
    correct: np.ndarray, bursts: np.ndarray, confidence: float = 0.95, draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of a mean accuracy that draws whole bursts of photos, never single photos.

    ``correct``: one row per seed (or one row), one column per photo, true where the photo was recognised;
    ``bursts``: a burst number per photo (:func:`fruitlib.explore.bursts`; all different: Wilson-like photos).
    The same ``seed`` gives the same interval.
    """
    per_photo = np.atleast_2d(np.asarray(correct, dtype=float)).mean(0)  # the mean over seeds, photo by photo
    _, burst = np.unique(np.asarray(bursts), return_inverse=True)
    hits, sizes = np.bincount(burst, weights=per_photo), np.bincount(burst)
    drawn = np.random.default_rng(seed).integers(0, len(sizes), (draws, len(sizes)))
    accuracy = hits[drawn].sum(1) / sizes[drawn].sum(1)
    tail = (1 - confidence) / 2
    return float(np.quantile(accuracy, tail)), float(np.quantile(accuracy, 1 - tail))


Intervals = dict[str, tuple[float, float]]  # a recipe's name: its (low, high) interval, e.g. from burst_interval


def over_seeds(accuracies: dict[str, list[float]], n: int, bursts: Intervals | None = None) -> pd.DataFrame:
    """One row per recipe: mean accuracy over its seeds, their range, and the Wilson interval of the mean (in %);
    with ``bursts``, also those intervals (columns ``bursts low %`` and ``bursts high %``)."""
    rows = {}
    for name, values in accuracies.items():
        mean = float(np.mean(values))
        low, high = wilson(mean, n)
        rows[name] = {
            "seeds": len(values),
            "mean %": 100 * mean,
            "lowest seed %": 100 * min(values),
            "highest seed %": 100 * max(values),
            "95% low %": 100 * low,
            "95% high %": 100 * high,
        }
        if bursts is not None:
            rows[name] |= {"bursts low %": 100 * bursts[name][0], "bursts high %": 100 * bursts[name][1]}
    return pd.DataFrame(rows).T.astype({"seeds": int}).round(1)


def separated(
    better: list[float],
    worse: list[float],
    n: int,
    intervals: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> bool:
    """Whether ``better`` beats ``worse`` clearly: intervals of the means apart (Wilson's, or the given
    ``(better's, worse's)``), and no seed overlap."""
    low = intervals[0][0] if intervals else wilson(float(np.mean(better)), n)[0]
    high = intervals[1][1] if intervals else wilson(float(np.mean(worse)), n)[1]
    return low > high and min(better) > max(worse)


def compare(name_a: str, a: list[float], name_b: str, b: list[float], n: int, bursts: Intervals | None = None) -> str:
    """A sentence that says which recipe is better only where :func:`separated` says so; with ``bursts`` (both
    names' intervals), those intervals must be apart, not Wilson's."""
    (high, lo), (name_hi, name_lo) = (
        ((a, b), (name_a, name_b)) if np.mean(a) >= np.mean(b) else ((b, a), (name_b, name_a))
    )
    shown = [round(100 * float(np.mean(x)), 1) for x in (high, lo)]  # the gap between the numbers as printed
    gap = shown[0] - shown[1]
    numbers = f"{shown[0]:.1f}% against {shown[1]:.1f}% on {n:,} photos ({len(high)} and {len(lo)} seeds)"
    intervals = (bursts[name_hi], bursts[name_lo]) if bursts else None
    kind = "burst intervals" if bursts else "intervals"
    if separated(high, lo, n, intervals):
        return f"{name_hi} beats {name_lo} by {gap:.1f} points: {numbers}; the {kind} are apart and no seed overlaps."
    return (
        f"{name_hi} and {name_lo} are within noise of each other: {numbers}, {gap:.1f} points apart; "
        f"the {kind} overlap or the seeds interleave, so neither is shown better."
    )

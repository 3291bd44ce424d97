"""The AUC against the tolerance and what the test can detect: the outcome, its direction, the power.

The AUC test itself (its interval and p-values) is :mod:`realfake.stats.auc`; this module judges its result:

- :func:`tolerance_outcome`: indistinguishable, within tolerance,
  distinguishable or inconclusive, from the interval, the p-value and the
  tolerance, on both sides of 0.5; :func:`direction`: which way the scores
  differ;
- :func:`minimum_detectable_auc`: the AUC the test detects with a given power
  (from :func:`null_auc_standard_error` and
  :func:`hanley_mcneil_standard_error`); :func:`examples_to_settle`: how many
  examples would settle an inconclusive outcome; :func:`smallest_decisive_split`:
  the fewest examples at which the test can reject at all;
- :func:`tv_lower_bound`: the lower bound on the total-variation distance
  between the classes implied by the held-out accuracy and AUC.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from realfake.stats.accuracy import predicted_labels


def null_auc_standard_error(n_real: int, n_fake: int) -> float:
    """The standard error of the AUC when both classes come from one continuous distribution:
    sqrt((n_real + n_fake + 1) / (12 n_real n_fake)) (the Mann-Whitney U variance, scaled)."""
    return math.sqrt((n_real + n_fake + 1) / (12.0 * n_real * n_fake))


def hanley_mcneil_standard_error(auc_value: float, n_real: int, n_fake: int) -> float:
    """The standard error of an AUC of ``auc_value`` (Hanley & McNeil 1982, exponential score model)."""
    q1 = auc_value / (2.0 - auc_value)
    q2 = 2.0 * auc_value**2 / (1.0 + auc_value)
    variance = (
        auc_value * (1 - auc_value) + (n_fake - 1) * (q1 - auc_value**2) + (n_real - 1) * (q2 - auc_value**2)
    ) / (n_fake * n_real)
    return math.sqrt(max(variance, 0.0))


def minimum_detectable_auc(
    n_real: int, n_fake: int, significance: float = 0.05, power: float = 0.8, above: float = 0.5
) -> float:
    """The AUC that a one-sided test at level ``significance`` tells from ``above`` with probability ``power``.

    Solves A = above + z(1 - significance) SE0 + z(power) SE(A), SE0 the
    standard error at ``above`` (the null one at 0.5) and SE(A) Hanley and
    McNeil's at A (normal approximations; good from a few tens of examples per
    class). With ``above`` = 0.5 + tolerance this is the AUC whose interval's
    lower bound clears the tolerance with that power. NaN without both classes.
    """
    if n_real < 1 or n_fake < 1:
        return math.nan
    z_level, z_power = stats.norm.ppf(1 - significance), stats.norm.ppf(power)
    at_start = (
        null_auc_standard_error(n_real, n_fake) if above == 0.5 else hanley_mcneil_standard_error(above, n_real, n_fake)
    )
    value = above + (z_level + z_power) * at_start
    for _ in range(50):  # fixed point: SE(A) changes slowly with A
        value = min(
            1.0, above + z_level * at_start + z_power * hanley_mcneil_standard_error(min(value, 1.0), n_real, n_fake)
        )
    return float(value)


def tolerance_outcome(low: float, high: float, p_value: float, tolerance: float, significance: float) -> str:
    """The outcome against the tolerance band [0.5 - tolerance, 0.5 + tolerance], on both sides of 0.5.

    ``low`` and ``high`` are the AUC's two-sided interval at confidence 1 -
    ``significance`` and ``p_value`` the two-sided test against 0.5, so that the
    interval and the test speak at one level; an outcome never contradicts the
    test:

    - ``distinguishable``: the whole interval lies outside the band (above it:
      the fakes score higher; below it: lower) and the test is significant;
    - ``within_tolerance``: the interval lies inside the band but excludes 0.5,
      and the test is significant;
    - ``indistinguishable``: the interval lies inside the band, and the test
      finds no difference from 0.5 (or the interval includes 0.5);
    - ``inconclusive``: anything else: the interval straddles an edge of the
      band, is undefined, or lies outside the band with a test that is not
      significant (a test split too small to decide: a few examples can give an
      interval of zero width).
    """
    upper, lower = 0.5 + tolerance, 0.5 - tolerance
    if not (math.isfinite(low) and math.isfinite(high) and math.isfinite(p_value)):
        return "inconclusive"
    significant = p_value < significance
    if low > upper or high < lower:
        return "distinguishable" if significant else "inconclusive"
    if low >= lower and high <= upper:
        return "within_tolerance" if significant and (low > 0.5 or high < 0.5) else "indistinguishable"
    return "inconclusive"


def direction(auc_value: float) -> str | None:
    """Which way the scores differ: "higher" (fakes score higher than reals, AUC above 0.5), "lower", or
    None at 0.5 or without an AUC."""
    if not math.isfinite(auc_value) or auc_value == 0.5:
        return None
    return "higher" if auc_value > 0.5 else "lower"


def examples_to_settle(
    auc_value: float,
    low: float,
    high: float,
    examples: int,
    tolerance: float,
    confidence: float = 0.95,
    power: float = 0.8,
) -> float:
    """About how many test examples in all would settle an inconclusive outcome with probability ``power``.

    The interval's half-width h shrinks as 1 / sqrt(N). With the AUC at a
    distance d from the nearer edge of the tolerance band, the interval clears
    the edge with probability ``power`` once z(conf) SE' + z(power) SE' = d, SE'
    the standard error at N': N' = N ((z(conf) + z(power)) (h / z(conf)) / d)^2,
    z(conf) the interval's normal quantile. (Clearing it only half the time
    needs the smaller N (h / d)^2.) Infinite when the AUC sits on an edge.
    """
    distance = min(abs(auc_value - (0.5 + tolerance)), abs(auc_value - (0.5 - tolerance)))
    half_width = (high - low) / 2.0
    if not math.isfinite(half_width) or not math.isfinite(distance) or distance == 0:
        return math.inf
    z_interval, z_power = stats.norm.ppf(0.5 + confidence / 2.0), stats.norm.ppf(power)
    standard_error = half_width / z_interval
    return float(examples * ((z_interval + z_power) * standard_error / distance) ** 2)


def smallest_decisive_split(significance: float = 0.05) -> int:
    """The fewest test examples per class at which the two-sided exact Mann-Whitney test can reject at
    ``significance`` at all: with m of each, even a perfect separation gives p = 2 / C(2m, m) (4 at 0.05)."""
    per_class = 1
    while 2.0 / math.comb(2 * per_class, per_class) >= significance:
        per_class += 1
    return per_class


def tv_lower_bound(labels: np.ndarray, scores: np.ndarray, confidence: float = 0.95, auc_interval=None) -> float:
    """A lower confidence bound on the total-variation distance between the fake and real examples tested.

    Two bounds, each at 1 - (1 - ``confidence``) / 2, so that the larger holds
    at ``confidence`` (Bonferroni):

    - from the accuracy: any classifier's held-out rule A = {P(fake) > 0.5}
      gives TV >= P_fake(A) - P_real(A) = TPR + TNR - 1 = 2 x balanced accuracy
      - 1. With balanced classes the balanced accuracy is the accuracy (its
      one-sided Clopper-Pearson lower limit); otherwise the lower limits of TPR
      and TNR, each at half that error rate, are added and 1 subtracted;
    - from the AUC (``auc_interval``, its two-sided (low, high) at
      ``confidence``, whose ends are one-sided bounds at that level): TV >=
      |AUC - 0.5|, since AUC - 0.5 = E[sign(S_fake - S_real)] / 2 is the
      integral of a function bounded by 1/2 against the difference of the two
      score distributions. It is the stronger bound when the scores rank well
      but the 0.5 threshold sits badly (unbalanced classes).

    Floored at 0. The distance is that of the examples tested (the matched
    test population), not of all stamps.
    """
    labels = np.asarray(labels)
    predicted = predicted_labels(scores)
    fakes, reals = labels == 1, labels == 0
    n_fake, n_real = int(fakes.sum()), int(reals.sum())
    if n_fake == 0 or n_real == 0:
        return math.nan
    level = 1.0 - (1.0 - confidence) / 2.0

    def lower(successes: int, trials: int, level: float) -> float:
        return float(stats.binomtest(successes, trials, alternative="greater").proportion_ci(level, "exact").low)

    if n_fake == n_real:
        bound = 2.0 * lower(int(np.sum(predicted == labels)), labels.size, level) - 1.0
    else:
        each = 1.0 - (1.0 - level) / 2.0
        bound = (
            lower(int(np.sum(predicted[fakes] == 1)), n_fake, each)
            + lower(int(np.sum(predicted[reals] == 0)), n_real, each)
            - 1.0
        )
    if auc_interval is not None and all(math.isfinite(end) for end in auc_interval):
        low, high = auc_interval
        bound = max(bound, low - 0.5, 0.5 - high)
    return max(0.0, bound)

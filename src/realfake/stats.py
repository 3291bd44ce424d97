"""Statistics of the verdict, the accuracy side: binomial tests, AUC bootstraps, comparisons, corrections.

Pure numpy/scipy/scikit-learn functions on arrays of labels (int, fake = 1,
real = 0) and scores (float, the predicted probability of fake). Nothing here
knows about models, shards or files. The AUC test, its intervals, power and
the tolerance outcome are in :mod:`realfake.auc`.

- Accuracy is tested against chance with an *exact* one-sided binomial test
  (``scipy.stats.binomtest``, ``alternative="greater"``), chance being the
  majority-class share, with a Clopper-Pearson interval: the original
  method's statistic.
- AUC bootstrap: class-stratified percentile intervals from multinomial
  resampling weights, so that B resamples cost O(B n) and not B sorts (the
  small-sample interval of :func:`realfake.auc.auc_test`).
- Two classifiers scored on the same examples are compared with the exact
  one-sided McNemar test (a binomial test on the discordant pairs).
- Many bins tested at once are corrected with Holm's step-down method
  (family-wise error) or Benjamini-Hochberg (false discovery rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import log_loss

from realfake.errors import RealfakeError

CORRECTIONS = ("holm", "bh")
BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000  # resamples x examples held at once by the AUC bootstrap


@dataclass(frozen=True)
class StatisticsSettings:
    """How the verdict, breakdowns and baselines are computed.

    ``significance``: the level of every test; ``confidence``: of every
    interval; ``bootstrap``: resamples per AUC interval; ``seed``: of the
    bootstraps and the baselines; ``bins``: quantile bins per numeric
    breakdown; ``correction``: ``holm`` (family-wise) or ``bh`` (false discovery
    rate) over all bins of all breakdowns, and over the baselines;
    ``tolerance``: the AUC excess over 0.5 that does not matter
    (:func:`realfake.auc.tolerance_outcome`); ``power``: of the minimum detectable AUC;
    ``baseline_rows``: at most this many training examples (a seeded sample,
    stratified by class) train the shortcut baselines, whose test scores still
    cover the whole test split.
    """

    significance: float = 0.05
    confidence: float = 0.95
    bootstrap: int = 1000
    seed: int = 1
    bins: int = 5
    correction: str = "holm"
    tolerance: float = 0.01
    power: float = 0.8
    baseline_rows: int = 200_000

    def __post_init__(self) -> None:
        for name in ("significance", "confidence", "tolerance", "power"):
            if not math.isfinite(getattr(self, name)):
                raise RealfakeError(f"{name} must be a finite number, got {getattr(self, name)}")
        if self.baseline_rows < 2:
            raise RealfakeError(f"baseline_rows must be at least 2, got {self.baseline_rows}")
        if not 0 < self.significance < 1:
            raise RealfakeError(f"significance must be between 0 and 1, got {self.significance}")
        if not 0 < self.confidence < 1:
            raise RealfakeError(f"confidence must be between 0 and 1, got {self.confidence}")
        if self.bootstrap < 1:
            raise RealfakeError(f"bootstrap resamples must be at least 1, got {self.bootstrap}")
        if self.bins < 1:
            raise RealfakeError(f"bins must be at least 1, got {self.bins}")
        if self.correction not in CORRECTIONS:
            raise RealfakeError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if not 0 <= self.tolerance < 0.5:
            raise RealfakeError(f"tolerance must be at least 0 and below 0.5 (an AUC excess), got {self.tolerance}")
        if not 0 < self.power < 1:
            raise RealfakeError(f"power must be between 0 and 1, got {self.power}")


@dataclass(frozen=True)
class AccuracyTest:
    """Accuracy of ``correct`` of ``trials`` against ``chance``, one-sided exact binomial test."""

    correct: int
    trials: int
    chance: float
    accuracy: float
    low: float
    high: float
    p_value: float

    def record(self) -> dict:
        """The test as JSON-ready keys: accuracy, accuracy_low, accuracy_high, chance, correct, examples, p_value."""
        return {
            "accuracy": self.accuracy,
            "accuracy_low": self.low,
            "accuracy_high": self.high,
            "chance": self.chance,
            "correct": self.correct,
            "examples": self.trials,
            "p_value": self.p_value,
        }


def majority_share(labels: np.ndarray) -> float:
    """The accuracy of always guessing the larger class: max(fake share, real share); NaN if empty."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return math.nan
    fake_share = float(np.mean(labels == 1))
    return max(fake_share, 1.0 - fake_share)


def predicted_labels(scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """1 (fake) where the probability of fake exceeds ``threshold``, else 0: the softmax argmax at 0.5."""
    return (np.asarray(scores, dtype=np.float64) > threshold).astype(np.int32)


def accuracy_test(labels: np.ndarray, scores: np.ndarray, confidence: float = 0.95) -> AccuracyTest:
    """Accuracy at threshold 0.5 with its Clopper-Pearson interval and exact p-value against chance.

    Chance is :func:`majority_share` of ``labels``; the p-value is
    P(X >= correct) for X ~ Binomial(trials, chance). Empty input gives NaNs.
    """
    labels = np.asarray(labels)
    trials = int(labels.size)
    chance = majority_share(labels)
    if trials == 0:
        return AccuracyTest(0, 0, chance, math.nan, math.nan, math.nan, math.nan)
    correct = int(np.sum(predicted_labels(scores) == labels))
    # A bin holding one class has chance 1: nothing can beat it, p = 1.
    result = stats.binomtest(correct, trials, p=min(chance, 1.0), alternative="greater")
    # proportion_ci follows the test's alternative; the reported interval is two-sided.
    interval = stats.binomtest(correct, trials).proportion_ci(confidence_level=confidence, method="exact")
    return AccuracyTest(correct, trials, chance, correct / trials, interval.low, interval.high, float(result.pvalue))


def cross_entropy(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean log loss (natural log) of the fake probabilities; probabilities clipped to [1e-7, 1 - 1e-7]."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return math.nan
    clipped = np.clip(np.asarray(scores, dtype=np.float64), 1e-7, 1 - 1e-7)
    return float(log_loss(labels, clipped, labels=[0, 1]))


def bootstrap_aucs(
    labels: np.ndarray, scores: list[np.ndarray], resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """AUCs of each scorer on ``resamples`` class-stratified bootstrap resamples: float64 (resamples, len(scores)).

    Every scorer is evaluated on the *same* resamples, so differences between
    columns are paired. Returns an empty (0, len(scores)) array when a class is
    missing.
    """
    labels = np.asarray(labels)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_positive, n_negative = positives.size, negatives.size
    if n_positive == 0 or n_negative == 0 or resamples < 1:
        return np.empty((0, len(scores)))
    result = np.empty((resamples, len(scores)))
    chunk = max(1, BOOTSTRAP_CHUNK_ELEMENTS // (n_positive + n_negative))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        positive_weights = rng.multinomial(n_positive, np.full(n_positive, 1.0 / n_positive), size=size)
        negative_weights = rng.multinomial(n_negative, np.full(n_negative, 1.0 / n_negative), size=size)
        for column, score in enumerate(scores):
            score = np.asarray(score, dtype=np.float64)
            result[start : start + size, column] = _weighted_auc(
                score[positives], score[negatives], positive_weights, negative_weights
            )
    return result


def _weighted_auc(
    positive_scores: np.ndarray, negative_scores: np.ndarray, positive_weights: np.ndarray, negative_weights: np.ndarray
) -> np.ndarray:
    """AUC = P(positive > negative) + P(tie) / 2 under integer resampling weights (B, n+) and (B, n-)."""
    order = np.argsort(positive_scores, kind="stable")
    sorted_scores = positive_scores[order]
    cumulative = np.zeros((positive_weights.shape[0], sorted_scores.size + 1))
    np.cumsum(positive_weights[:, order], axis=1, out=cumulative[:, 1:])
    at_or_below = np.searchsorted(sorted_scores, negative_scores, side="right")
    below = np.searchsorted(sorted_scores, negative_scores, side="left")
    total = cumulative[:, -1:]
    above = total - cumulative[:, at_or_below]
    ties = cumulative[:, at_or_below] - cumulative[:, below]
    wins = np.sum(negative_weights * (above + 0.5 * ties), axis=1)
    return wins / (total[:, 0] * negative_weights.sum(axis=1))


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of bootstrap ``samples`` (NaNs if there are none)."""
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return (float(low), float(high))


def mcnemar_greater(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> dict:
    """Exact one-sided McNemar test that classifier A is more accurate than B on the same examples.

    ``a_only`` counts examples A gets right and B wrong, ``b_only`` the reverse;
    under the null each discordant example is a fair coin, so the p-value is
    P(X >= a_only), X ~ Binomial(a_only + b_only, 1/2) (1 when there are none).
    """
    labels = np.asarray(labels)
    right_a = predicted_labels(scores_a) == labels
    right_b = predicted_labels(scores_b) == labels
    a_only = int(np.sum(right_a & ~right_b))
    b_only = int(np.sum(~right_a & right_b))
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(a_only, discordant, 0.5, alternative="greater").pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p_value}


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

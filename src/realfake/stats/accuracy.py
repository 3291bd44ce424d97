"""Statistics of the verdict, the accuracy side: binomial tests, AUC bootstraps, comparisons, corrections.

Pure numpy/scipy/scikit-learn functions on arrays of labels (int, fake = 1,
real = 0) and scores (float, the predicted probability of fake). Nothing here
knows about models, shards or files. The AUC test and its intervals are in
:mod:`realfake.stats.auc`, its power and the tolerance outcome in
:mod:`realfake.stats.tolerance`.

- Accuracy is tested against chance with an *exact* one-sided binomial test
  (``scipy.stats.binomtest``, ``alternative="greater"``), chance being the
  majority-class share, with a Clopper-Pearson interval: the original
  method's statistic.
- AUC bootstrap: class-stratified percentile intervals from multinomial
  resampling weights, so that B resamples cost O(B n) and not B sorts (the
  small-sample interval of :func:`realfake.stats.auc.auc_test`).
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

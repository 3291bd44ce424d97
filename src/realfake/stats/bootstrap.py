"""Bootstrap intervals of the AUC, resampling each class separately."""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000  # resamples x examples held at once by the AUC bootstrap


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

"""Power of the verdict's statistics, and the coverage of its AUC intervals, on synthetic scores.

Usage: .venv/bin/python scripts/power.py [--replications 1000] [--per-class 188] [--seed 1] [--results-page]

Scores: a real galaxy's logit is N(0, 1), a fake's N(shift, 1), and the
probability of fake is the logistic of the logit (a calibrated classifier
thresholded at 0.5, like the CNN's softmax). The shift is set from the true
AUC, Phi(shift / sqrt(2)).

1. Rejection rate at level 0.05 of the binomial test of the accuracy (the
   original method's statistic) and of the one-sided Mann-Whitney test of the
   scores (the verdict's), over the replications, for several true AUCs at
   ``--per-class`` examples per class (188: the demo's test split).
2. Coverage of the 95% AUC interval, bootstrap (1000 resamples) against
   DeLong's, at several sizes: the switch-over point of ``auc.BOOTSTRAP_BELOW``.
3. The time of each interval at a large size, to show what the switch saves.

The numbers in docs/verdict.md come from this script; with ``--results-page`` it
writes its two tables into their blocks there (scripts/results_page.py).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import results_page
from scipy import stats as scipy_stats

from realfake.stats import auc, tolerance
from realfake.stats.accuracy import accuracy_test

RESULTS_PAGE = results_page.DOCS / "verdict.md"
RESULTS_BLOCKS = ("power.py:rejection", "power.py:coverage")


def synthetic(rng: np.random.Generator, per_class: int, auc_value: float) -> tuple[np.ndarray, np.ndarray]:
    shift = math.sqrt(2.0) * scipy_stats.norm.ppf(auc_value)
    labels = np.repeat([0, 1], per_class)
    logits = rng.normal(size=labels.size) + shift * labels - shift / 2
    return labels, 1.0 / (1.0 + np.exp(-logits))


def rejection_rates(rng, per_class: int, auc_values, replications: int) -> list[tuple[float, float, float]]:
    """(true AUC, accuracy-test rejection rate, Mann-Whitney rejection rate) at level 0.05."""
    rows = []
    for auc_value in auc_values:
        accuracy = rank = 0
        for _ in range(replications):
            labels, scores = synthetic(rng, per_class, auc_value)
            accuracy += accuracy_test(labels, scores).p_value < 0.05
            rank += auc.auc_test(labels, scores, resamples=1).p_value_greater < 0.05  # one-sided, as the accuracy
        rows.append((auc_value, accuracy / replications, rank / replications))
    return rows


def interval_coverage(
    rng, sizes, auc_value: float, replications: int, resamples: int
) -> list[tuple[int, float, float]]:
    """(examples per class, bootstrap coverage, DeLong coverage) of the 95% interval of the AUC."""
    rows = []
    for per_class in sizes:
        bootstrap = delong = 0
        for _ in range(replications):
            labels, scores = synthetic(rng, per_class, auc_value)
            resampled = auc.auc_test(labels, scores, resamples=resamples, rng=rng, bootstrap_below=10**12)
            analytic = auc.auc_test(labels, scores, bootstrap_below=0)
            bootstrap += resampled.low <= auc_value <= resampled.high
            delong += analytic.low <= auc_value <= analytic.high
        rows.append((per_class, bootstrap / replications, delong / replications))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--per-class", type=int, default=188)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--results-page", action="store_true", help="also write the two tables into their blocks of docs/verdict.md"
    )
    args = parser.parse_args()
    if args.results_page:
        results_page.check_blocks(RESULTS_PAGE, RESULTS_BLOCKS)
    rng = np.random.default_rng(args.seed)

    print(f"Rejection rate at level 0.05, {args.per_class} examples per class, {args.replications} replications")
    rejection = [
        "| true AUC | rejection rate, accuracy (binomial) | rejection rate, AUC (Mann-Whitney) |",
        "| --- | --- | --- |",
    ]
    for auc_value, accuracy, rank in rejection_rates(rng, args.per_class, (0.5, 0.53, 0.56, 0.6), args.replications):
        rejection.append(f"| {auc_value:.2f} | {accuracy:.3f} | {rank:.3f} |")
    print("\n".join(rejection))
    for per_class in (args.per_class, 4 * args.per_class):
        print(
            f"minimum detectable AUC at {per_class} per class (power 0.8, level 0.05): "
            f"{tolerance.minimum_detectable_auc(per_class, per_class):.4f}"
        )

    replications = max(args.replications // 4, 50)
    print(f"\nCoverage of the 95% AUC interval at true AUC 0.6, {replications} replications (1000 resamples)")
    coverage = ["| examples per class | bootstrap | DeLong |", "| --- | --- | --- |"]
    for per_class, bootstrap, delong in interval_coverage(rng, (25, 100, 500, 1000), 0.6, replications, 1000):
        coverage.append(f"| {per_class} | {bootstrap:.3f} | {delong:.3f} |")
    print("\n".join(coverage))

    labels, scores = synthetic(rng, 500_000, 0.55)
    start = time.perf_counter()
    auc.auc_test(labels, scores, bootstrap_below=0)
    delong_seconds = time.perf_counter() - start
    start = time.perf_counter()
    auc.auc_test(labels, scores, resamples=20, rng=rng, bootstrap_below=10**12)
    bootstrap_seconds = (time.perf_counter() - start) * 1000 / 20
    print(
        f"\nOne million examples: DeLong interval {delong_seconds:.2f} s; a 1000-resample bootstrap "
        f"{bootstrap_seconds:.0f} s (from 20 resamples); ratio {bootstrap_seconds / delong_seconds:.0f}"
    )
    if args.results_page:
        results_page.write_blocks(RESULTS_PAGE, dict(zip(RESULTS_BLOCKS, ("\n".join(rejection), "\n".join(coverage)))))


if __name__ == "__main__":
    main()

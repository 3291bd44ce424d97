"""The AUC as the verdict's statistic: its test and its intervals.

The AUC is the probability that a random fake scores higher than a random real
(ties count half): 0.5 when the CNN sees no difference, 1 when it separates
every pair. It is tested with the two-sided Mann-Whitney test of the scores
(the classes differ, either way: on a held-out split an AUC well below 0.5 is
evidence of a difference too), which uses every score rather than thresholding
them at 0.5, so at a fixed number of examples it has more power than the
binomial test of the accuracy (``scripts/power.py`` measures both;
``docs/verdict.md`` has the numbers). The one-sided p-value (fakes score
higher) is kept beside it.

- :func:`auc_test`: the AUC, its interval and the Mann-Whitney p-value. The
  p-value is exact (``scipy.stats.mannwhitneyu``) for small samples without
  ties (at most ``EXACT_MAX_PAIRS`` real-fake pairs) and otherwise the normal
  approximation with the tie correction. The interval is DeLong's (the
  variance of the AUC from its structural components, computed from midranks
  in O(N log N)) from ``BOOTSTRAP_BELOW`` examples up, and the class-stratified
  percentile bootstrap (:func:`realfake.stats.bootstrap.bootstrap_aucs`) below.
  With clusters (test bricks) the interval and p-values are the cluster-robust
  ones (:mod:`realfake.stats.clusters`).
- :class:`AgainstReals`: many sets of fakes tested against the same reals.
- :func:`paired_auc_difference`: two scorers on the same examples.

The outcome against the tolerance and the test's power are
:mod:`realfake.stats.tolerance`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from realfake.stats.bootstrap import bootstrap_aucs, percentile_interval
from realfake.stats.clusters import (
    MIN_CLUSTERS,
    cluster_codes,
    cluster_robust,
    cluster_standard_error,
    clustered_variance,
)

# The Mann-Whitney p-value is exact up to this many real-fake pairs (and no tied scores): scipy's
# exact distribution costs 10 ms at 100 x 100 pairs and seconds at 400 x 400.
EXACT_MAX_PAIRS = 10_000

# Tied scores with at most this many ways to choose the fakes among all examples: the p-value is the exact
# permutation one (enumerated), where the normal approximation is poor (3 + 3 perfectly split: 0.047 against
# the exact 0.1).
EXACT_TIED_ARRANGEMENTS = 20_000

# From this many examples on, AUC intervals are DeLong's (O(N log N)) rather than bootstrapped
# (O(resamples x N)): see the module docstring and scripts/power.py for the coverage of both.
BOOTSTRAP_BELOW = 2000


@dataclass(frozen=True)
class AucTest:
    """The AUC of fake probabilities, its interval and the Mann-Whitney test.

    ``p_value`` is two-sided (the classes' scores differ, either way);
    ``p_value_greater`` one-sided (fakes score higher). ``interval`` is
    "delong" or "bootstrap"; ``test`` "exact" or "normal"; ``standard_error``
    is DeLong's whatever the interval.
    """

    auc: float
    low: float
    high: float
    interval: str
    standard_error: float
    p_value: float
    test: str
    real: int
    fake: int
    p_value_greater: float = math.nan
    clusters: int = 0
    independent: dict | None = None

    def record(self) -> dict:
        """JSON-ready keys: auc, auc_low, auc_high, auc_interval_method, auc_standard_error, auc_p_value
        (two-sided), auc_p_value_greater (one-sided, fakes higher), auc_test_method, bricks (the clusters, 0
        when none were given) and, when the interval and test are the clusters', the independent-example ones:
        auc_low_independent, auc_high_independent, auc_standard_error_independent, auc_p_value_independent."""
        record = {
            "auc": self.auc,
            "auc_low": self.low,
            "auc_high": self.high,
            "auc_interval_method": self.interval,
            "auc_standard_error": self.standard_error,
            "auc_p_value": self.p_value,
            "auc_p_value_greater": self.p_value_greater,
            "auc_test_method": self.test,
            "bricks": self.clusters,
        }
        for key, value in (self.independent or {}).items():
            record[f"auc_{key}_independent"] = value
        return record


@dataclass(frozen=True, eq=False)
class _Components:
    """DeLong's structural components of one scorer: per fake (V10) and per real (V01), and the tie sum."""

    fake: np.ndarray
    real: np.ndarray
    tie_sum: float

    @property
    def auc(self) -> float:
        return float(np.mean(self.fake))


def _midranks(values: np.ndarray) -> np.ndarray:
    return stats.rankdata(values, method="average")


def _components(labels: np.ndarray, scores: np.ndarray) -> _Components:
    """DeLong components from midranks (Sun & Xu 2014): O(N log N), ties counted half.

    For a fake i, V10 = (its rank among all - its rank among the fakes) / n_real,
    the share of reals it outscores; for a real j, V01 = 1 - (its rank among all
    - its rank among the reals) / n_fake, the share of fakes that outscore it.
    """
    scores = np.asarray(scores, dtype=np.float64)
    fakes, reals = labels == 1, labels == 0
    n_fake, n_real = int(fakes.sum()), int(reals.sum())
    overall = _midranks(scores)
    fake_component = (overall[fakes] - _midranks(scores[fakes])) / n_real
    real_component = 1.0 - (overall[reals] - _midranks(scores[reals])) / n_fake
    _, counts = np.unique(scores, return_counts=True)
    tie_sum = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    return _Components(fake_component, real_component, tie_sum)


def _delong_variance(fake_component: np.ndarray, real_component: np.ndarray) -> float:
    """Var(AUC) = s10 / n_fake + s01 / n_real (sample variances of the components)."""
    variance = 0.0
    for component in (fake_component, real_component):
        if component.size > 1:
            variance += float(np.var(component, ddof=1)) / component.size
    return variance


def _mann_whitney_p(labels: np.ndarray, scores: np.ndarray, components: _Components) -> tuple[float, float, str]:
    """Mann-Whitney p-values, two-sided and one-sided (fakes score higher), and the method: exact for small
    samples without ties, else normal with the tie and continuity corrections."""
    n_fake, n_real = components.fake.size, components.real.size
    if components.tie_sum == 0 and n_fake * n_real <= EXACT_MAX_PAIRS:
        fakes, reals = scores[labels == 1], scores[labels == 0]
        greater = stats.mannwhitneyu(fakes, reals, alternative="greater", method="exact").pvalue
        both = stats.mannwhitneyu(fakes, reals, alternative="two-sided", method="exact").pvalue
        return float(both), float(greater), "exact"
    if labels is not None and _arrangements_at_most(n_fake + n_real, n_fake, EXACT_TIED_ARRANGEMENTS):
        return _exact_permutation_p(labels, scores)
    total = n_fake + n_real
    excess = components.auc * n_fake * n_real - n_fake * n_real / 2.0
    variance = n_fake * n_real / 12.0 * ((total + 1) - components.tie_sum / (total * (total - 1)))
    if variance <= 0:  # every score the same: no evidence either way
        return 1.0, 1.0, "normal"
    deviation = math.sqrt(variance)
    greater = float(stats.norm.sf((excess - 0.5) / deviation))  # continuity-corrected
    less = float(stats.norm.cdf((excess + 0.5) / deviation))
    return min(1.0, 2.0 * min(greater, less)), greater, "normal"


def _arrangements_at_most(total: int, chosen: int, limit: int) -> bool:
    """Whether C(total, chosen) <= limit, without computing a huge binomial coefficient (C(10^6, 5 x 10^5) has
    300,000 digits): the product is built up and abandoned once past the limit."""
    chosen = min(chosen, total - chosen)
    count = 1
    for step in range(chosen):
        count = count * (total - step) // (step + 1)
        if count > limit:
            return False
    return count <= limit


def _exact_permutation_p(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, str]:
    """The Mann-Whitney p-values by enumerating every choice of which examples are the fakes (exact, ties and
    all): two-sided on |AUC - 0.5|, one-sided on the AUC."""
    ranks = _midranks(np.asarray(scores, dtype=np.float64))
    n_fake = int(np.sum(labels == 1))
    observed = float(ranks[labels == 1].sum())
    sums = np.array([ranks[list(chosen)].sum() for chosen in itertools.combinations(range(ranks.size), n_fake)])
    centre = n_fake * (ranks.size + 1) / 2.0
    tolerance = 1e-9 * max(1.0, abs(centre))
    greater = float(np.mean(sums >= observed - tolerance))
    both = float(np.mean(np.abs(sums - centre) >= abs(observed - centre) - tolerance))
    return both, greater, "exact"


def auc_test(
    labels: np.ndarray,
    scores: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 1000,
    rng: np.random.Generator | None = None,
    bootstrap_below: int = BOOTSTRAP_BELOW,
    clusters: np.ndarray | None = None,
    min_clusters: int = MIN_CLUSTERS,
) -> AucTest:
    """The AUC with its interval and p-values (two-sided, and one-sided that fakes score higher); NaNs with one
    class only.

    Independent examples: the Mann-Whitney test; the interval DeLong's from
    ``bootstrap_below`` examples up (normal, clipped to [0, 1]) and the
    stratified percentile bootstrap of ``resamples`` (drawn from ``rng``) below.

    ``clusters`` (one label per example, e.g. its brick): examples of a cluster
    share what varies from cluster to cluster (a brick's depth, seeing, sky and
    processing run), so they are not independent. With at least
    ``min_clusters`` clusters the interval and the p-values are cluster-robust
    (:func:`cluster_standard_error`: the AUC's variance from the clusters'
    summed DeLong components; Student t quantiles on clusters - 1 degrees of
    freedom), and the independent-example figures are kept beside them
    (``independent``); with fewer, they are the independent ones and
    ``clusters`` says how many there were.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    n_fake, n_real = int(np.sum(labels == 1)), int(np.sum(labels == 0))
    if n_fake == 0 or n_real == 0:
        return AucTest(math.nan, math.nan, math.nan, "none", math.nan, math.nan, "none", n_real, n_fake, math.nan)
    components = _components(labels, scores)
    value = components.auc
    standard_error = math.sqrt(_delong_variance(components.fake, components.real))
    p_value, greater, test = _mann_whitney_p(labels, scores, components)
    if labels.size < bootstrap_below:
        samples = bootstrap_aucs(labels, [scores], resamples, rng or np.random.default_rng(0))[:, 0]
        low, high = percentile_interval(samples, confidence)
        interval = "bootstrap"
    else:
        half_width = stats.norm.ppf(0.5 + confidence / 2.0) * standard_error
        low, high = max(0.0, value - half_width), min(1.0, value + half_width)
        interval = "delong"
    result = AucTest(value, low, high, interval, standard_error, p_value, test, n_real, n_fake, greater)
    if clusters is None:
        return result
    standard_error, count = cluster_standard_error(components, labels, np.asarray(clusters))
    return cluster_robust(result, standard_error, count, confidence, min_clusters)


class AgainstReals:
    """The reals' scores sorted once, to test many sets of fakes against all of them.

    For a set of n_f fakes against n_r reals, :meth:`test` costs O(n_f log n_r +
    n_r log n_f) (binary searches in sorted arrays) instead of sorting all
    n_r + n_f scores again: the fake-parameter bins of a survey-sized test split
    (~6 million reals, a few hundred bins) each cost one pass over the reals. It
    gives :func:`auc_test`'s result, computed from the same DeLong components and
    tie-corrected normal test; where :func:`auc_test` would bootstrap the
    interval or use the exact test (few examples), it calls :func:`auc_test`.
    """

    def __init__(self, reals: np.ndarray, clusters: np.ndarray | None = None):
        self.reals = np.asarray(reals, dtype=np.float64)
        order = np.argsort(self.reals, kind="stable")
        self.sorted = self.reals[order]
        _, counts = np.unique(self.sorted, return_counts=True)
        self.tie_sum = float(np.sum(counts.astype(np.float64) ** 3 - counts))
        # Each real's cluster (integer code), in the order of the sorted scores and of the components.
        self.clusters = None if clusters is None else cluster_codes(clusters)
        self.sorted_clusters = None if clusters is None else self.clusters[order]

    def components(self, fakes: np.ndarray) -> _Components:
        """DeLong's components of ``fakes`` against all the reals, ties counted half."""
        fakes = np.asarray(fakes, dtype=np.float64)
        n_real = self.sorted.size
        # Binary searches for keys in order walk the reals once; in random order each step of each search
        # is a cache miss once the reals outgrow the cache (6 times slower at 5 million reals).
        by_score = np.argsort(fakes)
        ordered = fakes[by_score]
        below = np.searchsorted(self.sorted, ordered, "left")
        equal = np.searchsorted(self.sorted, ordered, "right") - below
        fake_component = np.empty(fakes.size)
        fake_component[by_score] = (below + 0.5 * equal) / n_real
        fakes_below = np.searchsorted(ordered, self.sorted, "left")
        fakes_equal = np.searchsorted(ordered, self.sorted, "right") - fakes_below
        real_component = (ordered.size - fakes_below - fakes_equal + 0.5 * fakes_equal) / ordered.size
        # Tie groups of the combined scores: the reals' own, changed where fakes join them.
        values, fake_counts = np.unique(ordered, return_counts=True)
        real_counts = np.searchsorted(self.sorted, values, "right") - np.searchsorted(self.sorted, values, "left")
        joined = (real_counts + fake_counts).astype(np.float64)
        real_counts = real_counts.astype(np.float64)
        tie_sum = self.tie_sum - np.sum(real_counts**3 - real_counts) + np.sum(joined**3 - joined)
        return _Components(fake_component, real_component, float(tie_sum))

    def test(
        self,
        fakes: np.ndarray,
        confidence: float = 0.95,
        resamples: int = 1000,
        rng: np.random.Generator | None = None,
        bootstrap_below: int = BOOTSTRAP_BELOW,
        fake_clusters: np.ndarray | None = None,
    ) -> AucTest:
        """:func:`auc_test` of ``fakes`` against all the reals; cluster-robust when the reals were given their
        clusters and ``fake_clusters`` gives the fakes' (integer codes of the same numbering)."""
        fakes = np.asarray(fakes, dtype=np.float64)
        n_fake, n_real = fakes.size, self.sorted.size
        clustered = fake_clusters is not None and self.clusters is not None
        if n_fake == 0 or n_real == 0 or n_fake + n_real < bootstrap_below or n_fake * n_real <= EXACT_MAX_PAIRS:
            labels = np.concatenate([np.zeros(n_real, dtype=np.int8), np.ones(n_fake, dtype=np.int8)])
            clusters = np.concatenate([self.clusters, cluster_codes(fake_clusters)]) if clustered else None
            return auc_test(
                labels, np.concatenate([self.reals, fakes]), confidence, resamples, rng, bootstrap_below, clusters
            )
        components = self.components(fakes)
        value = components.auc
        standard_error = math.sqrt(_delong_variance(components.fake, components.real))
        p_value, greater, test = _mann_whitney_p(None, None, components)
        half_width = stats.norm.ppf(0.5 + confidence / 2.0) * standard_error
        low, high = max(0.0, value - half_width), min(1.0, value + half_width)
        result = AucTest(value, low, high, "delong", standard_error, p_value, test, n_real, n_fake, greater)
        if not clustered:
            return result
        cluster_error, count = clustered_variance(
            (components.fake - value) / n_fake,
            cluster_codes(fake_clusters),
            (components.real - value) / n_real,
            self.sorted_clusters,
        )
        return cluster_robust(result, cluster_error, count, confidence)


def paired_auc_difference(
    labels: np.ndarray,
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 1000,
    rng: np.random.Generator | None = None,
    bootstrap_below: int = BOOTSTRAP_BELOW,
) -> dict:
    """AUC(A) - AUC(B) on the same examples: the difference, its paired interval and the one-sided
    p-value that A's AUC is higher (DeLong's paired variance; the interval is a paired bootstrap
    below ``bootstrap_below`` examples). Keys: difference, low, high, p_value, method."""
    labels = np.asarray(labels)
    if np.unique(labels).size < 2:
        return {"difference": math.nan, "low": math.nan, "high": math.nan, "p_value": math.nan, "method": "none"}
    first, second = _components(labels, scores_a), _components(labels, scores_b)
    difference = first.auc - second.auc
    variance = _delong_variance(first.fake - second.fake, first.real - second.real)
    standard_error = math.sqrt(variance)
    p_value = (
        float(stats.norm.sf(difference / standard_error)) if standard_error > 0 else (0.0 if difference > 0 else 1.0)
    )
    if labels.size < bootstrap_below:
        samples = bootstrap_aucs(labels, [scores_a, scores_b], resamples, rng or np.random.default_rng(0))
        low, high = percentile_interval(samples[:, 0] - samples[:, 1], confidence)
        method = "bootstrap interval, DeLong test"
    else:
        half_width = stats.norm.ppf(0.5 + confidence / 2.0) * standard_error
        low, high = difference - half_width, difference + half_width
        method = "delong"
    return {"difference": difference, "low": low, "high": high, "p_value": p_value, "method": method}


def tied_pair_share(labels: np.ndarray, scores: np.ndarray) -> float:
    """The share of (real, fake) pairs whose scores are equal: 1 when the scorer gives every example the same
    score (it ranks nothing), 0 when no real ties a fake. NaN without both classes."""
    labels = np.asarray(labels)
    _, group = np.unique(np.asarray(scores, dtype=np.float64), return_inverse=True)
    fakes = np.bincount(group, weights=(labels == 1).astype(np.float64))
    reals = np.bincount(group, weights=(labels == 0).astype(np.float64))
    pairs = fakes.sum() * reals.sum()
    return float(np.dot(fakes, reals) / pairs) if pairs else math.nan

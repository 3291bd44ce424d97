"""Clusters (test bricks) as the independent units of a statistic: the cluster-robust variance and test.

Examples of a brick share what varies from brick to brick (depth, seeing, sky,
processing run), so they are not independent. :func:`brick_codes` numbers each
row's brick once per table; :func:`clustered_variance` gives the standard error
of any statistic that is, to first order, a sum of per-example influences, with
the clusters as the units; :func:`cluster_standard_error` is that of the AUC
(Obuchowski 1997), and :func:`cluster_robust` turns an AUC test
(:func:`realfake.stats.auc.auc_test`) into the cluster-robust one from
:data:`MIN_CLUSTERS` clusters on.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

# From this many clusters (test bricks) on, the interval and p-value are the cluster-robust ones, with the brick
# as the unit (Obuchowski 1997, Student t on clusters - 1 degrees of freedom); with fewer, a brick-level variance
# rests on too few bricks to mean much, and the examples are taken as independent (the verdict says so).
MIN_CLUSTERS = 20


def cluster_standard_error(components, labels: np.ndarray, clusters: np.ndarray) -> tuple[float, int]:
    """The AUC's standard error with clusters as the independent units, and the number of clusters;
    ``components`` are the AUC's DeLong components (``fake``, ``real``, ``auc``), as
    :func:`realfake.stats.auc.auc_test` computes them for ``labels``.

    Obuchowski (1997): with K clusters, S10_k and S01_k the sums of the fakes' and
    the reals' DeLong components in cluster k, m_k and n_k its fakes and reals,
    Var = K / (K - 1) [sum (S10_k - m_k A)^2 / N_f^2 + sum (S01_k - n_k A)^2 / N_r^2
    + 2 sum (S10_k - m_k A)(S01_k - n_k A) / (N_f N_r)]: :func:`clustered_variance`
    of the influences (V10 - A) / N_f and (V01 - A) / N_r. O(N) given the components.
    """
    codes = cluster_codes(clusters)
    fakes, reals = labels == 1, labels == 0
    value = components.auc
    return clustered_variance(
        (components.fake - value) / components.fake.size,
        codes[fakes],
        (components.real - value) / components.real.size,
        codes[reals],
    )


def clustered_variance(
    fake_influence: np.ndarray, fake_codes: np.ndarray, real_influence: np.ndarray, real_codes: np.ndarray
) -> tuple[float, int]:
    """The standard error of a statistic that is, to first order, the sum of per-example influences, with
    clusters (integer ``*_codes``) as the independent units: sqrt(K / (K - 1) sum_k (influences in k)^2), and
    K, the clusters holding an example. NaN with fewer than 2 clusters."""
    fake_codes, real_codes = cluster_codes(fake_codes), cluster_codes(real_codes)
    slots = int(max(fake_codes.max(initial=-1), real_codes.max(initial=-1))) + 1
    if slots < 2:
        return math.nan, max(slots, 0)
    occupied = np.bincount(fake_codes, minlength=slots) + np.bincount(real_codes, minlength=slots)
    count = int(np.count_nonzero(occupied))
    if count < 2:
        return math.nan, count
    sums = np.bincount(fake_codes, weights=fake_influence, minlength=slots) + np.bincount(
        real_codes, weights=real_influence, minlength=slots
    )
    return math.sqrt(max(float(count / (count - 1) * np.dot(sums, sums)), 0.0)), count


def cluster_codes(clusters: np.ndarray) -> np.ndarray:
    """Non-negative integer codes of cluster labels: integer labels as they are (:func:`brick_codes` gives
    them once for a whole table, so that its subsets are not sorted again), anything else numbered."""
    clusters = np.asarray(clusters)
    if np.issubdtype(clusters.dtype, np.integer) and (clusters.size == 0 or clusters.min() >= 0):
        return clusters.astype(np.int64, copy=False)
    return np.unique(clusters, return_inverse=True)[1].reshape(-1)


def brick_codes(table) -> np.ndarray | None:
    """Each row's brick (``brickname``) as an integer code, the unit of the cluster-robust statistics; None
    without the column. Hashed once (O(N)), where sorting 12 million brick names per bin would cost minutes."""
    if "brickname" not in table.columns:
        return None
    import pandas as pd

    codes = pd.factorize(table["brickname"], sort=False)[0].astype(np.int64)
    codes[codes < 0] = codes.max(initial=-1) + 1  # rows without a brick name: one cluster of their own
    return codes


def cluster_robust(
    result,
    standard_error: float,
    count: int,
    confidence: float,
    min_clusters: int = MIN_CLUSTERS,
    freedom: int | None = None,
):
    """``result`` (an :class:`realfake.stats.auc.AucTest`) with the interval and p-values of the cluster-robust
    ``standard_error`` over ``count`` clusters (Student t on ``freedom`` degrees of freedom, count - 1 unless
    given: count - strata for clusters nested in strata) when there are at least ``min_clusters`` (see
    :func:`realfake.stats.auc.auc_test`), the independent ones kept in ``independent``; else ``result`` with
    ``clusters`` set."""
    if count < min_clusters or not math.isfinite(standard_error):
        return dataclasses.replace(result, clusters=count)
    freedom = count - 1 if freedom is None else freedom
    half_width = stats.t.ppf(0.5 + confidence / 2.0, freedom) * standard_error
    value = result.auc
    if standard_error > 0:
        statistic = (value - 0.5) / standard_error
        p_value, greater = float(2.0 * stats.t.sf(abs(statistic), freedom)), float(stats.t.sf(statistic, freedom))
    else:  # every cluster the same: no spread to test against
        p_value, greater = (1.0, 1.0) if value == 0.5 else (0.0, float(value < 0.5))
    independent = {
        "low": result.low,
        "high": result.high,
        "standard_error": result.standard_error,
        "p_value": result.p_value,
    }
    return dataclasses.replace(
        result,
        low=max(0.0, value - half_width),
        high=min(1.0, value + half_width),
        interval="cluster",
        standard_error=standard_error,
        p_value=min(1.0, p_value),
        p_value_greater=greater,
        test="cluster",
        clusters=count,
        independent=independent,
    )

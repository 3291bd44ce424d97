"""realfake.stats with folds (cross-fitting by brick): K models, each scoring the bricks it never saw, whose
scores are not on one scale, so every AUC compares fakes and reals of the same fold only. Checked against the
within-fold pair count by definition, for invariance to each model's scale, and by simulation (seeded)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fixtures.predictions import prediction_table
from scipy import stats as scipy_stats

from realfake.stats.auc import auc_test, paired_auc_difference, tied_pair_share
from realfake.stats.breakdowns import breakdowns, fold_labels
from realfake.stats.settings import StatisticsSettings
from realfake.stats.verdict import verdict

SETTINGS = StatisticsSettings(bootstrap=300, seed=3)


def binomial_band(trials: int, rate: float, coverage: float = 0.999) -> tuple[int, int]:
    """The central ``coverage`` range of Binomial(trials, rate) counts."""
    low, high = scipy_stats.binom.interval(coverage, trials, rate)
    return int(low), int(high)


def concordance(fakes: np.ndarray, reals: np.ndarray) -> np.ndarray:
    """Per (fake, real) pair, 1 when the fake scores higher, 1/2 when tied, 0 otherwise (by definition)."""
    return (fakes[:, None] > reals[None, :]) + 0.5 * (fakes[:, None] == reals[None, :])


def folded(
    rng: np.random.Generator,
    folds: int,
    bricks: int,
    per_brick: int,
    shift: float,
    spread: float = 0.3,
    common_spread: float = 0.5,
):
    """Labels, latent scores, bricks and folds: ``folds`` x ``bricks`` bricks of ``per_brick`` examples (half
    fakes), each brick's examples shifted by its own N(0, ``common_spread``^2) (both classes: its depth and sky)
    and its fakes by another N(0, ``spread``^2), all fakes by ``shift``; bricks nested in folds. Without the
    common shift the true AUC within a fold is Phi(shift / sqrt(2 + spread^2)); with none, 0.5 whatever it is."""
    count = folds * bricks
    brick = np.repeat(np.arange(count), per_brick)
    labels = np.tile(np.repeat([0, 1], per_brick // 2), count)
    fold = brick // bricks
    common, fake_only = rng.normal(0, common_spread, count), rng.normal(0, spread, count)
    latent = rng.normal(size=labels.size) + common[brick] + (shift + fake_only[brick]) * labels
    return labels, latent, brick, fold


def model_scores(latent: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each fold's model: its own increasing map of the latent score, on its own scale (what cross-fitted
    CNNs give), so that pooling the folds mixes scales."""
    maps = (
        lambda x: 1 / (1 + np.exp(-x)),
        lambda x: 0.2 / (1 + np.exp(-3 * x)),
        lambda x: 0.5 + 0.5 / (1 + np.exp(-0.5 * x)),
        lambda x: np.exp(x),
    )
    scores = np.empty_like(latent)
    for index in np.unique(fold):
        scores[fold == index] = maps[index % len(maps)](latent[fold == index])
    return scores


# -- the statistic ------------------------------------------------------------------------------


def test_without_strata_or_with_one_stratum_the_test_is_the_same():
    rng = np.random.default_rng(1)
    for size in (60, 600, 4000):  # exact + bootstrap, normal + bootstrap, normal + DeLong
        labels = rng.permutation(np.arange(size) % 2)
        scores = np.round(rng.normal(size=size) + 0.4 * labels, 1 if size == 600 else 6)
        bricks = rng.integers(0, 30, size)
        for clusters in (None, bricks):
            plain = auc_test(labels, scores, rng=np.random.default_rng(2), clusters=clusters)
            one = auc_test(labels, scores, rng=np.random.default_rng(2), clusters=clusters, strata=np.full(size, 3))
            assert one == plain and one.strata == 0 and "folds" not in one.record()
        second = scores + rng.normal(size=size)
        assert paired_auc_difference(labels, scores, second, strata=np.zeros(size)) == paired_auc_difference(
            labels, scores, second
        )
        assert tied_pair_share(labels, scores, np.zeros(size)) == tied_pair_share(labels, scores)


def test_the_stratified_auc_is_the_share_of_concordant_pairs_within_strata():
    rng = np.random.default_rng(3)
    strata = np.repeat([0, 1, 2, 5], [40, 70, 25, 9])
    labels = rng.integers(0, 2, strata.size)
    labels[strata == 5] = 1  # a stratum of fakes only: no pairs, no part in the AUC
    scores = np.round(rng.normal(size=strata.size) + 0.5 * labels + strata, 1)  # ties within strata
    result = auc_test(labels, scores, strata=strata)
    concordant = pairs = variance = 0.0
    excess = null_variance = 0.0
    weights, variances = [], []
    for stratum in (0, 1, 2):
        inside = strata == stratum
        fakes, reals = scores[inside & (labels == 1)], scores[inside & (labels == 0)]
        psi = concordance(fakes, reals)
        concordant += psi.sum()
        pairs += psi.size
        weights.append(psi.size)
        variances.append(np.var(psi.mean(axis=1), ddof=1) / fakes.size + np.var(psi.mean(axis=0), ddof=1) / reals.size)
        # The Mann-Whitney U of the stratum and its tie-corrected null variance, by their textbook formulas.
        total = fakes.size + reals.size
        _, ties = np.unique(np.concatenate([fakes, reals]), return_counts=True)
        excess += psi.sum() - psi.size / 2
        null_variance += psi.size / 12 * (total + 1 - np.sum(ties**3 - ties) / (total * (total - 1)))
    assert result.auc == pytest.approx(concordant / pairs, rel=1e-12)
    variance = float(np.dot((np.asarray(weights) / pairs) ** 2, variances))
    assert result.standard_error == pytest.approx(math.sqrt(variance), rel=1e-10)
    greater = scipy_stats.norm.sf((excess - 0.5) / math.sqrt(null_variance))
    assert result.p_value_greater == pytest.approx(greater, rel=1e-10)
    assert result.p_value == pytest.approx(2 * min(greater, scipy_stats.norm.cdf((excess + 0.5) / null_variance**0.5)))
    assert (result.strata, result.test, result.interval) == (3, "stratified normal", "delong")
    assert (result.fake, result.real) == (int(np.sum(labels[strata != 5])), int(np.sum(labels == 0)))
    assert result.record()["folds"] == 3
    half_width = scipy_stats.norm.ppf(0.975) * result.standard_error
    assert (result.low, result.high) == pytest.approx((result.auc - half_width, result.auc + half_width))


def test_the_clustered_variance_of_bricks_nested_in_folds_is_a_stratified_designs():
    rng = np.random.default_rng(11)
    labels, latent, brick, fold = folded(rng, 3, 8, 30, shift=0.4)
    scores = model_scores(latent, fold)
    result = auc_test(labels, scores, strata=fold, clusters=brick, min_clusters=20)
    pairs = np.array([np.sum(labels[fold == k] == 1) * np.sum(labels[fold == k] == 0) for k in range(3)])
    variance = 0.0
    for stratum, weight in enumerate(pairs / pairs.sum()):
        inside = fold == stratum
        fakes, reals = inside & (labels == 1), inside & (labels == 0)
        psi = concordance(scores[fakes], scores[reals])
        value = psi.mean()
        influence = np.zeros(labels.size)
        influence[fakes] = weight * (psi.mean(axis=1) - value) / fakes.sum()
        influence[reals] = weight * (psi.mean(axis=0) - value) / reals.sum()
        sums = np.array([influence[brick == number].sum() for number in np.unique(brick[inside])])
        variance += sums.size / (sums.size - 1) * np.sum(sums**2)
    assert result.interval == "cluster" and result.clusters == 24
    assert result.standard_error == pytest.approx(math.sqrt(variance), rel=1e-10)
    freedom = 24 - 3
    statistic = (result.auc - 0.5) / result.standard_error
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(statistic), freedom), rel=1e-10)


def test_a_fold_of_its_own_scale_leaves_the_stratified_test_unchanged_and_breaks_the_pooled_one():
    rng = np.random.default_rng(4)
    labels, latent, brick, fold = folded(rng, 2, 30, 40, shift=0.6, common_spread=0.0)
    scores = 1 / (1 + np.exp(-latent))
    rescaled = np.where(fold == 1, scores**3 + 1.0, scores)  # fold 1's model: increasing, above fold 0's
    before = auc_test(labels, scores, strata=fold, clusters=brick)
    after = auc_test(labels, rescaled, strata=fold, clusters=brick)
    for key in ("auc", "low", "high", "standard_error", "p_value", "p_value_greater"):
        assert getattr(after, key) == pytest.approx(getattr(before, key), rel=1e-12), key
    assert before.interval == "cluster" and before.clusters == 60
    pooled_before, pooled_after = auc_test(labels, scores).auc, auc_test(labels, rescaled).auc
    assert pooled_before == pytest.approx(before.auc, abs=0.02)  # one scale: pooling costs little
    assert abs(pooled_after - after.auc) > 0.05
    paired_before = paired_auc_difference(labels, scores, latent**3, strata=fold)
    paired_after = paired_auc_difference(labels, rescaled, latent**3, strata=fold)
    assert paired_after["difference"] == pytest.approx(paired_before["difference"], abs=1e-12)
    assert paired_after["difference"] == pytest.approx(0.0, abs=1e-12)  # the same ranking within each fold


def test_the_stratified_paired_difference_weights_the_folds_differences_by_their_pairs():
    rng = np.random.default_rng(5)
    labels, latent, _, fold = folded(rng, 3, 10, 40, shift=0.8)
    first = model_scores(latent, fold)
    second = model_scores(latent + rng.normal(size=latent.size), fold)
    result = paired_auc_difference(labels, first, second, strata=fold)
    differences, weights = [], []
    for index in range(3):
        inside = fold == index
        one = auc_test(labels[inside], first[inside]).auc
        two = auc_test(labels[inside], second[inside]).auc
        differences.append(one - two)
        weights.append(np.sum(labels[inside] == 1) * np.sum(labels[inside] == 0))
    assert result["difference"] == pytest.approx(np.average(differences, weights=weights), rel=1e-12)
    assert result["method"] == "stratified delong" and result["low"] < result["difference"] < result["high"]
    assert result["p_value"] < 0.01


# -- by simulation: the level and the coverage --------------------------------------------------


def test_the_stratified_test_holds_its_level_with_fold_scales_and_brick_effects():
    # 4 folds x 30 bricks of 20, brick effects in both classes and in the fakes only, each fold's model on its
    # own scale: the stratified, brick-clustered test rejects a true null at about its level.
    rng = np.random.default_rng(6)
    replications, rejections, covered = 300, 0, 0
    for _ in range(replications):
        labels, latent, brick, fold = folded(rng, 4, 30, 20, shift=0.0)
        result = auc_test(labels, model_scores(latent, fold), strata=fold, clusters=brick)
        assert result.interval == "cluster" and result.strata == 4
        rejections += result.p_value < 0.05
        covered += result.low <= 0.5 <= result.high
    low, high = binomial_band(replications, 0.05)
    assert low <= rejections <= high
    assert covered >= binomial_band(replications, 0.95)[0]


def test_the_stratified_interval_covers_the_true_auc_under_fold_scales():
    rng = np.random.default_rng(7)
    shift, spread = 0.5, 0.3
    truth = scipy_stats.norm.cdf(shift / math.sqrt(2.0 + spread**2))
    # The truth by a large sample too: 400,000 pairs of one fold.
    labels, latent, _, _ = folded(rng, 1, 4000, 100, shift, spread, common_spread=0.0)
    assert auc_test(labels, latent, bootstrap_below=0).auc == pytest.approx(truth, abs=0.003)
    replications, covered, pooled_covered = 300, 0, 0
    for _ in range(replications):
        labels, latent, brick, fold = folded(rng, 4, 30, 20, shift, spread, common_spread=0.0)
        scores = model_scores(latent, fold)
        result = auc_test(labels, scores, strata=fold, clusters=brick)
        covered += result.low <= truth <= result.high
        pooled = auc_test(labels, scores, clusters=brick)
        pooled_covered += pooled.low <= truth <= pooled.high
    low, high = binomial_band(replications, 0.95)
    assert low <= covered <= high
    assert pooled_covered < 0.5 * replications  # the folds' scales pooled: the pooled AUC is off


# -- the verdict and the breakdowns -------------------------------------------------------------


def crossed_scales(rng: np.random.Generator, per_fold: int = 1000):
    """Two folds whose models rank well (logit shift 1.5) but on different scales, fold 0's fakes-heavy (80%)
    and scored low, fold 1's reals-heavy and scored high: pooled, the fakes look real."""
    fold = np.repeat([0, 1], per_fold)
    labels = np.concatenate([rng.uniform(size=per_fold) < 0.8, rng.uniform(size=per_fold) < 0.2]).astype(int)
    probability = 1 / (1 + np.exp(-(rng.normal(size=fold.size) + 1.5 * labels)))
    return labels, np.where(fold == 0, 0.3 * probability, 0.7 + 0.3 * probability), fold


def test_a_verdict_with_folds_compares_within_folds_and_says_so():
    rng = np.random.default_rng(8)
    labels, scores, fold = crossed_scales(rng)
    record = verdict(labels, scores, SETTINGS, folds=fold)
    expected = auc_test(labels, scores, strata=fold)
    assert record["auc"] == pytest.approx(expected.auc) and record["auc"] > 0.8
    assert record["folds"] == 2 and record["outcome"] == "distinguishable" and record["direction"] == "higher"
    assert record["statistic"].startswith("AUC within folds")
    assert "compares fakes and reals within folds only" in record["sentence"]
    pooled = verdict(labels, scores, SETTINGS)
    assert pooled["auc"] < 0.5 and "folds" not in pooled
    assert verdict(labels, scores, SETTINGS, folds=np.zeros(labels.size)) == pooled


def test_a_verdict_with_folds_and_bricks_keeps_the_design_effect():
    rng = np.random.default_rng(9)
    labels, latent, brick, fold = folded(rng, 5, 12, 200, shift=0.0, spread=0.3)
    record = verdict(labels, model_scores(latent, fold), SETTINGS, bricks=brick, folds=fold)
    assert record["auc_interval_method"] == "cluster" and record["bricks"] == 60 and record["folds"] == 5
    assert record["design_effect"] > 1.5
    assert record["design_effect"] == pytest.approx(
        (record["auc_standard_error"] / record["auc_standard_error_independent"]) ** 2
    )
    plain = verdict(labels, model_scores(latent, fold), SETTINGS, folds=fold)
    assert record["minimum_detectable_auc"] > plain["minimum_detectable_auc"]


def test_fold_labels_need_a_fold_column_of_two_folds_or_more():
    table = pd.DataFrame({"label": [0, 1, 0, 1]})
    assert fold_labels(table) is None
    table["fold"] = 0
    assert fold_labels(table) is None
    table["fold"] = [3, 3, 1, 1]
    np.testing.assert_array_equal(fold_labels(table), [1, 1, 0, 0])


def test_breakdowns_of_predictions_with_folds_compare_within_folds():
    rng = np.random.default_rng(10)
    labels, scores, fold = crossed_scales(rng)
    table = prediction_table(labels, scores, rng)
    table["fold"] = fold
    rows = breakdowns(table, SETTINGS)
    magnitude = rows[rows["breakdown"] == "g magnitude"]
    assert (magnitude["auc"] > 0.7).all() and magnitude["flagged"].all()
    first = breakdowns(table.drop(columns="fold"), SETTINGS)
    assert (first[first["breakdown"] == "g magnitude"]["auc"] < 0.5).all()
    # each bin is its examples' stratified AUC
    g = table["mag_dered_g"].to_numpy()
    row = magnitude.iloc[0]
    inside = (g >= row["low"]) & (g < row["high"])
    assert row["auc"] == pytest.approx(auc_test(labels[inside], scores[inside], strata=fold[inside]).auc)

"""realfake.stats.verdict: the measurement of the CNN's scores (outcome, effect size, power) and its breakdowns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fixtures.predictions import prediction_table
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score

from realfake.stats import auc, corrections, tolerance
from realfake.stats.breakdowns import BREAKDOWN_COLUMNS, breakdowns
from realfake.stats.settings import StatisticsSettings
from realfake.stats.verdict import verdict

SETTINGS = StatisticsSettings(bootstrap=300, seed=3)


def shifted(rng: np.random.Generator, per_class: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels and fake probabilities: the fakes' logits shifted by ``shift``."""
    labels = rng.permutation(np.repeat([0, 1], per_class))
    return labels, 1 / (1 + np.exp(-(rng.normal(size=labels.size) + shift * labels)))


# -- the four outcomes --------------------------------------------------------------------------


def test_a_perfect_classifier_is_distinguishable():
    labels = np.repeat([0, 1], 100)
    scores = np.where(labels == 1, 0.9, 0.1)
    record = verdict(labels, scores, SETTINGS)
    assert record["outcome"] == "distinguishable" and record["significant"]
    assert record["accuracy"] == 1.0 and record["chance"] == 0.5
    assert record["accuracy_p_value"] == pytest.approx(0.5**200, rel=1e-6)
    assert record["auc"] == 1.0 and record["auc_p_value"] < 1e-40
    # The larger of the accuracy's and the AUC's bounds, each at 97.5%: here the accuracy's.
    assert record["tv_lower_bound"] == pytest.approx(2 * 0.025 ** (1 / 200) - 1)
    assert record["examples_to_settle"] is None
    assert record["sentence"].startswith("The CNN tells fakes from real galaxies beyond the tolerance: AUC 1.000")
    assert f"differ by at least {record['tv_lower_bound']:.2f} in total variation" in record["sentence"]
    assert record["tv_lower_bound"] > 0.96


def test_chance_scores_at_the_demo_size_are_inconclusive_and_say_what_would_settle_them():
    rng = np.random.default_rng(11)
    labels = rng.permutation(np.repeat([0, 1], 188))
    record = verdict(labels, rng.uniform(0, 1, labels.size), SETTINGS)
    assert record["outcome"] == "inconclusive" and not record["significant"]
    assert record["auc_low"] < 0.51 < record["auc_high"]
    # The test is two-sided: each side at half the level.
    assert record["minimum_detectable_auc"] == pytest.approx(tolerance.minimum_detectable_auc(188, 188, 0.025))
    assert record["examples_to_settle"] > record["examples"]
    assert record["sentence"].startswith(
        "Not settled whether the CNN tells fakes from real galaxies beyond the tolerance"
    )
    assert f"detects an AUC of {record['minimum_detectable_auc']:.3f} with probability 0.8" in record["sentence"]
    assert "more test examples would settle it" in record["sentence"]


def test_chance_scores_at_survey_size_are_indistinguishable_and_say_what_was_detectable():
    rng = np.random.default_rng(12)
    labels, scores = shifted(rng, 200_000, 0.0)
    record = verdict(labels, scores, SETTINGS)
    assert record["auc_interval_method"] == "delong"
    assert record["outcome"] == "indistinguishable"
    assert record["auc_high"] < 0.51
    assert record["minimum_detectable_auc"] == pytest.approx(
        0.5 + 2.802 * math.sqrt(400_001 / (12 * 200_000**2)), abs=2e-5
    )
    assert record["sentence"].startswith("The CNN cannot tell fakes from real galaxies beyond the tolerance")


def test_a_tiny_difference_at_survey_size_is_significant_but_within_tolerance():
    rng = np.random.default_rng(13)
    labels, scores = shifted(rng, 200_000, 0.015)  # AUC about 0.504
    record = verdict(labels, scores, SETTINGS)
    assert record["significant"] and record["auc_p_value"] < 1e-6
    assert record["outcome"] == "within_tolerance"
    assert "but by less than the tolerance" in record["sentence"]
    # The same difference with a tolerance of 0: distinguishable.
    strict = verdict(labels, scores, StatisticsSettings(bootstrap=10, tolerance=0.0))
    assert strict["outcome"] == "distinguishable"


def test_binomial_p_value_and_interval_match_independent_formulas():
    rng = np.random.default_rng(5)
    labels = rng.permutation(np.repeat([0, 1], 150))
    correct = rng.uniform(size=labels.size) < 0.58
    scores = np.where(correct == (labels == 1), 0.8, 0.2)
    record = verdict(labels, scores, SETTINGS)
    trials, successes = labels.size, int(correct.sum())
    assert record["correct"] == successes
    # P(X >= k) from the binomial survival function, not binomtest.
    assert record["accuracy_p_value"] == pytest.approx(scipy_stats.binom.sf(successes - 1, trials, 0.5), rel=1e-9)
    # Clopper-Pearson from the beta quantiles.
    low = scipy_stats.beta.ppf(0.025, successes, trials - successes + 1)
    high = scipy_stats.beta.ppf(0.975, successes + 1, trials - successes)
    assert record["accuracy_low"] == pytest.approx(low, rel=1e-7)
    assert record["accuracy_high"] == pytest.approx(high, rel=1e-7)
    assert record["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert record["auc_low"] < record["auc"] < record["auc_high"]


def test_unbalanced_test_set_is_judged_against_the_majority_share():
    labels = np.array([1] * 70 + [0] * 30)
    always_fake = np.full(labels.size, 0.9)
    record = verdict(labels, always_fake, SETTINGS)
    assert record["chance"] == pytest.approx(0.7) and record["accuracy"] == pytest.approx(0.7)
    assert record["accuracy_p_value"] == pytest.approx(scipy_stats.binom.sf(69, 100, 0.7))
    assert record["auc"] == 0.5 and not record["significant"]  # one score for all: no information
    assert record["tv_lower_bound"] == 0.0


def test_scores_pointing_the_wrong_way_are_distinguishable_and_named():
    # True AUC 0.30 at 2,000 per class (the case): the interval lies well below 0.49.
    rng = np.random.default_rng(14)
    labels = np.repeat([0, 1], 2000)
    shift = math.sqrt(2.0) * scipy_stats.norm.ppf(0.30)
    record = verdict(labels, rng.normal(size=labels.size) + shift * labels, SETTINGS)
    assert record["auc_high"] < 0.49 and record["direction"] == "lower"
    assert record["outcome"] == "distinguishable" and record["significant"]
    assert record["auc_p_value_greater"] > 0.99  # the old one-sided test saw nothing
    assert "the wrong way round" in record["sentence"]
    assert "between the training and test splits" in record["sentence"]
    assert record["tv_lower_bound"] == pytest.approx(0.5 - record["auc_high"])


def test_scores_a_little_below_chance_at_survey_size_are_within_tolerance_below():
    rng = np.random.default_rng(15)
    labels, scores = shifted(rng, 200_000, -0.015)  # AUC about 0.496
    record = verdict(labels, scores, SETTINGS)
    assert record["outcome"] == "within_tolerance" and record["direction"] == "lower"
    assert "significantly below 0.5" in record["sentence"]


@pytest.mark.parametrize("examples", [42, 400, 4000])
def test_scores_that_are_all_the_same_are_not_a_finding_about_the_fakes(examples):
    labels = np.repeat([0, 1], examples // 2)
    for score in (0.5, 0.3):
        record = verdict(labels, np.full(examples, score), SETTINGS)
        assert record["outcome"] == "inconclusive" and not record["ranked"]
        assert record["tied_pair_share"] == 1.0 and record["examples_to_settle"] is None
        assert f"gave all {examples} test examples the same score" in record["sentence"]
        assert "did not rank the examples" in record["sentence"]


def test_scores_that_mostly_tie_are_inconclusive_and_say_so():
    rng = np.random.default_rng(16)
    labels = rng.permutation(np.repeat([0, 1], 20_000))
    scores = np.where(rng.random(labels.size) < 0.9, 0.5, rng.random(labels.size))  # 90% at one value
    record = verdict(labels, scores, SETTINGS)
    assert record["tied_pair_share"] == pytest.approx(0.81, abs=0.01)
    assert record["outcome"] == "inconclusive"
    assert "81% of the real-fake pairs the same score" in record["sentence"]


@pytest.mark.parametrize("per_class", [1, 2, 3])
def test_a_perfect_split_of_a_few_examples_is_never_distinguishable_against_its_own_test(per_class):
    labels = np.repeat([0, 1], per_class)
    record = verdict(labels, np.where(labels == 1, 0.9, 0.1), SETTINGS)
    assert record["auc"] == 1.0 and not record["significant"]
    assert record["outcome"] == "inconclusive"
    assert "too small" in record["sentence"]


def test_a_cnn_no_better_than_a_constant_guess_says_so():
    rng = np.random.default_rng(17)
    labels = rng.permutation(np.repeat([0, 1], 188))
    record = verdict(labels, rng.uniform(0.3, 0.7, labels.size), SETTINGS)
    assert record["log_loss"] > record["constant_log_loss"] == pytest.approx(math.log(2))
    assert "no better than a constant guess's (0.693)" in record["sentence"]


# -- breakdowns ---------------------------------------------------------------------------------


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_breakdowns_flag_only_the_bins_where_the_classifier_works(correction):
    rng = np.random.default_rng(7)
    labels = rng.permutation(np.repeat([0, 1], 500))
    table = prediction_table(labels, rng.uniform(0, 1, labels.size), rng)
    bright = table["mag_dered_g"] < 20.8  # the brightest fifth: the classifier is perfect there
    table.loc[bright, "p_fake"] = np.where(table.loc[bright, "label"] == 1, 0.95, 0.05)
    settings = StatisticsSettings(bootstrap=100, correction=correction)
    result = breakdowns(table, settings)
    assert list(result.columns) == BREAKDOWN_COLUMNS
    assert set(result["breakdown"]) == {
        "g magnitude",
        "g - r",
        "r - z",
        "size",
        "type",
        "depth (ivar_centre_r)",
        "sub-pixel offset",
    }
    magnitude = result[result["breakdown"] == "g magnitude"].reset_index(drop=True)
    assert len(magnitude) == 5
    assert magnitude["examples"].sum() == labels.size
    assert magnitude.loc[0, "flagged"] and magnitude.loc[0, "accuracy"] > 0.9
    assert not magnitude.loc[1:, "flagged"].any()
    assert magnitude.loc[0, "auc_low"] > 0.9
    assert magnitude.loc[0, "outcome"] == "distinguishable"
    assert set(magnitude.loc[1:, "outcome"]) <= {"inconclusive", "indistinguishable"}
    p = result["auc_p_value"].to_numpy()
    assert np.allclose(result["p_adjusted"], corrections.adjust_p_values(p, correction), equal_nan=True)
    assert (result["flagged"] == (result["p_adjusted"] < 0.05)).all()
    # With random scores everywhere, nothing is flagged although some raw p-values are below 0.05.
    table["p_fake"] = rng.uniform(0, 1, labels.size)
    null = breakdowns(table, settings)
    assert not null["flagged"].any()


def test_a_bin_with_one_class_has_no_auc():
    labels = np.array([0] * 40 + [1] * 40)
    rng = np.random.default_rng(1)
    table = prediction_table(labels, rng.uniform(size=80), rng)
    table["type"] = np.where(labels == 1, "SER", "EXP")
    result = breakdowns(table, StatisticsSettings(bootstrap=50))
    types = result[result["breakdown"] == "type"]
    assert len(types) == 2
    assert types["auc"].isna().all()
    assert (types["chance"] == 1.0).all() and not types["flagged"].any()


# -- bricks as the unit --------------------------------------------------------------------------


def _bricks(rng, bricks: int, per_brick: int = 200, spread: float = 0.3):
    labels = np.tile(np.repeat([0, 1], per_brick // 2), bricks)
    brick = np.repeat([f"{number:04d}p000" for number in range(bricks)], per_brick)
    logits = rng.normal(size=labels.size) + rng.normal(0, spread, bricks).repeat(per_brick) * labels
    scores = 1 / (1 + np.exp(-logits))
    return labels, scores, brick


def test_a_verdict_over_many_bricks_counts_the_bricks_and_keeps_both_figures():
    rng = np.random.default_rng(41)
    labels, scores, brick = _bricks(rng, 60)
    record = verdict(labels, scores, SETTINGS, brick)
    assert record["bricks"] == 60 and record["auc_interval_method"] == "cluster"
    assert record["auc_high_independent"] - record["auc_low_independent"] < record["auc_high"] - record["auc_low"]
    assert record["design_effect"] > 1.5
    plain = verdict(labels, scores, SETTINGS)
    assert record["minimum_detectable_auc"] > plain["minimum_detectable_auc"]
    assert "count the 60 test bricks as the independent units" in record["sentence"]


def test_a_verdict_over_a_few_bricks_says_what_its_interval_rests_on():
    rng = np.random.default_rng(42)
    labels, scores, brick = _bricks(rng, 3)
    record = verdict(labels, scores, SETTINGS, brick)
    assert record["bricks"] == 3 and record["auc_interval_method"] == "bootstrap"  # 600 examples
    assert record["design_effect"] == 1.0
    assert (
        "The interval treats the 600 test examples as independent: 3 test bricks are too few for a brick-level "
        "interval (from 20)" in record["sentence"]
    )


def test_breakdowns_are_cluster_robust_where_their_bins_have_the_bricks():
    rng = np.random.default_rng(43)
    labels, scores, brick = _bricks(rng, 60)
    table = prediction_table(labels, scores, rng)
    table["brickname"] = brick
    rows = breakdowns(table, SETTINGS)
    assert set(rows["interval"]) == {"cluster"} and (rows["bricks"] == 60).all()


def test_bins_on_the_edge_of_the_band_are_rarely_called_distinguishable_by_chance():
    # 40 bins whose true AUC is exactly 0.5 + tolerance: with the bins' own 95% intervals some bin came out
    # distinguishable in most runs (63 of 100 here); the simultaneous (Bonferroni) intervals keep it at most 5%
    # (band: the 99.9% binomial limit at 100 runs).
    from realfake.stats.breakdowns import with_corrected_outcomes

    rng = np.random.default_rng(44)
    settings = StatisticsSettings(tolerance=0.01)
    shift = math.sqrt(2.0) * scipy_stats.norm.ppf(0.51)
    runs, any_distinguishable, any_by_own = 100, 0, 0
    for _ in range(runs):
        rows = []
        for _ in range(40):
            labels = np.repeat([0, 1], 1000)
            result = auc.auc_test(labels, rng.normal(size=2000) + shift * labels, resamples=1, bootstrap_below=0)
            rows.append({"auc": result.auc, "auc_low": result.low, "auc_high": result.high,
                         "auc_p_value": result.p_value, "auc_standard_error": result.standard_error})  # fmt: skip
        table = with_corrected_outcomes(pd.DataFrame(rows), settings)
        any_distinguishable += (table["outcome"] == "distinguishable").any()
        any_by_own += (table["auc_low"] > 0.51).any()
    assert any_by_own > 0.4 * runs
    assert any_distinguishable <= scipy_stats.binom.ppf(0.999, runs, 0.05)

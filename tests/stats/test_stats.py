"""realfake.stats: the AUC test, its intervals, power and tolerance, checked against independent formulas and
by simulation (each simulation is seeded: it passes or fails the same way every time)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score

from realfake.stats import accuracy, auc, bootstrap, corrections, tolerance
from realfake.stats.auc import AgainstReals, auc_test
from realfake.stats.settings import StatisticsSettings

REPLICATIONS = 400


def binomial_band(trials: int, rate: float, coverage: float = 0.999) -> tuple[int, int]:
    """The central ``coverage`` range of Binomial(trials, rate) counts."""
    low, high = scipy_stats.binom.interval(coverage, trials, rate)
    return int(low), int(high)


def shifted_scores(rng: np.random.Generator, per_class: int, auc_value: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of two unit normals whose means differ so that the true AUC is ``auc_value``."""
    shift = math.sqrt(2.0) * scipy_stats.norm.ppf(auc_value)
    labels = np.repeat([0, 1], per_class)
    scores = rng.normal(0.0, 1.0, labels.size) + shift * labels
    return labels, scores


def brute_force_components(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's components by definition, O(n_fake x n_real): psi = 1 if fake > real, 1/2 if equal."""
    fakes, reals = scores[labels == 1], scores[labels == 0]
    psi = (fakes[:, None] > reals[None, :]) + 0.5 * (fakes[:, None] == reals[None, :])
    return psi.mean(axis=1), psi.mean(axis=0)


# -- the AUC test -------------------------------------------------------------------------------


def test_auc_and_delong_standard_error_match_their_definitions_with_ties():
    rng = np.random.default_rng(3)
    labels = rng.permutation(np.repeat([0, 1], [70, 50]))
    scores = np.round(rng.normal(size=labels.size) + 0.4 * labels, 1)  # ties on purpose
    result = auc.auc_test(labels, scores, resamples=100, rng=rng)
    assert result.auc == pytest.approx(roc_auc_score(labels, scores))
    fake_component, real_component = brute_force_components(labels, scores)
    variance = np.var(fake_component, ddof=1) / 50 + np.var(real_component, ddof=1) / 70
    assert result.standard_error == pytest.approx(math.sqrt(variance), rel=1e-12)
    assert (result.real, result.fake) == (70, 50)


def test_mann_whitney_p_value_is_exact_when_small_and_tie_corrected_normal_otherwise():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 40)
    scores = rng.normal(size=80) + 0.5 * labels
    small = auc.auc_test(labels, scores, rng=rng)
    fakes, reals = scores[labels == 1], scores[labels == 0]
    for alternative, p_value in (("two-sided", small.p_value), ("greater", small.p_value_greater)):
        expected = scipy_stats.mannwhitneyu(fakes, reals, alternative=alternative, method="exact")
        assert small.test == "exact" and p_value == pytest.approx(expected.pvalue, rel=1e-12)
    tied = np.round(scores, 1)
    normal = auc.auc_test(labels, tied, rng=rng)
    for alternative, p_value in (("two-sided", normal.p_value), ("greater", normal.p_value_greater)):
        expected = scipy_stats.mannwhitneyu(
            tied[labels == 1], tied[labels == 0], alternative=alternative, method="asymptotic"
        )
        assert normal.test == "normal" and p_value == pytest.approx(expected.pvalue, rel=1e-10)
    # Scores pointing the wrong way: the two-sided test finds them, the one-sided one does not.
    reversed_test = auc.auc_test(labels, -scores, rng=rng)
    assert reversed_test.p_value == pytest.approx(small.p_value) and reversed_test.p_value_greater > 0.9
    assert auc.auc_test(labels, np.full(80, 0.5), rng=rng).p_value == pytest.approx(1.0)


def test_the_interval_is_bootstrapped_below_the_switch_and_delong_above():
    rng = np.random.default_rng(5)
    labels, scores = shifted_scores(rng, 500, 0.6)
    bootstrapped = auc.auc_test(labels, scores, resamples=500, rng=np.random.default_rng(1))
    assert bootstrapped.interval == "bootstrap"
    assert auc.auc_test(labels, scores, resamples=500, rng=np.random.default_rng(1)) == bootstrapped  # seeded
    delong = auc.auc_test(labels, scores, bootstrap_below=1000)
    assert delong.interval == "delong"
    half_width = scipy_stats.norm.ppf(0.975) * delong.standard_error
    assert (delong.low, delong.high) == pytest.approx((delong.auc - half_width, delong.auc + half_width))
    # At 1000 examples the two agree to a few thousandths.
    assert (bootstrapped.low, bootstrapped.high) == pytest.approx((delong.low, delong.high), abs=0.006)


def test_one_class_gives_nans():
    result = auc.auc_test(np.ones(10, dtype=int), np.linspace(0, 1, 10))
    assert math.isnan(result.auc) and math.isnan(result.p_value) and result.fake == 10 and result.real == 0


def test_paired_auc_difference_uses_delongs_paired_variance():
    rng = np.random.default_rng(6)
    labels = np.repeat([0, 1], 60)
    first = rng.normal(size=120) + 0.8 * labels
    second = first + rng.normal(scale=1.0, size=120)  # correlated with the first, weaker
    result = auc.paired_auc_difference(labels, first, second, bootstrap_below=10)
    one_fake, one_real = brute_force_components(labels, first)
    two_fake, two_real = brute_force_components(labels, second)
    variance = np.var(one_fake - two_fake, ddof=1) / 60 + np.var(one_real - two_real, ddof=1) / 60
    difference = roc_auc_score(labels, first) - roc_auc_score(labels, second)
    assert result["difference"] == pytest.approx(difference)
    assert result["p_value"] == pytest.approx(scipy_stats.norm.sf(difference / math.sqrt(variance)))
    assert result["method"] == "delong"


# -- by simulation: false positives, coverage, power --------------------------------------------


@pytest.mark.parametrize("rounding", [None, 1])
def test_the_auc_test_rejects_a_true_null_at_its_level(rounding):
    rng = np.random.default_rng(7)
    rejections = 0
    for _ in range(REPLICATIONS):
        labels, scores = shifted_scores(rng, 150, 0.5)
        if rounding is not None:
            scores = np.round(scores, rounding)
        rejections += auc.auc_test(labels, scores, resamples=1).p_value < 0.05
    low, high = binomial_band(REPLICATIONS, 0.05)
    assert low <= rejections <= high


@pytest.mark.parametrize(("per_class", "resamples"), [(100, 300), (1000, 1)])
def test_the_auc_interval_covers_the_true_auc_at_its_confidence(per_class, resamples):
    rng = np.random.default_rng(8)
    covered, methods = 0, set()
    for _ in range(REPLICATIONS // 2):
        labels, scores = shifted_scores(rng, per_class, 0.65)
        result = auc.auc_test(labels, scores, resamples=resamples, rng=rng)
        covered += result.low <= 0.65 <= result.high
        methods.add(result.interval)
    assert methods == ({"bootstrap"} if per_class == 100 else {"delong"})
    low, high = binomial_band(REPLICATIONS // 2, 0.95)
    assert low <= covered <= high


def test_the_tolerance_verdict_errs_at_most_at_its_level_on_either_side_of_the_line():
    # The true AUC is exactly 0.5 + tolerance: any outcome but inconclusive is an error, each side at most
    # (1 - confidence) / 2 of the time.
    rng = np.random.default_rng(9)
    outcomes = []
    for _ in range(REPLICATIONS):
        labels, scores = shifted_scores(rng, 1000, 0.6)
        result = auc.auc_test(labels, scores, resamples=1)
        outcomes.append(tolerance.tolerance_outcome(result.low, result.high, result.p_value, 0.1, 0.05))
    _, high = binomial_band(REPLICATIONS, 0.025)
    assert outcomes.count("distinguishable") <= high
    assert outcomes.count("within_tolerance") + outcomes.count("indistinguishable") <= high
    low, high = binomial_band(REPLICATIONS, 0.95)
    assert low <= outcomes.count("inconclusive") <= high


def test_the_minimum_detectable_auc_is_detected_with_the_stated_power():
    # The two-sided test at 0.05 rejects on the side of the difference at 0.025.
    per_class = 150
    detectable = tolerance.minimum_detectable_auc(per_class, per_class, significance=0.025, power=0.8)
    assert 0.55 < detectable < 0.6
    rng = np.random.default_rng(10)
    rejections = sum(
        auc.auc_test(*shifted_scores(rng, per_class, detectable), resamples=1).p_value < 0.05
        for _ in range(REPLICATIONS)
    )
    low, high = binomial_band(REPLICATIONS, 0.8)
    assert low <= rejections <= high
    # Four times the examples halve the detectable excess, about.
    assert tolerance.minimum_detectable_auc(4 * per_class, 4 * per_class, significance=0.025) - 0.5 == pytest.approx(
        (detectable - 0.5) / 2, rel=0.05
    )
    assert tolerance.minimum_detectable_auc(per_class, per_class, significance=0.025, above=0.51) > detectable


def test_the_mann_whitney_test_has_more_power_than_the_accuracy_test():
    rng = np.random.default_rng(11)
    rank_rejections = accuracy_rejections = 0
    for _ in range(REPLICATIONS // 2):
        labels, scores = shifted_scores(rng, 188, 0.56)
        probabilities = scipy_stats.norm.cdf(scores - math.sqrt(2.0) * scipy_stats.norm.ppf(0.56) / 2)
        # Both one-sided, as the accuracy's binomial test is.
        rank_rejections += auc.auc_test(labels, probabilities, resamples=1).p_value_greater < 0.05
        accuracy_rejections += accuracy.accuracy_test(labels, probabilities).p_value < 0.05
    assert rank_rejections > 1.2 * accuracy_rejections


# -- tolerance, settling, total variation -------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "p_value", "outcome"),
    [
        (0.52, 0.60, 1e-6, "distinguishable"),
        (0.501, 0.509, 1e-3, "within_tolerance"),
        (0.495, 0.509, 0.3, "indistinguishable"),
        (0.40, 0.509, 0.9, "inconclusive"),  # straddles 0.49: the CNN may score fakes lower
        (0.491, 0.499, 1e-3, "within_tolerance"),
        (0.282, 0.313, 1e-50, "distinguishable"),  # well below 0.5: a difference too
        (0.52, 0.60, 0.5, "inconclusive"),  # never against its own test (a zero-width interval of 2 examples)
        (1.0, 1.0, 0.33, "inconclusive"),
        (0.501, 0.509, 0.2, "indistinguishable"),  # the interval and the test disagree: the weaker claim
        (0.49, 0.56, 0.2, "inconclusive"),
        (0.505, 0.52, 1e-3, "inconclusive"),
        (math.nan, math.nan, math.nan, "inconclusive"),
    ],
)
def test_tolerance_outcomes(low, high, p_value, outcome):
    assert tolerance.tolerance_outcome(low, high, p_value, tolerance=0.01, significance=0.05) == outcome


def test_examples_to_settle_scale_the_interval_as_one_over_root_n_at_the_verdicts_power():
    # Half-width 0.05 at 400 examples, 0.02 from the line: touching it needs (0.05 / 0.02)^2 x 400 = 2500;
    # clearing it with power 0.8 needs ((1.96 + 0.84) / 1.96)^2 times that.
    z_interval, z_power = scipy_stats.norm.ppf(0.975), scipy_stats.norm.ppf(0.8)
    expected = 2500 * ((z_interval + z_power) / z_interval) ** 2
    assert tolerance.examples_to_settle(0.53, 0.48, 0.58, 400, 0.01) == pytest.approx(expected)
    assert tolerance.examples_to_settle(0.51, 0.46, 0.56, 400, 0.01) == math.inf
    assert tolerance.examples_to_settle(0.47, 0.42, 0.52, 400, 0.01) == pytest.approx(expected)  # below: from 0.49


def test_the_examples_to_settle_settle_it_with_the_stated_power():
    # True AUC 0.54 (0.03 above the line): the interval of a pilot's size says how many examples settle it;
    # at that size the verdict is distinguishable in 80% of repetitions (the old formula gave ~50%).
    rng = np.random.default_rng(21)
    pilot = auc.auc_test(*shifted_scores(rng, 500, 0.54), resamples=1, bootstrap_below=0)
    needed = tolerance.examples_to_settle(0.54, pilot.auc - (pilot.high - pilot.low) / 2, pilot.auc + (pilot.high -
                                    pilot.low) / 2, 1000, 0.01)  # fmt: skip
    per_class = int(round(needed / 2))
    settled = 0
    for _ in range(REPLICATIONS // 2):
        result = auc.auc_test(*shifted_scores(rng, per_class, 0.54), resamples=1, bootstrap_below=0)
        settled += tolerance.tolerance_outcome(result.low, result.high, result.p_value, 0.01, 0.05) == "distinguishable"
    low, high = binomial_band(REPLICATIONS // 2, 0.8)
    assert low <= settled <= high, (per_class, settled)


def test_tied_pair_share_and_the_smallest_decisive_split():
    labels = np.repeat([0, 1], 50)
    assert auc.tied_pair_share(labels, np.full(100, 0.5)) == 1.0
    assert auc.tied_pair_share(labels, np.arange(100.0)) == 0.0
    scores = np.where(np.arange(100) % 2 == 0, 0.5, np.arange(100.0))  # half of each class at 0.5
    assert auc.tied_pair_share(labels, scores) == pytest.approx(0.25)
    # m of each: a perfect split's exact two-sided p is 2 / C(2m, m): 0.1 at 3, 0.029 at 4.
    assert tolerance.smallest_decisive_split(0.05) == 4
    assert tolerance.smallest_decisive_split(0.01) == 5
    perfect = auc.auc_test(np.repeat([0, 1], 4), np.arange(8.0))
    assert perfect.p_value < 0.05
    assert auc.auc_test(np.repeat([0, 1], 3), np.arange(6.0)).p_value >= 0.05


def test_total_variation_bound_from_the_accuracy_and_the_auc():
    # Each bound at 97.5%, so that the larger of the two holds at 95%.
    labels = np.repeat([0, 1], 100)
    perfect = np.where(labels == 1, 0.9, 0.1)
    assert tolerance.tv_lower_bound(labels, perfect) == pytest.approx(2 * 0.025 ** (1 / 200) - 1)
    assert tolerance.tv_lower_bound(labels, np.full(200, 0.3)) == 0.0  # always "real": no evidence
    unbalanced = np.repeat([0, 1], [150, 50])
    bound = tolerance.tv_lower_bound(unbalanced, np.where(unbalanced == 1, 0.9, 0.1))
    assert bound == pytest.approx(0.0125 ** (1 / 50) + 0.0125 ** (1 / 150) - 1)
    # Unbalanced classes whose scores rank well but sit below 0.5: the accuracy says almost nothing, the AUC
    # (TV >= AUC - 0.5, from its interval's lower end) a lot.
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], [3000, 300])
    scores = 1 / (1 + np.exp(-(rng.normal(size=labels.size) + 1.9 * labels - 3.0)))
    test = auc.auc_test(labels, scores)
    assert test.auc > 0.88
    from_accuracy = tolerance.tv_lower_bound(labels, scores)
    both = tolerance.tv_lower_bound(labels, scores, auc_interval=(test.low, test.high))
    assert from_accuracy < 0.1 and both == pytest.approx(test.low - 0.5)
    assert tolerance.tv_lower_bound(labels, -scores + 1, auc_interval=(1 - test.high, 1 - test.low)) >= test.low - 0.5


# -- the older tests of the accuracy and comparisons ------------------------------------------


def test_bootstrap_auc_is_seeded_and_matches_weighted_resamples():
    rng = np.random.default_rng(2)
    labels = rng.permutation(np.repeat([0, 1], 60))
    scores = np.round(rng.uniform(size=labels.size) + 0.3 * labels, 1)  # ties on purpose
    first = auc.auc_test(labels, scores, resamples=200, rng=np.random.default_rng(9))
    second = auc.auc_test(labels, scores, resamples=200, rng=np.random.default_rng(9))
    assert first.interval == "bootstrap" and (first.low, first.high) == (second.low, second.high)
    assert first.low < first.auc < first.high
    assert first.auc == pytest.approx(roc_auc_score(labels, scores))
    # One resample checked against sklearn on the explicitly resampled data.
    sample_rng = np.random.default_rng(4)
    samples = bootstrap.bootstrap_aucs(labels, [scores], 1, sample_rng)[0, 0]
    replay = np.random.default_rng(4)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    positive_weights = replay.multinomial(positives.size, np.full(positives.size, 1 / positives.size))
    negative_weights = replay.multinomial(negatives.size, np.full(negatives.size, 1 / negatives.size))
    index = np.concatenate([np.repeat(positives, positive_weights), np.repeat(negatives, negative_weights)])
    assert samples == pytest.approx(roc_auc_score(labels[index], scores[index]))


def test_mcnemar_counts_discordant_pairs():
    labels = np.array([1] * 10 + [0] * 10)
    a = np.where(labels == 1, 0.9, 0.1)  # all right
    b = a.copy()
    b[:6] = 0.1  # b wrong on six fakes
    result = accuracy.mcnemar_greater(labels, a, b)
    assert (result["a_only"], result["b_only"]) == (6, 0)
    assert result["p_value"] == pytest.approx(0.5**6)
    assert accuracy.mcnemar_greater(labels, a, a)["p_value"] == 1.0


def test_holm_and_benjamini_hochberg_adjust_as_defined():
    p_values = np.array([0.01, 0.04, 0.03, np.nan, 0.005])
    holm = corrections.adjust_p_values(p_values, "holm")
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, then running maximum
    np.testing.assert_allclose(holm[[4, 0, 2, 1]], [0.02, 0.03, 0.06, 0.06])
    assert math.isnan(holm[3])
    bh = corrections.adjust_p_values(p_values, "bh")
    # sorted times 4/1, 4/2, 4/3, 4/4, then running minimum from the top
    np.testing.assert_allclose(bh[[4, 0, 2, 1]], [0.02, 0.02, 0.04, 0.04])
    assert np.all(bh[np.isfinite(bh)] <= holm[np.isfinite(holm)] + 1e-15)


@pytest.mark.parametrize("rounding", [None, 2])
def test_testing_fakes_against_presorted_reals_gives_the_auc_test(rounding):
    """The fake-parameter bins' fast path: the same AUC, interval and tie-corrected p-value as auc_test, with
    tied scores too (rounded to 2 decimals); small sets fall back to auc_test itself (bootstrap, exact test)."""
    rng = np.random.default_rng(11)
    reals = rng.normal(0, 1, 5000)
    fakes = rng.normal(0.2, 1, 800)
    if rounding is not None:
        reals, fakes = np.round(reals, rounding), np.round(fakes, rounding)
    against = AgainstReals(reals)
    for subset in (fakes, fakes[:300], fakes[:40]):
        labels = np.concatenate([np.zeros(reals.size, dtype=int), np.ones(subset.size, dtype=int)])
        expected = auc_test(labels, np.concatenate([reals, subset]), rng=np.random.default_rng(1))
        found = against.test(subset, rng=np.random.default_rng(1))
        assert found.interval == expected.interval == "delong" and found.test == expected.test
        for key in ("auc", "low", "high", "standard_error", "p_value"):
            assert getattr(found, key) == pytest.approx(getattr(expected, key), rel=1e-9, abs=1e-12), key
    small = AgainstReals(reals[:50])
    labels = np.concatenate([np.zeros(50, dtype=int), np.ones(30, dtype=int)])
    expected = auc_test(labels, np.concatenate([reals[:50], fakes[:30]]), rng=np.random.default_rng(2))
    found = small.test(fakes[:30], rng=np.random.default_rng(2))
    assert found == expected and found.interval == "bootstrap"


@pytest.mark.parametrize("name", ["significance", "confidence", "tolerance", "power"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_statistics_settings_refuse_a_value_that_is_not_a_finite_number(name, value):
    from realfake.errors import RealfakeError

    with pytest.raises(RealfakeError) as error:
        StatisticsSettings(**{name: value})
    assert str(error.value) == f"{name} must be a finite number, got {value}"


# -- the brick as the unit ----------------------------------------------------------------------


def bricks_of_examples(rng: np.random.Generator, bricks: int, per_brick: int, spread: float, shift: float = 0.0):
    """Labels, scores and bricks: each brick's fakes shifted by its own N(0, spread^2) (its depth, seeing,
    processing), on top of ``shift`` for all fakes."""
    labels = np.tile(np.repeat([0, 1], per_brick // 2), bricks)
    brick = np.repeat(np.arange(bricks), per_brick)
    scores = rng.normal(size=labels.size) + (shift + rng.normal(0.0, spread, bricks)[brick]) * labels
    return labels, scores, brick


@pytest.mark.parametrize(("bricks", "shift"), [(100, 0.0), (30, 0.0), (100, 0.5)])
def test_the_cluster_interval_covers_and_its_test_holds_its_level_under_brick_heterogeneity(bricks, shift):
    # 200 examples per brick, brick-to-brick spread 0.3: the independent-example interval covers the true AUC
    # about 65% of the time and its test rejects a true null about 35% of the time (checked here too).
    rng = np.random.default_rng(31)
    truth = scipy_stats.norm.cdf(shift / math.sqrt(2.0 + 0.3**2))
    covered = independent_covered = rejections = independent_rejections = 0
    replications = 300
    for _ in range(replications):
        labels, scores, brick = bricks_of_examples(rng, bricks, 200, 0.3, shift)
        result = auc.auc_test(labels, scores, resamples=1, bootstrap_below=0, clusters=brick)
        assert result.interval == "cluster" and result.clusters == bricks
        covered += result.low <= truth <= result.high
        independent_covered += result.independent["low"] <= truth <= result.independent["high"]
        rejections += result.p_value < 0.05
        independent_rejections += result.independent["p_value"] < 0.05
    low, _ = binomial_band(replications, 0.95)
    assert covered >= max(low, 0.93 * replications)
    assert independent_covered < 0.8 * replications
    if shift == 0.0:
        assert rejections <= binomial_band(replications, 0.05)[1]
        assert independent_rejections > 0.2 * replications


def test_the_cluster_standard_error_of_single_example_clusters_is_delongs_about():
    rng = np.random.default_rng(32)
    labels, scores = shifted_scores(rng, 2000, 0.6)
    result = auc.auc_test(labels, scores, resamples=1, clusters=np.arange(labels.size))
    assert result.standard_error == pytest.approx(result.independent["standard_error"], rel=0.01)


def test_too_few_clusters_keep_the_independent_interval_and_say_how_many():
    rng = np.random.default_rng(33)
    labels, scores, brick = bricks_of_examples(rng, 5, 200, 0.3)
    result = auc.auc_test(labels, scores, resamples=1, bootstrap_below=0, clusters=brick)
    assert result.interval == "delong" and result.clusters == 5 and result.independent is None
    assert result.record()["bricks"] == 5


def test_the_exact_tied_path_is_chosen_without_computing_huge_binomials():
    from realfake.stats.auc import _arrangements_at_most

    for total, chosen in ((6, 3), (17, 8), (18, 9), (20_000, 1), (20_001, 1), (30, 2)):
        assert _arrangements_at_most(total, chosen, 20_000) == (math.comb(total, chosen) <= 20_000)
    assert not _arrangements_at_most(1_000_000, 500_000, 20_000)  # returns at once

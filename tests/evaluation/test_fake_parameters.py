"""Which fakes look fake (realfake.evaluation.fake_parameters): each bin's fakes against comparable reals, so that a
score that drifts with magnitude in both classes alike is not reported as fakes that look fake."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from realfake.evaluation.fake_parameters import COLUMNS, fake_parameter_breakdowns, most_fake_looking
from realfake.stats.settings import StatisticsSettings

PER_CLASS = 200_000
DRIFT = 0.1  # the score's logit per magnitude, the same in both classes
SHIFT = 0.5  # the logit added to the fakes that do look fake
SETTINGS = StatisticsSettings(bins=5)
RADIUS = "half-light radius (arcsec)"


def _table(rng: np.random.Generator, measured: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """200k reals and 200k fakes from one joint distribution of the quantities both classes carry (g magnitude,
    g - r, a size that falls with the magnitude), with fake-only parameters that depend on the magnitude (the
    fainter a fake, the likelier exponential; fainter than 22.5, the likelier undetected); and the logit of a
    score that rises by DRIFT per magnitude in both classes. With ``measured``, the fakes also carry a tractor
    fit (``measured_mag_dered_g``: the true magnitude with noise; none for undetected fakes) and the score
    drifts with what legacypipe measured."""
    count = 2 * PER_CLASS
    labels = np.repeat([0, 1], PER_CLASS)
    fakes = labels == 1
    magnitude = rng.uniform(21, 24, count)
    faint = (magnitude - 21) / 3
    detected = ~fakes | (rng.uniform(size=count) > 0.6 * np.clip((magnitude - 22.5) / 1.5, 0, 1))
    table = pd.DataFrame({
        "label": labels, "mag_dered_g": magnitude, "mag_dered_r": magnitude - rng.uniform(0.3, 1.0, count),
        "size": np.exp(rng.normal(-0.5, 0.3, count) - 0.3 * (magnitude - 22.5)),
        "sersic_n": np.where(rng.uniform(size=count) < faint, 1.0, 4.0),
        "e1": rng.normal(0, 0.1, count), "e2": rng.normal(0, 0.1, count),
        "rsdir": np.where(fakes, rng.choice(["rs0", "rs100", "rs200"], count), ""), "detected": detected,
    })  # fmt: skip
    drifting = magnitude
    if measured:
        fit = np.where(fakes, magnitude + rng.normal(0, 0.3, count), magnitude)
        table["measured"] = detected
        table["measured_mag_dered_g"] = np.where(detected, fit, np.nan)
        drifting = np.where(detected, fit, magnitude)
    return table, rng.normal(0, 1, count) + DRIFT * drifting


def _scores(logit: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logit))


@pytest.fixture(scope="module")
def null_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    table, logit = _table(np.random.default_rng(21))
    table["p_fake"] = _scores(logit)
    return table, fake_parameter_breakdowns(table, SETTINGS)


def test_a_magnitude_drift_shared_by_both_classes_flags_no_bin(null_rows):
    _, rows = null_rows
    assert set(rows["parameter"]) >= {"true g magnitude", "Sersic index", "detected", "rs dir", RADIUS}
    assert not rows["flagged"].any(), rows.loc[rows["flagged"], ["parameter", "bin", "auc", "p_adjusted"]]
    assert (rows["outcome"] != "distinguishable").all()


def test_each_bin_says_which_reals_it_was_compared_with(null_rows):
    table, rows = null_rows
    assert list(rows.columns) == COLUMNS
    reals = table.loc[table["label"] == 0, "mag_dered_g"].to_numpy()
    for row in rows[rows["parameter"] == "true g magnitude"].itertuples():
        # reals in the bin's own edges, reweighted within it: the reals there, not all 200k
        assert row.compared_with == "reals in the same bin, reweighted to its fakes"
        assert row.reals == np.count_nonzero((reals >= row.low) & (reals <= row.high)) < PER_CLASS / 3
    fake_only = rows[rows["parameter"].isin(["Sersic index", "detected", "rs dir", "ellipticity |e|"])]
    assert (fake_only["compared_with"] == "reals reweighted to the bin's fakes in mag_dered_g").all()
    undetected = rows[(rows["parameter"] == "detected") & (rows["bin"] == "undetected")].iloc[0]
    assert undetected["fakes"] == np.count_nonzero(~table["detected"])
    # the undetected fakes are faint: they are compared with the faint reals only
    assert undetected["reals"] < 0.6 * PER_CLASS


def test_the_fakes_of_one_radius_bin_that_look_fake_are_found_and_the_other_bins_are_not():
    table, logit = _table(np.random.default_rng(22))
    fakes = table["label"].to_numpy() == 1
    size = table["size"].to_numpy()
    largest = fakes & (size >= np.quantile(size[fakes], 0.8))
    table["p_fake"] = _scores(logit + SHIFT * largest)
    rows = fake_parameter_breakdowns(table, SETTINGS)
    radius = rows[rows["parameter"] == RADIUS]
    assert len(radius) == 5 and radius["fakes"].iloc[-1] == largest.sum()
    assert radius["flagged"].tolist() == [False] * 4 + [True]
    assert radius["outcome"].iloc[-1] == "distinguishable" and radius["auc_low"].iloc[-1] > 0.55
    assert (radius["outcome"].iloc[:4] != "distinguishable").all()


def test_a_fake_only_parameter_that_looks_fake_is_found_under_the_drift():
    table, logit = _table(np.random.default_rng(23), measured=True)
    fakes = table["label"].to_numpy() == 1
    table["p_fake"] = _scores(logit + SHIFT * (fakes & (table["sersic_n"].to_numpy() == 4)))
    rows = fake_parameter_breakdowns(table, SETTINGS)
    sersic = rows[rows["parameter"] == "Sersic index"].set_index("bin")
    assert sersic.loc["4", "flagged"] and sersic.loc["4", "outcome"] == "distinguishable"
    assert not sersic.loc["1", "flagged"] and sersic.loc["1", "outcome"] != "distinguishable"
    assert (sersic["compared_with"] == "reals reweighted to the bin's fakes in measured g magnitude").all()


def test_the_bins_count_the_bricks_under_brick_heterogeneity():
    # 100 bricks of 400 examples, each brick's fakes shifted by its own N(0, 0.3^2), no difference on average:
    # with the examples taken as independent about a quarter of the bins reject at 5% (51 of 192 here, with the
    # bricks left out); with the brick as the unit about 5% (9 of 192).
    rng = np.random.default_rng(51)
    rejected = tested = 0
    independent_rejected = 0
    for _ in range(6):
        table, logit = _table(rng)
        table = table.iloc[np.r_[0:20_000, PER_CLASS : PER_CLASS + 20_000]].reset_index(drop=True)
        table["brickname"] = np.tile(np.repeat([f"{number:04d}p000" for number in range(100)], 200), 2)
        shift = rng.normal(0, 0.3, 100).repeat(200)
        logit = logit[np.r_[0:20_000, PER_CLASS : PER_CLASS + 20_000]] + np.concatenate([np.zeros(20_000), shift])
        table["p_fake"] = _scores(logit)
        rows = fake_parameter_breakdowns(table, SETTINGS)
        assert set(rows["interval"]) == {"cluster"} and set(rows["bricks"]) == {100}
        rejected += int((rows["auc_p_value"] < 0.05).sum())
        tested += len(rows)
        plain = fake_parameter_breakdowns(table.drop(columns="brickname"), SETTINGS)
        independent_rejected += int((plain["auc_p_value"] < 0.05).sum())
    assert independent_rejected > 0.2 * tested
    assert rejected <= 0.1 * tested, (rejected, independent_rejected, tested)


# -- cross-fitting: one model per fold -----------------------------------------------------------


def _folded(seed: int, examples: int = 40_000) -> tuple[pd.DataFrame, np.ndarray]:
    """A fifth of the table's examples of each class, cut into 4 folds of 25 bricks each."""
    table, logit = _table(np.random.default_rng(seed), measured=True)
    rows = np.r_[0 : examples // 2, PER_CLASS : PER_CLASS + examples // 2]
    table, logit = table.iloc[rows].reset_index(drop=True), logit[rows]
    brick = np.tile(np.arange(examples // 2) % 100, 2)
    table["brickname"] = [f"{number:04d}p000" for number in brick]
    table["fold"] = brick // 25
    return table, logit


def _fold_models(logit: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each fold's model on its own scale: increasing maps of one logit that differ from fold to fold."""
    return np.select(
        [fold == 0, fold == 1, fold == 2],
        [_scores(logit), 0.1 * _scores(3 * logit), 0.9 + 0.1 * _scores(0.5 * logit)],
        np.exp(logit),
    )


def test_each_bin_compares_its_fakes_with_reals_of_their_own_fold():
    table, logit = _folded(24)
    fakes = table["label"].to_numpy() == 1
    table["p_fake"] = _scores(logit)
    one_scale = fake_parameter_breakdowns(table, SETTINGS)
    table["p_fake"] = _fold_models(logit, table["fold"].to_numpy())
    rows = fake_parameter_breakdowns(table, SETTINGS)
    # Within folds each model's scale drops out: the same AUCs as one model's scores.
    np.testing.assert_allclose(rows["auc"], one_scale["auc"], rtol=1e-12)
    np.testing.assert_allclose(rows["auc_p_value"], one_scale["auc_p_value"], rtol=1e-9)
    assert not rows["flagged"].any() and set(rows["interval"]) == {"cluster"} and set(rows["bricks"]) == {100}
    assert rows["compared_with"].str.endswith("within each of the 4 folds").all()
    # A difference planted in the largest fakes is found within folds; pooled over the folds' scales, most of
    # its pairs are across folds and it fades.
    size = table["size"].to_numpy()
    largest = fakes & (size >= np.quantile(size[fakes], 0.8))
    table["p_fake"] = _fold_models(logit + 2 * SHIFT * largest, table["fold"].to_numpy())
    radius = fake_parameter_breakdowns(table, SETTINGS).query("parameter == @RADIUS")
    assert radius["flagged"].tolist() == [False] * 4 + [True]
    pooled = fake_parameter_breakdowns(table.drop(columns="fold"), SETTINGS).query("parameter == @RADIUS")
    assert radius["auc"].iloc[-1] > pooled["auc"].iloc[-1] + 0.05


def test_the_most_fake_looking_fakes_are_ranked_within_their_fold():
    table, logit = _folded(25, examples=4000)
    fold = table["fold"].to_numpy()
    fakes = table["label"].to_numpy() == 1
    planted = np.flatnonzero(fakes & (fold == 1))[:5]  # fold 1's model scores everything below 0.1
    logit[planted] += 10
    table["p_fake"] = _fold_models(logit, fold)
    chosen = most_fake_looking(table)
    assert {"fold", "reals_below"} <= set(chosen.columns) and chosen["reals_below"].is_monotonic_decreasing
    # fold 1's planted fakes outscore every real of their fold, though their P(fake) is at most 0.1
    found = chosen[chosen["p_fake"].isin(table["p_fake"].iloc[planted])]
    assert len(found) == 5 and (found["fold"] == 1).all() and (found["reals_below"] == 1.0).all()
    assert (found["p_fake"] <= 0.1).all()
    unfolded = most_fake_looking(table.drop(columns="fold"))
    assert "reals_below" not in unfolded.columns and (unfolded["p_fake"] > 0.9).all()

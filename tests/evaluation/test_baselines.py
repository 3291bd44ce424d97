"""The shortcut baselines' statistics in a cross-fitted run (realfake.evaluation.baselines): with a ``fold``
column, the baselines' AUCs and their paired comparisons with the CNN pair fakes and reals of the same fold."""

from __future__ import annotations

import numpy as np
from fixtures.predictions import prediction_table

from realfake.evaluation.baselines import shortcut_baselines
from realfake.stats.auc import auc_test, paired_auc_difference
from realfake.stats.settings import StatisticsSettings

SETTINGS = StatisticsSettings(bootstrap=100, seed=3)


def test_baselines_against_a_cross_fitted_cnn_compare_within_folds():
    # Two folds whose CNNs rank well on different scales (fold 0's fakes-heavy and scored low): the paired
    # comparison pools nothing across folds, so the CNN beats the baselines, which see no difference.
    rng = np.random.default_rng(71)
    train = prediction_table(rng.permutation(np.arange(600) % 2), np.full(600, 0.5), rng)
    fold = np.repeat([0, 1], 1000)
    labels = np.concatenate([rng.uniform(size=1000) < 0.8, rng.uniform(size=1000) < 0.2]).astype(int)
    probability = 1 / (1 + np.exp(-(rng.normal(size=2000) + 1.5 * labels)))
    test = prediction_table(labels, np.where(fold == 0, 0.3 * probability, 0.7 + 0.3 * probability), rng)
    test["fold"] = fold
    records, scores = shortcut_baselines(train, test, SETTINGS)
    assert records and all(record["folds"] == 2 for record in records)
    cnn = test["p_fake"].to_numpy()
    for record in records:
        comparison = record["cnn_vs_baseline"]
        assert comparison["auc_difference_method"] == "stratified delong" and comparison["cnn_better"]
        expected = paired_auc_difference(labels, cnn, scores[record["name"]], strata=fold)
        assert comparison["auc_difference"] == expected["difference"]
        assert record["auc"] == auc_test(labels, scores[record["name"]], strata=fold).auc
    # Pooled across the folds' scales the CNN's AUC is below 0.5 and it would not beat them.
    unfolded, _ = shortcut_baselines(train, test.drop(columns="fold"), SETTINGS)
    assert "folds" not in unfolded[0] and not any(record["cnn_vs_baseline"]["cnn_better"] for record in unfolded)

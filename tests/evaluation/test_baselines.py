"""The shortcut baselines' statistics in a cross-fitted run (realfake.evaluation.baselines): with a ``fold``
column, the baselines' AUCs and their paired comparisons with the CNN pair fakes and reals of the same fold."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.predictions import prediction_table

from realfake.errors import RealfakeError
from realfake.evaluation import baselines
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


def test_cross_fitted_baselines_score_each_fold_with_a_model_that_never_saw_it(monkeypatch):
    """``model_fold`` in the training table: each fold's examples are scored by baselines fitted on that fold
    model's rows only, never on rows of another model."""
    rng = np.random.default_rng(5)
    train = prediction_table(rng.permutation(np.arange(900) % 2), np.full(900, 0.5), rng)
    train["model_fold"] = np.repeat([0, 1, 2], 300)
    test = prediction_table(rng.permutation(np.arange(600) % 2), rng.uniform(size=600), rng)
    test["fold"] = np.repeat([2, 0, 1], 200)
    fits = []
    real_fit = baselines._fit_and_score

    def recording_fit(kind, train_features, train_labels, test_features, seed):
        fits.append((set(train.loc[train_features.index, "model_fold"]), set(test.loc[test_features.index, "fold"])))
        return real_fit(kind, train_features, train_labels, test_features, seed)

    monkeypatch.setattr(baselines, "_fit_and_score", recording_fit)
    records, scores = shortcut_baselines(train, test, SETTINGS)
    assert records and all(len(values) == 600 for values in scores.values())
    # Every baseline (2 feature sets x 2 models) fitted once per fold, on that fold's model's rows, scoring its fold.
    assert sorted(fits, key=str) == sorted([({fold}, {fold}) for fold in (0, 1, 2)] * 4, key=str)
    train.loc[train["model_fold"] == 1, "model_fold"] = 0  # no rows for fold 1's model
    with pytest.raises(RealfakeError, match=r"no training rows for the model of fold\(s\) \[1\]"):
        shortcut_baselines(train, test, SETTINGS)

"""Shortcut baselines: can simple classifiers on catalog quantities or pixel statistics already tell?

Logistic regression and gradient boosting (scikit-learn) are trained on the
shard set's training split and scored on its test split, on two feature sets:

- *catalog* (:func:`catalog_features`): ``mag_dered_<b>`` (one dereddened
  definition for both classes), adjacent colours (``g - r``, ``r - z``),
  ``size`` (half-light radius, arcsec; left missing for type PSF in both
  classes, because a real PSF's size is half the PSF FWHM and a fake PSF's is
  0: a definition, not a property) and the sub-pixel offsets ``offset_x``,
  ``offset_y`` (computed the same way for both from ra, dec: a centring
  difference between the classes shows here). Left out: identifiers and
  bookkeeping (shard, row, id, brickname, rsdir, kind, cutouts_file: they name
  the class or its file), positions (ra, dec, x, y, centre_*), observed fluxes
  and Milky Way transmissions (the magnitudes carry the flux), ``type`` (REX
  and COMP exist only for reals, SER only for fakes), ``sersic_n`` (1 or 4 by
  type, or NaN, for reals; the drawn value for fakes) and ``e1, e2`` (exactly 0
  for real REX and PSF by the model's definition, drawn for fakes). Missing
  values are filled with the training median in both classes, so missingness
  itself carries no label. Both classes are described by legacypipe's
  measurements where the catalogs have them (:func:`realfake.formats.cutouts.measured_view`: a fake's
  fit in its rs dir's tractor catalog); a fake without one keeps its true
  simcat values, and then measurement noise alone can separate the classes
  a little (the report says so, with the share of fakes measured).
- *pixel* (:func:`pixel_features`): the stamp statistics of
  :func:`realfake.evaluation.features.stamp_statistics`: per band the central 3 x 3 flux
  and the central inverse variance, and the flux-weighted centroid of the
  central 9 x 9 pixels.

Each baseline gets the verdict's measurement (the AUC, its interval and its
Mann-Whitney test, with the accuracy test beside it), AUC p-values corrected
over the baselines, and a comparison with the CNN on the same test examples
(the paired AUC difference, which decides whether the CNN does better, and the
exact one-sided McNemar test of the accuracies). :func:`shortcut_sentence`
turns it into the report's sentence. In a cross-fitted run (a ``fold``
column in the test predictions, the fold's CNN having scored each example)
the AUCs and the paired differences compare fakes and reals of the same fold
only, the CNN's scores not being on one scale across folds; the baselines'
AUCs are taken the same way, so that the two sides compare alike.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats
from threadpoolctl import threadpool_limits

from realfake.errors import RealfakeError
from realfake.formats.cutouts import measured_view, ordered_bands
from realfake.formats.evaluation import baseline_title
from realfake.stats import accuracy, corrections
from realfake.stats.auc import auc_test, paired_auc_difference
from realfake.stats.breakdowns import fold_labels
from realfake.stats.clusters import brick_codes
from realfake.stats.settings import StatisticsSettings

BASELINE_MODELS = ("logistic", "boosting")
FEATURE_SETS = ("catalog", "pixel")
SINGLE_THREAD_BELOW = 20_000  # training examples below which the baselines fit on one thread
FEATURE_SET_DESCRIPTIONS = {
    "catalog": "catalog quantities (dereddened magnitudes, colours, size, sub-pixel offset)",
    "pixel": "simple pixel statistics (central flux, central inverse variance, centroid)",
}


def fakes_measured_share(table: pd.DataFrame) -> float | None:
    """Share of the fakes (label 1) in ``table`` with a tractor fit; None without ``measured`` columns."""
    if "measured" not in table.columns:
        return None
    fakes = table["label"].to_numpy() == 1
    return float(table["measured"].to_numpy(dtype=bool)[fakes].mean()) if fakes.any() else None


def catalog_features(table: pd.DataFrame) -> pd.DataFrame:
    """The *catalog* shortcut features of a catalog table (see the module docstring for what and why)."""
    table = measured_view(table)
    bands = ordered_bands(table)
    features = pd.DataFrame(index=table.index)
    for band in bands:
        features[f"mag_dered_{band}"] = table[f"mag_dered_{band}"].astype(np.float64)
    for blue, red in zip(bands, bands[1:]):
        features[f"{blue} - {red}"] = table[f"mag_dered_{blue}"] - table[f"mag_dered_{red}"]
    if "size" in table.columns:
        size = table["size"].astype(np.float64)
        if "type" in table.columns:
            size = size.where(table["type"].astype(str) != "PSF")
        features["size"] = size
    for column in ("offset_x", "offset_y"):
        if column in table.columns:
            features[column] = table[column].astype(np.float64)
    return features


def pixel_features(table: pd.DataFrame) -> pd.DataFrame:
    """The *pixel* shortcut features: the :func:`realfake.evaluation.features.stamp_statistics` columns present in
    ``table``."""
    names = [
        column
        for column in table.columns
        if column.startswith(("pixel_flux3x3_", "ivar_centre_")) or column in ("centroid_dx", "centroid_dy")
    ]
    return table[names].astype(np.float64)


FEATURE_BUILDERS = {"catalog": catalog_features, "pixel": pixel_features}


def _baseline_model(kind: str, training_examples: int, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import QuantileTransformer

    imputer = SimpleImputer(strategy="median", keep_empty_features=True)
    if kind == "logistic":
        # Quantile-normalising each feature makes fluxes spanning decades and
        # offsets of a fraction of a pixel equally usable by a linear model.
        quantiles = QuantileTransformer(
            output_distribution="normal", n_quantiles=max(2, min(1000, training_examples)), random_state=seed
        )
        return make_pipeline(imputer, quantiles, LogisticRegression(max_iter=2000))
    return make_pipeline(imputer, HistGradientBoostingClassifier(random_state=seed))


def feature_differences(train: pd.DataFrame, features: pd.DataFrame, settings: StatisticsSettings) -> list[dict]:
    """Per feature, a two-sample Kolmogorov-Smirnov test of real against fake (on ``train``'s rows).

    p-values are corrected over the features (``settings.correction``);
    ``differs`` marks the significant ones.
    """
    labels = train["label"].to_numpy()
    records = []
    for name in features.columns:
        values = features[name].to_numpy(np.float64)
        real, fake = values[(labels == 0) & np.isfinite(values)], values[(labels == 1) & np.isfinite(values)]
        if real.size == 0 or fake.size == 0:
            records.append({"feature": name, "statistic": math.nan, "p_value": math.nan})
            continue
        result = scipy_stats.ks_2samp(real, fake)
        records.append({"feature": name, "statistic": float(result.statistic), "p_value": float(result.pvalue)})
    adjusted = corrections.adjust_p_values(
        np.array([record["p_value"] for record in records], dtype=np.float64), settings.correction
    )
    for record, value in zip(records, adjusted):
        record["p_adjusted"] = float(value)
        record["differs"] = bool(value < settings.significance)
    return records


def shortcut_baselines(
    train: pd.DataFrame, test: pd.DataFrame, settings: StatisticsSettings
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Train each baseline on ``train``, score it on ``test``; (records, test fake probabilities by name).

    Each record: name, feature_set, model, features, the accuracy test against
    the test majority share (``accuracy_p_value``), the AUC test
    (:meth:`realfake.stats.auc.AucTest.record`), ``p_adjusted`` (the AUC p-value
    corrected over the baselines), ``significant``, ``feature_differences``
    (:func:`feature_differences`) and, against the CNN (``test['p_fake']``),
    ``cnn_vs_baseline`` (:func:`_paired_comparison`). The AUC tests and comparisons are within folds when
    ``test`` has a ``fold`` column of at least 2 folds (module docstring); with ``model_fold`` in ``train``
    as well, each baseline is cross-fitted as the CNN is (:func:`_models_of`).
    """
    train_labels = train["label"].to_numpy()
    test_labels = test["label"].to_numpy()
    records, scores = [], {}
    models = _models_of(train, test)
    if any(np.unique(train_labels[rows]).size < 2 for rows, _ in models):
        return records, scores
    clusters = brick_codes(test)
    folds = fold_labels(test)
    for feature_set in FEATURE_SETS:
        train_features = FEATURE_BUILDERS[feature_set](train)
        test_features = FEATURE_BUILDERS[feature_set](test)
        names = [
            name
            for name in train_features.columns
            if name in test_features.columns and np.isfinite(train_features[name].to_numpy(np.float64)).any()
        ]
        if not names:
            continue
        # Cross-fitted, a row trains K - 1 models: the features' differences are those of fold 0's model's rows.
        first = models[0][0]
        differences = feature_differences(train[first], train_features[names][first], settings)
        for model_kind in BASELINE_MODELS:
            name = f"{feature_set}_{model_kind}"
            probability = np.empty(len(test), dtype=np.float64)
            for rows, members in models:
                probability[members] = _fit_and_score(
                    model_kind, train_features[names][rows], train_labels[rows], test_features[names][members],
                    settings.seed,
                )  # fmt: skip
            scores[name] = probability
            record = {"name": name, "feature_set": feature_set, "model": model_kind, "features": names}
            if feature_set == "catalog":
                record["fakes_measured"] = fakes_measured_share(test)
            record.update(accuracy.accuracy_test(test_labels, probability, settings.confidence).record())
            record["accuracy_p_value"] = record.pop("p_value")
            rng = np.random.default_rng([settings.seed, 2, len(records)])
            record.update(
                auc_test(
                    test_labels,
                    probability,
                    settings.confidence,
                    settings.bootstrap,
                    rng,
                    clusters=clusters,
                    strata=folds,
                ).record()
            )
            record["feature_differences"] = differences
            if "p_fake" in test.columns:
                record["cnn_vs_baseline"] = _paired_comparison(
                    test_labels, test["p_fake"].to_numpy(np.float64), probability, settings, len(records), folds
                )
            records.append(record)
    adjusted = corrections.adjust_p_values(
        np.array([record["auc_p_value"] for record in records], dtype=np.float64), settings.correction
    )
    for record, value in zip(records, adjusted):
        record["p_adjusted"] = float(value)
        record["significant"] = bool(value < settings.significance)
    return records, scores


def _models_of(train: pd.DataFrame, test: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """Which training rows fit each baseline model and which test rows it scores, as boolean masks: one model of
    every row for every test example; cross-fitted (``model_fold`` in ``train``, naming the fold whose model a row
    trains, and ``fold`` in ``test``), one model per fold, fitted on that fold model's rows and scoring the fold's
    examples, so that no baseline scores an example of a brick it was fitted on."""
    if "model_fold" not in train.columns or "fold" not in test.columns:
        return [(np.ones(len(train), dtype=bool), np.ones(len(test), dtype=bool))]
    model_fold, fold = train["model_fold"].to_numpy(), test["fold"].to_numpy()
    missing = sorted(set(np.unique(fold).tolist()) - set(np.unique(model_fold).tolist()))
    if missing:
        raise RealfakeError(f"shortcut baselines: no training rows for the model of fold(s) {missing}")
    return [(model_fold == number, fold == number) for number in np.unique(fold)]


def _fit_and_score(
    model_kind: str, train_features: pd.DataFrame, train_labels: np.ndarray, test_features: pd.DataFrame, seed: int
) -> np.ndarray:
    """A ``model_kind`` baseline fitted on the training features and labels; its fake probabilities (float64) of
    the test features."""
    from sklearn.exceptions import ConvergenceWarning

    model = _baseline_model(model_kind, len(train_features), seed)
    # OpenMP start-up costs more than it saves on small training sets (seconds for a few hundred rows).
    threads = 1 if len(train_features) < SINGLE_THREAD_BELOW else None
    with warnings.catch_warnings(), threadpool_limits(limits=threads, user_api="openmp"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_features.to_numpy(np.float64), train_labels)
        return model.predict_proba(test_features.to_numpy(np.float64))[:, list(model.classes_).index(1)]


def _paired_comparison(
    labels, cnn_scores, baseline_scores, settings: StatisticsSettings, index: int, folds: np.ndarray | None = None
) -> dict:
    """The CNN against a baseline on the same test examples: the paired AUC difference (the verdict's
    statistic, within ``folds`` when given; ``p_value``, one-sided, decides ``cnn_better``) and the McNemar
    test of the accuracies."""
    mcnemar = accuracy.mcnemar_greater(labels, cnn_scores, baseline_scores)
    rng = np.random.default_rng([settings.seed, 3, index])
    difference = paired_auc_difference(
        labels, cnn_scores, baseline_scores, settings.confidence, settings.bootstrap, rng, strata=folds
    )
    return {
        "auc_difference": difference["difference"],
        "auc_difference_low": difference["low"],
        "auc_difference_high": difference["high"],
        "auc_difference_method": difference["method"],
        "p_value": difference["p_value"],
        "cnn_better": bool(difference["p_value"] < settings.significance),
        "cnn_only_correct": mcnemar["a_only"],
        "baseline_only_correct": mcnemar["b_only"],
        "mcnemar_p_value": mcnemar["p_value"],
    }


def shortcut_sentence(cnn: dict, baselines: list[dict]) -> str:
    """Where the difference lies: in simple quantities, in the image structure, or nowhere found."""
    if not baselines:
        return (
            "No shortcut baselines were run (no training split features), so where any difference lies is not tested."
        )
    best = max(baselines, key=lambda record: (record["auc"] if math.isfinite(record["auc"]) else 0, record["accuracy"]))
    comparison = best.get("cnn_vs_baseline", {})
    best_text = (
        f"the best, {baseline_title(best)}, reaches AUC {best['auc']:.2f} ({best['auc_low']:.2f}-"
        f"{best['auc_high']:.2f}) and test accuracy {best['accuracy']:.2f} against {best['chance']:.2f} by chance"
    )
    significant = [record for record in baselines if record["significant"]]
    if significant:
        return _difference_sentence(cnn, significant, best_text, comparison)
    if cnn["significant"] and comparison.get("cnn_better"):
        return (
            f"No shortcut baseline beats chance ({best_text}) and the CNN beats the best of them "
            f"(AUC higher by {comparison['auc_difference']:.2f}, p = {corrections.format_p(comparison['p_value'])}): "
            f"the difference is in the image structure."
        )
    if cnn["significant"]:
        return (
            f"No shortcut baseline beats chance ({best_text}), but the CNN's AUC is not significantly higher than "
            f"the best of theirs (p = {corrections.format_p(comparison.get('p_value', math.nan))}), so where the "
            f"difference lies is not settled."
        )
    return f"Neither the CNN nor any shortcut baseline separates the classes ({best_text})."


def _difference_sentence(cnn: dict, significant: list[dict], best_text: str, comparison: dict) -> str:
    """:func:`shortcut_sentence` when the ``significant`` baselines separate the classes: in which quantities the
    difference lies, and whether the CNN sees more than the best baseline (``comparison``)."""
    parts = []
    # The feature set whose best baseline is most accurate comes first.
    order = sorted(
        {record["feature_set"] for record in significant},
        key=lambda name: -max(record["auc"] for record in significant if record["feature_set"] == name),
    )
    for feature_set in order:
        hits = [record for record in significant if record["feature_set"] == feature_set]
        differing = [item["feature"] for item in hits[0]["feature_differences"] if item["differs"]]
        description = FEATURE_SET_DESCRIPTIONS[feature_set]
        parts.append(
            f"{description}, chiefly {', '.join(differing)}"
            if differing
            else f"{description}, jointly (no single one differs significantly on its own)"
        )
    sentence = (
        f"A simple classifier already separates the classes ({best_text}; adjusted p = "
        f"{corrections.format_p(min(record['p_adjusted'] for record in significant))}): "
        f"the difference lies in {'; and in '.join(parts)}."
    )
    catalog = [record for record in significant if record["feature_set"] == "catalog"]
    if catalog and (catalog[0].get("fakes_measured") or 0) < 1:
        share = catalog[0].get("fakes_measured")
        fakes = (
            "fake ones true"
            if share is None
            else f"{1 - share:.0%} of the fakes have no tractor fit and keep true values"
        )
        sentence += (
            f" Real catalog values are measured and {fakes}, so measurement noise accounts for part of a "
            "catalog difference."
        )
    if cnn["significant"] and comparison.get("cnn_better"):
        sentence += (
            f" The CNN still does significantly better than that baseline (AUC higher by "
            f"{comparison['auc_difference']:.2f}, p = {corrections.format_p(comparison['p_value'])}), so the "
            f"images differ beyond these quantities too."
        )
    return sentence

"""The verdict's measurement in bins of catalog quantities, with the p-values and intervals corrected over all bins.

:func:`breakdowns` bins the test split by each of :func:`breakdown_variables`
(magnitude, colours, size, type, depth, sub-pixel offset, the audit's placement
columns) and measures each bin as the verdict does (:mod:`realfake.stats.verdict`);
:func:`with_corrected_outcomes` corrects the p-values over all bins and gives
each bin's outcome from intervals that hold for all bins at once. The table's
columns are :data:`BREAKDOWN_COLUMNS`. :func:`brick_labels` and
:func:`fold_labels` read a predictions table's bricks (the clusters) and, in a
cross-fitted run, its folds (the strata within which AUCs compare pairs).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from realfake.formats.cutouts import measured_view, ordered_bands
from realfake.stats import accuracy, corrections
from realfake.stats.auc import auc_test
from realfake.stats.clusters import brick_codes
from realfake.stats.settings import StatisticsSettings
from realfake.stats.tolerance import direction, tolerance_outcome

BREAKDOWN_COLUMNS = [
    "breakdown",
    "bin",
    "low",
    "high",
    "examples",
    "real",
    "fake",
    "chance",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "accuracy_p_value",
    "auc",
    "auc_low",
    "auc_high",
    "auc_p_value",
    "auc_standard_error",
    "direction",
    "bricks",
    "interval",
    "p_adjusted",
    "flagged",
    "auc_low_simultaneous",
    "auc_high_simultaneous",
    "outcome",
]


def breakdown_variables(predictions: pd.DataFrame) -> dict[str, pd.Series]:
    """The quantities the accuracy is broken down by, those whose columns exist.

    g magnitude (``mag_dered_g``, or the first band's), the colours g - r and
    r - z, ``size``, ``type`` (categorical), the local depth (``galdepth_r`` if
    the catalog has it, else the central inverse variance ``ivar_centre_r``;
    r, or the first band without r) and the sub-pixel offset
    ``hypot(offset_x, offset_y)`` in pixels, and the audit's placement columns
    (:mod:`realfake.evaluation.audit`): ``detected`` ("detected" or "undetected") and
    ``distance_to_no_coverage`` in pixels. Magnitudes, colours, size and
    type are the tractor fit's where the catalog has one
    (:func:`realfake.formats.cutouts.measured_view`), for both classes alike.
    """
    predictions = measured_view(predictions)
    bands = ordered_bands(predictions)
    variables: dict[str, pd.Series] = {}
    if bands:
        magnitude_band = "g" if "g" in bands else bands[0]
        variables[f"{magnitude_band} magnitude"] = predictions[f"mag_dered_{magnitude_band}"]
    for blue, red in (("g", "r"), ("r", "z")):
        if blue in bands and red in bands:
            variables[f"{blue} - {red}"] = predictions[f"mag_dered_{blue}"] - predictions[f"mag_dered_{red}"]
    for column in ("size", "type"):
        if column in predictions.columns:
            variables[column] = predictions[column]
    depth_bands = [
        band
        for band in ("r", *bands)
        if f"ivar_centre_{band}" in predictions.columns or f"galdepth_{band}" in predictions.columns
    ]
    if depth_bands:
        band = depth_bands[0]
        column = f"galdepth_{band}" if f"galdepth_{band}" in predictions.columns else f"ivar_centre_{band}"
        variables[f"depth ({column})"] = predictions[column]
    if "offset_x" in predictions.columns and "offset_y" in predictions.columns:
        variables["sub-pixel offset"] = pd.Series(
            np.hypot(predictions["offset_x"].to_numpy(np.float64), predictions["offset_y"].to_numpy(np.float64)),
            index=predictions.index,
        )
    if "detected" in predictions.columns:
        detected = predictions["detected"].astype(bool).to_numpy()
        variables["detected"] = pd.Series(np.where(detected, "detected", "undetected"), index=predictions.index)
    if "distance_to_no_coverage" in predictions.columns:
        variables["distance to no coverage"] = predictions["distance_to_no_coverage"].astype(np.float64)
    return variables


def _bins(values: pd.Series, count: int) -> list[tuple[str, float, float, np.ndarray]]:
    """(label, low, high, mask) per bin: quantile bins of numbers, one bin per category, a 'missing' bin."""
    if not pd.api.types.is_numeric_dtype(values):
        text = values.astype("string").fillna("missing")
        order = text.value_counts().index
        return [(str(category), math.nan, math.nan, (text == category).to_numpy()) for category in order]
    numbers = values.to_numpy(np.float64)
    finite = np.isfinite(numbers)
    bins = []
    if finite.any():
        edges = np.unique(np.quantile(numbers[finite], np.linspace(0, 1, count + 1)))
        if edges.size == 1:
            bins.append((_edge_text(edges[0]), float(edges[0]), float(edges[0]), finite))
        else:
            # Bin i holds edges[i] <= x < edges[i+1]; the last bin also holds its upper edge.
            position = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, edges.size - 2)
            for index in range(edges.size - 1):
                mask = finite & (position == index)
                if mask.any():
                    low, high = float(edges[index]), float(edges[index + 1])
                    bins.append((f"{_edge_text(low)} to {_edge_text(high)}", low, high, mask))
    if (~finite).any():
        bins.append(("missing", math.nan, math.nan, ~finite))
    return bins


def _edge_text(value: float) -> str:
    """A bin edge for a label: three significant digits, whole numbers from 1000 up (no exponents)."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def breakdowns(predictions: pd.DataFrame, settings: StatisticsSettings) -> pd.DataFrame:
    """The verdict's measurement in bins of each breakdown variable (:func:`breakdown_variables`).

    One row per bin (columns :data:`BREAKDOWN_COLUMNS`): the accuracy against
    the bin's majority share (exact binomial), the AUC with its interval and
    two-sided Mann-Whitney p-value (:func:`realfake.stats.auc.auc_test`; NaN when a
    bin holds one class), ``direction`` (fakes score "higher" or "lower"),
    ``p_adjusted``, the AUC p-values corrected over all bins of all breakdowns
    together (``settings.correction``), ``flagged`` for bins significantly
    different from 0.5 after it (either way), and the bin's ``outcome`` against
    the tolerance on both sides. With a ``fold`` column of at least 2 folds (a
    cross-fitted run, :func:`fold_labels`) each bin's AUC compares fakes and
    reals of the same fold only, as the verdict's does.
    """
    labels = predictions["label"].to_numpy()
    scores = predictions["p_fake"].to_numpy(np.float64)
    bricks = brick_labels(predictions)
    folds = fold_labels(predictions)
    rows = []
    for name, values in breakdown_variables(predictions).items():
        for label, low, high, mask in _bins(values, settings.bins):
            test = accuracy.accuracy_test(labels[mask], scores[mask], settings.confidence)
            rng = np.random.default_rng([settings.seed, 1, len(rows)])
            clusters = None if bricks is None else bricks[mask]
            strata = None if folds is None else folds[mask]
            auc = auc_test(
                labels[mask], scores[mask], settings.confidence, settings.bootstrap, rng, clusters=clusters,
                strata=strata,
            )  # fmt: skip
            rows.append(
                {
                    "breakdown": name,
                    "bin": label,
                    "low": low,
                    "high": high,
                    "examples": test.trials,
                    "real": auc.real,
                    "fake": auc.fake,
                    "chance": test.chance,
                    "accuracy": test.accuracy,
                    "accuracy_low": test.low,
                    "accuracy_high": test.high,
                    "accuracy_p_value": test.p_value,
                    "auc": auc.auc,
                    "auc_low": auc.low,
                    "auc_high": auc.high,
                    "auc_p_value": auc.p_value,
                    "auc_standard_error": auc.standard_error,
                    "direction": direction(auc.auc),
                    "bricks": auc.clusters,
                    "interval": auc.interval,
                }
            )
    table = pd.DataFrame(
        rows,
        columns=[
            column
            for column in BREAKDOWN_COLUMNS
            if column not in ("p_adjusted", "flagged", "auc_low_simultaneous", "auc_high_simultaneous", "outcome")
        ],
    )
    return with_corrected_outcomes(table, settings)[BREAKDOWN_COLUMNS]


def brick_labels(predictions: pd.DataFrame) -> np.ndarray | None:
    """Each example's brick as an integer code (:func:`realfake.stats.clusters.brick_codes`); None without
    ``brickname``."""
    return brick_codes(predictions)


def fold_labels(predictions: pd.DataFrame) -> np.ndarray | None:
    """Each example's fold (``fold``, 0 to K - 1 in a cross-fitted run: the model that scored it, one that never
    saw its brick) as an int64 code, 0 for the lowest fold; None without the column or with one fold, where every
    score is one model's."""
    if "fold" not in predictions.columns:
        return None
    codes, folds = pd.factorize(predictions["fold"], sort=True)
    return codes.astype(np.int64) if folds.size >= 2 else None


def with_corrected_outcomes(table: pd.DataFrame, settings: StatisticsSettings) -> pd.DataFrame:
    """``table`` (one row per bin: ``auc``, ``auc_low``, ``auc_high``, ``auc_p_value`` and, where known,
    ``auc_standard_error``) with ``p_adjusted`` (corrected over all its rows, ``settings.correction``),
    ``flagged`` (significant after it), ``auc_low_simultaneous`` and ``auc_high_simultaneous`` and each bin's
    ``outcome``.

    The outcome words come from corrected figures on both counts: the corrected p-value, and intervals that
    hold for all m bins at once (Bonferroni: each bin's AUC +- z(1 - (1 - confidence) / 2m) SE, SE its
    DeLong or cluster-robust standard error; the bin's own interval where the table has no standard error).
    With ~40 bins whose AUC sits on an edge of the tolerance band, the bins' own intervals called some bin
    ``distinguishable`` by chance in up to ~64% of the runs; the simultaneous ones keep that below 5%.
    """
    table["p_adjusted"] = corrections.adjust_p_values(table["auc_p_value"].to_numpy(np.float64), settings.correction)
    table["flagged"] = table["p_adjusted"] < settings.significance
    low, high = table["auc_low"].to_numpy(np.float64), table["auc_high"].to_numpy(np.float64)
    if "auc_standard_error" in table.columns and len(table):
        tested = max(int(np.isfinite(table["auc_p_value"].to_numpy(np.float64)).sum()), 1)
        z = scipy_stats.norm.ppf(1.0 - (1.0 - settings.confidence) / (2.0 * tested))
        value, error = table["auc"].to_numpy(np.float64), table["auc_standard_error"].to_numpy(np.float64)
        low, high = np.maximum(0.0, value - z * error), np.minimum(1.0, value + z * error)
        # A bin too small for a standard error (a few examples) keeps its own, wider, bootstrap interval.
        own = ~np.isfinite(error)
        low[own], high[own] = table["auc_low"].to_numpy(np.float64)[own], table["auc_high"].to_numpy(np.float64)[own]
        low, high = (
            np.minimum(low, table["auc_low"].to_numpy(np.float64)),
            np.maximum(high, table["auc_high"].to_numpy(np.float64)),
        )
    table["auc_low_simultaneous"], table["auc_high_simultaneous"] = low, high
    table["outcome"] = [
        tolerance_outcome(bin_low, bin_high, p_value, settings.tolerance, settings.significance)
        for bin_low, bin_high, p_value in zip(low, high, table["p_adjusted"])
    ]
    return table

"""Which fakes look fake: the CNN's scores of the test fakes against the parameters they were injected with.

For each injected parameter of the fakes (the simcat's true values, as the
cutouts catalog carries them: dereddened magnitudes and colours, half-light
radius, Sersic index, ellipticity, rs dir, and whether legacypipe detected
them), the test fakes are cut into bins of it, and in each bin the AUC of
those fakes against *comparable* test reals is measured: 0.5 where these fakes
look like real galaxies of their kind, above it where they look fake. Against
all reals instead, a score that drifts with magnitude in both classes alike
would flag every bin whose fakes are fainter or brighter than the reals on
average, although no fake looks faker than a real of its magnitude.

Which reals are comparable (:data:`COLUMNS`' ``compared_with`` says, per bin):

- a parameter the reals carry in the same column (``mag_dered_<b>``, the
  colours, ``size``): the reals in the same bin (the same edges), reweighted
  within it to the bin's fakes in that parameter when the bin has at least
  ``2 * REALS_PER_STRATUM`` reals. A fake's value is the one injected, a
  real's the measured one;
- a parameter only the fakes have (Sersic index, ellipticity, rs dir,
  detected: the reals' columns hold measured or defined values, or none):
  all reals, reweighted to the bin's fakes in the matching magnitude
  (:func:`matching_magnitude`: the g band's, legacypipe's measurement wherever
  there is one, as the shard set is matched on by default); all reals,
  unweighted, below ``2 * REALS_PER_STRATUM`` reals or without a magnitude.

Reweighting is a stratified Mann-Whitney comparison (van Elteren): the reals
are cut into strata of about equal counts by the matching value (up to
``MAX_STRATA``, at least ``REALS_PER_STRATUM`` reals each, each stratum's
scores sorted once: :class:`realfake.stats.auc.AgainstReals`, so a bin costs one pass
over the reals), the bin's fakes go to the stratum of their value, and the AUC
is sum_s w_s AUC_s with w_s the bin's share of fakes in stratum s: the AUC
against reals that have the fakes' distribution of the matching value. The
two-sided p-value is the normal one with the strata's null (tie-corrected
Mann-Whitney) variances, sum_s w_s^2 Var0(AUC_s); the interval, at the
settings' confidence, uses DeLong's variance of the combined AUC (the fakes'
components pooled over the bin, the reals' per stratum). Without strata the
test is :meth:`realfake.stats.auc.AgainstReals.test`, the verdict's.

In a cross-fitted run (a ``fold`` column of at least 2 folds: each example
scored by the model that never saw its brick, the K models' scores not on one
scale) every comparison above is made within each fold, the fold's fakes of
the bin against the fold's comparable reals (the strata cut from the fold's
reals), and the folds' results are combined as the verdict's AUC is
(:func:`realfake.stats.auc.combine_strata`): weighted by each fold's fakes x
reals compared, the variances summed over folds, the interval normal and the
test normal (no bootstrap or exact test, however small the bin).

The p-values are corrected over all bins of all parameters together (the
breakdowns' correction), and each bin gets the verdict's outcome word
(:func:`realfake.stats.breakdowns.with_corrected_outcomes`). A size error shows as an
AUC that depends on the radius; a profile error as one that depends on the
Sersic index.

Also the parameters of the fakes the CNN finds most fake-looking
(:func:`most_fake_looking`; in a cross-fitted run ranked within their fold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from realfake.formats.cutouts import measured_view, ordered_bands
from realfake.stats.auc import AgainstReals, AucTest, StratumAuc, combine_strata
from realfake.stats.breakdowns import fold_labels, with_corrected_outcomes
from realfake.stats.clusters import brick_codes
from realfake.stats.settings import StatisticsSettings

MOST_FAKE_LOOKING = 20
# Strata of the reals for the reweighted comparisons: at most this many, each of at least this many reals. A score
# drift with the matching value is left only within a stratum, 1/100 of the reals (measured: a drift of 0.1 in
# logit per magnitude flags no bin at 2 million examples per class; at 12 million, 60,000 reals a stratum).
MAX_STRATA = 100
REALS_PER_STRATUM = 1000
SAME_BIN = "reals in the same bin"
COLUMNS = ["parameter", "bin", "low", "high", "fakes", "reals", "compared_with", "auc", "auc_low", "auc_high",
           "auc_p_value", "auc_standard_error", "bricks", "interval", "p_adjusted", "flagged", "auc_low_simultaneous",
           "auc_high_simultaneous", "outcome"]  # fmt: skip
# Added by realfake.stats.breakdowns.with_corrected_outcomes.
CORRECTED = ("p_adjusted", "flagged", "auc_low_simultaneous", "auc_high_simultaneous", "outcome")
# The columns of the most fake-looking fakes' table (those present).
SHOWN = ["id", "brickname", "rsdir", "p_fake", "mag_dered_g", "mag_dered_r", "mag_dered_z", "size", "sersic_n",
         "e1", "e2", "detected"]  # fmt: skip


@dataclass(frozen=True, eq=False)
class InjectedParameter:
    """One injected parameter: ``values`` per test example (numbers or text, indexed as the predictions;
    meaningful for the fakes), and whether the reals carry the same quantity in the same column
    (``reals_carry``: magnitudes, colours, size), so that the reals of a bin are those in it."""

    name: str
    values: pd.Series
    reals_carry: bool


def fake_parameters(predictions: pd.DataFrame) -> list[InjectedParameter]:
    """The injected parameters of every test example, those whose columns exist."""
    parameters: list[InjectedParameter] = []
    bands = [column.removeprefix("mag_dered_") for column in predictions.columns if column.startswith("mag_dered_")]
    for band in bands:
        values = predictions[f"mag_dered_{band}"].astype(np.float64)
        parameters.append(InjectedParameter(f"true {band} magnitude", values, True))
    for blue, red in (("g", "r"), ("r", "z")):
        if blue in bands and red in bands:
            values = predictions[f"mag_dered_{blue}"] - predictions[f"mag_dered_{red}"]
            parameters.append(InjectedParameter(f"true {blue} - {red}", values, True))
    if "size" in predictions.columns:
        values = predictions["size"].astype(np.float64)
        parameters.append(InjectedParameter("half-light radius (arcsec)", values, True))
    if "sersic_n" in predictions.columns:
        parameters.append(InjectedParameter("Sersic index", predictions["sersic_n"].astype(np.float64), False))
    if "e1" in predictions.columns and "e2" in predictions.columns:
        values = pd.Series(
            np.hypot(predictions["e1"].to_numpy(np.float64), predictions["e2"].to_numpy(np.float64)),
            index=predictions.index,
        )
        parameters.append(InjectedParameter("ellipticity |e|", values, False))
    if "rsdir" in predictions.columns:
        parameters.append(InjectedParameter("rs dir", predictions["rsdir"].astype(str), False))
    if "detected" in predictions.columns:
        detected = predictions["detected"].astype(bool).to_numpy()
        values = pd.Series(np.where(detected, "detected", "undetected"), index=predictions.index)
        parameters.append(InjectedParameter("detected", values, False))
    return parameters


def matching_magnitude(predictions: pd.DataFrame) -> tuple[np.ndarray, str] | None:
    """The magnitude the fake-only parameters' bins are matched in, float64 per test example, and its words;
    None without a ``mag_dered_<b>`` column.

    The g band's (else the first band's) ``mag_dered``, taken from the tractor
    fit wherever there is one (:func:`realfake.formats.cutouts.measured_view`:
    ``measured_mag_dered_g`` for a real and for a fake legacypipe measured, the
    true value for a fake without a fit), the quantity the shard set is
    matched on by default. Non-finite values (a negative flux) form a stratum
    of their own.
    """
    view = measured_view(predictions)
    bands = ordered_bands(view)
    if not bands:
        return None
    band = "g" if "g" in bands else bands[0]
    words = f"measured {band} magnitude" if "measured" in view.columns else f"mag_dered_{band}"
    return view[f"mag_dered_{band}"].to_numpy(np.float64), words


def _bins(
    fake_values: pd.Series, real_values: pd.Series, count: int
) -> list[tuple[str, float, float, np.ndarray, np.ndarray]]:
    """(label, low, high, fake mask, real mask): bins of the fakes' values, one per value for text or for at
    most ``count`` distinct numbers (a Sersic index of 1 or 4), else quantile bins; the reals' mask puts each
    real in the bin of its value (the same edges), none outside the fakes' range. Non-finite numbers are left
    out."""
    if not pd.api.types.is_numeric_dtype(fake_values):
        fake_text, real_text = fake_values.astype(str), real_values.astype(str)
        return [
            (category, math.nan, math.nan, (fake_text == category).to_numpy(), (real_text == category).to_numpy())
            for category in sorted(fake_text.unique())
        ]
    numbers = fake_values.to_numpy(np.float64)
    reals = real_values.to_numpy(np.float64)
    finite = np.isfinite(numbers)
    distinct = np.unique(numbers[finite])
    if distinct.size <= count:
        return [
            (f"{value:.3g}", float(value), float(value), finite & (numbers == value), reals == value)
            for value in distinct
        ]
    edges = np.unique(np.quantile(numbers[finite], np.linspace(0, 1, count + 1)))
    # Bin i holds edges[i] <= x < edges[i+1]; the last bin also holds its upper edge.
    position = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, edges.size - 2)
    real_position = np.clip(np.searchsorted(edges, reals, side="right") - 1, 0, edges.size - 2)
    real_inside = (reals >= edges[0]) & (reals <= edges[-1])  # False for NaN
    return [
        (f"{edges[index]:.3g} to {edges[index + 1]:.3g}", float(edges[index]), float(edges[index + 1]),
         finite & (position == index), real_inside & (real_position == index))
        for index in range(edges.size - 1)
    ]  # fmt: skip


class Strata:
    """Reals cut into strata of about equal counts by a matching value, each stratum's scores sorted once.

    Finite stratum i holds the values from ``lower[i]`` up to the next lower
    edge (the first and last finite strata open-ended); one more stratum, the
    last, holds the non-finite values. Any example goes to the stratum of its
    value (:meth:`of`).
    """

    def __init__(self, scores: np.ndarray, values: np.ndarray, count: int, clusters: np.ndarray | None = None):
        finite = np.sort(values[np.isfinite(values)])
        # Each lower edge is a real's value, so every finite stratum holds at least one real.
        self.lower = np.unique(finite[(np.arange(count) * finite.size) // count])
        stratum = self.of(values)
        order = np.argsort(stratum, kind="stable")
        starts = np.searchsorted(stratum[order], np.arange(self.lower.size + 2))
        self.reals = [
            AgainstReals(scores[order[start:end]], None if clusters is None else clusters[order[start:end]])
            for start, end in zip(starts[:-1], starts[1:])
        ]

    @classmethod
    def of_enough(cls, scores: np.ndarray, values: np.ndarray, clusters: np.ndarray | None = None) -> Strata | None:
        """The strata of these reals (with their clusters, integer codes, when given), or None when fewer than 2
        strata of REALS_PER_STRATUM finite values fit or all finite values are one: nothing to reweight."""
        count = min(MAX_STRATA, int(np.count_nonzero(np.isfinite(values))) // REALS_PER_STRATUM)
        if count < 2:
            return None
        strata = cls(scores, values, count, clusters)
        return strata if strata.lower.size >= 2 else None

    def of(self, values: np.ndarray) -> np.ndarray:
        """The stratum of each value: int64, ``lower.size`` for a non-finite one."""
        position = np.clip(np.searchsorted(self.lower, values, side="right") - 1, 0, None)
        return np.where(np.isfinite(values), position, self.lower.size)

    def test(
        self, fakes: np.ndarray, values: np.ndarray, confidence: float, fake_clusters: np.ndarray | None = None
    ) -> AucTest:
        """The fakes' AUC against these reals reweighted to the fakes' strata (see the module docstring), with
        its interval at ``confidence`` and the van Elteren test: :meth:`part` as a test of its own
        (:func:`realfake.stats.auc.combine_strata` of one part). With the fakes' clusters (and the reals'), the
        interval and test are cluster-robust from :data:`realfake.stats.clusters.MIN_CLUSTERS` clusters on."""
        part = self.part(fakes, values, fake_clusters)
        return combine_strata([] if part is None else [part], confidence)

    def part(self, fakes: np.ndarray, values: np.ndarray, fake_clusters: np.ndarray | None = None) -> StratumAuc | None:
        """The reweighted AUC of :meth:`test` as one fold's part of a test over folds: its DeLong variance, its
        null variance sum_s w_s^2 Var0(AUC_s), and with clusters its influences, each fake's (V10 - A) / M and
        each real's w_s (V01 - A_s) / n_s in its stratum s (w_s the bin's share of fakes there). Fakes of a
        stratum without reals (non-finite values no real has) are left out; ``real`` counts the reals of the
        strata used, and ``weight`` is fakes x those reals. None when no fake has reals to meet."""
        stratum = self.of(values)
        fake_components, weights, null_variances, real_variances, reals_used = [], [], [], [], 0
        fake_codes, real_parts = [], []
        for index in np.unique(stratum):
            reals = self.reals[index]
            if reals.sorted.size == 0:
                continue
            components = reals.components(fakes[stratum == index])
            n_fake, n_real = components.fake.size, components.real.size
            if fake_clusters is not None and reals.sorted_clusters is not None:
                fake_codes.append(fake_clusters[stratum == index])
                real_parts.append((components.real - components.auc, n_real, reals.sorted_clusters))
            total = n_fake + n_real
            fake_components.append(components.fake)
            weights.append(n_fake)
            null_variances.append(((total + 1) - components.tie_sum / (total * (total - 1))) / (12.0 * n_fake * n_real))
            real_variances.append(np.var(components.real, ddof=1) / n_real if n_real > 1 else 0.0)
            reals_used += n_real
        if not fake_components:
            return None
        per_fake = np.concatenate(fake_components)
        share = np.asarray(weights, dtype=np.float64) / per_fake.size
        value = float(per_fake.mean())
        # DeLong's variance: a fake's component is the share of its stratum's reals it outscores, so the AUC is
        # their mean over the bin's fakes (their strata drawn with them); each stratum's reals are independent.
        fake_variance = float(np.var(per_fake, ddof=1)) / per_fake.size if per_fake.size > 1 else 0.0
        variance = fake_variance + float(np.dot(share**2, real_variances))
        null_variance = float(np.dot(share**2, null_variances))
        pairs = float(per_fake.size) * reals_used
        if not fake_codes or len(real_parts) != len(weights):
            return StratumAuc(value, pairs, variance, null_variance, reals_used, per_fake.size)
        real_influence = np.concatenate(
            [weight * deviation / count for weight, (deviation, count, _) in zip(share, real_parts)]
        )
        return StratumAuc(
            value, pairs, variance, null_variance, reals_used, per_fake.size, (per_fake - value) / per_fake.size,
            np.concatenate(fake_codes), real_influence, np.concatenate([codes for _, _, codes in real_parts]),
        )  # fmt: skip


def _bin_reals(reals: np.ndarray, values: np.ndarray, clusters: np.ndarray | None) -> Strata | AgainstReals:
    """A bin's reals (scores, values, clusters' integer codes or None): strata of their values, to reweight them
    to the bin's fakes, when there are enough; else all of them sorted once."""
    within = Strata.of_enough(reals, values, clusters)
    return AgainstReals(reals, clusters) if within is None else within


def _fake_only_reals(
    reals: np.ndarray, matching: np.ndarray | None, clusters: np.ndarray | None
) -> Strata | AgainstReals:
    """The fake-only parameters' reals: strata of the matching magnitude when there is one and enough reals;
    else all of them sorted once."""
    strata = None if matching is None else Strata.of_enough(reals, matching, clusters)
    return AgainstReals(reals, clusters) if strata is None else strata


def _test(
    reals: Strata | AgainstReals,
    fakes: np.ndarray,
    values: np.ndarray | None,
    fake_clusters: np.ndarray | None,
    settings: StatisticsSettings,
    rng: np.random.Generator,
) -> AucTest:
    """The fakes (scores, the values the reals' strata are matched in, clusters) against ``reals``."""
    if isinstance(reals, Strata):
        return reals.test(fakes, values, settings.confidence, fake_clusters)
    return reals.test(fakes, settings.confidence, settings.bootstrap, rng, fake_clusters=fake_clusters)


def _part(
    reals: Strata | AgainstReals, fakes: np.ndarray, values: np.ndarray | None, fake_clusters: np.ndarray | None
) -> StratumAuc | None:
    """:func:`_test` as one fold's part of a test over folds (:func:`realfake.stats.auc.combine_strata`)."""
    if isinstance(reals, Strata):
        return reals.part(fakes, values, fake_clusters)
    return reals.part(fakes, fake_clusters)


def _words(reweighted_words: str, plain_words: str, reweighted: int, groups: int) -> str:
    """What a bin was compared with: ``reweighted_words`` when every group (fold) of reals was reweighted,
    ``plain_words`` when none was, and how many of the folds were otherwise; ", within each of the K folds"
    after it with folds."""
    if reweighted == groups:
        words = reweighted_words
    elif reweighted == 0:
        words = plain_words
    else:
        words = f"{reweighted_words} in {reweighted} of {groups} folds, {plain_words} in the others"
    return words if groups == 1 else f"{words}, within each of the {groups} folds"


def fake_parameter_breakdowns(predictions: pd.DataFrame, settings: StatisticsSettings) -> pd.DataFrame:
    """One row per parameter and bin of the test fakes (:data:`COLUMNS`): those fakes' AUC against comparable
    reals (the module docstring says which), within folds in a cross-fitted run (a ``fold`` column of at least
    2 folds); ``fakes`` and ``reals`` count the examples compared."""
    labels = predictions["label"].to_numpy()
    scores = predictions["p_fake"].to_numpy(np.float64)
    fakes = labels == 1
    fake_scores, real_scores = scores[fakes], scores[~fakes]
    codes = brick_codes(predictions)  # each example's brick: the cluster-robust statistics' unit
    fake_codes, real_codes = (None, None) if codes is None else (codes[fakes], codes[~fakes])
    # The examples that meet: all, or in a cross-fitted run each fold's (a fake meets the reals of its fold only).
    folds = fold_labels(predictions)
    groups = [np.ones(labels.size, dtype=bool)] if folds is None else [folds == fold for fold in np.unique(folds)]
    fake_groups, real_groups = [group[fakes] for group in groups], [group[~fakes] for group in groups]
    # The fake-only parameters' reals, per group: strata of the matching magnitude, or all reals sorted once.
    matching, words = matching_magnitude(predictions) or (None, None)
    fake_matching, real_matching = (None, None) if matching is None else (matching[fakes], matching[~fakes])
    fake_only_reals = [
        _fake_only_reals(
            real_scores[group], None if real_matching is None else real_matching[group],
            None if real_codes is None else real_codes[group],
        )
        for group in real_groups
    ]  # fmt: skip
    plain = (
        f"all reals (not reweighted: fewer than {2 * REALS_PER_STRATUM} reals, or one value, in {words})"
        if matching is not None
        else "all reals (no magnitude to reweight in)"
    )
    reweighted = sum(isinstance(reals, Strata) for reals in fake_only_reals)
    fake_only = _words(f"reals reweighted to the bin's fakes in {words}", plain, reweighted, len(groups))
    rows = []
    for parameter in fake_parameters(predictions):
        fake_values, real_values = parameter.values[fakes], parameter.values[~fakes]
        if parameter.reals_carry:
            fake_numbers, real_numbers = fake_values.to_numpy(np.float64), real_values.to_numpy(np.float64)
        for label, low, high, fake_mask, real_mask in _bins(fake_values, real_values, settings.bins):
            rng = np.random.default_rng([settings.seed, 5, len(rows)])
            compared = []  # per group: (reals, fakes' scores, their matching values, their clusters)
            for fake_group, real_group, group_reals in zip(fake_groups, real_groups, fake_only_reals):
                chosen = fake_mask & fake_group
                if parameter.reals_carry:
                    chosen_reals = real_mask & real_group
                    group_reals = _bin_reals(
                        real_scores[chosen_reals], real_numbers[chosen_reals],
                        None if real_codes is None else real_codes[chosen_reals],
                    )  # fmt: skip
                    values = fake_numbers[chosen]
                else:
                    values = None if fake_matching is None else fake_matching[chosen]
                clusters = None if fake_codes is None else fake_codes[chosen]
                compared.append((group_reals, fake_scores[chosen], values, clusters))
            if folds is None:
                result = _test(*compared[0], settings, rng)
            else:
                parts = [_part(*comparison) for comparison in compared]
                result = combine_strata([part for part in parts if part is not None], settings.confidence)
            if parameter.reals_carry:
                within = sum(isinstance(group_reals, Strata) for group_reals, *_ in compared)
                how = _words(f"{SAME_BIN}, reweighted to its fakes", SAME_BIN, within, len(groups))
            else:
                how = fake_only
            rows.append({"parameter": parameter.name, "bin": label, "low": low, "high": high, "fakes": result.fake,
                         "reals": result.real, "compared_with": how, "auc": result.auc, "auc_low": result.low,
                         "auc_high": result.high, "auc_p_value": result.p_value,
                         "auc_standard_error": result.standard_error, "bricks": result.clusters,
                         "interval": result.interval})  # fmt: skip
    measured = [column for column in COLUMNS if column not in CORRECTED]
    return with_corrected_outcomes(pd.DataFrame(rows, columns=measured), settings)[COLUMNS]


def most_fake_looking(predictions: pd.DataFrame, count: int = MOST_FAKE_LOOKING) -> pd.DataFrame:
    """The ``count`` test fakes with the highest P(fake), with their injected parameters.

    In a cross-fitted run (a ``fold`` column of at least 2 folds) each fold's
    scores are its own model's, not on one scale with the others', so the
    fakes are ranked within their fold instead: by ``reals_below``, the share
    of their own fold's reals that score lower (ties count half: the fake's
    AUC component against its fold's reals, 1 for a fake above every real
    there), ties broken by the fake's P(fake) quantile among its fold's fakes;
    the table then shows ``fold`` and ``reals_below`` too.
    """
    labels = predictions["label"].to_numpy()
    fakes = predictions[labels == 1]
    folds = fold_labels(predictions)
    if folds is None:
        chosen = fakes.sort_values("p_fake", ascending=False, kind="stable").head(count)
        return chosen[[column for column in SHOWN if column in chosen.columns]].reset_index(drop=True)
    scores = predictions["p_fake"].to_numpy(np.float64)
    reals_below, fakes_below = np.full(labels.size, np.nan), np.full(labels.size, np.nan)
    for fold in np.unique(folds):
        fold_fakes = (folds == fold) & (labels == 1)
        reals = np.sort(scores[(folds == fold) & (labels == 0)])
        fold_scores = scores[fold_fakes]
        reals_below[fold_fakes] = _share_below(reals, fold_scores)
        fakes_below[fold_fakes] = _share_below(np.sort(fold_scores), fold_scores)
    ranked = fakes.assign(reals_below=reals_below[labels == 1], _fakes_below=fakes_below[labels == 1])
    chosen = ranked.sort_values(["reals_below", "_fakes_below"], ascending=False, kind="stable").head(count)
    shown = ["id", "brickname", "fold", "rsdir", "p_fake", "reals_below", *SHOWN[4:]]
    return chosen[[column for column in shown if column in chosen.columns]].reset_index(drop=True)


def _share_below(ordered: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The share of ``ordered`` (sorted) below each of ``values``, ties counting half; NaN when it is empty."""
    if ordered.size == 0:
        return np.full(values.size, np.nan)
    below = np.searchsorted(ordered, values, "left") + np.searchsorted(ordered, values, "right")
    return below / (2.0 * ordered.size)

"""The verdict: how different the fakes look, with what certainty, against the user's tolerance.

:func:`verdict` turns the CNN's fake probabilities on the held-out test split
into a measurement (a classifier two-sample test, Lopez-Paz & Oquab 2017):

- the effect size: the AUC with its interval, which way the scores differ
  (``direction``), and the lower bound on the total variation distance between
  the fake and real examples tested that the held-out accuracy and AUC imply
  (:func:`realfake.stats.tolerance.tv_lower_bound`);
- the test against "no difference": the two-sided Mann-Whitney test of the
  scores (``auc_p_value``; ``significant`` is this test at the significance
  level; ``auc_p_value_greater`` the one-sided test that fakes score higher),
  which has more power at a fixed number of examples than the binomial test of
  the accuracy, kept as the original method's statistic (``accuracy_p_value``);
- the outcome against the tolerance, on both sides of 0.5
  (:func:`realfake.stats.tolerance.tolerance_outcome`): ``indistinguishable``,
  ``within_tolerance``, ``distinguishable`` or ``inconclusive``, with how many
  test examples would settle an inconclusive one with the verdict's power;
- whether the CNN ranked the examples at all: ``tied_pair_share``, the share
  of real-fake pairs it gave the same score. A CNN that gives (nearly) every
  example one score has no power, whatever the interval says: when more than
  half the pairs tie, a verdict that would read as "no difference" is
  ``inconclusive`` and says why. ``log_loss`` against ``constant_log_loss``
  (a constant guess of the test split's class shares) says whether its scores
  beat a guess at all;
- what the test could have detected: ``minimum_detectable_auc``, the AUC this
  test at this N detects with the configured power (0.8) at the configured level,
  and ``minimum_distinguishable_auc``, the AUC it calls distinguishable with that
  power.

In a cross-fitted run (``folds``: K models, each scoring the bricks it never
saw) the AUC compares fakes and reals of the same fold only, the models'
scores not being on one scale (``docs/verdict.md``, "Cross-fitting").

At survey scale (~12 million test examples) any difference at all is
significant; the tolerance is what keeps the verdict useful there. At demo
scale a non-significant result is only as strong as the minimum detectable AUC.

:func:`realfake.stats.breakdowns.breakdowns` gives the same measurement in bins
of catalog quantities, with the p-values corrected over all bins.
"""

from __future__ import annotations

import math

import numpy as np

from realfake.stats import accuracy, corrections
from realfake.stats.auc import auc_test, tied_pair_share
from realfake.stats.clusters import MIN_CLUSTERS
from realfake.stats.settings import StatisticsSettings
from realfake.stats.tolerance import (
    direction,
    examples_to_settle,
    minimum_detectable_auc,
    tolerance_outcome,
    tv_lower_bound,
)

# Above this share of tied real-fake pairs a scorer is taken not to rank the examples: a verdict that would read as
# "no difference" is inconclusive instead.
TIED_PAIRS_LIMIT = 0.5
# The words of the four outcomes, for sentences and tables.
OUTCOME_WORDS = {
    "indistinguishable": "indistinguishable",
    "within_tolerance": "within tolerance",
    "distinguishable": "distinguishable",
    "inconclusive": "inconclusive",
}


def verdict(
    labels: np.ndarray,
    scores: np.ndarray,
    settings: StatisticsSettings,
    bricks: np.ndarray | None = None,
    folds: np.ndarray | None = None,
) -> dict:
    """The measurement of fake probabilities ``scores`` on test ``labels`` (fake = 1); see the module docstring.

    Keys: accuracy, accuracy_low, accuracy_high (Clopper-Pearson), chance (the
    majority share), correct, examples, real, fake, accuracy_p_value (exact
    one-sided binomial), the :class:`realfake.stats.auc.AucTest` keys (auc,
    auc_low, auc_high, auc_interval_method, auc_standard_error, auc_p_value,
    auc_p_value_greater, auc_test_method), direction, significant (auc_p_value
    < significance), tolerance, outcome, examples_to_settle (inconclusive only,
    else None), tied_pair_share, ranked (fewer than :data:`TIED_PAIRS_LIMIT` of
    the pairs tie), tv_lower_bound, minimum_detectable_auc,
    minimum_distinguishable_auc, power, log_loss, constant_log_loss,
    significance, confidence, statistic, sentence.

    ``bricks`` (each test example's brick): the test split's examples are
    whole bricks, and examples of a brick share its sky, depth, PSF and
    processing run. With at least :data:`realfake.stats.clusters.MIN_CLUSTERS` test
    bricks the interval and p-values are cluster-robust, the brick the unit
    (:func:`realfake.stats.auc.auc_test`), the independent-example ones beside them
    (``auc_*_independent``), and ``design_effect`` (the clustered over the
    independent variance, at least 1) scales the minimum detectable AUC; with
    fewer, the examples are taken as independent and the sentence says so.
    ``bricks`` in the record is the number of test bricks (0 when not given).

    ``folds`` (each test example's fold, in a cross-fitted run: the fold's
    model, which never saw its bricks, scored it): the K models' scores are
    not on one scale, so with at least 2 folds the AUC compares only fakes and
    reals of the same fold (the folds' AUCs weighted by their real-fake pairs;
    :func:`realfake.stats.auc.auc_test` with ``strata``), tested by the
    stratified Mann-Whitney test, its interval normal, cluster-robust by
    brick within folds as above; the tied-pair share counts the pairs within
    folds too, and ``folds`` in the record is K. The minimum detectable AUC
    keeps the pooled counts: with folds of like size the stratified AUC's
    null variance is the pooled one's.
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    record = accuracy.accuracy_test(labels, scores, settings.confidence).record()
    record["accuracy_p_value"] = record.pop("p_value")
    rng = np.random.default_rng([settings.seed, 0])
    auc = auc_test(labels, scores, settings.confidence, settings.bootstrap, rng, clusters=bricks, strata=folds)
    record.update(auc.record())
    record.update(
        real=auc.real,
        fake=auc.fake,
        direction=direction(auc.auc),
        log_loss=accuracy.cross_entropy(labels, scores),
        constant_log_loss=constant_log_loss(labels),
        significance=settings.significance,
        confidence=settings.confidence,
        tolerance=settings.tolerance,
        power=settings.power,
        statistic=(
            f"AUC within folds (pairs of the same fold, {auc.strata} folds); two-sided stratified Mann-Whitney "
            "test of the scores"
            if auc.strata >= 2
            else "AUC; two-sided Mann-Whitney test of the scores"
        ),
    )
    _add_outcome(record, auc, labels, scores, settings, folds if auc.strata >= 2 else None)
    record["tv_lower_bound"] = tv_lower_bound(labels, scores, settings.confidence, (auc.low, auc.high))
    record["design_effect"] = design_effect(auc)
    # The test is two-sided: a difference either way is detected at half the level on each side. Clustered
    # examples count as fewer independent ones (the design effect).
    real, fake = auc.real / record["design_effect"], auc.fake / record["design_effect"]
    record["minimum_detectable_auc"] = minimum_detectable_auc(real, fake, settings.significance / 2, settings.power)
    record["minimum_distinguishable_auc"] = minimum_detectable_auc(
        real, fake, (1 - settings.confidence) / 2, settings.power, above=0.5 + settings.tolerance
    )
    record["sentence"] = verdict_sentence(record)
    return record


def _add_outcome(
    record: dict, auc, labels: np.ndarray, scores: np.ndarray, settings: StatisticsSettings, folds=None
) -> None:
    """Add :func:`verdict`'s significant, tied_pair_share, ranked, outcome and examples_to_settle to ``record``,
    from ``auc`` (an :class:`realfake.stats.auc.AucTest` of ``labels`` and ``scores``): the outcome against the
    tolerance, inconclusive unless distinguishable when the scorer does not rank the examples (the tied pairs
    counted within ``folds`` when given)."""
    record["significant"] = bool(auc.p_value < settings.significance)
    record["tied_pair_share"] = tied_pair_share(labels, scores, folds)
    record["ranked"] = bool(record["tied_pair_share"] <= TIED_PAIRS_LIMIT)
    outcome = tolerance_outcome(auc.low, auc.high, auc.p_value, settings.tolerance, settings.significance)
    if not record["ranked"] and outcome != "distinguishable":
        outcome = "inconclusive"
    record["outcome"] = outcome
    record["examples_to_settle"] = (
        examples_to_settle(
            auc.auc, auc.low, auc.high, int(labels.size), settings.tolerance, settings.confidence, settings.power
        )
        if outcome == "inconclusive" and record["ranked"]
        else None
    )


def design_effect(result) -> float:
    """The clustered over the independent-example variance of an :class:`realfake.stats.auc.AucTest` whose interval
    is the clusters' (at least 1: clustering never adds examples); 1 otherwise."""
    if result.interval != "cluster" or not result.independent:
        return 1.0
    independent = result.independent["standard_error"]
    if not (independent and math.isfinite(independent)):
        return 1.0
    return max(1.0, (result.standard_error / independent) ** 2)


def constant_log_loss(labels: np.ndarray) -> float:
    """The log loss of the best constant guess on ``labels``: the entropy of the class shares (ln 2 when
    balanced). Scores that do no better carry nothing a constant would not."""
    share = float(np.mean(np.asarray(labels) == 1)) if np.size(labels) else math.nan
    if not 0 < share < 1:
        return 0.0 if math.isfinite(share) else math.nan
    return float(-(share * math.log(share) + (1 - share) * math.log(1 - share)))


def _interval(record: dict, key: str = "auc", digits: int = 3) -> str:
    return (
        f"{record[key]:.{digits}f} ({record['confidence'] * 100:g}% CI "
        f"{record[f'{key}_low']:.{digits}f}-{record[f'{key}_high']:.{digits}f})"
    )


def verdict_sentence(record: dict, subject: str = "The CNN") -> str:
    """One plain sentence per outcome: how different, which way, with what certainty, against the tolerance,
    and, when no difference beyond the tolerance is found, what the test could have detected."""
    if not math.isfinite(record.get("auc", math.nan)):
        return f"{subject} cannot be judged: the test split holds one class only ({record['examples']} examples)."
    upper, lower = 0.5 + record["tolerance"], 0.5 - record["tolerance"]
    auc = f"AUC {_interval(record)}"
    p_text = f"Mann-Whitney p = {corrections.format_p(record['auc_p_value'])} against 0.5, two-sided"
    accuracy = f"test accuracy {_interval(record, 'accuracy')} against {record['chance']:.2f} by chance"
    detectable = (
        f"at this size the test detects an AUC of {record['minimum_detectable_auc']:.3f} with probability "
        f"{record['power']:g}"
    )
    tail = f"{record['examples']} test examples."
    lowered = subject[0].lower() + subject[1:] if subject.startswith("The ") else subject
    outcome = record["outcome"]
    below = record.get("direction") == "lower"
    if record.get("ranked", True) is False and outcome != "distinguishable":
        return _unranked_sentence(record, subject, auc, p_text, tail)
    if outcome == "distinguishable" and below:
        sentence = (
            f"{subject} tells fakes from real galaxies beyond the tolerance, but the wrong way round: {auc}, below "
            f"{lower:.3f} ({p_text}); the fakes of the test split score as more real than its reals. On a held-out "
            f"split this means something differs, between the classes or between the training and test splits "
            f"(other bricks, depth or processing), and the rule the CNN learned reverses on the test bricks; "
            f"{accuracy}; the examples tested differ by at least {record['tv_lower_bound']:.2f} in total "
            f"variation; {tail}"
        )
    elif outcome == "distinguishable":
        sentence = (
            f"{subject} tells fakes from real galaxies beyond the tolerance: {auc}, above {upper:.3f} ({p_text}); "
            f"{accuracy}, so the fake and real stamps of the matched test population differ by at least "
            f"{record['tv_lower_bound']:.2f} in total variation; {tail}"
        )
    elif outcome == "within_tolerance":
        side = "below" if below else "above"
        sentence = (
            f"{subject} tells fakes from real galaxies, but by less than the tolerance: {auc}, significantly "
            f"{side} 0.5 ({p_text}) yet within {lower:.3f}-{upper:.3f}; {accuracy}; {tail}"
        )
    elif outcome == "indistinguishable":
        sentence = (
            f"{subject} cannot tell fakes from real galaxies beyond the tolerance: {auc}, within "
            f"{lower:.3f}-{upper:.3f} and not significantly different from 0.5 ({p_text}); {detectable}; {tail}"
        )
    else:
        sentence = _inconclusive_sentence(record, lowered, auc, p_text, detectable, tail)
    return sentence + _bricks_clause(record) + _folds_clause(record) + _log_loss_clause(record)


def _unranked_sentence(record: dict, subject: str, auc: str, p_text: str, tail: str) -> str:
    """The sentence of a scorer that did not rank the examples (more than :data:`TIED_PAIRS_LIMIT` of the
    real-fake pairs tie): the test has no power."""
    if record.get("tied_pair_share", 0.0) >= 1.0:
        what = f"gave all {record['examples']} test examples the same score"
    else:
        what = f"gave {record['tied_pair_share']:.0%} of the real-fake pairs the same score"
    return (
        f"{subject} {what}: it did not rank the examples, so the test has no power and says nothing about "
        f"the fakes ({auc}; {p_text}). Check its training: a validation loss that never fell below a constant "
        f"guess's (ln 2 = 0.693 for balanced classes) means it learned nothing; {tail}"
    )


def _inconclusive_sentence(record: dict, lowered: str, auc: str, p_text: str, detectable: str, tail: str) -> str:
    """The sentence of an inconclusive outcome: where the interval lies against the tolerance band, and about how
    many more test examples would settle it."""
    upper, lower = 0.5 + record["tolerance"], 0.5 - record["tolerance"]
    below = record.get("direction") == "lower"
    settle = record.get("examples_to_settle")
    outside = record["auc_low"] > upper or record["auc_high"] < lower
    if outside:
        position = "lies outside the tolerance band, but the test is not significant: the test split is too small"
    else:
        position = f"straddles {lower if below else upper:.3f}"
    if outside or settle is None or not math.isfinite(settle):
        more = "" if outside else "; no number of examples settles an AUC this close to the tolerance"
    else:
        more = (
            f"; about {_round_count(max(settle - record['examples'], 0))} more test examples would settle it "
            f"with probability {record['power']:g}"
        )
    return (
        f"Not settled whether {lowered} tells fakes from real galaxies beyond the tolerance: {auc} {position} "
        f"({p_text}); {detectable}{more}; {tail}"
    )


def _log_loss_clause(record: dict) -> str:
    """Unless the outcome is distinguishable, what a test log loss no better than a constant guess's means."""
    if (
        record["outcome"] != "distinguishable"
        and math.isfinite(record.get("constant_log_loss", math.nan))
        and record.get("log_loss", math.nan) >= record["constant_log_loss"]
    ):
        return (
            f" Its test log loss, {record['log_loss']:.3f}, is no better than a constant guess's "
            f"({record['constant_log_loss']:.3f}): the CNN learned nothing that holds on the test bricks, which is "
            f"what fakes that look real give, and also what a CNN that cannot learn gives (the positive controls "
            f"show which)."
        )
    return ""


def _bricks_clause(record: dict) -> str:
    """What the interval rests on: the test bricks as independent units, or the examples when the bricks are too
    few (or unknown)."""
    bricks = record.get("bricks") or 0
    if record.get("auc_interval_method") == "cluster":
        return (
            f" The interval and p-value count the {bricks} test bricks as the independent units (cluster-robust; "
            f"design effect {record.get('design_effect', 1.0):.2f})."
        )
    if bricks >= 2:
        return (
            f" The interval treats the {record['examples']} test examples as independent: {bricks} test bricks "
            f"are too few for a brick-level interval (from {MIN_CLUSTERS}), so it leaves out how bricks differ in "
            f"depth, seeing, sky and processing."
        )
    return ""


def _folds_clause(record: dict) -> str:
    """In a cross-fitted run: that the AUC compares each fake with the reals of its own fold only."""
    folds = record.get("folds") or 0
    if folds < 2:
        return ""
    return (
        f" Each of the {folds} folds was scored by its own model, which never saw its bricks; the models' scores "
        f"are not on one scale, so the AUC compares fakes and reals within folds only."
    )


def _round_count(count: float) -> str:
    """A count to two significant figures, with thousands separators: 12,000."""
    if count < 100:
        return f"{count:.0f}"
    rounded = float(f"{count:.2g}")
    return f"{rounded:,.0f}"

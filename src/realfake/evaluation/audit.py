"""The shortcut audit: where the difference lies, from restricted views and the placement columns.

A difference the CNN finds may come from the galaxies or from the plumbing
around them (``docs/data_layout.md``). The audit measures, on the same test
split and with the verdict's statistic (:func:`realfake.stats.auc.auc_test`):

- one CNN per restricted view (:mod:`realfake.model.views`): what it finds when it
  sees only the images, only the inverse variances, only the centre or only the
  ring around it;
- the placement columns as scores: ``detected`` (fakes: found by legacypipe's
  re-fit; reals: always) and ``distance_to_no_coverage`` (pixels from the stamp
  centre to the nearest uncovered pixel or the image edge). Their AUC is 0.5
  when both classes are placed alike; a placement difference in either
  direction counts (the record holds the AUC as measured; the outcome is the
  verdict's, two-sided).

Views and columns are compared with the paired DeLong test on the same test
examples (:func:`realfake.stats.auc.paired_auc_difference`, one-sided at the
verdict's significance level): the full CNN against each placement column,
and the centre view against the ring view, both ways. A record's ``paired``
holds its comparisons: other view -> ``difference`` (this AUC - the other's,
a column's taken as max(AUC, 1 - AUC)), ``p_value`` (one-sided, this one
higher) and ``significant``. In a cross-fitted run (a ``fold`` column in the
predictions) every AUC, and every paired comparison, pairs fakes and reals of
the same fold only, as the verdict's does.

The cause (:func:`audit_cause`; a view or column "finds" a difference when its
outcome is ``distinguishable``: its interval lies beyond 0.5 +- tolerance and
its test is significant):

1. ``none``: the full CNN does not find a difference (or it does and no
   restricted view was audited; the sentence says so).
2. ``placement``: a placement column finds one and the full CNN's AUC is not
   significantly above the column's, so the placement could explain all the
   CNN finds. A column that finds one the CNN significantly exceeds is named
   in the sentence, not as the cause.
3. Otherwise every part that carries a difference, joined by ``+``:
   ``inverse_variance`` when the ivar-only CNN finds one; then the images'
   part, when the image-only CNN finds one (or, without an image-only CNN,
   when the ivar-only one finds none: the centre and ring views see every
   channel), placed by the centre and ring views: ``galaxy`` when only the
   centre finds one or both do and the centre's AUC is significantly higher,
   ``sky`` when only the ring does or the ring's is significantly higher,
   ``undecided`` when both find one and neither is significantly higher, or
   when the image-only CNN finds one that neither finds (``galaxy`` when no
   centre view was run).
4. ``undecided``: restricted views were audited and none of them finds the
   difference.

So the cause is one of :data:`CAUSES`, or ``inverse_variance+`` one of
``galaxy``, ``sky``, ``undecided``. ``scripts/audit_rules.py`` measures how
often each rule names what was simulated (docs/audit.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from realfake.stats.auc import auc_test, paired_auc_difference
from realfake.stats.breakdowns import fold_labels
from realfake.stats.clusters import brick_codes
from realfake.stats.settings import StatisticsSettings
from realfake.stats.tolerance import tolerance_outcome

AUDIT_COLUMNS = ("detected", "distance_to_no_coverage")
RESTRICTED_VIEWS = ("image_only", "ivar_only", "centre_only", "ring_only")
CAUSES = ("galaxy", "sky", "inverse_variance", "placement", "undecided", "none")
CAUSE_SENTENCES = {
    "none": "The full CNN finds no difference beyond the tolerance, so there is none to attribute.",
    "placement": "The fakes are placed differently from the real galaxies ({detail}), and that could explain all "
    "the full CNN finds: {comparison}. The difference lies in detection or placement, not in how the fakes look. "
    "Cut or match on it before judging the fakes.",
    "inverse_variance": "The inverse-variance channels carry the difference ({detail}): a processing difference "
    "(obiwan folding the fakes' variance into the inverse variance, or other weights), not the fakes' light.",
    "sky": "The sky around the sources carries the difference ({detail}): another processing run's images "
    "(sky level, coadd settings); cut the reals from the same images (cutouts.real_source: rsdir).",
    "galaxy": "The centre of the stamp, where the galaxy is, carries the difference ({detail}): it is in how "
    "the fakes look.",
    "undecided": "The audit cannot say where the difference lies ({detail}): {reason}.",
}
# Each part's clause in the sentence of a cause of more than one part.
CAUSE_PARTS = {
    "inverse_variance": "the inverse-variance channels carry one (a processing difference, not the fakes' light)",
    "galaxy": "the images carry one at the centre of the stamp, where the galaxy is (in how the fakes look)",
    "sky": "the images carry one in the sky around the sources (another processing run's images)",
    "undecided": "the images carry one that the centre and ring views do not place",
}
SEVERAL_SENTENCE = "The difference has more than one source ({detail}): {parts}."
UNATTRIBUTED_SENTENCE = (
    "The full CNN finds a difference that the placement columns do not explain ({detail}), and no restricted "
    "view was trained to say where it lies: list views in evaluate.audit (docs/audit.md)."
)
PLACEMENT_NOTE = (
    " The classes are also placed differently ({columns}), but that does not explain the difference: {comparison}."
)


def audit_record(
    name: str,
    labels: np.ndarray,
    scores: np.ndarray,
    settings: StatisticsSettings,
    index: int,
    bricks: np.ndarray | None = None,
    folds: np.ndarray | None = None,
) -> dict:
    """One view's or column's measurement: view, auc, auc_low, auc_high, auc_p_value, bricks, interval, outcome.

    The outcome is the verdict's (:func:`realfake.stats.tolerance.tolerance_outcome`, two-sided), so a placement
    difference in either direction counts; a column with one value for every example has p = 1 (no evidence), not 0.
    With ``bricks`` (each example's), the interval and p-value are cluster-robust as the verdict's are; with
    ``folds`` (each example's fold, at least 2), the AUC compares pairs within folds (the verdict's ``folds``).
    """
    rng = np.random.default_rng([settings.seed, 4, index])
    result = auc_test(labels, scores, settings.confidence, settings.bootstrap, rng, clusters=bricks, strata=folds)
    return {
        "view": name,
        "auc": result.auc,
        "auc_low": result.low,
        "auc_high": result.high,
        "auc_p_value": result.p_value,
        "bricks": result.clusters,
        "interval": result.interval,
        "outcome": tolerance_outcome(
            result.low, result.high, result.p_value, settings.tolerance, settings.significance
        ),
    }


def audit_records(
    labels: np.ndarray, view_scores: dict[str, np.ndarray], predictions: pd.DataFrame, settings: StatisticsSettings
) -> list[dict]:
    """The audit: one record per view (``view_scores``: view -> P(fake), ``full`` first) and per placement
    column present in ``predictions``, with the paired comparisons the cause uses (module docstring); within
    folds when ``predictions`` has a ``fold`` column of at least 2 folds."""
    bricks = brick_codes(predictions)
    folds = fold_labels(predictions)
    records = [
        audit_record(view, labels, scores, settings, index, bricks, folds)
        for index, (view, scores) in enumerate(view_scores.items())
    ]
    compared = {view: np.asarray(scores, dtype=np.float64) for view, scores in view_scores.items()}
    for column in AUDIT_COLUMNS:
        if column in predictions.columns:
            values = predictions[column].to_numpy(np.float64)
            if column == "detected":
                values = 1.0 - values  # undetected fakes score higher
            record = audit_record(column, labels, values, settings, len(records), bricks, folds)
            records.append(record)
            # Compared as max(AUC, 1 - AUC): a placement difference in either direction.
            compared[column] = -values if math.isfinite(record["auc"]) and record["auc"] < 0.5 else values
    by_name = {record["view"]: record for record in records}
    pairs = [("full", column) for column in AUDIT_COLUMNS if column in by_name and "full" in by_name]
    if "centre_only" in by_name and "ring_only" in by_name:
        pairs += [("centre_only", "ring_only"), ("ring_only", "centre_only")]
    for first, second in pairs:
        result = paired_auc_difference(labels, compared[first], compared[second], bootstrap_below=0, strata=folds)
        by_name[first].setdefault("paired", {})[second] = {
            "difference": result["difference"],
            "p_value": result["p_value"],
            "significant": bool(result["p_value"] < settings.significance),
        }
    return records


class _Audit:
    """The records by view, and the questions the cause's rules ask of them."""

    def __init__(self, records: list[dict]):
        self.by_name = {record["view"]: record for record in records}

    def finds(self, name: str) -> bool:
        return name in self.by_name and self.by_name[name]["outcome"] == "distinguishable"

    def comparison(self, first: str, second: str) -> dict:
        return self.by_name.get(first, {}).get("paired", {}).get(second, {})

    def higher(self, first: str, second: str) -> bool:
        """Whether ``first``'s AUC is significantly above ``second``'s (paired)."""
        return bool(self.comparison(first, second).get("significant", False))

    def placement(self) -> tuple[list[str], list[str]]:
        """The placement columns that find a difference: (those that could explain the full CNN's, the others)."""
        found = [column for column in AUDIT_COLUMNS if self.finds(column)]
        return [column for column in found if not self.higher("full", column)], [
            column for column in found if self.higher("full", column)
        ]

    def location(self) -> str | None:
        """Where the images' part lies by the centre and ring views: galaxy, sky, undecided or None (neither
        finds one)."""
        centre, ring = self.finds("centre_only"), self.finds("ring_only")
        if centre and ring:
            if self.higher("ring_only", "centre_only"):
                return "sky"
            return "galaxy" if self.higher("centre_only", "ring_only") else "undecided"
        if centre or ring:
            return "galaxy" if centre else "sky"
        return None

    def causes(self) -> list[str]:
        if not self.finds("full"):
            return ["none"]
        if self.placement()[0]:
            return ["placement"]
        causes = ["inverse_variance"] if self.finds("ivar_only") else []
        images = self.finds("image_only") if "image_only" in self.by_name else not causes
        location = self.location() if images else None
        if location is None and images and self.finds("image_only"):
            location = "galaxy" if "centre_only" not in self.by_name else "undecided"
        causes += [location] if location else []
        if causes:
            return causes
        return ["undecided"] if any(view in self.by_name for view in RESTRICTED_VIEWS) else ["none"]


def audit_cause(records: list[dict]) -> str:
    """The cause from the audit records: one of :data:`CAUSES`, or ``inverse_variance+`` the images' part
    (``galaxy``, ``sky`` or ``undecided``) when both carry a difference (see the module docstring)."""
    return "+".join(_Audit(records).causes())


def _p(value: float) -> str:
    """'p = 0.041', or 'p < 1e-300' where the normal tail underflows."""
    return f"p = {value:.2g}" if not value < 1e-300 else "p < 1e-300"


def audit_sentence(cause: str, records: list[dict]) -> str:
    """One sentence naming the cause, with the AUCs and the paired comparisons that name it."""
    audit = _Audit(records)
    shown = [
        f"{record['view']} AUC {record['auc']:.3f}"
        for record in records
        if record["view"] != "full" and record["auc"] is not None and math.isfinite(record["auc"])
    ]
    detail = "; ".join(shown) or "no view was audited"
    full = audit.by_name.get("full")
    explaining, exceeded = audit.placement()
    parts = cause.split("+")
    if cause == "none" and full is not None and full["outcome"] == "distinguishable":
        # The full CNN finds a difference that neither the placement columns nor any audited view explain.
        sentence = UNATTRIBUTED_SENTENCE.format(detail=detail)
    elif cause == "placement":
        comparison = "; ".join(_against_full(audit, column, "not significantly above") for column in explaining)
        return CAUSE_SENTENCES["placement"].format(detail=detail, comparison=comparison)
    elif len(parts) > 1:
        sentence = SEVERAL_SENTENCE.format(detail=detail, parts="; and ".join(CAUSE_PARTS[part] for part in parts))
    elif cause == "undecided":
        sentence = CAUSE_SENTENCES["undecided"].format(detail=detail, reason=_undecided_reason(audit))
    else:
        sentence = CAUSE_SENTENCES[cause].format(detail=detail) + _location_reason(audit, cause)
    if exceeded and audit.finds("full"):
        columns = "; ".join(f"{column} AUC {audit.by_name[column]['auc']:.3f}" for column in exceeded)
        comparison = "; ".join(_against_full(audit, column, "significantly above") for column in exceeded)
        sentence += PLACEMENT_NOTE.format(columns=columns, comparison=comparison)
    return sentence


def _against_full(audit: _Audit, column: str, verdict: str) -> str:
    """'the full CNN's AUC 0.900 is <verdict> <column>'s 0.530 (paired DeLong p = ...)', a column's AUC below
    0.5 given as 1 - AUC (a difference in the other direction)."""
    comparison = audit.comparison("full", column)
    full = audit.by_name["full"]["auc"]
    if not comparison:  # records from before the paired comparisons
        return f"the full CNN's AUC {full:.3f} was not compared with {column}'s"
    flipped = "1 - AUC " if audit.by_name[column]["auc"] < 0.5 else ""
    return (
        f"the full CNN's AUC {full:.3f} is {verdict} {column}'s {flipped}{full - comparison['difference']:.3f} "
        f"(paired DeLong {_p(comparison['p_value'])})"
    )


def _location_reason(audit: _Audit, cause: str) -> str:
    """For galaxy or sky decided between two views that both find a difference: the paired comparison."""
    if cause not in ("galaxy", "sky") or not (audit.finds("centre_only") and audit.finds("ring_only")):
        return ""
    first, second = ("centre_only", "ring_only") if cause == "galaxy" else ("ring_only", "centre_only")
    p_value = audit.comparison(first, second).get("p_value", math.nan)
    return f" Both {first} and {second} find one; {first}'s AUC is significantly higher (paired DeLong {_p(p_value)})."


def _undecided_reason(audit: _Audit) -> str:
    if audit.finds("centre_only") and audit.finds("ring_only"):
        there = audit.comparison("centre_only", "ring_only").get("p_value", math.nan)
        back = audit.comparison("ring_only", "centre_only").get("p_value", math.nan)
        return (
            "the centre and the ring views both find it and neither AUC is significantly higher (paired DeLong "
            f"{_p(there)} for the centre, {_p(back)} for the ring), so it may lie in the galaxies, in the sky "
            "around them or in both; more test examples would tell"
        )
    if audit.finds("image_only"):
        return "the images carry it, but neither the centre nor the ring view finds it alone"
    return (
        "no restricted view finds it on its own: the CNN needs what the views split between them, or the views "
        "have too few test examples"
    )

"""The shortcut audit: where the difference lies, from restricted views and the placement columns.

A difference the CNN finds may come from the galaxies or from the plumbing
around them (``docs/data_layout.md``). The audit measures, on the same test
split and with the verdict's statistic (:func:`realfake.auc.auc_test`):

- one CNN per restricted view (:mod:`realfake.views`): what it finds when it
  sees only the images, only the inverse variances, only the centre or only the
  ring around it;
- the placement columns as scores: ``detected`` (fakes: found by legacypipe's
  re-fit; reals: always) and ``distance_to_no_coverage`` (pixels from the stamp
  centre to the nearest uncovered pixel or the image edge). Their AUC is 0.5
  when both classes are placed alike; a placement difference in either
  direction counts (the record holds the AUC as measured; the outcome is
  judged on max(AUC, 1 - AUC)).

The leading cause (:func:`audit_cause`), with the thresholds each uses (a
view or column "finds" a difference when its outcome is ``distinguishable``:
its interval lies above 0.5 + tolerance):

1. ``none``: the full CNN does not find a difference.
2. ``placement``: a placement column finds one (the classes are placed
   differently, whatever the pixels show).
3. ``inverse_variance``: the ivar-only CNN finds one and does better than the
   image-only one.
4. ``sky``: the ring-only CNN finds one and does at least as well as the
   centre-only one (the difference is spread over the sky around the source,
   not in it).
5. ``galaxy``: the centre-only (or, without it, the image-only) CNN finds one.
6. Otherwise the view that does best names the cause (ring: sky; ivar:
   inverse variance; else galaxy), or ``none`` with no view.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from realfake.auc import auc_test, tolerance_outcome
from realfake.stats import StatisticsSettings

AUDIT_COLUMNS = ("detected", "distance_to_no_coverage")
CAUSES = ("galaxy", "sky", "inverse_variance", "placement", "none")
CAUSE_SENTENCES = {
    "none": "The full CNN finds no difference beyond the tolerance, so there is none to attribute.",
    "placement": "The fakes are placed differently from the real galaxies ({detail}): the difference lies in "
    "detection or placement, not in how the fakes look. Cut or match on it before judging the fakes.",
    "inverse_variance": "The inverse-variance channels carry the difference ({detail}): a processing difference "
    "(obiwan folding the fakes' variance into the inverse variance, or other weights), not the fakes' light.",
    "sky": "The sky around the sources carries the difference ({detail}): another processing run's images "
    "(sky level, coadd settings); cut the reals from the same images (cutouts.real_source: rsdir).",
    "galaxy": "The centre of the stamp, where the galaxy is, carries the difference ({detail}): it is in how "
    "the fakes look.",
}


UNATTRIBUTED_SENTENCE = (
    "The full CNN finds a difference that the placement columns do not explain ({detail}), and no restricted "
    "view was trained to say where it lies: list views in evaluate.audit (docs/audit.md)."
)


def audit_record(name: str, labels: np.ndarray, scores: np.ndarray, settings: StatisticsSettings, index: int) -> dict:
    """One view's or column's measurement: view, auc, auc_low, auc_high, auc_p_value, outcome.

    For a placement column the outcome is judged on max(AUC, 1 - AUC) (a difference in either direction).
    """
    rng = np.random.default_rng([settings.seed, 4, index])
    result = auc_test(labels, scores, settings.confidence, settings.bootstrap, rng)
    low, high = result.low, result.high
    if name in AUDIT_COLUMNS and math.isfinite(result.auc) and result.auc < 0.5:
        low, high = 1 - high, 1 - low
    p_value = result.p_value
    if name in AUDIT_COLUMNS:
        # Two-sided: twice the smaller of the one-sided p-values (fakes higher, fakes lower); a column with one
        # value for every example has p = 1 both ways (no evidence), not 0.
        lower = auc_test(labels, -np.asarray(scores, dtype=np.float64), bootstrap_below=0).p_value
        p_value = min(1.0, 2 * min(result.p_value, lower))
    return {
        "view": name,
        "auc": result.auc,
        "auc_low": result.low,
        "auc_high": result.high,
        "auc_p_value": p_value,
        "outcome": tolerance_outcome(low, high, p_value, settings.tolerance, settings.significance),
    }


def audit_records(
    labels: np.ndarray, view_scores: dict[str, np.ndarray], predictions: pd.DataFrame, settings: StatisticsSettings
) -> list[dict]:
    """The audit: one record per view (``view_scores``: view -> P(fake), ``full`` first) and per placement
    column present in ``predictions``."""
    records = [
        audit_record(view, labels, scores, settings, index) for index, (view, scores) in enumerate(view_scores.items())
    ]
    for column in AUDIT_COLUMNS:
        if column in predictions.columns:
            values = predictions[column].to_numpy(np.float64)
            if column == "detected":
                values = 1.0 - values  # undetected fakes score higher
            records.append(audit_record(column, labels, values, settings, len(records)))
    return records


def audit_cause(records: list[dict]) -> str:
    """The leading cause (:data:`CAUSES`) from the audit records (see the module docstring)."""
    by_name = {record["view"]: record for record in records}

    def finds(name: str) -> bool:
        return name in by_name and by_name[name]["outcome"] == "distinguishable"

    def auc(name: str) -> float:
        value = by_name.get(name, {}).get("auc", math.nan)
        return value if value is not None and math.isfinite(value) else 0.5

    if not finds("full"):
        return "none"
    if any(finds(column) for column in AUDIT_COLUMNS):
        return "placement"
    if finds("ivar_only") and auc("ivar_only") > auc("image_only"):
        return "inverse_variance"
    if finds("ring_only") and auc("ring_only") >= auc("centre_only"):
        return "sky"
    if finds("centre_only") or (finds("image_only") and "centre_only" not in by_name):
        return "galaxy"
    views = {name: auc(name) for name in ("centre_only", "ring_only", "image_only", "ivar_only") if name in by_name}
    if not views:
        return "none"
    best = max(views, key=views.get)
    return {"ring_only": "sky", "ivar_only": "inverse_variance"}.get(best, "galaxy")


def audit_sentence(cause: str, records: list[dict]) -> str:
    """One sentence naming the leading cause, with the AUCs that name it."""
    shown = [
        f"{record['view']} AUC {record['auc']:.3f}"
        for record in records
        if record["view"] != "full" and record["auc"] is not None and math.isfinite(record["auc"])
    ]
    full = next((record for record in records if record["view"] == "full"), None)
    if cause == "none" and full is not None and full["outcome"] == "distinguishable":
        # The full CNN finds a difference that neither the placement columns nor any audited view explain.
        return UNATTRIBUTED_SENTENCE.format(detail="; ".join(shown))
    return CAUSE_SENTENCES[cause].format(detail="; ".join(shown) or "no view was audited")

"""How often the shortcut audit's rules name the cause that was simulated, against the rules that compared point
estimates.

Usage: .venv/bin/python scripts/audit_rules.py [--replications 1000] [--bootstrap 200] [--seed 1] [--results-page]

Each view's (and the full CNN's) scores are independent synthetic scores: a
real galaxy's logit is N(0, 1), a fake's N(shift, 1), the score its logistic,
with the shift set from the view's true AUC, Phi(shift / sqrt(2)). A placement
column is a score of its own of the given AUC; where the full CNN "sees only
the placement", its score is the column's plus N(0, 0.02^2) noise. The
audit (:func:`realfake.evaluation.audit.audit_records`, :func:`realfake.evaluation.audit.audit_cause`)
runs with the verdict's statistics, ``--bootstrap`` resamples per interval
below 2,000 examples. Each scenario prints the share of replications giving
each cause, under the rules as they are and under the rules that compared
point estimates (a placement column that finds a difference first; the ivar
view when its AUC beats the image view's; the ring when its AUC is at least
the centre's). The numbers in docs/results/audit.md come from this script; with
``--results-page`` it writes its table into its block there (scripts/results_page.py).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np
import pandas as pd
import results_page
from scipy import stats as scipy_stats

from realfake.evaluation.audit import AUDIT_COLUMNS, audit_cause, audit_records
from realfake.stats.settings import StatisticsSettings

RESULTS_PAGE = results_page.RESULTS / "audit.md"
RESULTS_BLOCK = "audit_rules.py:table"

# name, examples per class, true AUC per view, placement column -> its AUC, whether the full CNN sees only it,
# the cause that was simulated
SCENARIOS = [
    ("centre 0.72, ring 0.70", 200, {"full": 0.86, "centre_only": 0.72, "ring_only": 0.70}, {}, False, "galaxy"),
    ("centre 0.71, ring 0.71", 200, {"full": 0.86, "centre_only": 0.71, "ring_only": 0.71}, {}, False, "undecided"),
    ("the sky: centre 0.76, ring 0.86", 200, {"full": 0.86, "centre_only": 0.76, "ring_only": 0.86}, {}, False, "sky"),
    (
        "the galaxy: image 0.85, centre 0.84, ring 0.52",
        200,
        {"full": 0.86, "image_only": 0.85, "ivar_only": 0.5, "centre_only": 0.84, "ring_only": 0.52},
        {},
        False,
        "galaxy",
    ),
    (
        "placement 0.53, image and centre 0.90",
        10_000,
        {"full": 0.90, "image_only": 0.90, "ivar_only": 0.5, "centre_only": 0.90, "ring_only": 0.5},
        {"distance_to_no_coverage": 0.53},
        False,
        "galaxy",
    ),
    (
        "placement 0.70 that the CNN sees",
        200,
        {"image_only": 0.5, "ivar_only": 0.5, "centre_only": 0.5, "ring_only": 0.5},
        {"distance_to_no_coverage": 0.70},
        True,
        "placement",
    ),
    (
        "ivar 0.80 and image 0.75",
        200,
        {"full": 0.86, "image_only": 0.75, "ivar_only": 0.80, "centre_only": 0.80, "ring_only": 0.5},
        {},
        False,
        "inverse_variance+galaxy",
    ),
    (
        "ivar 0.85, image at chance",
        200,
        {"full": 0.86, "image_only": 0.5, "ivar_only": 0.85, "centre_only": 0.80, "ring_only": 0.5},
        {},
        False,
        "inverse_variance",
    ),
]


def scores_of(rng: np.random.Generator, labels: np.ndarray, auc_value: float) -> np.ndarray:
    shift = math.sqrt(2.0) * scipy_stats.norm.ppf(auc_value)
    return 1.0 / (1.0 + np.exp(-(rng.normal(size=labels.size) + shift * labels)))


def point_estimate_cause(records: list[dict]) -> str:
    """The rules that compared point estimates (before the paired tests), for comparison."""
    by_name = {record["view"]: record for record in records}

    def finds(name: str) -> bool:
        return name in by_name and by_name[name]["outcome"] == "distinguishable"

    def auc(name: str) -> float:
        return by_name[name]["auc"] if name in by_name else 0.5

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
    best = max(views, key=views.get) if views else None
    return {"ring_only": "sky", "ivar_only": "inverse_variance", None: "none"}.get(best, "galaxy")


def replicate(rng, per_class: int, views: dict, columns: dict, full_sees: bool, settings) -> tuple[str, str]:
    labels = rng.permutation(np.repeat([0, 1], per_class))
    view_scores = {view: scores_of(rng, labels, auc_value) for view, auc_value in views.items()}
    predictions = pd.DataFrame({"label": labels})
    for column, auc_value in columns.items():
        predictions[column] = scores_of(rng, labels, auc_value)
        if full_sees:
            view_scores = {"full": predictions[column].to_numpy() + rng.normal(0, 0.02, labels.size), **view_scores}
    records = audit_records(labels, view_scores, predictions, settings)
    return audit_cause(records), point_estimate_cause(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--results-page", action="store_true", help="also write the table into its block of docs/results/audit.md"
    )
    arguments = parser.parse_args()
    if arguments.results_page:
        results_page.check_blocks(RESULTS_PAGE, [RESULTS_BLOCK])
    settings = StatisticsSettings(bootstrap=arguments.bootstrap)
    print(f"{arguments.replications} replications per scenario; share of them naming each cause")
    lines = ["| scenario | per class | simulated | paired rules | point estimates |", "| --- | --- | --- | --- | --- |"]
    print("\n".join(lines))
    for index, (name, per_class, views, columns, full_sees, simulated) in enumerate(SCENARIOS):
        rng = np.random.default_rng([arguments.seed, index])
        paired, point = Counter(), Counter()
        for _ in range(arguments.replications):
            cause, old = replicate(rng, per_class, views, columns, full_sees, settings)
            paired[cause] += 1
            point[old] += 1

        def shares(counts: Counter) -> str:
            return ", ".join(f"{cause} {count / arguments.replications:.2f}" for cause, count in counts.most_common())

        lines.append(f"| {name} | {per_class:,} | {simulated} | {shares(paired)} | {shares(point)} |")
        print(lines[-1], flush=True)
    if arguments.results_page:
        results_page.write_blocks(RESULTS_PAGE, {RESULTS_BLOCK: "\n".join(lines)})


if __name__ == "__main__":
    main()

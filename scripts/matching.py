"""Matching measured against measured: the `none` control with the shards matched on true and on measured magnitudes.

Usage: .venv/bin/python scripts/matching.py [--bricks N] [--workdir DIR] [--keep] [--results-page]

Runs the default workflow on the `none` mock survey (``mock.bricks`` = N, the
demo's 12 by default) once with ``shards.match: [measured_mag_dered_g]`` (the
default: legacypipe's measurement for both classes) and once, in the same
directory (the mock and cutouts are reused), with ``[mag_dered_g]`` (the
real sources' measured magnitude against the fakes' true, simcat one). For
each it reads the shard set's catalogs (every split) and prints:

- the fakes excluded as unmatchable (no re-fit: legacypipe did not detect them);
- the class-mean difference of the *measured* dereddened g magnitude, fake minus
  real, with its standard error: classes balanced in every matching bin, so this is
  the mean of the within-bin differences; 0 when the matching compares like with
  like;
- the fakes' mean measured minus true g magnitude (the scatter the true-magnitude
  matching ignores);
- the CNN's verdict: AUC with its interval and the outcome.

With ``--results-page`` the table also goes into its block of docs/results/matching.md
(scripts/results_page.py).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import results_page
from controls import run_workflow

from realfake.conventions import SPLITS

MATCHINGS = {"measured": ["measured_mag_dered_g"], "true": ["mag_dered_g"]}
RESULTS_PAGE = results_page.RESULTS / "matching.md"
RESULTS_BLOCK = "matching.py:table"


def class_difference(shards: Path) -> dict:
    """The measured-magnitude difference between the classes of a shard set (all splits together)."""
    catalog = pd.concat([pd.read_parquet(shards / f"{split}_catalog.parquet") for split in SPLITS], ignore_index=True)
    fake = catalog["label"].to_numpy() == 1
    measured = catalog["measured_mag_dered_g"].to_numpy(np.float64)
    fakes, reals = measured[fake], measured[~fake]
    fakes_measured = fakes[np.isfinite(fakes)]
    reals_measured = reals[np.isfinite(reals)]
    difference = fakes_measured.mean() - reals_measured.mean()
    error = math.sqrt(
        fakes_measured.var(ddof=1) / fakes_measured.size + reals_measured.var(ddof=1) / reals_measured.size
    )
    scatter = (measured - catalog["mag_dered_g"].to_numpy(np.float64))[fake]
    scatter = scatter[np.isfinite(scatter)]
    return {
        "examples": int(len(catalog)),
        "difference": float(difference),
        "error": float(error),
        "fakes_with_fit": int(fakes_measured.size),
        "fake_scatter": float(scatter.mean()),
        "fake_scatter_sd": float(scatter.std(ddof=1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bricks", type=int, default=None, help="mock.bricks (default: the config's)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--results-page",
        action="store_true",
        help="also write the table into its block of docs/results/matching.md",
    )
    args = parser.parse_args()
    if args.results_page:
        results_page.check_blocks(RESULTS_PAGE, [RESULTS_BLOCK])
    root = Path(tempfile.mkdtemp(prefix="realfake-matching-", dir=args.workdir))
    mock = {"mismatch": "none", **({"bricks": args.bricks} if args.bricks else {})}
    rows = []
    try:
        for name, columns in MATCHINGS.items():
            verdict = run_workflow(root, {"mock": mock, "shards": {"match": columns}})
            manifest = pd.read_json(root / "results" / "shards" / "manifest.json", typ="series")
            row = {"matching": name, "columns": columns, **verdict, **class_difference(root / "results" / "shards")}
            row["excluded"] = manifest["matching"]["excluded"]
            print(f"{name}: {row}", file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"work directory kept in {root}", file=sys.stderr)
    print(markdown_table(rows))
    if args.results_page:
        results_page.write_blocks(RESULTS_PAGE, {RESULTS_BLOCK: markdown_table(rows)})


def markdown_table(rows: list[dict]) -> str:
    """One row per matching: fakes excluded, examples, the class difference in measured g, the fakes' scatter,
    the verdict."""
    lines = [
        "| matched on | fakes excluded | examples | measured g, fake - real (mag) | fakes' measured - true g (mag) "
        "| AUC (95% CI) | outcome |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| `{row['columns'][0]}` | {row['excluded']['fake']} | {row['examples']} "
            f"| {row['difference']:+.4f} ± {row['error']:.4f} "
            f"| {row['fake_scatter']:+.3f} ± {row['fake_scatter_sd']:.3f} (sd) "
            f"| {row['auc']:.3f} ({row['auc_low']:.3f}-{row['auc_high']:.3f}) | {row['outcome'].replace('_', ' ')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""How the verdict's statistics scale: evaluate_predictions on synthetic prediction tables of N rows.

Usage: .venv/bin/python scripts/bench_evaluate.py [--rows 1000000 3000000 10000000]

Each table has the columns the verdict and the breakdowns read (label, p_fake,
the dereddened g, r, z magnitudes, size, type, central inverse variance and
sub-pixel offsets, and each example's brick: 600 examples a brick, as the
cluster-robust statistics read it), balanced classes and a small real
difference (true AUC 0.52), as a survey-scale test split would. ``--no-bricks``
leaves the brick column out (the independent-example statistics alone), to
measure what the bricks cost side by side. The shortcut baselines are left out
(they train on the training split; their cost is the scale benchmark's).
Prints, per size, the wall time, the time per million rows, peak RSS, and the
growth ratio (time(N_last) / time(N_first)) / (N_last / N_first): 1 is linear.
The target is under 2 minutes at 10 million rows.
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from realfake.evaluation.evaluate import evaluate_predictions
from realfake.stats.settings import StatisticsSettings

EXAMPLES_PER_BRICK = 600


def synthetic_predictions(rows: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = (np.arange(rows) % 2).astype(np.int32)
    shift = math.sqrt(2.0) * scipy_stats.norm.ppf(0.52)
    logits = rng.normal(size=rows) + shift * labels
    g = rng.uniform(20.5, 24.5, rows)
    return pd.DataFrame(
        {
            "label": labels,
            "p_fake": 1.0 / (1.0 + np.exp(-logits)),
            "mag_dered_g": g,
            "mag_dered_r": g - rng.normal(0.5, 0.2, rows),
            "mag_dered_z": g - rng.normal(1.4, 0.3, rows),
            "size": rng.uniform(0.13, 2.0, rows),
            "type": rng.choice(np.array(["EXP", "REX", "PSF"], dtype=object), rows),
            "ivar_centre_r": rng.uniform(500, 5000, rows),
            "offset_x": rng.uniform(-0.5, 0.5, rows),
            "offset_y": rng.uniform(-0.5, 0.5, rows),
            "brickname": np.char.add("b", (np.arange(rows) // EXAMPLES_PER_BRICK).astype(str)),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, nargs="+", default=[1e6, 3e6, 1e7])
    parser.add_argument("--no-bricks", action="store_true", help="leave out the brick column")
    args = parser.parse_args()
    settings = StatisticsSettings()
    results = []
    print("| rows | wall s | s per million rows | peak RSS GiB | outcome |")
    print("| --- | --- | --- | --- | --- |")
    for rows in (int(value) for value in args.rows):
        table = synthetic_predictions(rows)
        if args.no_bricks:
            table = table.drop(columns="brickname")
        start = time.perf_counter()
        metrics = evaluate_predictions(table, settings)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        results.append((rows, seconds))
        print(
            f"| {rows:,} | {seconds:.1f} | {seconds / rows * 1e6:.2f} | {peak:.1f} | {metrics['verdict']['outcome']} |"
        )
        del table, metrics
    (first_rows, first_seconds), (last_rows, last_seconds) = results[0], results[-1]
    if last_rows > first_rows:
        ratio = (last_seconds / first_seconds) / (last_rows / first_rows)
        print(f"growth ratio (time per row at {last_rows:,} / at {first_rows:,}): {ratio:.2f}")


if __name__ == "__main__":
    main()

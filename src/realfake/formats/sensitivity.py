"""The sensitivity table (CSV): its writer and its checked reader side by side.

``scripts/sensitivity.py`` runs the whole workflow over a grid of mismatch strengths and mock sizes and writes
one row per run with :func:`write_sensitivity_table`: the columns :data:`SENSITIVITY_COLUMNS` (the mock's
bricks, the mismatch, its strength, the test examples, the AUC with its interval and p-value, the outcome and the
minimum detectable AUC), then ``seconds`` (the run's wall time). ``realfake report --sensitivity-table`` reads it
with :func:`read_sensitivity_table`, which checks every column and cell it shows.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.atomic import atomic_output
from realfake.errors import RealfakeError

SENSITIVITY_COLUMNS = ("bricks", "mismatch", "strength", "examples", "auc", "auc_low", "auc_high", "auc_p_value",
                       "outcome", "minimum_detectable_auc")  # fmt: skip
# Written by scripts/sensitivity.py after those; no reader needs it.
SENSITIVITY_OPTIONAL_COLUMNS = ("seconds",)
# The sensitivity table's numbers: what identifies a run (finite; the counts whole) and what it measured (NaN,
# written "nan", where a run measured nothing).
SENSITIVITY_RUN_COLUMNS = ("bricks", "strength", "examples")
SENSITIVITY_COUNT_COLUMNS = ("bricks", "examples")
SENSITIVITY_MEASURED_COLUMNS = ("auc", "auc_low", "auc_high", "auc_p_value", "minimum_detectable_auc")


def write_sensitivity_table(rows: list[dict], path: Path) -> None:
    """Write the sensitivity table of ``rows`` (one dict per run, with :data:`SENSITIVITY_COLUMNS` and
    :data:`SENSITIVITY_OPTIONAL_COLUMNS`; other keys are left out) to ``path``, atomically."""
    with atomic_output(Path(path)) as temporary:
        with open(temporary, "w", newline="") as handle:
            columns = [*SENSITIVITY_COLUMNS, *SENSITIVITY_OPTIONAL_COLUMNS]
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def _sensitivity_number(text: str, column: str) -> float | None:
    """The value of a cell of a numeric column of the sensitivity table, or None where it holds none."""
    try:
        value = float(text)
    except ValueError:
        return None
    if column in SENSITIVITY_RUN_COLUMNS and not math.isfinite(value):
        return None
    if column in SENSITIVITY_COUNT_COLUMNS and not value.is_integer():
        return None
    return value


def read_sensitivity_table(path: Path) -> pd.DataFrame:
    """A ``scripts/sensitivity.py`` table (CSV) with its numbers as numbers (``bricks`` and ``examples`` as
    integers); RealfakeError naming the file and the missing column, or the column and row (1: the first
    after the header) of a cell that holds no number, or saying it has no rows."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"sensitivity table {path} does not exist (scripts/sensitivity.py writes one)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise RealfakeError(f"sensitivity table {path}: not a CSV table ({error})") from None
    missing = [column for column in SENSITIVITY_COLUMNS if column not in table.columns]
    if missing:
        raise RealfakeError(f"sensitivity table {path} has no column(s) {', '.join(missing)}")
    if not len(table):
        raise RealfakeError(f"sensitivity table {path} has a header but no rows")
    for column in (*SENSITIVITY_RUN_COLUMNS, *SENSITIVITY_MEASURED_COLUMNS):
        values = [_sensitivity_number(text, column) for text in table[column]]
        bad = next((position for position, value in enumerate(values) if value is None), None)
        if bad is not None:
            expected = "a whole number" if column in SENSITIVITY_COUNT_COLUMNS else "a number"
            raise RealfakeError(
                f"sensitivity table {path}: row {bad + 1} (line {bad + 2}), column {column}: "
                f"{table[column].iloc[bad]!r} is not {expected}"
            )
        table[column] = np.array(values, dtype=np.int64 if column in SENSITIVITY_COUNT_COLUMNS else np.float64)
    return table

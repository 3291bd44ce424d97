"""Which fakes look fake: the CNN's scores of the test fakes against the parameters they were injected with.

For each injected parameter of the fakes (the simcat's true values, as the
cutouts catalog carries them: dereddened magnitudes and colours, half-light
radius, Sersic index, ellipticity, rs dir, and whether legacypipe detected
them), the test fakes are cut into bins of it, and in each bin the AUC of
those fakes against *all* test reals is measured with the verdict's statistic
(:func:`realfake.auc.auc_test`): 0.5 where these fakes look like the real
galaxies, above it where they look fake. The p-values are corrected over all
bins of all parameters together (the breakdowns' correction), and each bin gets
the verdict's outcome word. A size error shows as an AUC rising with the
radius; a profile error as one that depends on the Sersic index.

Also the parameters of the fakes the CNN finds most fake-looking.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from realfake.auc import AgainstReals
from realfake.stats import StatisticsSettings
from realfake.verdict import with_corrected_outcomes

MOST_FAKE_LOOKING = 20
COLUMNS = ["parameter", "bin", "low", "high", "fakes", "reals", "auc", "auc_low", "auc_high", "auc_p_value",
           "p_adjusted", "flagged", "outcome"]  # fmt: skip
# The columns of the most fake-looking fakes' table (those present).
SHOWN = ["id", "brickname", "rsdir", "p_fake", "mag_dered_g", "mag_dered_r", "mag_dered_z", "size", "sersic_n",
         "e1", "e2", "detected"]  # fmt: skip


def fake_parameters(predictions: pd.DataFrame) -> dict[str, pd.Series]:
    """The injected parameters of every test example (meaningful for the fakes), those whose columns exist."""
    parameters: dict[str, pd.Series] = {}
    bands = [column.removeprefix("mag_dered_") for column in predictions.columns if column.startswith("mag_dered_")]
    for band in bands:
        parameters[f"true {band} magnitude"] = predictions[f"mag_dered_{band}"].astype(np.float64)
    for blue, red in (("g", "r"), ("r", "z")):
        if blue in bands and red in bands:
            parameters[f"true {blue} - {red}"] = predictions[f"mag_dered_{blue}"] - predictions[f"mag_dered_{red}"]
    if "size" in predictions.columns:
        parameters["half-light radius (arcsec)"] = predictions["size"].astype(np.float64)
    if "sersic_n" in predictions.columns:
        parameters["Sersic index"] = predictions["sersic_n"].astype(np.float64)
    if "e1" in predictions.columns and "e2" in predictions.columns:
        parameters["ellipticity |e|"] = pd.Series(
            np.hypot(predictions["e1"].to_numpy(np.float64), predictions["e2"].to_numpy(np.float64)),
            index=predictions.index,
        )
    if "rsdir" in predictions.columns:
        parameters["rs dir"] = predictions["rsdir"].astype(str)
    if "detected" in predictions.columns:
        detected = predictions["detected"].astype(bool).to_numpy()
        parameters["detected"] = pd.Series(np.where(detected, "detected", "undetected"), index=predictions.index)
    return parameters


def _bins(values: pd.Series, count: int) -> list[tuple[str, float, float, np.ndarray]]:
    """(label, low, high, mask): one bin per value for text or for at most ``count`` distinct numbers (a Sersic
    index of 1 or 4), else quantile bins; non-finite numbers are left out."""
    if not pd.api.types.is_numeric_dtype(values):
        text = values.astype(str)
        return [(category, math.nan, math.nan, (text == category).to_numpy()) for category in sorted(text.unique())]
    numbers = values.to_numpy(np.float64)
    finite = np.isfinite(numbers)
    distinct = np.unique(numbers[finite])
    if distinct.size <= count:
        return [(f"{value:.3g}", float(value), float(value), finite & (numbers == value)) for value in distinct]
    edges = np.unique(np.quantile(numbers[finite], np.linspace(0, 1, count + 1)))
    position = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, edges.size - 2)
    return [
        (f"{edges[index]:.3g} to {edges[index + 1]:.3g}", float(edges[index]), float(edges[index + 1]),
         finite & (position == index))
        for index in range(edges.size - 1)
    ]  # fmt: skip


def fake_parameter_breakdowns(predictions: pd.DataFrame, settings: StatisticsSettings) -> pd.DataFrame:
    """One row per parameter and bin of the test fakes (:data:`COLUMNS`): those fakes' AUC against all reals."""
    labels = predictions["label"].to_numpy()
    scores = predictions["p_fake"].to_numpy(np.float64)
    fakes = labels == 1
    reals = AgainstReals(scores[~fakes])  # sorted once for every bin
    fake_scores = scores[fakes]
    rows = []
    for name, values in fake_parameters(predictions).items():
        for label, low, high, mask in _bins(values[fakes], settings.bins):
            rng = np.random.default_rng([settings.seed, 5, len(rows)])
            result = reals.test(fake_scores[mask], settings.confidence, settings.bootstrap, rng)
            rows.append({"parameter": name, "bin": label, "low": low, "high": high, "fakes": int(mask.sum()),
                         "reals": int(reals.sorted.size), "auc": result.auc, "auc_low": result.low,
                         "auc_high": result.high, "auc_p_value": result.p_value})  # fmt: skip
    return with_corrected_outcomes(pd.DataFrame(rows, columns=COLUMNS[:10]), settings)[COLUMNS]


def most_fake_looking(predictions: pd.DataFrame, count: int = MOST_FAKE_LOOKING) -> pd.DataFrame:
    """The ``count`` test fakes with the highest P(fake), with their injected parameters."""
    fakes = predictions[predictions["label"] == 1]
    chosen = fakes.sort_values("p_fake", ascending=False, kind="stable").head(count)
    return chosen[[column for column in SHOWN if column in chosen.columns]].reset_index(drop=True)

"""The evaluation's outputs (``realfake evaluate``'s directory): their writer and checked readers side by side.

``realfake evaluate`` writes into one directory, with :func:`write_evaluation`:

- :data:`PREDICTIONS_NAME`: a predictions file (:mod:`realfake.formats.predictions`) of the whole test split,
  with a ``p_fake_<name>`` column per shortcut baseline and ``p_fake_view_<view>`` per audited view;
- :data:`BREAKDOWNS_NAME`: the breakdowns as one tidy table, one row per bin
  (:data:`realfake.stats.breakdowns.BREAKDOWN_COLUMNS`);
- :data:`MEAN_STAMPS_NAME` and :data:`ATTRIBUTION_NAME` (.npz), those it made: the class-mean stamps
  (:func:`realfake.evaluation.pixels.pixel_statistics`) and the attribution maps
  (:func:`realfake.evaluation.attribution.attribution_maps`, whose galleries are the :func:`surest_mistakes`);
- :data:`METRICS_NAME`, last: :func:`realfake.evaluation.evaluate.evaluate_predictions`' result with the settings,
  the shard set's identity and the model's, as strict JSON (:func:`json_ready`: NaN as null), and ``files``,
  which lists the files above (``files.arrays``: the .npz files written).

The report reads them back: :func:`read_evaluation` (metrics.json by :func:`read_metrics`, checked by
:func:`check_metrics` to hold what the report reads, and of the predictions only the columns it draws) and
:func:`read_listed_arrays` (an .npz file only when metrics.json lists it). :func:`baseline_title` names a record
of metrics.json's ``baselines`` in words, for the shortcut sentence and the report alike.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from realfake.atomic import atomic_output, output_directory
from realfake.errors import RealfakeError
from realfake.formats.jsonfile import read_json
from realfake.formats.predictions import write_predictions
from realfake.stats.breakdowns import BREAKDOWN_COLUMNS

PREDICTIONS_NAME = "predictions.parquet"
METRICS_NAME = "metrics.json"
BREAKDOWNS_NAME = "breakdowns.csv"
# realfake.evaluation.pixels: class-mean stamps, difference, significance, profiles
MEAN_STAMPS_NAME = "mean_stamps.npz"
# realfake.evaluation.attribution: integrated gradients of the surest and the galleries
ATTRIBUTION_NAME = "attribution.npz"

# The predictions' columns the report reads besides label and p_fake: the baselines' scores (ROC) and the
# magnitudes (mosaics, labels).
REPORT_COLUMN_PREFIXES = ("p_fake_", "mag_dered_")

# What the report reads from metrics.json (check_metrics): the verdict's keys, and for each list of records,
# which may be absent, the keys the page and figures read from every record (not all that evaluate writes, so
# that a key added to evaluate's records does not make older metrics unreadable).
VERDICT_KEYS = ("sentence", "examples", "real", "fake", "tolerance", "auc_p_value", "power", "significance",
                "minimum_detectable_auc", "minimum_distinguishable_auc", "tv_lower_bound", "chance",
                "accuracy_p_value", "log_loss", "confidence")  # fmt: skip
RECORD_KEYS = {
    "baselines": ("name", "model", "feature_set", "p_adjusted", "chance", "significant"),
    "breakdowns": ("breakdown", "bin", "low", "high", "examples", "real", "fake", "chance", "accuracy",
                   "accuracy_low", "accuracy_high", "p_adjusted", "flagged"),
    "audit": ("view",),
    "fake_parameters": ("parameter", "bin", "fakes", "auc", "auc_low", "auc_high", "p_adjusted", "flagged"),
}  # fmt: skip


def write_evaluation(out: Path, predictions: pd.DataFrame, metrics: dict, arrays: dict | None = None) -> None:
    """Write predictions.parquet (with a ``p_fake_<name>`` column per baseline and audited view), breakdowns.csv,
    the ``arrays`` (file name -> dict of arrays, as .npz) and, last, metrics.json (strict JSON: NaN as null), each
    atomically; ``metrics`` as :func:`realfake.evaluation.evaluate.evaluate_predictions` returns it."""
    predictions = predictions.copy()
    metrics = dict(metrics)
    for name, scores in metrics.pop("baseline_scores", {}).items():
        predictions[f"p_fake_{name}"] = scores
    arrays = arrays or {}
    metrics["files"] = {"predictions": PREDICTIONS_NAME, "breakdowns": BREAKDOWNS_NAME, "arrays": sorted(arrays)}
    out = output_directory(Path(out))
    for name, contents in arrays.items():
        with atomic_output(out / name) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **contents)
    write_predictions(out / PREDICTIONS_NAME, predictions)
    with atomic_output(out / BREAKDOWNS_NAME) as temporary:
        pd.DataFrame(metrics["breakdowns"], columns=BREAKDOWN_COLUMNS).to_csv(temporary, index=False)
    with atomic_output(out / METRICS_NAME) as temporary:
        temporary.write_text(json.dumps(json_ready(metrics), indent=2, allow_nan=False) + "\n")


def json_ready(value):
    """``value`` with NaN and infinities as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def read_evaluation(directory: Path) -> tuple[pd.DataFrame, dict]:
    """The predictions (only ``label``, ``p_fake`` and the columns of :data:`REPORT_COLUMN_PREFIXES`) and the
    metrics (checked by :func:`check_metrics`) of the evaluation in ``directory``; RealfakeError naming the file
    when one is missing, metrics.json is not valid JSON or lacks a key, or the predictions lack a column."""
    directory = Path(directory)
    predictions_path, metrics_path = directory / PREDICTIONS_NAME, directory / METRICS_NAME
    for path in (predictions_path, metrics_path):
        if not path.is_file():
            raise RealfakeError(f"{path} is missing (run `realfake evaluate` first)")
    metrics = read_metrics(metrics_path)
    # Only the columns the report draws: a survey's test split is millions of rows of ~100 catalog columns.
    names = pq.read_schema(predictions_path).names
    wanted = [name for name in names if name in ("label", "p_fake") or name.startswith(REPORT_COLUMN_PREFIXES)]
    predictions = pd.read_parquet(predictions_path, columns=wanted)
    for column in ("label", "p_fake"):
        if column not in predictions.columns:
            raise RealfakeError(f"{predictions_path} has no {column!r} column")
    return predictions, metrics


def read_metrics(path: Path) -> dict:
    """The metrics.json at ``path``, checked by :func:`check_metrics`; RealfakeError naming the file when it is
    missing, not valid JSON or lacks a key."""
    path = Path(path)
    metrics = read_json(path, "(run `realfake evaluate` first)")
    check_metrics(metrics, path)
    return metrics


def check_metrics(metrics, path: Path) -> None:
    """RealfakeError naming ``path`` and the key unless ``metrics`` holds what the report reads: the verdict
    with :data:`VERDICT_KEYS`, each record of the lists in :data:`RECORD_KEYS` (which may be absent) with its
    keys, a ``storage`` section (optional) whose ``sentence`` is a string or null, and an ``mmd`` section (optional,
    null when switched off) with a ``sentence``."""

    def refuse(problem: str) -> RealfakeError:
        return RealfakeError(f"{path} {problem}: run `realfake evaluate` again")

    if not isinstance(metrics, dict):
        raise refuse("is not a JSON object")
    verdict = metrics.get("verdict")
    if not isinstance(verdict, dict):
        raise refuse("has no 'verdict' section")
    missing = next((key for key in VERDICT_KEYS if key not in verdict), None)
    if missing is not None:
        raise refuse(f"has no 'verdict.{missing}' key")
    for section, keys in RECORD_KEYS.items():
        records = metrics.get(section) or []
        if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
            raise refuse(f"has no list of records under {section!r}")
        for index, record in enumerate(records):
            missing = next((key for key in keys if key not in record), None)
            if missing is not None:
                raise refuse(f"has no '{section}[{index}].{missing}' key")
    storage = metrics.get("storage")
    if storage is not None and not (isinstance(storage, dict) and isinstance(storage.get("sentence"), str | None)):
        raise refuse("has a 'storage' section whose 'sentence' is not a string or null")
    mmd = metrics.get("mmd")
    if mmd is not None and not (isinstance(mmd, dict) and isinstance(mmd.get("sentence"), str)):
        raise refuse("has an 'mmd' section without a 'sentence'")


def read_listed_arrays(evaluate: Path, metrics: dict, name: str) -> dict | None:
    """The arrays of the evaluation's ``name`` (.npz), or None when the evaluation made none.

    metrics.json lists the arrays evaluate wrote (``files.arrays``): one it lists must be there, one it does
    not list is not read (a file of an earlier evaluation may sit there). Metrics without the list (older
    versions) are taken to list what is there.
    """
    path = Path(evaluate) / name
    listed = (metrics.get("files") or {}).get("arrays")
    if listed is None:
        return _read_arrays(path) if path.is_file() else None
    if name not in listed:
        return None
    if not path.is_file():
        raise RealfakeError(
            f"{path} is missing, but {Path(evaluate) / METRICS_NAME} lists it (files.arrays): "
            "run `realfake evaluate` again"
        )
    return _read_arrays(path)


def _read_arrays(path: Path) -> dict:
    """The arrays of an .npz file the evaluation wrote."""
    try:
        with np.load(path, allow_pickle=False) as contents:
            return {name: contents[name] for name in contents.files}
    except (OSError, ValueError) as error:
        raise RealfakeError(f"{path}: not a readable .npz file ({error}); run `realfake evaluate` again") from None


def baseline_title(record: dict) -> str:
    """'logistic regression on catalog quantities' for a baseline record (of metrics.json's ``baselines``)."""
    model = {"logistic": "logistic regression", "boosting": "gradient boosting"}[record["model"]]
    features = {"catalog": "catalog quantities", "pixel": "pixel statistics"}[record["feature_set"]]
    return f"{model} on {features}"


def surest_mistakes(labels: np.ndarray, scores: np.ndarray, label: int, size: int) -> list[int]:
    """The ``size`` examples of class ``label`` the model is surest belong to the other class: the galleries of
    :data:`ATTRIBUTION_NAME` (``gallery_<class>_positions``) and of the report.

    Reals (label 0) by decreasing P(fake), fakes (label 1) by increasing P(fake).
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    members = np.flatnonzero(labels == label)
    wrongness = scores[members] if label == 0 else 1.0 - scores[members]
    return [int(position) for position in members[np.argsort(-wrongness, kind="stable")[:size]]]

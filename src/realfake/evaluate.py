"""Evaluation: the CNN's test predictions, the two-sample verdict, breakdowns and shortcut baselines.

``realfake evaluate`` runs the trained model over the test split of a shard set
(``docs/shards_format.md``), one shard and one batch at a time, and writes to
``settings.out``:

- ``predictions.parquet``: one row per test example, in shard order: the test
  catalog row, the stamp statistics of :func:`stamp_statistics`, ``p_fake``
  (the model's probability of fake) and ``p_fake_<baseline>`` for each shortcut
  baseline;
- ``metrics.json``: :func:`evaluate_predictions`' result (the verdict, the
  breakdowns, the baselines and their sentences) plus the settings;
- ``breakdowns.csv``: the breakdowns as one tidy table, one row per bin.

The statistics live in :func:`evaluate_predictions`, a pure function of the
predictions table (and the training split's features for the baselines), so
they can be checked without TensorFlow. The verdict is a classifier two-sample
test (Lopez-Paz & Oquab 2017, "Revisiting classifier two-sample tests"): if
fakes and reals come from one distribution, no classifier beats the
majority-class share on held-out data, so test accuracy is tested against it
with an exact binomial test (:mod:`realfake.stats`).

Shortcut baselines (:mod:`realfake.baselines`) are trained on the training
split's catalog and the :func:`stamp_statistics` of its stamps, which are
computed here, shard by shard, reading only the stamps' central pixels.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.progress import say
from realfake.atomic import atomic_output
from realfake.baselines import shortcut_baselines, shortcut_sentence
from realfake.errors import RealfakeError
from realfake.features import split_statistics, stamp_statistics
from realfake.shardset import NON_FINITE_INPUT, ShardSet, catalog_name, load_stamps, open_shard_set, short_identity
from realfake.stats import StatisticsSettings
from realfake.verdict import BREAKDOWN_COLUMNS, breakdowns, verdict

PREDICTIONS_NAME = "predictions.parquet"
METRICS_NAME = "metrics.json"
BREAKDOWNS_NAME = "breakdowns.csv"


@dataclass(frozen=True)
class EvaluateSettings:
    """``realfake evaluate``: the shard set, the trained model, the output directory and the statistics."""

    shards: Path
    model: Path
    out: Path
    batch_size: int = 256
    statistics: StatisticsSettings = field(default_factory=StatisticsSettings)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise RealfakeError(f"batch size must be at least 1, got {self.batch_size}")


def evaluate_predictions(
    predictions: pd.DataFrame, settings: StatisticsSettings, train: pd.DataFrame | None = None
) -> dict:
    """The verdict, breakdowns and shortcut baselines of a predictions table; pure (no model, no files).

    ``predictions``: one row per test example with ``label`` (int, fake = 1)
    and ``p_fake`` (float, the CNN's probability of fake), plus any catalog
    columns and :func:`stamp_statistics` columns. ``train``: the training
    split's catalog and stamp statistics, for the shortcut baselines (skipped
    when None). Returns a JSON-ready dict: ``verdict`` (:func:`verdict`),
    ``breakdowns`` (records of :func:`breakdowns`), ``correction``,
    ``baselines`` (:func:`shortcut_baselines` records), ``shortcut_sentence``,
    and ``baseline_scores`` (name -> test fake probabilities, float64 arrays,
    not for JSON).
    """
    for column in ("label", "p_fake"):
        if column not in predictions.columns:
            raise RealfakeError(f"predictions have no {column!r} column")
    labels = predictions["label"].to_numpy()
    if not np.isin(labels, (0, 1)).all():
        raise RealfakeError("predictions: labels must be 0 (real) or 1 (fake)")
    scores = predictions["p_fake"].to_numpy(np.float64)
    if not np.all(np.isfinite(scores)) or np.any((scores < 0) | (scores > 1)):
        raise RealfakeError("predictions: p_fake must be probabilities in [0, 1]")
    cnn = verdict(labels, scores, settings)
    table = breakdowns(predictions, settings)
    if train is not None:
        baselines, baseline_scores = shortcut_baselines(train, predictions, settings)
    else:
        baselines, baseline_scores = [], {}
    return {
        "verdict": cnn,
        "correction": {
            "holm": "Holm step-down (family-wise error rate)",
            "bh": "Benjamini-Hochberg (false discovery rate)",
        }[settings.correction],
        "breakdowns": table.to_dict(orient="records"),
        "baselines": baselines,
        "shortcut_sentence": shortcut_sentence(cnn, baselines),
        "baseline_scores": baseline_scores,
    }


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


# -- running the model ------------------------------------------------------------------------


def load_model(path: Path, channel_names: tuple[str, ...], stamp_size: int, shards: Path, shard_set: str | None = None):
    """The Keras model at ``path``, checked to take (S, S, C) stamps of the shard set's channels and,
    when ``shard_set`` (the manifest's identity) is given, to have been trained on that shard set."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"model file {path} does not exist (run `realfake train` first)")
    import keras

    import realfake.model  # noqa: F401  registers InputNormalization for deserialisation

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad file; all mean the same to a user
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RealfakeError(f"cannot load model {path}: {first_line}") from None
    input_shape = tuple(model.inputs[0].shape)
    if len(input_shape) != 4 or input_shape[-1] != len(channel_names):
        raise RealfakeError(
            f"model {path} takes input {input_shape[1:]} but the shards in {shards} have {len(channel_names)} "
            f"channels ({', '.join(channel_names)})"
        )
    if input_shape[1] not in (None, stamp_size) or input_shape[2] not in (None, stamp_size):
        raise RealfakeError(
            f"model {path} takes {input_shape[1]}x{input_shape[2]} stamps but the shards hold {stamp_size}x{stamp_size}"
        )
    for layer in model.layers:
        names = getattr(layer, "channel_names", None)
        if names is not None and tuple(names) != tuple(channel_names):
            raise RealfakeError(
                f"model {path} was trained on channels {', '.join(names)} but the shards in {shards} have "
                f"{', '.join(channel_names)}"
            )
    if shard_set is not None:
        trained_on = model_shard_set(model)
        if trained_on != shard_set:
            raise RealfakeError(
                f"model {path} was trained on shard set {short_identity(trained_on)}, but {shards} is shard set "
                f"{short_identity(shard_set)}: train it on these shards first (`realfake train`)"
            )
    return model


def model_shard_set(model) -> str | None:
    """The identity of the shard set a model was trained on (its normalisation layer's ``shard_set``);
    None when the model does not record one (made by an older realfake)."""
    for layer in model.layers:
        identity = getattr(layer, "shard_set", None)
        if identity:
            return str(identity)
    return None


def predict(settings: EvaluateSettings) -> tuple[pd.DataFrame, pd.DataFrame | None, ShardSet]:
    """(test predictions, training features, the shard set): the test catalog with stamp statistics and
    ``p_fake``, and the training catalog with stamp statistics. Reads one batch of stamps at a time."""
    shard_set = open_shard_set(settings.shards)
    test_catalog = shard_set.catalog("test")
    if len(test_catalog) == 0:
        raise RealfakeError(f"{settings.shards}: the test split has no examples")
    model = load_model(
        settings.model, shard_set.channel_names, shard_set.stamp_size, settings.shards, shard_set=shard_set.identity
    )
    probabilities, statistics, labels = [], [], []
    for shard in shard_set.test:
        stamps = load_stamps(shard.x)
        labels.append(np.load(shard.y))
        for start in range(0, stamps.shape[0], settings.batch_size):
            block = np.ascontiguousarray(stamps[start : start + settings.batch_size], dtype=np.float32)
            _refuse_non_finite(block, shard.x, start)
            output = np.asarray(model.predict_on_batch(block))
            if output.ndim != 2 or output.shape != (block.shape[0], 2):
                raise RealfakeError(f"model {settings.model} returns shape {output.shape}; expected (N, 2) softmax")
            probabilities.append(output[:, 1].astype(np.float64))
            statistics.append(pd.DataFrame(stamp_statistics(block, shard_set.channel_names)))
    if not np.array_equal(np.concatenate(labels), test_catalog["label"].to_numpy()):
        raise RealfakeError(f"{settings.shards}: {catalog_name('test')} labels disagree with the ytest shards")
    predictions = pd.concat([test_catalog, pd.concat(statistics, ignore_index=True)], axis=1)
    predictions["p_fake"] = np.concatenate(probabilities)
    train = None
    if (shard_set.directory / catalog_name("train")).is_file():
        train_statistics = split_statistics(shard_set.train, shard_set.channel_names, settings.batch_size)
        train = pd.concat([shard_set.catalog("train"), train_statistics], axis=1)
    else:
        say("evaluate", f"{shard_set.directory / catalog_name('train')} is missing; shortcut baselines skipped")
    return predictions, train, shard_set


def _refuse_non_finite(block: np.ndarray, path: Path, first_row: int) -> None:
    """RealfakeError naming the shard file and row of the first non-finite pixel of ``block``
    (rows ``first_row``... of ``path``), as training refuses them."""
    finite = np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)
    if not finite.all():
        row = first_row + int(np.flatnonzero(~finite)[0])
        raise RealfakeError(f"{NON_FINITE_INPUT} in {path} row {row}; the shard set is damaged: make it again")


def run_evaluate(settings: EvaluateSettings) -> dict:
    """Predict, evaluate and write predictions.parquet, metrics.json and breakdowns.csv; returns the metrics."""
    predictions, train, shard_set = predict(settings)
    metrics = evaluate_predictions(predictions, settings.statistics, train)
    metrics["settings"] = dataclasses.asdict(settings)
    metrics["shard_set"] = shard_set.identity
    write_evaluation(settings.out, predictions, metrics)
    say("evaluate", metrics["verdict"]["sentence"])
    say("evaluate", metrics["shortcut_sentence"])
    return metrics


def write_evaluation(out: Path, predictions: pd.DataFrame, metrics: dict) -> None:
    """Write predictions.parquet (with a ``p_fake_<baseline>`` column per baseline), breakdowns.csv and
    metrics.json (strict JSON: NaN as null) atomically; ``metrics`` as :func:`evaluate_predictions` returns it."""
    predictions = predictions.copy()
    metrics = dict(metrics)
    for name, scores in metrics.pop("baseline_scores", {}).items():
        predictions[f"p_fake_{name}"] = scores
    metrics["files"] = {"predictions": PREDICTIONS_NAME, "breakdowns": BREAKDOWNS_NAME}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / PREDICTIONS_NAME) as temporary:
        predictions.to_parquet(temporary, index=False)
    with atomic_output(out / BREAKDOWNS_NAME) as temporary:
        pd.DataFrame(metrics["breakdowns"], columns=BREAKDOWN_COLUMNS).to_csv(temporary, index=False)
    with atomic_output(out / METRICS_NAME) as temporary:
        temporary.write_text(json.dumps(json_ready(metrics), indent=2, allow_nan=False) + "\n")

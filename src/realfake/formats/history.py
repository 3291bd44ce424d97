"""The training history (``history.json``): writing it atomically, reading it back checked.

``realfake train`` writes ``<out>/history.json`` (:data:`HISTORY_NAME`) with
:func:`write_history`, a JSON object (indent 2) with:

- ``select``, ``view``, ``selected_epoch`` (1-based: the epoch whose weights
  ``model.keras`` holds), ``best_validation_loss`` (null without validation),
  ``settings`` (the run's settings as recorded), ``shards`` (the shard
  directory), ``shard_set`` (its identity, :mod:`realfake.formats.shardset`),
  ``channel_names``, ``train_examples``, ``validation_examples``,
  ``steps_per_epoch``, ``workers`` and ``parameters``;
- ``epochs``: one object per epoch, in order, with ``epoch`` (1-based),
  ``global_step`` (at its end), ``train_loss`` and ``train_accuracy`` (means
  over the epoch's steps) and ``validation_loss`` and ``validation_accuracy``
  (over the validation split; null when it is empty).

The report reads it through :func:`read_history` (the per-epoch curves) and
:func:`read_training_record` (the whole object, e.g. its ``shard_set`` and
``selected_epoch``); both refuse, naming the file, anything that is not of this
form (:func:`check_history`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from realfake.atomic import atomic_output
from realfake.errors import RealfakeError
from realfake.formats.jsonfile import read_json

HISTORY_NAME = "history.json"
# The per-epoch quantities the training curves draw.
HISTORY_COLUMNS = ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy")


def check_history(record, path: Path) -> None:
    """RealfakeError naming ``path`` unless ``record`` is a JSON object whose ``epochs`` is a list of objects."""
    epochs = record.get("epochs") if isinstance(record, dict) else None
    if not isinstance(epochs, list) or not all(isinstance(epoch, dict) for epoch in epochs):
        raise RealfakeError(
            f"{path}: not a `realfake train` history (a JSON object whose 'epochs' is a list of objects)"
        )


def write_history(path: Path, record: dict) -> None:
    """Write the training ``record`` (the form above) to ``path``, atomically."""
    check_history(record, path)
    with atomic_output(Path(path)) as temporary:
        temporary.write_text(json.dumps(record, indent=2) + "\n")


def read_training_record(path: Path) -> dict:
    """The whole ``history.json`` object at ``path``, checked (:func:`check_history`); RealfakeError naming the
    file when it is missing, not JSON or not of that form."""
    path = Path(path)
    record = read_json(path, "(run `realfake train` first)")
    check_history(record, path)
    return record


def read_history(path: Path) -> pd.DataFrame:
    """Per-epoch training history: columns epoch, train_loss, train_accuracy, validation_loss, validation_accuracy.

    Reads the ``history.json`` at ``path`` (:func:`read_training_record`); a
    quantity that is null (no validation split) or absent is NaN.
    """
    rows = []
    for index, epoch in enumerate(read_training_record(path)["epochs"]):
        row = {"epoch": epoch.get("epoch", index + 1)}
        for column in HISTORY_COLUMNS:
            row[column] = float(epoch[column]) if epoch.get(column) is not None else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["epoch", *HISTORY_COLUMNS])

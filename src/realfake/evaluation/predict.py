"""Prediction: a trained model over the test split, and the predictions file.

``realfake predict`` writes one predictions file (parquet): for each test
example, in shard order, its catalog row, its stamp statistics
(:func:`realfake.evaluation.features.stamp_statistics`) and ``p_fake``, the model's
probability of fake. The file's metadata (``realfake`` key) records the shard
set's identity, the model (its path, and ``model_sha256``, the SHA-256 of its
weights, :func:`model_digest`: a model is identified by its content, so that
parts predicted by a model replaced at the same path are told apart and one
model reached by two paths, or saved twice, is one), the view it was trained on (:mod:`realfake.model.views`), and which
test shards it covers; whoever reads it (``realfake evaluate``) checks them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from realfake.atomic import atomic_output
from realfake.digests import digest_array
from realfake.errors import RealfakeError
from realfake.evaluation.features import stamp_statistics
from realfake.formats.shardset import (
    NON_FINITE_INPUT,
    ShardSet,
    catalog_name,
    load_stamps,
    open_shard_set,
    short_identity,
)
from realfake.progress import say

PROVENANCE_KEY = "realfake"
# Rows per parquet row group: a predictions file of millions of rows is written and read in pieces.
ROW_GROUP_ROWS = 100_000


@dataclass(frozen=True)
class PredictSettings:
    """``realfake predict``: the shard set, the trained model, the output file, the batch size, and which part
    of the test split (``part`` "I-of-N": the I-th of N near-equal runs of consecutive test shards; "1-of-1",
    the default, is all of it)."""

    shards: Path
    model: Path
    out: Path
    batch_size: int = 256
    part: str = "1-of-1"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise RealfakeError(f"batch size must be at least 1, got {self.batch_size}")
        parse_part(self.part)


def parse_part(text: str) -> tuple[int, int]:
    """ "3-of-8" -> (3, 8); RealfakeError unless 1 <= I <= N."""
    index, separator, count = str(text).partition("-of-")
    if not (separator and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise RealfakeError(f"part {text!r} is not I-of-N with 1 <= I <= N (e.g. 1-of-1, 3-of-8)")
    return int(index), int(count)


def part_shards(part: str, shards: int) -> range:
    """The test shards of part "I-of-N": the I-th of N near-equal runs of consecutive shards (empty when N is
    more than the shards)."""
    index, count = parse_part(part)
    return range((index - 1) * shards // count, index * shards // count)


def run_predict(settings: PredictSettings) -> pd.DataFrame:
    """Predict the test split and write ``settings.out``; returns the predictions."""
    shard_set = open_shard_set(settings.shards)
    if shard_set.examples("test") == 0:
        raise RealfakeError(f"{settings.shards}: the test split has no examples")
    model, digest = load_model_with_digest(shard_set, settings.model)
    shards = part_shards(settings.part, len(shard_set.test))
    predictions = predict_test_split(shard_set, model, settings.model, settings.batch_size, shards, digest)
    write_predictions(settings.out, predictions)
    view = predictions.attrs[PROVENANCE_KEY]["view"]
    say(
        "predict",
        f"{len(predictions)} test examples (part {settings.part}: test shards {shards.start} to {shards.stop - 1} "
        f"of {len(shard_set.test)}), view {view} -> {settings.out}",
    )
    return predictions


def write_predictions(path: Path, predictions: pd.DataFrame) -> None:
    """Write a predictions table to ``path`` (parquet, in row groups, provenance in the metadata), atomically."""
    table = pa.Table.from_pandas(predictions.reset_index(drop=True), preserve_index=False)
    provenance = json.dumps(predictions.attrs.get(PROVENANCE_KEY, {}))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), PROVENANCE_KEY.encode(): provenance})
    with atomic_output(Path(path)) as temporary:
        pq.write_table(table, temporary, row_group_size=ROW_GROUP_ROWS)


def read_predictions(paths, shard_set: ShardSet, view: str | None = None) -> pd.DataFrame:
    """The predictions of one model from its files (one, or the parts of a scattered prediction, in any order),
    each checked to be of ``shard_set`` (and of ``view``, when given), all of one model file (by content:
    :func:`model_identity`), together covering its whole test split once, in order; RealfakeError naming the
    files otherwise."""
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(path) for path in paths]
    parts = [_read_part(path, shard_set, view) for path in paths]
    by_model: dict[str, list[str]] = {}
    for path, part in zip(paths, parts):
        by_model.setdefault(model_identity(part.attrs[PROVENANCE_KEY]), []).append(str(path))
    if len(by_model) > 1:
        models = "; ".join(f"{', '.join(files)} from {identity}" for identity, files in by_model.items())
        raise RealfakeError(
            f"the predictions files come from different models ({models}): predict every part with one model "
            f"(a train run between predict jobs replaces the model file)"
        )
    _check_coverage(paths, parts, shard_set)
    order = sorted(range(len(parts)), key=lambda number: _shard_range(parts[number], shard_set)[0])
    parts = [parts[number] for number in order]
    predictions = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    predictions.attrs[PROVENANCE_KEY] = {**parts[0].attrs[PROVENANCE_KEY], "shards": [0, len(shard_set.test)]}
    labels = shard_set.catalog("test")["label"].to_numpy()
    if "label" not in predictions or not np.array_equal(predictions["label"].to_numpy(), labels):
        raise RealfakeError(f"{', '.join(map(str, paths))} do not hold the test split of {shard_set.directory}")
    return predictions


def model_identity(provenance: dict) -> str:
    """How a predictions file names its model: "model sha256 <first 12 hex digits>", or, for files written
    before realfake recorded the digest, "model file <path>"."""
    digest = provenance.get("model_sha256")
    return f"model sha256 {digest[:12]}" if digest else f"model file {provenance.get('model')}"


def _shard_range(part: pd.DataFrame, shard_set: ShardSet) -> tuple[int, int]:
    start, stop = part.attrs[PROVENANCE_KEY].get("shards") or [0, len(shard_set.test)]
    return int(start), int(stop)


def _check_coverage(paths: list[Path], parts: list[pd.DataFrame], shard_set: ShardSet) -> None:
    """RealfakeError unless the parts cover each test shard of ``shard_set`` exactly once, naming the shards
    that are repeated (and the files that hold them) or missing."""
    holders: list[list[str]] = [[] for _ in shard_set.test]
    for path, part in zip(paths, parts):
        start, stop = _shard_range(part, shard_set)
        for number in range(max(start, 0), min(stop, len(holders))):
            holders[number].append(str(path))
    problems = []
    repeated: dict[tuple[str, ...], list[int]] = {}
    for number, files in enumerate(holders):
        if len(files) > 1:
            repeated.setdefault(tuple(files), []).append(number)
    for files, numbers in repeated.items():
        problems.append(f"{_shards(numbers)} in each of {', '.join(files)}")
    missing = [number for number, files in enumerate(holders) if not files]
    if missing:
        problems.append(f"{_shards(missing)} in none of them (predict those parts)")
    if problems:
        raise RealfakeError(
            f"the predictions files {', '.join(map(str, paths))} do not cover the test shards of "
            f"{shard_set.directory} once each ({len(holders)} shards, numbered from 0): {'; '.join(problems)}"
        )


def _shards(numbers: list[int]) -> str:
    """[2, 3, 4, 7] -> "test shards 2-4, 7 are"; [5] -> "test shard 5 is"."""
    return f"test shard {numbers[0]} is" if len(numbers) == 1 else f"test shards {_ranges(numbers)} are"


def _ranges(numbers: list[int]) -> str:
    """[2, 3, 4, 7] -> "2-4, 7"."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in runs)


def _read_part(path: Path, shard_set: ShardSet, view: str | None) -> pd.DataFrame:
    """One predictions file, checked to be of ``shard_set`` and ``view``."""
    if not path.is_file():
        raise RealfakeError(f"predictions file {path} does not exist (run `realfake predict` first)")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise RealfakeError(f"{path}: not a readable parquet file ({error})") from None
    metadata = table.schema.metadata or {}
    provenance = json.loads(metadata.get(PROVENANCE_KEY.encode(), b"{}"))
    if provenance.get("shard_set") != shard_set.identity:
        raise RealfakeError(
            f"{path} holds predictions for shard set {short_identity(provenance.get('shard_set'))}, but "
            f"{shard_set.directory} is shard set {short_identity(shard_set.identity)}: predict again"
        )
    if view is not None and provenance.get("view") != view:
        raise RealfakeError(f"{path} holds predictions of a model of view {provenance.get('view')}, not {view}")
    predictions = table.to_pandas()
    predictions.attrs[PROVENANCE_KEY] = provenance
    return predictions


def load_model(path: Path, channel_names: tuple[str, ...], stamp_size: int, shards: Path, shard_set: str | None = None):
    """The Keras model at ``path``, checked to take (S, S, C) stamps of the shard set's channels and,
    when ``shard_set`` (the manifest's identity) is given, to have been trained on that shard set."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"model file {path} does not exist (run `realfake train` first)")
    import keras

    import realfake.model.network  # noqa: F401  registers InputNormalization for deserialisation

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


def model_view(model) -> str:
    """The view a model was trained on (:mod:`realfake.model.views`): its ``view`` layer's, else "full"."""
    for layer in model.layers:
        view = getattr(layer, "view", None)
        if isinstance(view, str):
            return view
    return "full"


def model_shard_set(model) -> str | None:
    """The identity of the shard set a model was trained on (its normalisation layer's ``shard_set``);
    None when the model does not record one (made by an older realfake)."""
    for layer in model.layers:
        identity = getattr(layer, "shard_set", None)
        if identity:
            return str(identity)
    return None


def load_model_of(shard_set: ShardSet, path: Path):
    """The model at ``path``, checked to take the shard set's stamps and to have been trained on it."""
    return load_model(path, shard_set.channel_names, shard_set.stamp_size, shard_set.directory, shard_set.identity)


def load_model_with_digest(shard_set: ShardSet, path: Path):
    """:func:`load_model_of` and the model's :func:`model_digest`."""
    model = load_model_of(shard_set, path)
    return model, model_digest(model)


def model_digest(model) -> str:
    """The SHA-256 (hex) of a model's weights: every variable's shape, dtype and values, in order. What
    identifies a trained model by its content: the same weights give the same digest whatever the path or the
    day the file was saved (a .keras file records its save date, so its bytes differ between identical
    trainings), and another training gives another."""
    digest = hashlib.sha256()
    for weights in model.get_weights():
        array = np.ascontiguousarray(weights)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest_array(digest, array)
    return digest.hexdigest()


def predict_test_split(
    shard_set: ShardSet,
    model,
    model_path: Path,
    batch_size: int = 256,
    shards: range | None = None,
    model_sha256: str | None = None,
) -> pd.DataFrame:
    """The test predictions of ``model`` (:func:`load_model_with_digest`, from ``model_path``, whose
    :func:`model_digest` is ``model_sha256``; computed when None): for each example of the test shards numbered
    in ``shards`` (default all), in shard order, its catalog row, its stamp statistics
    (:func:`realfake.evaluation.features.stamp_statistics`) and ``p_fake``. Reads one batch of stamps at a time."""
    shards = range(len(shard_set.test)) if shards is None else shards
    test_catalog = shard_set.catalog("test")
    probabilities, statistics, labels, rows = [], [], [], []
    for number in shards:
        shard = shard_set.test[number]
        stamps = load_stamps(shard.x)
        labels.append(np.load(shard.y))
        rows.append(np.flatnonzero(test_catalog["shard"].to_numpy() == number))
        for start in range(0, stamps.shape[0], batch_size):
            block = np.ascontiguousarray(shard.decode(stamps[start : start + batch_size]))
            _refuse_non_finite(block, shard.x, start)
            output = np.asarray(model.predict_on_batch(block))
            if output.ndim != 2 or output.shape != (block.shape[0], 2):
                raise RealfakeError(f"model {model_path} returns shape {output.shape}; expected (N, 2) softmax")
            probabilities.append(output[:, 1].astype(np.float64))
            statistics.append(pd.DataFrame(stamp_statistics(block, shard_set.channel_names)))
    catalog = test_catalog.iloc[np.concatenate(rows)].reset_index(drop=True) if rows else test_catalog.iloc[:0]
    if labels and not np.array_equal(np.concatenate(labels), catalog["label"].to_numpy()):
        raise RealfakeError(f"{shard_set.directory}: {catalog_name('test')} labels disagree with the ytest shards")
    features = pd.concat(statistics, ignore_index=True) if statistics else pd.DataFrame()
    predictions = pd.concat([catalog, features], axis=1)
    predictions["p_fake"] = np.concatenate(probabilities) if probabilities else np.zeros(0)
    predictions.attrs[PROVENANCE_KEY] = {
        "shard_set": shard_set.identity,
        "model": str(model_path),
        "model_sha256": model_sha256 or model_digest(model),
        "view": model_view(model),
        "shards": [shards.start, shards.stop] if isinstance(shards, range) else None,
    }
    return predictions


def _refuse_non_finite(block: np.ndarray, path: Path, first_row: int) -> None:
    """RealfakeError naming the shard file and row of the first non-finite pixel of ``block``
    (rows ``first_row``... of ``path``), as training refuses them."""
    finite = np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)
    if not finite.all():
        row = first_row + int(np.flatnonzero(~finite)[0])
        raise RealfakeError(f"{NON_FINITE_INPUT} in {path} row {row}; the shard set is damaged: make it again")

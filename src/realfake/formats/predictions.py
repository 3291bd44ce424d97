"""The predictions file (parquet): its writer and its checked reader side by side.

``realfake predict`` writes one predictions file per part of the test split
(:func:`realfake.evaluation.predict.run_predict`), and ``realfake evaluate``
one of all of it (:data:`realfake.formats.evaluation.PREDICTIONS_NAME`): for
each test example, in shard order, its catalog row, its stamp statistics
(:func:`realfake.evaluation.features.stamp_statistics`) and ``p_fake``, the
model's probability of fake, written in row groups of :data:`ROW_GROUP_ROWS`
rows. The file's metadata (:data:`PROVENANCE_KEY`) records the shard set's
identity, the model (its path, and ``model_sha256``, the SHA-256 of its
weights, :func:`realfake.formats.model.model_digest`: a model is identified by
its content, so that parts predicted by a model replaced at the same path are
told apart and one model reached by two paths, or saved twice, is one), the
view it was trained on (:mod:`realfake.model.views`), and which test shards it
covers (``shards``: [start, stop)). :func:`read_predictions` checks them: the
shard set, the view, one model, and every test shard covered once. With a
cross-fitted shard set (:mod:`realfake.crossfit`) each model's files name its
fold, and :func:`read_pooled_predictions` reads the K folds' together.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from realfake.atomic import atomic_output
from realfake.errors import RealfakeError
from realfake.formats.shardset import ShardSet, short_identity

PROVENANCE_KEY = "realfake"
# Rows per parquet row group: a predictions file of millions of rows is written and read in pieces.
ROW_GROUP_ROWS = 100_000


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


def read_pooled_predictions(paths, shard_set: ShardSet, view: str | None = None) -> pd.DataFrame:
    """The predictions of every example of ``shard_set`` from the files of one view's models.

    A shard set of one split: :func:`read_predictions`. A cross-fitted one (:mod:`realfake.crossfit`): the files
    are grouped by the fold their metadata names, each fold's read by :func:`read_predictions` against that fold's
    view (one model per fold, its test examples covered once), and the folds concatenated in order, the order of
    the pooled view's test split (:meth:`realfake.formats.shardset.ShardSet.pooled_view`), with a ``fold`` column.
    The metadata keeps each fold's model (``folds``: the folds' provenance, in order). RealfakeError naming the
    files when a fold has no file or a file names no fold of the set.
    """
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(path) for path in paths]
    if shard_set.folds == 1:
        return read_predictions(paths, shard_set, view)
    by_fold: dict[int, list[Path]] = {fold: [] for fold in range(shard_set.folds)}
    for path in paths:
        fold = _provenance(path).get("fold")
        if fold not in by_fold:
            raise RealfakeError(
                f"{path} names no fold of the shard set in {shard_set.directory} (fold {fold}; it has folds 0 to "
                f"{shard_set.folds - 1}): predict each fold's examples with its own model (realfake predict --fold)"
            )
        by_fold[fold].append(path)
    missing = [str(fold) for fold, files in by_fold.items() if not files]
    if missing:
        raise RealfakeError(
            f"the predictions files {', '.join(map(str, paths))} hold no predictions of fold(s) {', '.join(missing)} "
            f"of the shard set in {shard_set.directory}: every fold's model must score its examples"
        )
    parts = []
    for fold, files in by_fold.items():
        part = read_predictions(files, shard_set.fold_view(fold), view)
        part["fold"] = np.full(len(part), fold, dtype=np.int32)
        parts.append(part)
    predictions = pd.concat(parts, ignore_index=True)
    folds = [part.attrs[PROVENANCE_KEY] for part in parts]
    predictions.attrs[PROVENANCE_KEY] = {
        "shard_set": shard_set.identity,
        "view": folds[0].get("view"),
        "model_sha256": pooled_model_digest(folds),
        "folds": folds,
    }
    return predictions


def pooled_model_digest(folds: list[dict]) -> str:
    """One SHA-256 for the K models of a cross-fitted prediction (their digests in fold order)."""
    digests = [str(provenance.get("model_sha256") or provenance.get("model")) for provenance in folds]
    return hashlib.sha256(" ".join(digests).encode()).hexdigest()


def _provenance(path: Path) -> dict:
    """A predictions file's provenance, from its schema alone (no rows read); RealfakeError naming a missing or
    unreadable file."""
    if not path.is_file():
        raise RealfakeError(f"predictions file {path} does not exist (run `realfake predict` first)")
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as error:
        raise RealfakeError(f"{path}: not a readable parquet file ({error})") from None
    return json.loads(metadata.get(PROVENANCE_KEY.encode(), b"{}"))


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
    """One predictions file, checked (its provenance, :func:`_provenance`, before any row is read) to be of
    ``shard_set`` and ``view``."""
    provenance = _provenance(path)
    if provenance.get("shard_set") != shard_set.identity:
        raise RealfakeError(
            f"{path} holds predictions for shard set {short_identity(provenance.get('shard_set'))}, but "
            f"{shard_set.directory} is shard set {short_identity(shard_set.identity)}: predict again"
        )
    if view is not None and provenance.get("view") != view:
        raise RealfakeError(f"{path} holds predictions of a model of view {provenance.get('view')}, not {view}")
    try:
        predictions = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowInvalid) as error:
        raise RealfakeError(f"{path}: not a readable parquet file ({error})") from None
    predictions.attrs[PROVENANCE_KEY] = provenance
    return predictions

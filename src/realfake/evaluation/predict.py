"""Prediction: a trained model over the test split, into a predictions file.

``realfake predict`` loads the model checked against the shard set
(:func:`realfake.formats.model.load_model_with_digest`) and writes one
predictions file (:mod:`realfake.formats.predictions`, whose reader
``realfake evaluate`` uses): for each test example of its part of the test
split, in shard order, its catalog row, its stamp statistics
(:func:`realfake.evaluation.features.stamp_statistics`) and ``p_fake``, the
model's probability of fake, with the shard set's identity, the model's path
and digest, its view and the test shards covered in the metadata. With a cross-fitted shard set
(:mod:`realfake.crossfit`) the model scores its fold's examples (``--fold``), and the metadata names the fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.crossfit import model_view_of
from realfake.errors import RealfakeError
from realfake.evaluation.features import stamp_statistics
from realfake.formats.model import load_model_with_digest, model_digest, model_view
from realfake.formats.predictions import PROVENANCE_KEY, write_predictions
from realfake.formats.shardset import NON_FINITE_INPUT, ShardSet, catalog_name, load_stamps, open_shard_set
from realfake.progress import say
from realfake.settings import check_settings, setting, spaced


@dataclass(frozen=True)
class PredictSettings:
    """``realfake predict``: the shard set, the trained model, the output file, the batch size, which part of the
    test split, and with a cross-fitted shard set the model's fold."""

    shards: Path = setting(help="shard set directory (docs/shards_format.md)")
    model: Path = setting(help="trained model (model.keras from realfake train)")
    out: Path = setting(help="output file (.parquet)")
    batch_size: int = setting(256, help="stamps per batch", minimum=1)
    part: str = setting(
        "1-of-1",
        help="predict only the I-th of N near-equal runs of consecutive test shards (a scattered prediction; "
        "realfake evaluate --predictions takes the N files); 1-of-1: all of them",
        metavar="I-of-N",
    )
    fold: int | None = setting(
        None,
        help="with a cross-fitted shard set: the fold the model was trained for, whose examples it scores "
        "(realfake train --fold)",
        minimum=0,
    )

    def __post_init__(self) -> None:
        check_settings(self, describe=spaced)
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
    shard_set = model_view_of(open_shard_set(settings.shards), settings.fold)
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


def predict_test_split(
    shard_set: ShardSet,
    model,
    model_path: Path,
    batch_size: int = 256,
    shards: range | None = None,
    model_sha256: str | None = None,
) -> pd.DataFrame:
    """The test predictions of ``model`` (:func:`realfake.formats.model.load_model_with_digest`, from
    ``model_path``, whose :func:`realfake.formats.model.model_digest` is ``model_sha256``; computed when None): for
    each example of the test shards numbered in ``shards`` (default all), in shard order, its catalog row, its
    stamp statistics (:func:`realfake.evaluation.features.stamp_statistics`) and ``p_fake``. Reads one batch of
    stamps at a time."""
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
    if shard_set.fold is not None:  # cross-fitted: the fold whose examples these are
        predictions.attrs[PROVENANCE_KEY]["fold"] = shard_set.fold
    return predictions


def _refuse_non_finite(block: np.ndarray, path: Path, first_row: int) -> None:
    """RealfakeError naming the shard file and row of the first non-finite pixel of ``block``
    (rows ``first_row``... of ``path``), as training refuses them."""
    finite = np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)
    if not finite.all():
        row = first_row + int(np.flatnonzero(~finite)[0])
        raise RealfakeError(f"{NON_FINITE_INPUT} in {path} row {row}; the shard set is damaged: make it again")

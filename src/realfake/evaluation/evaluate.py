"""Evaluation: the verdict, its breakdowns, the shortcut baselines and the audit of a trained CNN.

``realfake evaluate`` takes the CNN's test predictions, either by running the
model (``--model``: :func:`realfake.evaluation.predict.predict_test_split`) or from a
predictions file ``realfake predict`` wrote (``--predictions``), and the
predictions of CNNs trained on restricted views for the shortcut audit
(``--audit VIEW=FILE``), and writes to ``settings.out``
(:func:`realfake.formats.evaluation.write_evaluation`, whose readers the report uses):

- ``predictions.parquet``: one row per test example, in shard order: the test
  catalog row, the stamp statistics, ``p_fake`` (the CNN's probability of
  fake), ``p_fake_<baseline>`` for each shortcut baseline and
  ``p_fake_view_<view>`` for each audited view;
- ``metrics.json``: :func:`evaluate_predictions`' result (the verdict, the
  breakdowns, the baselines, the audit and their sentences), ``mmd`` (the kernel
  two-sample test on the central pixels of every split, :func:`kernel_baseline`),
  the settings and the shard set's identity;
- ``breakdowns.csv``: the breakdowns as one tidy table, one row per bin;
- ``mean_stamps.npz``: the class-mean stamps (:mod:`realfake.evaluation.pixels`), and ``attribution.npz``: the
  CNN's attribution maps (:mod:`realfake.evaluation.attribution`), only when the model is given (``--model``)
  and ``settings.attribution`` is on (``--no-attribution`` switches them off: most of the evaluation's time on
  a small test split, for runs that never look at them).

With a cross-fitted shard set (:mod:`realfake.crossfit`, ``evaluate.folds``), the predictions are every
fold model's, each of its own fold's examples (``--predictions`` and ``--audit`` take every fold's files), read
in the pooled view: every example is tested, with a ``fold`` column, and every AUC compares scores within a fold
only (``docs/verdict.md``, "Cross-fitting"). The shortcut baselines are cross-fitted the same way, one per fold
trained on that fold model's training parts; ``--model`` is fold 0's model, whose attribution maps are of the
examples it scored.

The statistics live in :func:`evaluate_predictions`, a pure function of the
predictions (and the training split's features for the baselines), so they can
be checked without TensorFlow: the verdict (:mod:`realfake.stats.verdict`), the
baselines (:mod:`realfake.evaluation.baselines`, trained on the training split's catalog
and stamp statistics, read shard by shard, only the central pixels) and the
audit (:mod:`realfake.evaluation.audit`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.crossfit import model_view_of
from realfake.errors import RealfakeError
from realfake.evaluation.attribution import attribution_maps
from realfake.evaluation.audit import audit_cause, audit_records, audit_sentence
from realfake.evaluation.baselines import shortcut_baselines, shortcut_sentence
from realfake.evaluation.fake_parameters import fake_parameter_breakdowns, most_fake_looking
from realfake.evaluation.features import statistics_of_examples
from realfake.evaluation.mmd import kernel_two_sample, mmd_sentence
from realfake.evaluation.pixels import pixel_statistics, summary_record
from realfake.evaluation.predict import predict_test_split
from realfake.formats.evaluation import ATTRIBUTION_NAME, MEAN_STAMPS_NAME, write_evaluation
from realfake.formats.model import load_model_with_digest
from realfake.formats.predictions import PROVENANCE_KEY, model_identity, read_pooled_predictions
from realfake.formats.shardset import catalog_name, open_shard_set
from realfake.model.views import check_view
from realfake.progress import say
from realfake.settings import check_settings, parse_name_path, setting, spaced
from realfake.stats.breakdowns import breakdowns, brick_labels, fold_labels
from realfake.stats.settings import StatisticsSettings
from realfake.stats.verdict import verdict


@dataclass(frozen=True)
class EvaluateSettings:
    """``realfake evaluate``: the shard set, the CNN's predictions (a model to run, its predictions files, or
    both), the audited views' predictions, the output directory and the statistics."""

    shards: Path = setting(help="shard set directory (docs/shards_format.md)")
    out: Path = setting(help="output directory")
    model: Path | None = setting(
        None,
        help="trained model (model.keras): run over the test split unless --predictions is given; its attribution "
        "maps are computed either way, unless --no-attribution",
    )
    predictions: tuple[Path, ...] | None = setting(
        None,
        help="its test predictions, from realfake predict: one file, or the files of its parts (--part)",
        parse=Path,
        nargs="+",
    )
    audit: tuple[tuple[str, Path], ...] = setting(
        (),
        help="predictions of a CNN trained on a restricted view (realfake train --view), for the shortcut audit; "
        "repeatable, and once per part for the parts of a scattered prediction",
        parse=parse_name_path,
        repeatable=True,
        metavar="VIEW=FILE",
    )
    batch_size: int = setting(256, help="stamps per batch", minimum=1)
    attribution: bool = setting(
        True,
        help="integrated-gradients attribution maps of the model's surest calls and mistakes (attribution.npz, the "
        "report's 'What the CNN looks at'); most of the evaluation's time on a small test split: --no-attribution "
        "skips them",
    )
    statistics: StatisticsSettings = field(default_factory=StatisticsSettings)

    def __post_init__(self) -> None:
        check_settings(self, describe=spaced)
        if self.model is None and self.predictions is None:
            raise RealfakeError("give the model to evaluate (--model), its predictions (--predictions), or both")
        views = [view for view, _ in self.audit]
        for view in views:
            check_view(view)
        if "full" in views:
            raise RealfakeError(
                "the audit's views are the restricted ones; the full CNN's predictions are --predictions"
            )


def evaluate_predictions(
    predictions: pd.DataFrame,
    settings: StatisticsSettings,
    train: pd.DataFrame | None = None,
    views: dict[str, np.ndarray] | None = None,
) -> dict:
    """The verdict, breakdowns and shortcut baselines of a predictions table; pure (no model, no files).

    ``predictions``: one row per test example with ``label`` (int, fake = 1)
    and ``p_fake`` (float, the CNN's probability of fake), plus any catalog
    columns and :func:`realfake.evaluation.features.stamp_statistics` columns. ``train``: the training
    split's catalog and stamp statistics, for the shortcut baselines (skipped
    when None). Returns a JSON-ready dict: ``verdict`` (:func:`verdict`),
    ``breakdowns`` (records of :func:`breakdowns`), ``correction``,
    ``baselines`` (:func:`shortcut_baselines` records), ``shortcut_sentence``,
    ``audit`` (:func:`realfake.evaluation.audit.audit_records` of the full CNN, the
    restricted ``views``' fake probabilities and the placement columns),
    ``audit_cause``, ``audit_sentence``, and ``baseline_scores`` (name -> test
    fake probabilities, float64 arrays, not for JSON).
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
    cnn = verdict(labels, scores, settings, brick_labels(predictions), folds=fold_labels(predictions))
    table = breakdowns(predictions, settings)
    if train is not None:
        baselines, baseline_scores = shortcut_baselines(train, predictions, settings)
    else:
        baselines, baseline_scores = [], {}
    audit = audit_records(labels, {"full": scores, **(views or {})}, predictions, settings)
    cause = audit_cause(audit)
    return {
        "verdict": cnn,
        "audit": audit,
        "audit_cause": cause,
        "audit_sentence": audit_sentence(cause, audit),
        "correction": {
            "holm": "Holm step-down (family-wise error rate)",
            "bh": "Benjamini-Hochberg (false discovery rate)",
        }[settings.correction],
        "breakdowns": table.to_dict(orient="records"),
        "fake_parameters": fake_parameter_breakdowns(predictions, settings).to_dict(orient="records"),
        "most_fake_looking": most_fake_looking(predictions).to_dict(orient="records"),
        "baselines": baselines,
        "shortcut_sentence": shortcut_sentence(cnn, baselines),
        "baseline_scores": baseline_scores,
    }


def baseline_rows(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Sorted positions of at most ``cap`` training examples for the shortcut baselines: all of them when
    there are no more, else a seeded sample stratified by class (each class keeps its share)."""
    labels = np.asarray(labels)
    if len(labels) <= cap:
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, 6])
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        keep = int(round(cap * members.size / len(labels)))
        chosen.append(rng.choice(members, size=min(keep, members.size), replace=False))
    return np.sort(np.concatenate(chosen))


def baseline_training_set(shard_set, statistics: StatisticsSettings, batch_size: int) -> tuple[pd.DataFrame, dict]:
    """The shortcut baselines' training table: the catalog rows and stamp statistics of
    :func:`baseline_rows` of the training split (only those rows and stamps are read), and its record."""
    labels = shard_set.catalog_column("train", "label")
    rows = baseline_rows(labels, statistics.baseline_rows, statistics.seed)
    catalog = shard_set.catalog_rows("train", rows)
    features = statistics_of_examples(shard_set, "train", rows, batch_size)
    record = {"rows": int(len(rows)), "of": int(len(labels)), "cap": statistics.baseline_rows}
    if len(rows) < len(labels):
        say("evaluate", f"shortcut baselines train on {len(rows)} of {len(labels)} training examples (a sample)")
    return pd.concat([catalog, features], axis=1), record


def baseline_training_set_of(
    shard_set, statistics: StatisticsSettings, batch_size: int
) -> tuple[pd.DataFrame | None, dict | None]:
    """The shortcut baselines' training table and its record (:func:`baseline_training_set`), or (None, None) when
    the shard set has no training catalog. Cross-fitted, one table per fold's model, from that model's training
    parts, with ``model_fold`` naming the model each row trains (a row trains K - 1 of them), so that every
    baseline is cross-fitted as the CNN is and scores each example with a model that never saw its brick."""
    if shard_set.folds == 1:
        if not (shard_set.directory / catalog_name("train")).is_file():
            say("evaluate", f"{shard_set.directory / catalog_name('train')} is missing; shortcut baselines skipped")
            return None, None
        return baseline_training_set(shard_set, statistics, batch_size)
    tables, records = [], []
    for fold in range(shard_set.folds):
        table, record = baseline_training_set(shard_set.fold_view(fold), statistics, batch_size)
        table.insert(0, "model_fold", np.int32(fold))
        tables.append(table)
        records.append(record)
    record = {key: sum(part[key] for part in records) for key in ("rows", "of")}
    return pd.concat(tables, ignore_index=True), {**record, "cap": statistics.baseline_rows, "per_fold": records}


def kernel_baseline(shard_set, statistics: StatisticsSettings, cnn: dict) -> dict | None:
    """The kernel two-sample test on the central pixels (:func:`realfake.evaluation.mmd.kernel_two_sample`) with
    its ``sentence`` against the CNN's verdict ``cnn`` and ``beyond_cnn`` (it finds a difference the CNN does
    not); None when switched off (``mmd_permutations`` 0)."""
    if not statistics.mmd_permutations:
        say("evaluate", "the kernel two-sample test on the central pixels is switched off (mmd permutations 0)")
        return None
    started = time.perf_counter()
    record = kernel_two_sample(shard_set, statistics)
    say("evaluate", f"kernel two-sample test on the central pixels: {time.perf_counter() - started:.1f} s")
    record["sentence"] = mmd_sentence(record, cnn, statistics.significance)
    # What the report puts beside the verdict: a difference the CNN does not find.
    record["beyond_cnn"] = bool(
        record["p_value"] is not None and record["p_value"] < statistics.significance and not cnn["significant"]
    )
    say("evaluate", record["sentence"])
    return record


def run_evaluate(settings: EvaluateSettings) -> dict:
    """Predict (or read the predictions), evaluate and write predictions.parquet, metrics.json, breakdowns.csv,
    mean_stamps.npz and, with a model and ``settings.attribution`` on, attribution.npz; returns the metrics."""
    whole = open_shard_set(settings.shards)
    # Every example the models scored: the test split, or with cross-fitting every fold's examples.
    shard_set = whole.pooled_view()
    if shard_set.examples("test") == 0:
        raise RealfakeError(f"{settings.shards}: the test split has no examples")
    if settings.predictions is None and whole.folds > 1:
        raise RealfakeError(
            f"the shard set in {settings.shards} is cross-fitted in {whole.folds} folds: give every fold model's "
            f"predictions (--predictions, from realfake predict --fold); --model is then fold 0's model, for the "
            f"attribution maps"
        )
    # With cross-fitting, the model given is fold 0's: its attribution maps are of the examples it scored.
    model_view = model_view_of(whole, 0 if whole.folds > 1 else None)
    model, digest = load_model_with_digest(model_view, settings.model) if settings.model is not None else (None, None)
    if settings.predictions is not None:
        predictions = read_pooled_predictions(settings.predictions, shard_set, view="full")
        _check_same_model(fold_provenance(predictions, 0), settings, digest)
    else:
        predictions = predict_test_split(shard_set, model, settings.model, settings.batch_size, model_sha256=digest)
    files: dict[str, list[Path]] = {}
    for view, path in settings.audit:  # a view's parts, in the order given
        files.setdefault(view, []).append(path)
    views = {
        view: read_pooled_predictions(paths, shard_set, view=view)["p_fake"].to_numpy() for view, paths in files.items()
    }
    train, sample = baseline_training_set_of(whole, settings.statistics, settings.batch_size)
    metrics = evaluate_predictions(predictions, settings.statistics, train, views)
    metrics["baseline_training"] = sample
    metrics["mmd"] = kernel_baseline(shard_set, settings.statistics, metrics["verdict"])
    for view, scores in views.items():
        metrics["baseline_scores"][f"view_{view}"] = scores
    arrays = {MEAN_STAMPS_NAME: pixel_statistics(shard_set, settings.statistics.significance)}
    metrics["pixels"] = summary_record(arrays[MEAN_STAMPS_NAME])
    if not settings.attribution:
        say("evaluate", "attribution maps switched off (--no-attribution; evaluate.attribution in the workflow)")
    elif model is not None:
        # The examples the model scored: all of them, or with cross-fitting fold 0's (the first in the pooled order).
        scored = predictions.iloc[: model_view.examples("test")]
        labels, scores = scored["label"].to_numpy(), scored["p_fake"].to_numpy(np.float64)
        arrays[ATTRIBUTION_NAME] = attribution_maps(model, model_view, labels, scores)
    else:
        say("evaluate", "no model given (--model): no attribution maps")
    metrics["settings"] = dataclasses.asdict(settings)
    metrics["shard_set"] = shard_set.identity
    metrics["model_sha256"] = predictions.attrs[PROVENANCE_KEY].get("model_sha256")
    if whole.folds > 1:
        metrics["folds"] = crossfit_record(predictions)
    metrics["storage"] = storage_record(shard_set.manifest.to_json())
    if metrics["storage"]["sentence"]:
        say("evaluate", metrics["storage"]["sentence"])
    write_evaluation(settings.out, predictions, metrics, arrays)
    say("evaluate", metrics["verdict"]["sentence"])
    say("evaluate", metrics["shortcut_sentence"])
    say("evaluate", metrics["audit_sentence"])
    return metrics


def fold_provenance(predictions: pd.DataFrame, fold: int) -> dict:
    """The provenance of fold ``fold``'s predictions (all of them, without cross-fitting)."""
    provenance = predictions.attrs[PROVENANCE_KEY]
    return provenance["folds"][fold] if "folds" in provenance else provenance


def crossfit_record(predictions: pd.DataFrame) -> dict:
    """metrics.json's ``folds`` of a cross-fitted evaluation: per fold its examples, bricks and model."""
    fold_of = predictions["fold"].to_numpy()
    bricks = predictions["brickname"].to_numpy() if "brickname" in predictions.columns else None
    folds = []
    for fold, provenance in enumerate(predictions.attrs[PROVENANCE_KEY]["folds"]):
        members = fold_of == fold
        labels = predictions["label"].to_numpy()[members]
        folds.append(
            {
                "fold": fold,
                "examples": int(members.sum()),
                "real": int(np.sum(labels == 0)),
                "fake": int(np.sum(labels == 1)),
                "bricks": None if bricks is None else int(len(np.unique(bricks[members]))),
                "model_sha256": provenance.get("model_sha256"),
            }
        )
    return {"count": len(folds), "folds": folds}


def storage_record(manifest: dict) -> dict:
    """How the shard set stores its stamps, for metrics.json: ``dtype``, ``clipped`` (pixels beyond float16's
    range, clipped to it when the shards were written) and, when any were, a ``sentence`` for the user: the CNN
    saw those stamps clipped, which the verdict must not hide."""
    storage = manifest.get("storage") or {}
    clipped = int(storage.get("clipped_pixels") or 0)
    sentence = None
    if clipped:
        sentence = (
            f"{clipped} pixel(s) of the shard set were beyond float16's range and were clipped to it when the shards "
            f"were written (shards.dtype float16): the CNN saw those stamps clipped. Make the shards with "
            f"shards.dtype float32 to check that the verdict does not depend on them."
        )
    return {"dtype": storage.get("dtype", "float32"), "clipped": clipped, "sentence": sentence}


def _check_same_model(provenance: dict, settings: EvaluateSettings, digest: str | None) -> None:
    """RealfakeError when ``--predictions`` were made by another model than ``--model`` (by content): the verdict
    would come from one model and the attribution maps from another."""
    if digest is None:
        return
    made_by = provenance.get("model_sha256")
    same = made_by == digest if made_by else Path(str(provenance.get("model"))).resolve() == settings.model.resolve()
    if not same:
        files = ", ".join(str(path) for path in settings.predictions)
        raise RealfakeError(
            f"the predictions {files} come from {model_identity(provenance)}, but --model {settings.model} is "
            f"model sha256 {digest[:12]}: give the model that made them, or predict again with this one"
        )

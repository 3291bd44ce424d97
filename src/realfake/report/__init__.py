"""The report: figures, stamp mosaics, galleries and one self-contained ``index.html``.

``realfake report`` reads the evaluation (``predictions.parquet``,
``metrics.json`` from ``realfake evaluate``), the training history
(``history.json`` from ``realfake train``) and the test stamps of the shard
set, and writes to ``settings.out``:

- ``training_curves.png``, ``roc.png`` (the CNN and the shortcut baselines),
  ``accuracy_vs_g.png`` (accuracy in g-magnitude bins with Clopper-Pearson
  intervals), ``breakdowns.png`` (every breakdown);
- ``mosaic_p99.png``, ``mosaic_p75.png``, ``mosaic_p50.png``,
  ``mosaic_p25.png``, ``mosaic_p01.png``: the original obiwan write-up's Figure 1 at the 99th to
  1st brightness percentiles (:func:`mosaic_pairs`);
- ``gallery_real_called_fake.png``, ``gallery_fake_called_real.png``: the
  real galaxies the CNN is surest are fake and the fakes it is surest are real;
- ``index.html``: the verdict sentence, the tables and all of the images by
  relative path, with inline CSS and no external resources, so it opens from
  disk with no network. A short inline script records on ``<body>``
  (``data-images-loaded="loaded/total"``) how many images loaded, for the
  headless-browser test (:mod:`realfake.report.page`, whose prose is in
  ``text/*.html``).

Every input (``metrics.json`` and the keys the page reads, ``history.json``,
the arrays ``metrics.json`` lists, the sensitivity table, the shard set) is read
and checked before anything is written. The report is then written into a
staging directory next to ``settings.out`` that replaces it whole
(:func:`realfake.atomic.atomic_directory`): a report directory is the old report
or the new one, never a mix, and no figure of an earlier run survives. A
directory holding files a report does not write is refused, not replaced.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.optimize import linear_sum_assignment

from realfake.atomic import atomic_directory, atomic_output
from realfake.conventions import PIXEL_BINS, bands_of
from realfake.errors import RealfakeError
from realfake.evaluation.attribution import surest_mistakes
from realfake.evaluation.baselines import baseline_title
from realfake.evaluation.evaluate import ATTRIBUTION_NAME, MEAN_STAMPS_NAME, METRICS_NAME, PREDICTIONS_NAME
from realfake.formats.shardset import ShardSet, open_shard_set, short_identity
from realfake.progress import say
from realfake.report import figures, pixel_figures
from realfake.report.page import PageContent, ordinal, render_html

BRIGHTNESS_PERCENTILES = (99, 75, 50, 25, 1)
# The predictions' columns the report reads besides label and p_fake: the baselines' scores (ROC) and the
# magnitudes (mosaics, labels).
REPORT_COLUMN_PREFIXES = ("p_fake_", "mag_dered_")
HISTORY_NAME = "history.json"
INDEX_NAME = "index.html"
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
# The per-epoch quantities of history.json (realfake.training.loop) the training curves draw.
HISTORY_COLUMNS = ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy")


@dataclass(frozen=True)
class ReportSettings:
    """``realfake report``: where the evaluation, shards and training outputs are, and the output directory.

    ``mosaic_pairs``: real/fake pairs per mosaic (the original obiwan write-up: 4, eight rows);
    ``gallery_size``: galaxies per gallery; ``sensitivity_table``: a
    ``scripts/sensitivity.py`` table (CSV) to show, or None.
    """

    evaluate: Path
    shards: Path
    train: Path
    out: Path
    mosaic_pairs: int = 4
    gallery_size: int = 8
    sensitivity_table: Path | None = None

    def __post_init__(self) -> None:
        if self.mosaic_pairs < 1 or self.gallery_size < 1:
            raise RealfakeError("mosaic pairs and gallery size must be at least 1")


# -- inputs -----------------------------------------------------------------------------------


def read_history(path: Path) -> pd.DataFrame:
    """Per-epoch training history: columns epoch, train_loss, train_accuracy, validation_loss, validation_accuracy.

    Reads the ``history.json`` that ``realfake train`` writes: a JSON object
    whose ``epochs`` is a list of per-epoch objects; a quantity that is null
    (no validation split) or absent is NaN. RealfakeError naming the file when
    it is missing, not JSON or not of that form.
    """
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"{path} is missing (run `realfake train` first)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RealfakeError(f"{path}: not valid JSON ({error})") from None
    epochs = record.get("epochs") if isinstance(record, dict) else None
    if not isinstance(epochs, list) or not all(isinstance(epoch, dict) for epoch in epochs):
        raise RealfakeError(
            f"{path}: not a `realfake train` history (a JSON object whose 'epochs' is a list of objects)"
        )
    rows = []
    for index, epoch in enumerate(epochs):
        row = {"epoch": epoch.get("epoch", index + 1)}
        for column in HISTORY_COLUMNS:
            row[column] = float(epoch[column]) if epoch.get(column) is not None else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["epoch", *HISTORY_COLUMNS])


def _read_evaluation(directory: Path) -> tuple[pd.DataFrame, dict]:
    directory = Path(directory)
    predictions_path, metrics_path = directory / PREDICTIONS_NAME, directory / METRICS_NAME
    for path in (predictions_path, metrics_path):
        if not path.is_file():
            raise RealfakeError(f"{path} is missing (run `realfake evaluate` first)")
    try:
        metrics = json.loads(metrics_path.read_text())
    except json.JSONDecodeError as error:
        raise RealfakeError(f"{metrics_path}: not valid JSON ({error})") from None
    check_metrics(metrics, metrics_path)
    # Only the columns the report draws: a survey's test split is millions of rows of ~100 catalog columns.
    names = pq.read_schema(predictions_path).names
    wanted = [name for name in names if name in ("label", "p_fake") or name.startswith(REPORT_COLUMN_PREFIXES)]
    predictions = pd.read_parquet(predictions_path, columns=wanted)
    for column in ("label", "p_fake"):
        if column not in predictions.columns:
            raise RealfakeError(f"{predictions_path} has no {column!r} column")
    return predictions, metrics


def check_metrics(metrics, path: Path) -> None:
    """RealfakeError naming ``path`` and the key unless ``metrics`` holds what the report reads: the verdict
    with :data:`VERDICT_KEYS`, each record of the lists in :data:`RECORD_KEYS` (which may be absent) with its
    keys, and a ``storage`` section (optional) whose ``sentence`` is a string or null."""

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


def _read_listed_arrays(evaluate: Path, metrics: dict, name: str) -> dict | None:
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


# -- selections -------------------------------------------------------------------------------


def mosaic_pairs(
    magnitudes: np.ndarray, labels: np.ndarray, brightness_percentile: float, pairs: int
) -> list[tuple[int, int]]:
    """(real, fake) row positions of a Figure 1 mosaic at a brightness percentile.

    The target is the magnitude at that brightness percentile of all test
    examples with a finite magnitude (the 99th brightness percentile is the
    1st magnitude percentile: bright). The ``pairs`` reals closest to it are
    taken, and each is paired with a distinct fake so that the summed
    magnitude differences are smallest (an optimal assignment). Pairs are
    ordered bright to faint. Fewer pairs when a class runs short.
    """
    magnitudes = np.asarray(magnitudes, dtype=np.float64)
    labels = np.asarray(labels)
    finite = np.isfinite(magnitudes)
    reals = np.flatnonzero(finite & (labels == 0))
    fakes = np.flatnonzero(finite & (labels == 1))
    count = min(pairs, reals.size, fakes.size)
    if count == 0:
        return []
    target = float(np.percentile(magnitudes[finite], 100.0 - brightness_percentile))
    chosen = reals[np.argsort(np.abs(magnitudes[reals] - target), kind="stable")[:count]]
    cost = np.abs(magnitudes[chosen][:, None] - magnitudes[fakes][None, :])
    real_rows, fake_columns = linear_sum_assignment(cost)
    result = [(int(chosen[row]), int(fakes[column])) for row, column in zip(real_rows, fake_columns)]
    return sorted(result, key=lambda pair: magnitudes[pair[0]])


# -- the report -------------------------------------------------------------------------------


def _magnitude_column(predictions: pd.DataFrame) -> str | None:
    for column in ("mag_dered_g", *[c for c in predictions.columns if c.startswith("mag_dered_")]):
        if column in predictions.columns:
            return column
    return None


def _right_label(predictions: pd.DataFrame, position: int, magnitude_column: str | None, with_score: bool) -> str:
    lines = []
    if magnitude_column is not None:
        value = predictions[magnitude_column].iloc[position]
        band = magnitude_column.removeprefix("mag_dered_")
        lines.append(f"{band} {value:.2f}" if math.isfinite(value) else f"{band} n/a")
    if with_score:
        lines.append(f"P(fake) {predictions['p_fake'].iloc[position]:.2f}")
    return "\n".join(lines)


def _training_record(history_path: Path) -> dict:
    """The top-level record of a ``realfake train`` history that :func:`read_history` has read."""
    return json.loads(Path(history_path).read_text())


def _check_shard_set(recorded: str | None, identity: str, path: Path, shards: Path) -> None:
    """RealfakeError unless the output at ``path`` records the shard set ``identity`` of ``shards``."""
    if recorded != identity:
        stage = "evaluate" if Path(path).name == METRICS_NAME else "train"
        raise RealfakeError(
            f"{path} was made from shard set {short_identity(recorded)}, but {shards} is shard set "
            f"{short_identity(identity)}: run `realfake {stage}` on these shards first"
        )


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report reads, read and checked (:func:`read_report_inputs`) before anything is written.

    ``mean_stamps``, ``attribution``: the arrays of ``mean_stamps.npz`` and ``attribution.npz``, or None
    where the evaluation made none; ``sensitivity``: the sensitivity table, or None.
    """

    predictions: pd.DataFrame
    metrics: dict
    history: pd.DataFrame
    selected_epoch: int | None
    shard_set: ShardSet
    mean_stamps: dict | None
    attribution: dict | None
    sensitivity: pd.DataFrame | None


def read_report_inputs(settings: ReportSettings) -> ReportInputs:
    """Read and check the evaluation, the history, the shard set, the arrays and the sensitivity table, and
    that ``settings.out`` may be replaced; RealfakeError naming the file and key at the first problem."""
    predictions, metrics = _read_evaluation(settings.evaluate)
    history_path = Path(settings.train) / HISTORY_NAME
    history = read_history(history_path)
    record = _training_record(history_path)
    shard_set = open_shard_set(settings.shards)
    identity = shard_set.identity
    _check_shard_set(metrics.get("shard_set"), identity, Path(settings.evaluate) / METRICS_NAME, settings.shards)
    _check_shard_set(record.get("shard_set"), identity, history_path, settings.shards)
    test_examples = shard_set.examples("test")
    if test_examples != len(predictions):
        raise RealfakeError(
            f"{Path(settings.evaluate) / PREDICTIONS_NAME} has {len(predictions)} rows but the test shards of "
            f"{settings.shards} hold {test_examples} examples: they come from different shard sets"
        )
    mean_stamps = _read_listed_arrays(settings.evaluate, metrics, MEAN_STAMPS_NAME)
    attribution = _read_listed_arrays(settings.evaluate, metrics, ATTRIBUTION_NAME)
    sensitivity = read_sensitivity_table(settings.sensitivity_table) if settings.sensitivity_table else None
    check_replaceable(Path(settings.out))
    selected_epoch = record.get("selected_epoch")
    return ReportInputs(
        predictions,
        metrics,
        history,
        selected_epoch if isinstance(selected_epoch, int) else None,
        shard_set,
        mean_stamps,
        attribution,
        sensitivity,
    )


def is_report_file(name: str) -> bool:
    """Whether a file named ``name`` is one a report writes: ``index.html``, a PNG figure, or the temporary of
    one (a report written in place by an older version, then interrupted)."""
    return name == INDEX_NAME or name.endswith(".png") or re.fullmatch(r"\..+\.tmp-.+", name) is not None


def check_replaceable(out: Path) -> None:
    """RealfakeError unless ``out`` is absent or a directory holding report files only (:func:`is_report_file`):
    the report replaces its directory whole, and never deletes what it did not write."""
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise RealfakeError(f"{out} exists and is not a directory: give --out a directory of its own")
    others = sorted(entry.name for entry in out.iterdir() if not is_report_file(entry.name))
    if others:
        more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
        raise RealfakeError(
            f"{out} holds {others[0]}{more}, which a report does not write: it is not replaced; "
            "give --out a directory of its own"
        )


def run_report(settings: ReportSettings) -> Path:
    """Write the figures, mosaics, galleries and ``index.html`` to ``settings.out``; returns the path of
    ``index.html``.

    Every input is read and checked first (:func:`read_report_inputs`). The report is then written into a
    staging directory next to ``settings.out`` that replaces it whole when complete
    (:func:`realfake.atomic.atomic_directory`): an existing report is either the old one or the new one, and no
    figure of an earlier run survives.
    """
    inputs = read_report_inputs(settings)
    out = Path(settings.out)
    with atomic_directory(out) as staging:
        write_report(inputs, settings, staging)
    index = out / INDEX_NAME
    say("report", f"wrote {index}")
    return index


def write_report(inputs: ReportInputs, settings: ReportSettings, out: Path) -> Path:
    """Write the report of checked ``inputs`` into the directory ``out``; returns the path of ``index.html``."""
    predictions, metrics, shard_set = inputs.predictions, inputs.metrics, inputs.shard_set
    channel_names = shard_set.channel_names
    labels = predictions["label"].to_numpy()
    scores = predictions["p_fake"].to_numpy(np.float64)
    table = pd.DataFrame(metrics.get("breakdowns", []))
    for column in ("low", "high", "accuracy", "accuracy_low", "accuracy_high", "chance"):
        if column in table:
            table[column] = pd.to_numeric(table[column], errors="coerce")

    figures_written = {}
    figures_written["training_curves"] = figures.training_curves(
        inputs.history, out / "training_curves.png", inputs.selected_epoch
    )
    curves = {"CNN": scores}
    for baseline in metrics.get("baselines", []):
        column = f"p_fake_{baseline['name']}"
        if column in predictions.columns:
            curves[baseline_title(baseline)] = predictions[column].to_numpy(np.float64)
    if np.unique(labels).size == 2:
        figures_written["roc"] = figures.roc_figure(labels, curves, out / "roc.png")
    magnitude_column = _magnitude_column(predictions)
    if len(table):
        magnitude_rows = table[table["breakdown"].str.endswith("magnitude")]
        if len(magnitude_rows):
            name = magnitude_rows["breakdown"].iloc[0]
            figures_written["accuracy_vs_g"] = figures.accuracy_figure(
                magnitude_rows[magnitude_rows["breakdown"] == name], f"dereddened {name}", out / "accuracy_vs_g.png"
            )
        figures_written["breakdowns"] = figures.breakdowns_figure(table, out / "breakdowns.png")

    mosaics = []
    magnitudes = (
        predictions[magnitude_column].to_numpy(np.float64) if magnitude_column else np.full(len(labels), np.nan)
    )
    for percentile in BRIGHTNESS_PERCENTILES:
        pairs = mosaic_pairs(magnitudes, labels, percentile, settings.mosaic_pairs)
        positions = [position for pair in pairs for position in pair]
        path = out / f"mosaic_p{percentile:02d}.png"
        figures.stamp_rows_figure(
            shard_set.read_examples("test", positions),
            channel_names,
            ["R" if labels[position] == 0 else "F" for position in positions],
            [_right_label(predictions, position, magnitude_column, with_score=False) for position in positions],
            f"{ordinal(percentile)} percentile in brightness",
            path,
        )
        mosaics.append((percentile, path, pairs))

    galleries = []
    for label, name, title in (
        (0, "gallery_real_called_fake", "Real galaxies the CNN is surest are fake"),
        (1, "gallery_fake_called_real", "Fakes the CNN is surest are real"),
    ):
        positions = surest_mistakes(labels, scores, label, settings.gallery_size)
        path = out / f"{name}.png"
        figures.stamp_rows_figure(
            shard_set.read_examples("test", positions),
            channel_names,
            ["R" if label == 0 else "F"] * len(positions),
            [_right_label(predictions, position, magnitude_column, with_score=True) for position in positions],
            title,
            path,
        )
        galleries.append((title, path))

    pixel_pages = _pixel_figures(inputs.mean_stamps, inputs.attribution, metrics, out)

    if inputs.sensitivity is not None:
        figures_written["sensitivity"] = figures.sensitivity_figure(
            inputs.sensitivity.to_dict(orient="records"), out / "sensitivity.png"
        )
    page = render_html(
        PageContent(
            metrics,
            table,
            figures_written,
            mosaics,
            galleries,
            magnitudes,
            bands_of(channel_names),
            inputs.sensitivity,
            pixel_pages,
        )
    )
    index = out / INDEX_NAME
    with atomic_output(index) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return index


def _read_arrays(path: Path) -> dict:
    """The arrays of an .npz file the evaluation wrote."""
    try:
        with np.load(path, allow_pickle=False) as contents:
            return {name: contents[name] for name in contents.files}
    except (OSError, ValueError) as error:
        raise RealfakeError(f"{path}: not a readable .npz file ({error}); run `realfake evaluate` again") from None


def _pixel_figures(summary: dict | None, attribution: dict | None, metrics: dict, out: Path) -> dict[str, list[Path]]:
    """The figures of the difference in pixels, by section: ``mean_difference`` and ``radial_profile`` (one
    per magnitude bin, :data:`PIXEL_BINS` of them, a bin the test split lacks drawn as empty) from the mean
    stamps, ``attribution`` and ``fake_parameters``; a section whose inputs the evaluation did not make is left
    out (the page says so)."""
    written: dict[str, list[Path]] = {}
    if summary is not None:
        present = summary["counts"].shape[0]
        for name, draw in (("mean_difference", pixel_figures.mean_difference_figure),
                           ("radial_profile", pixel_figures.radial_profile_figure)):  # fmt: skip
            written[name] = [
                draw(summary, index, out / f"{name}_{index}.png")
                if index < present
                else pixel_figures.empty_figure(f"magnitude bin {index}: no test examples", out / f"{name}_{index}.png")
                for index in range(PIXEL_BINS)
            ]
    if attribution is not None:
        written["attribution"] = [pixel_figures.attribution_figure(attribution, out / "attribution.png")]
    records = metrics.get("fake_parameters") or []
    if records:
        tolerance = float(metrics.get("verdict", {}).get("tolerance", 0.0))
        written["fake_parameters"] = [
            pixel_figures.fake_parameters_figure(pd.DataFrame(records), tolerance, out / "fake_parameters.png")
        ]
    return written


SENSITIVITY_COLUMNS = ("bricks", "mismatch", "strength", "examples", "auc", "auc_low", "auc_high", "auc_p_value",
                       "outcome", "minimum_detectable_auc")  # fmt: skip
# The sensitivity table's numbers: what identifies a run (finite; the counts whole) and what it measured (NaN,
# written "nan", where a run measured nothing).
SENSITIVITY_RUN_COLUMNS = ("bricks", "strength", "examples")
SENSITIVITY_COUNT_COLUMNS = ("bricks", "examples")
SENSITIVITY_MEASURED_COLUMNS = ("auc", "auc_low", "auc_high", "auc_p_value", "minimum_detectable_auc")


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

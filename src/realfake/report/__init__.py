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

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from realfake.atomic import atomic_directory, atomic_output
from realfake.conventions import bands_of
from realfake.crossfit import model_view_of
from realfake.errors import RealfakeError
from realfake.formats.evaluation import (
    ATTRIBUTION_NAME,
    MEAN_STAMPS_NAME,
    METRICS_NAME,
    PREDICTIONS_NAME,
    baseline_title,
    read_evaluation,
    read_listed_arrays,
    surest_mistakes,
)
from realfake.formats.history import HISTORY_NAME, read_history, read_training_record
from realfake.formats.sensitivity import read_sensitivity_table
from realfake.formats.shardset import ShardSet, open_shard_set, short_identity
from realfake.progress import say
from realfake.report import figures, pixel_figures
from realfake.report.markup import ordinal
from realfake.report.page import PageContent, render_html
from realfake.settings import check_settings, setting, spaced

BRIGHTNESS_PERCENTILES = (99, 75, 50, 25, 1)
INDEX_NAME = "index.html"


@dataclass(frozen=True)
class ReportSettings:
    """``realfake report``: where the evaluation, shards and training outputs are, the output directory, and
    what the mosaics and galleries hold."""

    evaluate: Path = setting(help="directory of realfake evaluate's outputs")
    shards: Path = setting(help="the shard set that was evaluated")
    train: Path = setting(help="directory of realfake train's outputs")
    out: Path = setting(help="output directory")
    mosaic_pairs: int = setting(
        4, help="real/fake pairs per mosaic (the original obiwan write-up's Figure 1: 4, eight rows)", minimum=1
    )
    gallery_size: int = setting(8, help="galaxies per gallery", minimum=1)
    sensitivity_table: Path | None = setting(
        None, help="a sensitivity table (CSV from scripts/sensitivity.py) to show: what the test can detect"
    )

    def __post_init__(self) -> None:
        check_settings(self, describe=spaced)


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
    predictions, metrics = read_evaluation(settings.evaluate)
    history_path = Path(settings.train) / HISTORY_NAME
    history = read_history(history_path)
    record = read_training_record(history_path)
    whole = open_shard_set(settings.shards)
    # Every example the models scored (with cross-fitting, every fold's); the training curves of fold 0's model.
    shard_set = whole.pooled_view()
    trained = model_view_of(whole, 0 if whole.folds > 1 else None)
    _check_shard_set(
        metrics.get("shard_set"), shard_set.identity, Path(settings.evaluate) / METRICS_NAME, settings.shards
    )
    _check_shard_set(record.get("shard_set"), trained.identity, history_path, settings.shards)
    test_examples = shard_set.examples("test")
    if test_examples != len(predictions):
        raise RealfakeError(
            f"{Path(settings.evaluate) / PREDICTIONS_NAME} has {len(predictions)} rows but the test shards of "
            f"{settings.shards} hold {test_examples} examples: they come from different shard sets"
        )
    mean_stamps = read_listed_arrays(settings.evaluate, metrics, MEAN_STAMPS_NAME)
    attribution = read_listed_arrays(settings.evaluate, metrics, ATTRIBUTION_NAME)
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


def within_fold_quantiles(scores: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each score as its quantile (midrank / count) among its fold's: the K cross-fitted models' scores are not
    on one scale, their within-fold ranks are (the ROC of a cross-fitted run)."""
    from scipy.stats import rankdata

    quantiles = np.empty(len(scores), dtype=np.float64)
    for fold in np.unique(folds):
        members = folds == fold
        quantiles[members] = rankdata(scores[members]) / members.sum()
    return quantiles


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
    predictions, metrics = inputs.predictions, inputs.metrics
    table = _breakdown_table(metrics)
    figures_written = _summary_figures(inputs, table, out)
    magnitude_column = _magnitude_column(predictions)
    magnitudes = (
        predictions[magnitude_column].to_numpy(np.float64) if magnitude_column else np.full(len(predictions), np.nan)
    )
    mosaics = _mosaics(inputs, magnitudes, magnitude_column, settings.mosaic_pairs, out)
    galleries = _galleries(inputs, magnitude_column, settings.gallery_size, out)
    pixel_pages = pixel_figures.draw_pixel_figures(inputs.mean_stamps, inputs.attribution, metrics, out)
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
            bands_of(inputs.shard_set.channel_names),
            inputs.sensitivity,
            pixel_pages,
        )
    )
    index = out / INDEX_NAME
    with atomic_output(index) as temporary:
        temporary.write_text(page, encoding="utf-8")
    return index


def _breakdown_table(metrics: dict) -> pd.DataFrame:
    """The breakdowns of ``metrics`` as a table, one row per bin, its numbers as numbers (NaN where null)."""
    table = pd.DataFrame(metrics.get("breakdowns", []))
    for column in ("low", "high", "accuracy", "accuracy_low", "accuracy_high", "chance"):
        if column in table:
            table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def _summary_figures(inputs: ReportInputs, table: pd.DataFrame, out: Path) -> dict[str, Path]:
    """The training curves, the ROC curves of the CNN and the baselines (when the test split has both classes),
    and the accuracy against magnitude and every breakdown (when there are breakdowns); their paths by key."""
    predictions, metrics = inputs.predictions, inputs.metrics
    labels = predictions["label"].to_numpy()
    figures_written = {}
    figures_written["training_curves"] = figures.training_curves(
        inputs.history, out / "training_curves.png", inputs.selected_epoch
    )
    curves = {"CNN": predictions["p_fake"].to_numpy(np.float64)}
    for baseline in metrics.get("baselines", []):
        column = f"p_fake_{baseline['name']}"
        if column in predictions.columns:
            curves[baseline_title(baseline)] = predictions[column].to_numpy(np.float64)
    if "fold" in predictions.columns:  # cross-fitted: the K models' scores compared as within-fold quantiles
        curves = {
            name: within_fold_quantiles(scores, predictions["fold"].to_numpy()) for name, scores in curves.items()
        }
    if np.unique(labels).size == 2:
        figures_written["roc"] = figures.roc_figure(labels, curves, out / "roc.png")
    if len(table):
        magnitude_rows = table[table["breakdown"].str.endswith("magnitude")]
        if len(magnitude_rows):
            name = magnitude_rows["breakdown"].iloc[0]
            figures_written["accuracy_vs_g"] = figures.accuracy_figure(
                magnitude_rows[magnitude_rows["breakdown"] == name], f"dereddened {name}", out / "accuracy_vs_g.png"
            )
        figures_written["breakdowns"] = figures.breakdowns_figure(table, out / "breakdowns.png")
    return figures_written


def _mosaics(
    inputs: ReportInputs, magnitudes: np.ndarray, magnitude_column: str | None, pairs_per_mosaic: int, out: Path
) -> list:
    """Draw the mosaics, one per :data:`BRIGHTNESS_PERCENTILES`; returns (percentile, path, pairs) of each."""
    predictions, shard_set = inputs.predictions, inputs.shard_set
    labels = predictions["label"].to_numpy()
    mosaics = []
    for percentile in BRIGHTNESS_PERCENTILES:
        pairs = mosaic_pairs(magnitudes, labels, percentile, pairs_per_mosaic)
        positions = [position for pair in pairs for position in pair]
        path = out / f"mosaic_p{percentile:02d}.png"
        figures.stamp_rows_figure(
            shard_set.read_examples("test", positions),
            shard_set.channel_names,
            ["R" if labels[position] == 0 else "F" for position in positions],
            [_right_label(predictions, position, magnitude_column, with_score=False) for position in positions],
            f"{ordinal(percentile)} percentile in brightness",
            path,
        )
        mosaics.append((percentile, path, pairs))
    return mosaics


def _galleries(inputs: ReportInputs, magnitude_column: str | None, size: int, out: Path) -> list:
    """Draw the two galleries of the surest mistakes, ``size`` galaxies each; returns (title, path) of each."""
    predictions, shard_set = inputs.predictions, inputs.shard_set
    labels = predictions["label"].to_numpy()
    scores = predictions["p_fake"].to_numpy(np.float64)
    galleries = []
    for label, name, title in (
        (0, "gallery_real_called_fake", "Real galaxies the CNN is surest are fake"),
        (1, "gallery_fake_called_real", "Fakes the CNN is surest are real"),
    ):
        positions = surest_mistakes(labels, scores, label, size)
        path = out / f"{name}.png"
        figures.stamp_rows_figure(
            shard_set.read_examples("test", positions),
            shard_set.channel_names,
            ["R" if label == 0 else "F"] * len(positions),
            [_right_label(predictions, position, magnitude_column, with_score=True) for position in positions],
            title,
            path,
        )
        galleries.append((title, path))
    return galleries

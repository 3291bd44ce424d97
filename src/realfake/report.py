"""The report: figures, stamp mosaics, galleries and one self-contained ``index.html``.

``realfake report`` reads the evaluation (``predictions.parquet``,
``metrics.json`` from ``realfake evaluate``), the training history
(``history.json`` from ``realfake train``) and the test stamps of the shard
set, and writes to ``settings.out``:

- ``training_curves.png``, ``roc.png`` (the CNN and the shortcut baselines),
  ``accuracy_vs_g.png`` (accuracy in g-magnitude bins with Clopper-Pearson
  intervals), ``breakdowns.png`` (every breakdown);
- ``mosaic_p99.png``, ``mosaic_p75.png``, ``mosaic_p50.png``,
  ``mosaic_p25.png``, ``mosaic_p01.png``: the seed's Figure 1 at the 99th to
  1st brightness percentiles (:func:`mosaic_pairs`);
- ``gallery_real_called_fake.png``, ``gallery_fake_called_real.png``: the
  real galaxies the CNN is surest are fake and the fakes it is surest are real;
- ``index.html``: the verdict sentence, the tables and all of the images by
  relative path, with inline CSS and no external resources, so it opens from
  disk with no network. A short inline script records on ``<body>``
  (``data-images-loaded="loaded/total"``) how many images loaded, for the
  headless-browser test.

Every file is written atomically.
"""

from __future__ import annotations

import html
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from realfake import figures, stats
from realfake.atomic import atomic_output
from realfake.baselines import baseline_title
from realfake.errors import RealfakeError
from realfake.training.shardset import manifest_identity, short_identity
from realfake.verdict import OUTCOME_WORDS
from realfake.evaluate import (
    METRICS_NAME,
    PREDICTIONS_NAME,
    bands_of,
    channel_names_of,
    load_stamps,
    read_manifest,
    split_shards,
)

BRIGHTNESS_PERCENTILES = (99, 75, 50, 25, 1)
HISTORY_NAME = "history.json"
INDEX_NAME = "index.html"
# history.json keys written by realfake.training, then the Keras History names.
HISTORY_KEYS = {
    "train_loss": ("train_loss", "loss"),
    "train_accuracy": ("train_accuracy", "accuracy", "acc"),
    "validation_loss": ("validation_loss", "val_loss"),
    "validation_accuracy": ("validation_accuracy", "val_accuracy", "val_acc"),
}


@dataclass(frozen=True)
class ReportSettings:
    """``realfake report``: where the evaluation, shards and training outputs are, and the output directory.

    ``mosaic_pairs``: real/fake pairs per mosaic (the seed: 4, eight rows);
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

    Accepts ``{"epochs": [{...}, ...]}`` (``realfake train``), a list of
    per-epoch dicts, or a Keras ``History.history`` dict of lists; missing
    quantities are NaN. RealfakeError naming the file when it is missing or
    not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"{path} is missing (run `realfake train` first)")
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RealfakeError(f"{path}: not valid JSON ({error})") from None
    if isinstance(record, dict) and "epochs" in record:
        epochs = record["epochs"]
    elif isinstance(record, dict) and record and all(isinstance(value, list) for value in record.values()):
        length = max(len(value) for value in record.values())
        epochs = [{key: value[index] for key, value in record.items() if index < len(value)} for index in range(length)]
    elif isinstance(record, list):
        epochs = record
    else:
        raise RealfakeError(f"{path}: expected a list of epochs or a dict with 'epochs'")
    rows = []
    for index, epoch in enumerate(epochs):
        if not isinstance(epoch, dict):
            raise RealfakeError(f"{path}: epoch {index + 1} is not a JSON object")
        row = {"epoch": epoch.get("epoch", index + 1)}
        for column, keys in HISTORY_KEYS.items():
            value = next((epoch[key] for key in keys if epoch.get(key) is not None), None)
            row[column] = float(value) if value is not None else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["epoch", *HISTORY_KEYS])


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
    predictions = pd.read_parquet(predictions_path)
    for column in ("label", "p_fake"):
        if column not in predictions.columns:
            raise RealfakeError(f"{predictions_path} has no {column!r} column")
    return predictions, metrics


def read_test_stamps(directory: Path, manifest: dict, positions: Sequence[int]) -> np.ndarray:
    """Test stamps float32 (k, S, S, C) at ``positions`` (0-based, in shard order, as the test catalog rows)."""
    split = split_shards(manifest, directory, "test")
    starts = np.concatenate([[0], np.cumsum(split.examples)])
    stamps = []
    for position in positions:
        shard = int(np.searchsorted(starts, position, side="right") - 1)
        if not 0 <= shard < len(split.x):
            raise RealfakeError(f"test example {position} is not in the shards of {directory}")
        stamps.append(np.array(load_stamps(split.x[shard])[position - starts[shard]], dtype=np.float32))
    if not stamps:
        return np.empty((0,))
    return np.stack(stamps)


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


def gallery_positions(labels: np.ndarray, scores: np.ndarray, label: int, size: int) -> list[int]:
    """The ``size`` examples of class ``label`` the model is surest belong to the other class.

    Reals (label 0) by decreasing P(fake), fakes (label 1) by increasing P(fake).
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    members = np.flatnonzero(labels == label)
    wrongness = scores[members] if label == 0 else 1.0 - scores[members]
    return [int(position) for position in members[np.argsort(-wrongness, kind="stable")[:size]]]


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
    """A ``realfake train`` history's top-level record ({} for other histories: lists, Keras histories)."""
    record = json.loads(Path(history_path).read_text())
    return record if isinstance(record, dict) and "epochs" in record else {}


def _check_shard_set(recorded: str | None, identity: str, path: Path, shards: Path) -> None:
    """RealfakeError unless the output at ``path`` records the shard set ``identity`` of ``shards``."""
    if recorded != identity:
        stage = "evaluate" if Path(path).name == METRICS_NAME else "train"
        raise RealfakeError(
            f"{path} was made from shard set {short_identity(recorded)}, but {shards} is shard set "
            f"{short_identity(identity)}: run `realfake {stage}` on these shards first"
        )


def make_report(settings: ReportSettings) -> Path:
    """Write the figures, mosaics, galleries and ``index.html``; returns the path of ``index.html``."""
    predictions, metrics = _read_evaluation(settings.evaluate)
    history_path = Path(settings.train) / HISTORY_NAME
    history = read_history(history_path)
    manifest = read_manifest(settings.shards)
    identity = manifest_identity(manifest, Path(settings.shards) / "manifest.json")
    _check_shard_set(metrics.get("shard_set"), identity, Path(settings.evaluate) / METRICS_NAME, settings.shards)
    _check_shard_set(_training_record(history_path).get("shard_set"), identity, history_path, settings.shards)
    channel_names = channel_names_of(manifest, settings.shards)
    test_examples = sum(split_shards(manifest, settings.shards, "test").examples)
    if test_examples != len(predictions):
        raise RealfakeError(
            f"{Path(settings.evaluate) / PREDICTIONS_NAME} has {len(predictions)} rows but the test shards of "
            f"{settings.shards} hold {test_examples} examples: they come from different shard sets"
        )
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = predictions["label"].to_numpy()
    scores = predictions["p_fake"].to_numpy(np.float64)
    table = pd.DataFrame(metrics.get("breakdowns", []))
    for column in ("low", "high", "accuracy", "accuracy_low", "accuracy_high", "chance"):
        if column in table:
            table[column] = pd.to_numeric(table[column], errors="coerce")

    figures_written = {}
    selected_epoch = _training_record(history_path).get("selected_epoch")
    figures_written["training_curves"] = figures.training_curves(
        history, out / "training_curves.png", selected_epoch if isinstance(selected_epoch, int) else None
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
            read_test_stamps(settings.shards, manifest, positions),
            channel_names,
            ["R" if labels[position] == 0 else "F" for position in positions],
            [_right_label(predictions, position, magnitude_column, with_score=False) for position in positions],
            f"{_ordinal(percentile)} percentile in brightness",
            path,
        )
        mosaics.append((percentile, path, pairs))

    galleries = []
    for label, name, title in (
        (0, "gallery_real_called_fake", "Real galaxies the CNN is surest are fake"),
        (1, "gallery_fake_called_real", "Fakes the CNN is surest are real"),
    ):
        positions = gallery_positions(labels, scores, label, settings.gallery_size)
        path = out / f"{name}.png"
        figures.stamp_rows_figure(
            read_test_stamps(settings.shards, manifest, positions),
            channel_names,
            ["R" if label == 0 else "F"] * len(positions),
            [_right_label(predictions, position, magnitude_column, with_score=True) for position in positions],
            title,
            path,
        )
        galleries.append((title, path))

    sensitivity = read_sensitivity_table(settings.sensitivity_table) if settings.sensitivity_table else None
    if sensitivity is not None:
        figures_written["sensitivity"] = figures.sensitivity_figure(
            sensitivity.to_dict(orient="records"), out / "sensitivity.png"
        )
    page = render_html(
        metrics, table, figures_written, mosaics, galleries, magnitudes, bands_of(channel_names), sensitivity
    )
    index = out / INDEX_NAME
    with atomic_output(index) as temporary:
        temporary.write_text(page, encoding="utf-8")
    print(f"report: wrote {index}", file=sys.stderr)
    return index


SENSITIVITY_COLUMNS = ("bricks", "mismatch", "strength", "examples", "auc", "auc_low", "auc_high", "auc_p_value",
                       "outcome", "minimum_detectable_auc")  # fmt: skip


def read_sensitivity_table(path: Path) -> pd.DataFrame:
    """A ``scripts/sensitivity.py`` table (CSV); RealfakeError naming the file or the missing column."""
    path = Path(path)
    if not path.is_file():
        raise RealfakeError(f"sensitivity table {path} does not exist (scripts/sensitivity.py writes one)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise RealfakeError(f"sensitivity table {path}: not a CSV table ({error})") from None
    missing = [column for column in SENSITIVITY_COLUMNS if column not in table.columns]
    if missing:
        raise RealfakeError(f"sensitivity table {path} has no column(s) {', '.join(missing)}")
    return table


def _sensitivity_section(sensitivity: pd.DataFrame, figures_written: dict[str, Path]) -> list[str]:
    parts = [
        "<h2>What the test can see</h2>",
        '<p class="note">The whole workflow run on mock surveys whose fakes are wrong by a graded amount '
        "(scripts/sensitivity.py): the AUC found at each strength of each mismatch, at each mock size. Strength 1 "
        "is the identity (the negative control). The smallest error detected at a size is what a verdict of "
        "indistinguishable at that number of test examples rules out.</p>",
    ]
    if "sensitivity" in figures_written:
        parts.append(_image(figures_written["sensitivity"], "sensitivity", "AUC with its interval against strength."))
    rows = [
        [
            str(row["bricks"]),
            str(row["mismatch"]),
            f"{row['strength']:g}",
            str(row["examples"]),
            _interval(row, "auc"),
            stats.format_p(_float(row["auc_p_value"])),
            OUTCOME_WORDS.get(row["outcome"], str(row["outcome"])),
            _number(row["minimum_detectable_auc"]),
        ]
        for row in sensitivity.to_dict(orient="records")
    ]
    parts.append(
        _table(
            ["mock bricks", "mismatch", "strength", "test examples", "AUC [interval]", "p", "outcome",
             "minimum detectable AUC"],
            rows,
        )  # fmt: skip
    )
    return parts


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


# -- HTML -------------------------------------------------------------------------------------

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
.verdict { font-size: 1.2em; padding: .8em 1em; border-left: 6px solid #888; background: #f5f5f5; }
.verdict.distinguishable { border-color: #d62728; } .verdict.within_tolerance { border-color: #ff7f0e; }
.verdict.indistinguishable { border-color: #2ca02c; } .verdict.inconclusive { border-color: #888; }
.outcome { font-weight: 600; text-transform: uppercase; letter-spacing: .05em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
tr.flagged td { background: #fde2e2; font-weight: 600; }
figure { margin: 1em 0; } figcaption { font-size: .9em; color: #555; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { font-size: .9em; color: #444; }
"""

IMAGES_LOADED_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (image) { return image.complete && image.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", loaded + "/" + images.length);
});
"""


def _verdict_rows(verdict: dict) -> list[list[str]]:
    """The verdict table: the outcome, the measurement, what the test could detect, the original statistic."""
    settle = verdict.get("examples_to_settle")
    rows = [
        ["outcome", OUTCOME_WORDS.get(verdict.get("outcome"), "")],
        ["test examples (real / fake)", f"{verdict['examples']} ({verdict['real']} / {verdict['fake']})"],
        [f"AUC [{verdict.get('auc_interval_method', '')} interval]", _interval(verdict, "auc")],
        ["tolerance: AUC that does not matter", f"up to {0.5 + verdict['tolerance']:.3f}"],
        [
            f"p-value, AUC above 0.5 (Mann-Whitney, {verdict.get('auc_test_method', '')}, one-sided)",
            stats.format_p(verdict["auc_p_value"]),
        ],
        [
            f"minimum detectable AUC (power {verdict['power']:g}, level {verdict['significance']:g})",
            _number(verdict["minimum_detectable_auc"]),
        ],
        [f"minimum AUC found distinguishable (power {verdict['power']:g})", _number(verdict["minimum_distinguishable_auc"])],
        ["total-variation distance, lower bound", _number(verdict["tv_lower_bound"])],
    ]
    if settle is not None:
        rows.append(["test examples that would settle it (about)", "never" if not math.isfinite(settle) else f"{settle:,.0f}"])
    rows += [
        ["accuracy [Clopper-Pearson interval]", _interval(verdict, "accuracy")],
        ["chance (majority share)", _number(verdict["chance"])],
        ["p-value, accuracy above chance (exact binomial, one-sided)", stats.format_p(verdict["accuracy_p_value"])],
        ["log loss (nats)", _number(verdict["log_loss"])],
        ["significance level", f"{verdict['significance']:g}"],
        ["interval confidence", f"{verdict['confidence']:g}"],
    ]
    return rows


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _interval(record: dict, key: str, digits: int = 3) -> str:
    low, high = _number(record.get(key + "_low"), digits), _number(record.get(key + "_high"), digits)
    return f"{_number(record.get(key), digits)} [{low}, {high}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] | None = None) -> str:
    text_columns = {0}
    head = "".join(
        f'<th class="text">{html.escape(h)}</th>' if i in text_columns else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            (
                f'<td class="text">{html.escape(str(cell))}</td>'
                if i in text_columns
                else f"<td>{html.escape(str(cell))}</td>"
            )
            for i, cell in enumerate(row)
        )
        css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(path: Path, alt: str, caption: str = "") -> str:
    caption_html = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{html.escape(Path(path).name)}" alt="{html.escape(alt)}">{caption_html}</figure>'


def render_html(
    metrics: dict,
    table: pd.DataFrame,
    figures_written: dict[str, Path],
    mosaics: list,
    galleries: list,
    magnitudes: np.ndarray,
    bands: Sequence[str],
    sensitivity: pd.DataFrame | None = None,
) -> str:
    """The report page; images by file name (they sit next to ``index.html``)."""
    verdict = metrics["verdict"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>realfake: do the fakes look real?</title>",
        f"<style>{CSS}</style>",
        f"<script>{IMAGES_LOADED_SCRIPT}</script>",
        "</head><body>",
        "<h1>Do the fake galaxies look real?</h1>",
        f'<p class="verdict {html.escape(verdict.get("outcome", ""))}"><span class="outcome">'
        f'{html.escape(OUTCOME_WORDS.get(verdict.get("outcome"), ""))}</span>: {html.escape(verdict["sentence"])}</p>',
        f'<p class="verdict">{html.escape(metrics.get("shortcut_sentence", ""))}</p>',
        "<h2>The verdict</h2>",
        '<p class="note">A classifier two-sample test (Lopez-Paz &amp; Oquab 2017): if the fakes were drawn from '
        "the same distribution as the real galaxies, no classifier could tell them apart on the held-out test "
        "split. The measurement is the CNN's AUC, the probability that a fake scores higher than a real galaxy "
        "(0.5: no difference seen), with its interval, tested against 0.5 with a one-sided Mann-Whitney test of the "
        "scores. The outcome compares the interval with 0.5 + the tolerance, the AUC excess that does not matter: "
        "<b>indistinguishable</b> (the interval lies below it and nothing significant is seen), <b>within "
        "tolerance</b> (significant, but the interval lies below it), <b>distinguishable</b> (the interval lies "
        "above it) or <b>inconclusive</b> (the interval straddles it). The minimum detectable AUC is what this test, "
        "at this number of examples, would have detected with the stated power. The accuracy and its exact binomial "
        "test are the original method's statistic; the total-variation bound is 2 x (lower confidence limit of the "
        "accuracy) - 1, floored at 0, for balanced classes.</p>",
        _table(["quantity", "value"], _verdict_rows(verdict)),
    ]
    for key, caption in (
        (
            "training_curves",
            "Training and validation loss and accuracy per epoch; the dash-dotted line marks the epoch whose "
            "weights the evaluated model holds (train.select). The validation split is carved from the training "
            "examples; the test split is not used in training.",
        ),
        ("roc", "ROC curves on the test split: the CNN and the shortcut baselines."),
    ):
        if key in figures_written:
            parts.append(_image(figures_written[key], key.replace("_", " "), caption))

    if sensitivity is not None:
        parts += _sensitivity_section(sensitivity, figures_written)

    parts.append("<h2>Shortcut baselines</h2>")
    baselines = metrics.get("baselines", [])
    if baselines:
        parts.append(
            '<p class="note">Logistic regression and gradient boosting trained on the training split, scored on the '
            "test split. <b>Catalog</b> features: dereddened magnitudes, colours, size (missing for type PSF, whose "
            "size is defined differently for the two classes) and sub-pixel offsets; identifiers, type, Sérsic index "
            "and ellipticities are left out because they name the class or are defined differently for reals "
            "(measured tractor models) and fakes (true simcat values). Magnitudes, colours and size are legacypipe's "
            "measurements for both classes where the fake has a fit in its rs dir's tractor catalog; fakes without "
            "one keep their true values, and measurement noise alone can then separate the classes slightly. "
            "<b>Pixel</b> features: per band the central "
            "3×3 flux and the central inverse variance, and the flux-weighted centroid of the central 9×9 pixels. "
            "p-values are corrected over the baselines ("
            + html.escape(metrics.get("correction", ""))
            + "); a baseline is highlighted when its AUC is significantly above 0.5 after the correction. The CNN "
            "is compared with each on the same test examples: the paired AUC difference with its interval and "
            "one-sided p-value (DeLong), and the exact one-sided McNemar test of the accuracies.</p>"
        )
        rows, classes = [], []
        for record in baselines:
            comparison = record.get("cnn_vs_baseline", {})
            rows.append(
                [
                    baseline_title(record),
                    _interval(record, "auc"),
                    stats.format_p(record["p_adjusted"]),
                    _interval(record, "accuracy"),
                    _number(record["chance"]),
                    _interval(comparison, "auc_difference"),
                    stats.format_p(comparison.get("p_value", math.nan)),
                    stats.format_p(comparison.get("mcnemar_p_value", math.nan)),
                ]
            )
            classes.append("flagged" if record["significant"] else "")
        parts.append(
            _table(
                [
                    "baseline",
                    "AUC [interval]",
                    "adjusted p (AUC)",
                    "accuracy [interval]",
                    "chance",
                    "AUC CNN − baseline [interval]",
                    "CNN better: p",
                    "McNemar p",
                ],
                rows,
                classes,
            )
        )
        differences = baselines[0].get("feature_differences", [])
        seen = set()
        feature_rows, feature_classes = [], []
        for record in baselines:
            for item in record.get("feature_differences", []):
                if item["feature"] in seen:
                    continue
                seen.add(item["feature"])
                feature_rows.append([item["feature"], _number(item["statistic"]), stats.format_p(item["p_adjusted"])])
                feature_classes.append("flagged" if item["differs"] else "")
        if differences:
            parts.append(
                '<p class="note">Each feature on its own: two-sample Kolmogorov-Smirnov test of real against fake on '
                "the training split, corrected over the features of each set. Highlighted: differs significantly.</p>"
            )
            parts.append(_table(["feature", "KS statistic", "adjusted p"], feature_rows, feature_classes))
    else:
        parts.append("<p>No shortcut baselines were run.</p>")

    parts.append("<h2>Breakdowns</h2>")
    parts.append(
        '<p class="note">The verdict\'s measurement in quantile bins of each quantity: the AUC with its interval '
        "(n/a when a bin holds one class) and its Mann-Whitney p-value, corrected over all bins of all breakdowns "
        "together ("
        + html.escape(metrics.get("correction", ""))
        + "), and each bin's outcome against the tolerance (from the uncorrected interval); the accuracy against "
        "the bin's majority share beside it. Highlighted bins have an AUC significantly above 0.5 after the "
        "correction.</p>"
    )
    for key, caption in (
        ("accuracy_vs_g", "Test accuracy against dereddened g magnitude; red: AUC above 0.5 after correction."),
        ("breakdowns", "Test accuracy in the bins of every breakdown."),
    ):
        if key in figures_written:
            parts.append(_image(figures_written[key], key.replace("_", " "), caption))
    if len(table):
        for name in dict.fromkeys(table["breakdown"]):
            rows_frame = table[table["breakdown"] == name]
            parts.append(f"<h3>{html.escape(str(name))}</h3>")
            parts.append(
                _table(
                    [
                        "bin",
                        "examples (real / fake)",
                        "AUC [interval]",
                        "adjusted p (AUC)",
                        "outcome",
                        "accuracy [interval]",
                        "chance",
                    ],
                    [
                        [
                            row["bin"],
                            f"{row['examples']} ({row['real']} / {row['fake']})",
                            _interval(row, "auc"),
                            stats.format_p(_float(row["p_adjusted"])),
                            OUTCOME_WORDS.get(row.get("outcome"), ""),
                            _interval(row, "accuracy"),
                            _number(row["chance"]),
                        ]
                        for row in (_clean(record) for record in rows_frame.to_dict(orient="records"))
                    ],
                    ["flagged" if flagged else "" for flagged in rows_frame["flagged"]],
                )
            )

    parts.append("<h2>Mosaics</h2>")
    magnitude_band = "g" if "g" in bands else (bands[0] if bands else "")
    parts.append(
        '<p class="note">Like the seed\'s Figure 1: each row is one test galaxy, labelled R (real) or F (fake) on the '
        f"left with its dereddened {magnitude_band} magnitude (the same catalog definition for both classes) on the "
        "right. Consecutive R and F rows are matched in magnitude. Columns: an asinh colour composite of the bands, "
        "then each band (asinh stretch per panel) and each inverse variance (linear from 0).</p>"
    )
    for percentile, path, pairs in mosaics:
        differences = [abs(magnitudes[real] - magnitudes[fake]) for real, fake in pairs]
        detail = f"largest pair difference {max(differences):.2f} mag" if differences else "no pairs available"
        parts.append(
            _image(path, f"mosaic {percentile}", f"{_ordinal(percentile)} percentile in brightness; {detail}.")
        )

    parts.append("<h2>Galleries</h2>")
    for title, path in galleries:
        parts.append(_image(path, title, title + "; P(fake) on the right."))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _clean(record: dict) -> dict:
    return {
        key: (_float(value) if key not in ("bin", "breakdown", "flagged", "examples", "real", "fake") else value)
        for key, value in record.items()
    }

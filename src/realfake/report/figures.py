"""The report's PNG figures: training curves, ROC, accuracy in bins, stamp mosaics and galleries.

Every function draws on its own ``matplotlib.figure.Figure`` with an Agg
canvas (no pyplot, no global backend switch, so importing this module or
calling it from a program with another backend changes nothing) and writes the
PNG atomically.

Stamps are float32 (S, S, C), channels-last, the bands in nanomaggies then
their inverse variances in 1/nanomaggy^2 (``docs/shards_format.md``); rows = y,
so they are drawn with ``origin="lower"`` (north up for the coadds' WCS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.atomic import atomic_output
from realfake.conventions import INVERSE_VARIANCE_PREFIX, bands_of, is_inverse_variance

# Legacy Surveys colour conventions (legacypipe's DECaLS RGB): plane (0 = red,
# 1 = green, 2 = blue) and a flux scale per band, with a softening m and the
# asinh non-linearity Q of Lupton et al. (2004).
RGB_SCALES = {"g": (2, 6.0), "r": (1, 3.4), "z": (0, 2.2)}
RGB_SOFTENING = 0.03
RGB_Q = 20.0
REAL_COLOUR = "#1f77b4"
FAKE_COLOUR = "#d62728"
DPI = 100


def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path: Path) -> Path:
    path = Path(path)
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI)
    return path


# -- curves -----------------------------------------------------------------------------------


def training_curves(history: pd.DataFrame, path: Path, selected_epoch: int | None = None) -> Path:
    """Loss and accuracy per epoch, training and validation (``history`` as
    :func:`realfake.formats.history.read_history`); ``selected_epoch``, the epoch whose weights the model holds, is
    marked."""
    from matplotlib.ticker import MaxNLocator

    figure = new_figure(10, 4)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, quantity in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for split, style in (("train", "-o"), ("validation", "--s")):
            column = f"{split}_{quantity}"
            if column in history and history[column].notna().any():
                axes.plot(history["epoch"], history[column], style, markersize=3, label=split)
        if selected_epoch:
            axes.axvline(selected_epoch, color="black", lw=0.8, ls="-.", label=f"model: epoch {selected_epoch}")
        axes.set_xlabel("epoch")
        axes.set_ylabel(quantity)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
        else:
            axes.text(0.5, 0.5, "no epochs recorded", ha="center", va="center", transform=axes.transAxes)
    accuracy_axes.axhline(0.5, color="grey", lw=0.8, ls=":")
    figure.suptitle("Training history")
    figure.tight_layout()
    return save_figure(figure, path)


OUTCOME_MARKERS = {"distinguishable": "o", "within_tolerance": "D", "inconclusive": "s", "indistinguishable": "v"}


def sensitivity_figure(rows: Sequence[dict], path: Path) -> Path:
    """AUC with its interval against mismatch strength, one panel per mismatch, one colour per mock size.

    ``rows``: dicts with ``mismatch``, ``strength``, ``bricks``, ``auc``, ``auc_low``, ``auc_high``,
    ``outcome`` and ``minimum_detectable_auc`` (``scripts/sensitivity.py``, or the sensitivity table).
    The marker gives the outcome; a dotted line at the minimum detectable AUC of each size.
    """
    table = pd.DataFrame(list(rows))
    mismatches = list(dict.fromkeys(table["mismatch"]))
    figure = new_figure(5.0 * len(mismatches), 4.2)
    panels = np.atleast_1d(figure.subplots(1, len(mismatches)))
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    for axes, mismatch in zip(panels, mismatches):
        rows_here = table[table["mismatch"] == mismatch]
        for index, (bricks, group) in enumerate(rows_here.groupby("bricks")):
            group = group.sort_values("strength")
            colour = colours[index % len(colours)]
            axes.errorbar(
                group["strength"],
                group["auc"],
                yerr=[group["auc"] - group["auc_low"], group["auc_high"] - group["auc"]],
                color=colour,
                lw=1,
                capsize=3,
                label=f"{bricks} bricks ({int(group['examples'].max())} test examples)",
            )
            for outcome, marker in OUTCOME_MARKERS.items():
                chosen = group[group["outcome"] == outcome]
                axes.plot(chosen["strength"], chosen["auc"], marker, color=colour, markersize=6, ls="none")
            axes.axhline(group["minimum_detectable_auc"].iloc[0], color=colour, lw=0.8, ls=":")
        axes.axhline(0.5, color="grey", lw=0.8)
        axes.set_xlabel(f"{mismatch} strength")
        axes.set_ylabel("CNN AUC on the test split")
        axes.set_title(mismatch)
        axes.legend(fontsize=8, loc="upper center")
    figure.suptitle("Sensitivity: markers o distinguishable, D within tolerance, s inconclusive, v indistinguishable")
    figure.tight_layout()
    return save_figure(figure, path)


def roc_figure(labels: np.ndarray, curves: dict[str, np.ndarray], path: Path) -> Path:
    """ROC curves (true fake rate against false fake rate) of each scorer in ``curves`` (name -> P(fake))."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = new_figure(5.5, 5.5)
    axes = figure.subplots()
    labels = np.asarray(labels)
    for index, (name, scores) in enumerate(curves.items()):
        false_rate, true_rate, _ = roc_curve(labels, scores)
        value = roc_auc_score(labels, scores)
        axes.plot(
            false_rate,
            true_rate,
            lw=2.2 if index == 0 else 1.0,
            ls="-" if index == 0 else "--",
            label=f"{name} (AUC {value:.3f})",
        )
    axes.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="chance")
    axes.set_xlabel("false positive rate (reals called fake)")
    axes.set_ylabel("true positive rate (fakes called fake)")
    axes.set_aspect("equal")
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title("ROC on the test split")
    figure.tight_layout()
    return save_figure(figure, path)


def _binned_accuracy(axes, rows: pd.DataFrame, xlabel: str) -> None:
    numeric = rows["low"].notna().all() and rows["high"].notna().all() and len(rows) > 0
    if numeric:
        positions = ((rows["low"] + rows["high"]) / 2).to_numpy()
        half_widths = ((rows["high"] - rows["low"]) / 2).to_numpy()
    else:
        positions = np.arange(len(rows), dtype=float)
        half_widths = np.zeros(len(rows))
        axes.set_xticks(positions, rows["bin"].tolist(), rotation=30, fontsize=8)
    accuracy = rows["accuracy"].to_numpy()
    error = np.vstack([accuracy - rows["accuracy_low"].to_numpy(), rows["accuracy_high"].to_numpy() - accuracy])
    flagged = rows["flagged"].to_numpy(bool)
    for mask, colour, label in ((~flagged, "black", "accuracy"), (flagged, FAKE_COLOUR, "above chance (corrected)")):
        if mask.any():
            axes.errorbar(
                positions[mask],
                accuracy[mask],
                xerr=half_widths[mask],
                yerr=error[:, mask],
                fmt="o",
                color=colour,
                capsize=3,
                label=label,
            )
    if numeric:
        axes.hlines(rows["chance"], rows["low"], rows["high"], colors="grey", linestyles=":", label="chance")
    else:
        axes.plot(positions, rows["chance"], "_", color="grey", markersize=20, label="chance")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("test accuracy")
    axes.set_ylim(0.0, 1.05)


def accuracy_figure(rows: pd.DataFrame, xlabel: str, path: Path) -> Path:
    """Accuracy with its interval in each bin of one breakdown (rows of the breakdowns table)."""
    figure = new_figure(6.5, 4.2)
    axes = figure.subplots()
    _binned_accuracy(axes, rows, xlabel)
    axes.legend(fontsize=8, loc="lower left")
    axes.set_title(f"Accuracy against {xlabel}")
    figure.tight_layout()
    return save_figure(figure, path)


def breakdowns_figure(table: pd.DataFrame, path: Path) -> Path:
    """One accuracy panel per breakdown, bins flagged above chance in red."""
    names = list(dict.fromkeys(table["breakdown"]))
    columns = 3
    rows_count = max(1, math.ceil(len(names) / columns))
    figure = new_figure(4.2 * columns, 3.4 * rows_count)
    axes_grid = np.atleast_1d(figure.subplots(rows_count, columns)).ravel()
    for axes, name in zip(axes_grid, names):
        _binned_accuracy(axes, table[table["breakdown"] == name], name)
    for axes in axes_grid[len(names) :]:
        axes.set_visible(False)
    figure.tight_layout()
    return save_figure(figure, path)


# -- stamps -----------------------------------------------------------------------------------


def colour_composite(stamp: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """An asinh colour image, float (S, S, 3) in [0, 1], from the flux channels of one stamp.

    With g, r and z: the Legacy Surveys composite (z red, r green, g blue; each
    band scaled, softened by m, and all three multiplied by the common factor
    asinh(Q I) / (sqrt(Q) I) of the mean intensity I, so colours are kept while
    the brightness is compressed). With fewer than three of them: greyscale,
    the same stretch applied to the mean of the bands.
    """
    images = {band: np.asarray(stamp[..., index], dtype=np.float64) for index, band in enumerate(bands)}
    usable = [band for band in bands if band in RGB_SCALES]
    if len(usable) == 3:
        scaled = {band: images[band] * RGB_SCALES[band][1] for band in usable}
        planes = {band: RGB_SCALES[band][0] for band in usable}
    else:
        mean = np.mean([images[band] for band in bands], axis=0) * 3.4
        scaled = {"grey": mean}
        planes = {"grey": None}
    intensity = np.mean([np.maximum(0.0, image + RGB_SOFTENING) for image in scaled.values()], axis=0)
    factor = np.arcsinh(RGB_Q * intensity) / math.sqrt(RGB_Q)
    intensity = np.where(intensity == 0, 1e-6, intensity)
    rgb = np.zeros(stamp.shape[:2] + (3,))
    for band, image in scaled.items():
        value = (image + RGB_SOFTENING) * factor / intensity
        if planes[band] is None:
            rgb[...] = value[..., None]
        else:
            rgb[..., planes[band]] = value
    return np.clip(rgb, 0.0, 1.0)


def grey_stretch(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(asinh image, low, high) for one band: asinh of (pixel - median) / robust sigma,
    shown from -2 sigma to the brightest 0.1% of pixels (at least 10 sigma)."""
    image = np.asarray(image, dtype=np.float64)
    median = float(np.median(image))
    sigma = 1.4826 * float(np.median(np.abs(image - median)))
    if not sigma > 0:
        sigma = float(np.std(image)) or 1.0
    stretched = np.arcsinh((image - median) / sigma)
    high = max(float(np.percentile(stretched, 99.9)), float(np.arcsinh(10.0)))
    return stretched, float(np.arcsinh(-2.0)), high


def stamp_rows_figure(
    stamps: np.ndarray,
    channel_names: Sequence[str],
    left_labels: Sequence[str],
    right_labels: Sequence[str],
    title: str,
    path: Path,
) -> Path:
    """Rows of stamps, one galaxy per row, like the original obiwan write-up's Figure 1.

    Columns: the colour composite, then each channel (bands, then inverse
    variances). ``left_labels`` ("R" or "F") go left of each row, coloured by
    class; ``right_labels`` (the g magnitude, and optionally more lines) go right.
    """
    stamps = np.asarray(stamps)
    bands = list(bands_of(channel_names))
    titles = ["".join(bands) if len([b for b in bands if b in RGB_SCALES]) == 3 else "composite"]
    titles += [name.replace(INVERSE_VARIANCE_PREFIX, "ivar ") for name in channel_names]
    rows, columns = max(len(stamps), 1), len(titles)
    panel, gap, left, right, top, bottom = 1.0, 0.04, 0.5, 1.05, 0.75, 0.1
    width = left + columns * panel + (columns - 1) * gap + right
    height = top + rows * panel + (rows - 1) * gap + bottom
    figure = new_figure(width, height)
    figure.text(0.5, 1 - 0.22 / height, title, ha="center", va="center", fontsize=11)
    for row in range(len(stamps)):
        stamp = stamps[row]
        y0 = 1 - (top + row * (panel + gap) + panel) / height
        for column in range(columns):
            x0 = (left + column * (panel + gap)) / width
            axes = figure.add_axes((x0, y0, panel / width, panel / height))
            axes.set_xticks([])
            axes.set_yticks([])
            if column == 0:
                axes.imshow(colour_composite(stamp, bands), origin="lower", interpolation="nearest")
            else:
                channel = column - 1
                image = stamp[..., channel]
                if is_inverse_variance(channel_names[channel]):
                    high = float(np.max(image)) if np.max(image) > 0 else 1.0
                    axes.imshow(image, origin="lower", cmap="gray", vmin=0.0, vmax=high, interpolation="nearest")
                else:
                    stretched, low, high = grey_stretch(image)
                    axes.imshow(stretched, origin="lower", cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            if row == 0:
                axes.set_title(titles[column], fontsize=9)
        middle = y0 + panel / height / 2
        label = left_labels[row]
        colour = REAL_COLOUR if label.startswith("R") else FAKE_COLOUR
        figure.text(0.22 / width, middle, label, ha="center", va="center", fontsize=15, weight="bold", color=colour)
        figure.text((width - right + 0.1) / width, middle, right_labels[row], ha="left", va="center", fontsize=10)
    if len(stamps) == 0:
        figure.text(0.5, 0.5, "no examples", ha="center", va="center")
    return save_figure(figure, path)

"""The report's figures of the difference in pixels: class-mean stamps and their difference, radial
profiles, the CNN's attribution maps, and the fakes' AUC against their injected parameters.

Drawn like :mod:`realfake.report.figures` (own Figure, Agg canvas, atomic PNG); the
arrays come from :mod:`realfake.evaluation.pixels` (``mean_stamps.npz``),
:mod:`realfake.evaluation.attribution` (``attribution.npz``) and
:mod:`realfake.evaluation.fake_parameters`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.conventions import INVERSE_VARIANCE_PREFIX, PIXEL_BINS, is_inverse_variance
from realfake.report.figures import FAKE_COLOUR, REAL_COLOUR, new_figure, save_figure


def draw_pixel_figures(
    summary: dict | None, attribution: dict | None, metrics: dict, out: Path
) -> dict[str, list[Path]]:
    """The figures of the difference in pixels, by section: ``mean_difference`` and ``radial_profile`` (one
    per magnitude bin, :data:`PIXEL_BINS` of them, a bin the test split lacks drawn as empty) from the mean
    stamps, ``attribution`` and ``fake_parameters``; a section whose inputs the evaluation did not make is left
    out (the page says so)."""
    written: dict[str, list[Path]] = {}
    if summary is not None:
        present = summary["counts"].shape[0]
        for name, draw in (("mean_difference", mean_difference_figure),
                           ("radial_profile", radial_profile_figure)):  # fmt: skip
            written[name] = [
                draw(summary, index, out / f"{name}_{index}.png")
                if index < present
                else empty_figure(f"magnitude bin {index}: no test examples", out / f"{name}_{index}.png")
                for index in range(PIXEL_BINS)
            ]
    if attribution is not None:
        written["attribution"] = [attribution_figure(attribution, out / "attribution.png")]
    records = metrics.get("fake_parameters") or []
    if records:
        tolerance = float(metrics.get("verdict", {}).get("tolerance", 0.0))
        written["fake_parameters"] = [
            fake_parameters_figure(pd.DataFrame(records), tolerance, out / "fake_parameters.png")
        ]
    return written


def _title(name: str) -> str:
    return name.replace(INVERSE_VARIANCE_PREFIX, "ivar ")


def _image(figure, axes, image: np.ndarray, low: float, high: float, cmap: str) -> None:
    shown = axes.imshow(image, origin="lower", cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)


def _symmetric(values: np.ndarray, floor: float = 0.0) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return max(float(finite.max()) if finite.size else 0.0, floor) or 1.0


def mean_difference_figure(summary: dict, magnitude_bin: int, path: Path) -> Path:
    """One row per channel: the mean real stamp, the mean fake stamp (one colour scale for both), their
    difference (fake - real) and its significance (z, the Bonferroni threshold marked on the colour bar)."""
    channel_names = [str(name) for name in summary["channel_names"]]
    mean = summary["mean"][magnitude_bin]
    difference = summary["difference"][magnitude_bin]
    z = summary["significance"][magnitude_bin]
    threshold = float(summary["bonferroni_z"])
    figure = new_figure(12.5, 2.6 * len(channel_names) + 0.6)
    grid = figure.subplots(len(channel_names), 4, squeeze=False)
    for row, name in enumerate(channel_names):
        both = mean[:, :, :, row]
        finite = both[np.isfinite(both)]
        low, high = (float(np.percentile(finite, 0.5)), float(np.percentile(finite, 99.9))) if finite.size else (0, 1)
        for column, (label, image) in enumerate((("mean real", both[0]), ("mean fake", both[1]))):
            _image(figure, grid[row, column], image, low, high, "gray")
            grid[row, column].set_title(f"{_title(name)}: {label}", fontsize=9)
        limit = _symmetric(difference[..., row])
        _image(figure, grid[row, 2], difference[..., row], -limit, limit, "RdBu_r")
        grid[row, 2].set_title(f"{_title(name)}: fake - real", fontsize=9)
        limit = _symmetric(z[..., row], threshold)
        _image(figure, grid[row, 3], z[..., row], -limit, limit, "RdBu_r")
        passed = int(np.sum(np.abs(np.nan_to_num(z[..., row])) > threshold))
        grid[row, 3].set_title(f"{_title(name)}: z ({passed} beyond ±{threshold:.1f})", fontsize=9)
    counts = summary["counts"][magnitude_bin]
    edges = summary["edges"]
    figure.suptitle(
        f"{summary.get('column', 'magnitude')} {edges[magnitude_bin]:.2f} to {edges[magnitude_bin + 1]:.2f}: "
        f"{counts[0]} real, {counts[1]} fake test stamps",
        fontsize=11,
    )
    figure.tight_layout()
    return save_figure(figure, path)


def radial_profile_figure(summary: dict, magnitude_bin: int, path: Path) -> Path:
    """Per band: the mean profiles of both classes with 95% intervals (symmetric-log axis), and the ratio
    fake / real where the real profile is above twice its error; below, the inverse-variance profiles."""
    channel_names = [str(name) for name in summary["channel_names"]]
    bands = [index for index, name in enumerate(channel_names) if not is_inverse_variance(name)]
    ivars = [index for index, name in enumerate(channel_names) if is_inverse_variance(name)]
    radii = summary["radii"]
    mean = summary["profile_mean"][magnitude_bin]
    error = summary["profile_error"][magnitude_bin]
    columns = max(len(bands), 1)
    figure = new_figure(4.2 * columns, 9.5)
    grid = figure.subplots(3, columns, squeeze=False)
    for column in range(columns):
        if column >= len(bands):
            continue
        channel = bands[column]
        axes = grid[0, column]
        _class_profiles(axes, radii, mean, error, channel)
        scale = np.nanmax(np.abs(mean[:, :, channel])) if np.isfinite(mean[:, :, channel]).any() else 1.0
        axes.set_yscale("symlog", linthresh=max(scale * 1e-3, 1e-12))
        axes.set_title(f"{channel_names[channel]}: mean profile", fontsize=10)
        axes.set_ylabel("nanomaggies per pixel")
        axes.legend(fontsize=8)
        axes = grid[1, column]
        real, fake = mean[0, :, channel], mean[1, :, channel]
        shown = real > 2 * error[0, :, channel]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = fake / real
            ratio_error = np.abs(ratio) * np.hypot(error[1, :, channel] / fake, error[0, :, channel] / real)
        axes.errorbar(radii[shown], ratio[shown], yerr=1.96 * ratio_error[shown], fmt="o-", color="black", ms=3)
        axes.axhline(1.0, color="grey", ls=":")
        axes.set_title(f"{channel_names[channel]}: fake / real", fontsize=10)
        axes.set_xlabel("radius (pixels)")
        axes.set_xlim(grid[0, column].get_xlim())
        if column < len(ivars):
            axes = grid[2, column]
            channel = ivars[column]
            _class_profiles(axes, radii, mean, error, channel)
            axes.set_title(f"{_title(channel_names[channel])}: mean relative depth", fontsize=10)
            axes.set_xlabel("radius (pixels)")
            axes.set_ylabel("depth / stamp's mean")
    edges = summary["edges"]
    figure.suptitle(
        f"Radial profiles, {summary.get('column', 'magnitude')} {edges[magnitude_bin]:.2f} to "
        f"{edges[magnitude_bin + 1]:.2f}",
        fontsize=11,
    )
    figure.tight_layout()
    return save_figure(figure, path)


def _class_profiles(axes, radii: np.ndarray, mean: np.ndarray, error: np.ndarray, channel: int) -> None:
    """Each class's mean profile of one channel with its 95% band."""
    for label, colour, name in ((0, REAL_COLOUR, "real"), (1, FAKE_COLOUR, "fake")):
        centre, half = mean[label, :, channel], 1.96 * error[label, :, channel]
        axes.plot(radii, centre, color=colour, label=name)
        axes.fill_between(radii, centre - half, centre + half, color=colour, alpha=0.25, lw=0)


def attribution_figure(arrays: dict, path: Path) -> Path:
    """Top two rows: the mean integrated-gradients attribution per channel over the surest fakes and the
    surest reals (one symmetric colour scale per row). Below: each gallery stamp's attribution summed over
    channels (the reals the CNN is surest are fake, the fakes it is surest are real)."""
    channel_names = [str(name) for name in arrays["channel_names"]]
    galleries = [arrays["gallery_real"], arrays["gallery_fake"]]
    columns = max(len(channel_names), max(len(gallery) for gallery in galleries), 1)
    figure = new_figure(2.2 * columns, 2.3 * 4 + 0.6)
    grid = figure.subplots(4, columns, squeeze=False)
    for axes in grid.ravel():
        axes.set_visible(False)
    for row, (name, key) in enumerate((("surest fakes", "surest_fake_mean"), ("surest reals", "surest_real_mean"))):
        maps = arrays[key]
        limit = _symmetric(maps)
        count = len(arrays[key.replace("_mean", "_positions")])
        for column, channel in enumerate(channel_names):
            axes = grid[row, column]
            axes.set_visible(True)
            _image(figure, axes, maps[..., column], -limit, limit, "RdBu_r")
            axes.set_title(f"{name} ({count}): {_title(channel)}", fontsize=8)
    for row, (gallery, name) in enumerate(zip(galleries, ("real called fake", "fake called real")), start=2):
        for column, attribution in enumerate(gallery):
            axes = grid[row, column]
            axes.set_visible(True)
            summed = attribution.sum(axis=-1)
            limit = _symmetric(summed)
            _image(figure, axes, summed, -limit, limit, "RdBu_r")
            axes.set_title(f"{name} {column + 1}", fontsize=8)
    figure.suptitle("Integrated gradients of P(fake): red pushes toward fake, blue toward real", fontsize=11)
    figure.tight_layout()
    return save_figure(figure, path)


def fake_parameters_figure(table: pd.DataFrame, tolerance: float, path: Path) -> Path:
    """One panel per injected parameter: the AUC of the fakes in each bin against comparable reals
    (:mod:`realfake.evaluation.fake_parameters`), with its 95% interval; bins significant after correction in red."""
    names = list(dict.fromkeys(table["parameter"]))
    columns = 3
    rows = max(1, math.ceil(len(names) / columns))
    figure = new_figure(4.4 * columns, 3.4 * rows)
    grid = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for axes, name in zip(grid, names):
        part = table[table["parameter"] == name]
        positions = np.arange(len(part), dtype=float)
        auc = part["auc"].to_numpy(np.float64)
        error = np.vstack([auc - part["auc_low"].to_numpy(np.float64), part["auc_high"].to_numpy(np.float64) - auc])
        flagged = part["flagged"].to_numpy(bool)
        for mask, colour in ((~flagged, "black"), (flagged, FAKE_COLOUR)):
            if mask.any():
                axes.errorbar(positions[mask], auc[mask], yerr=error[:, mask], fmt="o", color=colour, capsize=3)
        axes.axhline(0.5, color="grey", ls=":")
        axes.axhline(0.5 + tolerance, color="grey", ls="--", lw=0.8)
        axes.set_xticks(positions, _labels(part["bin"]), rotation=30, fontsize=7)
        axes.set_title(name, fontsize=10)
        axes.set_ylabel("AUC of these fakes vs comparable reals", fontsize=8)
    for axes in grid[len(names) :]:
        axes.set_visible(False)
    figure.tight_layout()
    return save_figure(figure, path)


def empty_figure(text: str, path: Path) -> Path:
    """A small figure that only says ``text`` (a magnitude bin the test split does not have)."""
    figure = new_figure(4, 1.5)
    figure.text(0.5, 0.5, text, ha="center", va="center")
    return save_figure(figure, path)


def _labels(bins: Sequence[str]) -> list[str]:
    return [str(label) if len(str(label)) <= 14 else str(label)[:13] + "…" for label in bins]

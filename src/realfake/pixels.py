"""The difference in pixels: class-mean stamps, their difference, its significance, and radial profiles.

In magnitude bins of the test split (quantiles of the shards' matching
magnitude, so each bin holds reals and fakes of one brightness), for each class
and channel:

- the mean stamp, its per-pixel standard error (from the per-pixel scatter
  across the examples), the difference fake - real and its significance
  z = difference / sqrt(se_fake^2 + se_real^2);
- the azimuthally averaged profile about the source pixel (S/2, S/2) in annuli
  one pixel wide, each example's profile first, then the class mean and its
  standard error across examples, so the interval is an honest one for the
  mean profile.

A size error shows as a difference at large radii (wider wings) and a PSF
error as one in the core (an unconvolved fake has a sharper one); an
inverse-variance difference shows in the ivar channels. Those are taken, as the
CNN takes them (:class:`realfake.model.InputNormalization`), as each pixel's
depth relative to its stamp's mean over covered pixels: depth varies by tens of
percent from stamp to stamp, which would bury a dip of a few percent at a
fake's centre in the per-pixel scatter (measured on the ``ivar`` control: no
pixel past the threshold in absolute inverse variance, the central dip past it
in relative depth). The significance maps
are judged against a Bonferroni threshold over every pixel of every channel
and bin: under no difference, no pixel passes it with probability 1 - alpha.

Computed from sums: one pass over the test shards, one block of stamps at a
time, so the cost is one read of the test split and the memory is a few
stamps per bin and class, whatever the number of examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from realfake.conventions import is_inverse_variance
from realfake.errors import RealfakeError
from realfake.shardset import ShardSet, load_stamps

PIXEL_BINS = 4  # magnitude bins of the class-mean stamps and profiles
BLOCK = 256  # stamps read and summed at once


def magnitude_column(catalog: pd.DataFrame, matching: list[str] | tuple[str, ...] = ()) -> str:
    """The magnitude the pixel statistics are binned in: the shards' first matching column (what the classes
    were matched on) when it is a magnitude the catalog has, else the g (or first) band's dereddened one."""
    for column in (*matching, "measured_mag_dered_g", "mag_dered_g"):
        if "mag_dered_" in column and column in catalog.columns:
            return column
    columns = [column for column in catalog.columns if column.startswith("mag_dered_")]
    if not columns:
        raise RealfakeError("the test catalog has no dereddened magnitude to bin the pixel statistics in")
    return columns[0]


def magnitude_edges(values: np.ndarray, bins: int = PIXEL_BINS) -> np.ndarray:
    """Quantile edges of the finite ``values``: ``bins`` bins of about equal counts (fewer if values repeat)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.array([-np.inf, np.inf])
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))
    if edges.size == 1:
        edges = np.array([edges[0], edges[0]])
    return edges


def bin_of(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value (edges[i] <= v < edges[i+1], the last bin closed); -1 when not finite or outside."""
    position = np.searchsorted(edges, values, side="right") - 1
    position[values == edges[-1]] = edges.size - 2
    inside = np.isfinite(values) & (position >= 0) & (position <= edges.size - 2)
    return np.where(inside, position, -1)


def annuli(stamp_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(radius of each annulus in pixels, averaging matrix (S*S, R)): pixel p's weight in annulus r is
    1/n_r when round(distance of p from (S/2, S/2)) = r, for r up to S/2."""
    rows, columns = np.mgrid[0:stamp_size, 0:stamp_size]
    radius = np.rint(np.hypot(rows - stamp_size // 2, columns - stamp_size // 2)).astype(int).ravel()
    radii = np.arange(stamp_size // 2 + 1)
    matrix = np.zeros((stamp_size * stamp_size, radii.size))
    inside = radius <= radii[-1]
    matrix[np.flatnonzero(inside), radius[inside]] = 1.0
    return radii.astype(np.float64), matrix / matrix.sum(axis=0)


@dataclass
class PixelSums:
    """Running sums per (magnitude bin, class): examples, stamps and their squares, profiles and their squares."""

    edges: np.ndarray
    counts: np.ndarray  # (B, 2)
    sums: np.ndarray  # (B, 2, S, S, C)
    squares: np.ndarray
    profile_sums: np.ndarray  # (B, 2, R, C)
    profile_squares: np.ndarray
    radii: np.ndarray
    skipped: int = 0  # examples without a finite magnitude

    @classmethod
    def empty(cls, edges: np.ndarray, stamp_size: int, channels: int) -> PixelSums:
        bins = edges.size - 1
        radii, _ = annuli(stamp_size)
        stamp = (bins, 2, stamp_size, stamp_size, channels)
        profile = (bins, 2, radii.size, channels)
        return cls(edges, np.zeros((bins, 2), np.int64), np.zeros(stamp), np.zeros(stamp), np.zeros(profile),
                   np.zeros(profile), radii)  # fmt: skip

    def add(
        self, stamps: np.ndarray, labels: np.ndarray, bins: np.ndarray, averaging: np.ndarray, ivar: np.ndarray
    ) -> None:
        """Add a block of stamps (n, S, S, C) with their labels and magnitude bins (-1: skipped); ``ivar``
        marks the inverse-variance channels (taken relative to each stamp's covered mean)."""
        stamps = relative_depth(stamps.astype(np.float64), ivar)
        profiles = np.einsum("npc,pr->nrc", stamps.reshape(stamps.shape[0], -1, stamps.shape[-1]), averaging)
        self.skipped += int((bins < 0).sum())
        for magnitude_bin in np.unique(bins[bins >= 0]):
            for label in (0, 1):
                members = (bins == magnitude_bin) & (labels == label)
                if members.any():
                    self.counts[magnitude_bin, label] += int(members.sum())
                    self.sums[magnitude_bin, label] += stamps[members].sum(axis=0)
                    self.squares[magnitude_bin, label] += np.square(stamps[members]).sum(axis=0)
                    self.profile_sums[magnitude_bin, label] += profiles[members].sum(axis=0)
                    self.profile_squares[magnitude_bin, label] += np.square(profiles[members]).sum(axis=0)


def relative_depth(stamps: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """``stamps`` (n, S, S, C) with each inverse-variance channel (``ivar``, boolean per channel) divided by the
    stamp's mean over its covered pixels (0 stays 0; a stamp with none covered stays 0)."""
    if not ivar.any():
        return stamps
    channels = stamps[..., ivar]
    covered = channels > 0
    total = np.where(covered, channels, 0.0).sum(axis=(1, 2), keepdims=True)
    count = covered.sum(axis=(1, 2), keepdims=True)
    mean = np.where(count > 0, total / np.maximum(count, 1), 1.0)
    result = stamps.copy()
    result[..., ivar] = channels / np.where(mean > 0, mean, 1.0)
    return result


def _mean_and_error(sums: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and its standard error from sums over ``counts`` examples (counts broadcast over the trailing axes)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        variance = (squares - counts * np.square(mean)) / (counts - 1)
        error = np.sqrt(np.clip(variance, 0, None) / counts)
    return mean, error


def accumulate(shard_set: ShardSet, column: str, edges: np.ndarray) -> PixelSums:
    """One pass over the test split: the :class:`PixelSums` of its stamps in the magnitude bins ``edges`` of
    ``column``."""
    catalog = shard_set.catalog("test")
    values = catalog[column].to_numpy(np.float64)
    labels = catalog["label"].to_numpy()
    sums = PixelSums.empty(edges, shard_set.stamp_size, len(shard_set.channel_names))
    _, averaging = annuli(shard_set.stamp_size)
    ivar = np.array([is_inverse_variance(name) for name in shard_set.channel_names])
    start = 0
    for shard in shard_set.test:
        stamps = load_stamps(shard.x)
        for first in range(0, shard.examples, BLOCK):
            rows = slice(start + first, start + min(first + BLOCK, shard.examples))
            block = shard.decode(stamps[first : first + BLOCK])
            sums.add(block, labels[rows], bin_of(values[rows], edges), averaging, ivar)
        start += shard.examples
    return sums


def pixel_summary(sums: PixelSums, channel_names: tuple[str, ...], significance: float = 0.05) -> dict:
    """The class means, their difference and significance, the radial profiles and the Bonferroni count:
    arrays for ``mean_stamps.npz`` (see the module docstring)."""
    counts = sums.counts[:, :, None, None, None].astype(np.float64)
    mean, error = _mean_and_error(sums.sums, sums.squares, counts)
    difference = mean[:, 1] - mean[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = difference / np.sqrt(np.square(error[:, 1]) + np.square(error[:, 0]))
    tests = int(np.isfinite(z).sum())
    threshold = float(stats.norm.isf(significance / (2 * max(tests, 1))))
    profile_counts = sums.counts[:, :, None, None].astype(np.float64)
    profile_mean, profile_error = _mean_and_error(sums.profile_sums, sums.profile_squares, profile_counts)
    profile_difference = profile_mean[:, 1] - profile_mean[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        profile_z = profile_difference / np.sqrt(np.square(profile_error[:, 1]) + np.square(profile_error[:, 0]))
    return {
        "channel_names": np.array(channel_names),
        "edges": sums.edges,
        "counts": sums.counts,
        "skipped": np.array(sums.skipped),
        "mean": mean,
        "standard_error": error,
        "difference": difference,
        "significance": z,
        "bonferroni_z": np.array(threshold),
        "significant_pixels": (np.abs(np.nan_to_num(z)) > threshold).sum(axis=(1, 2)),  # (B, C)
        "radii": sums.radii,
        "profile_mean": profile_mean,
        "profile_error": profile_error,
        "profile_difference": profile_difference,
        "profile_significance": profile_z,
    }


def pixel_statistics(shard_set: ShardSet, significance: float = 0.05, bins: int = PIXEL_BINS) -> dict:
    """:func:`pixel_summary` of the test split, binned in :func:`magnitude_column` (plus ``column``)."""
    catalog = shard_set.catalog("test")
    matching = shard_set.manifest.get("matching", {}).get("columns", [])
    column = magnitude_column(catalog, matching)
    edges = magnitude_edges(catalog[column].to_numpy(np.float64), bins)
    summary = pixel_summary(accumulate(shard_set, column, edges), shard_set.channel_names, significance)
    summary["column"] = np.array(column)
    return summary


def summary_record(summary: dict) -> dict:
    """The JSON part of a :func:`pixel_summary`: per bin its edges, counts and significant pixels per channel."""
    channels = [str(name) for name in summary["channel_names"]]
    edges = summary["edges"]
    return {
        "column": str(summary.get("column", "")),
        "bonferroni_z": float(summary["bonferroni_z"]),
        "skipped": int(summary["skipped"]),
        "bins": [
            {
                "bin": index,
                "low": float(edges[index]),
                "high": float(edges[index + 1]),
                "real": int(summary["counts"][index, 0]),
                "fake": int(summary["counts"][index, 1]),
                "significant_pixels": dict(zip(channels, summary["significant_pixels"][index].tolist(), strict=True)),
            }
            for index in range(edges.size - 1)
        ],
    }

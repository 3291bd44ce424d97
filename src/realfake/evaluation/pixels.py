"""The difference in pixels: class-mean stamps, their difference, its significance, and radial profiles.

In magnitude bins of the test split (quantiles of the shards' matching
magnitude, so each bin holds reals and fakes of one brightness), for each class
and channel:

- the mean stamp, its per-pixel standard error (from the per-pixel scatter
  across the examples), the difference fake - real and its significance: the
  Welch t = difference / sqrt(se_fake^2 + se_real^2), with the
  Welch-Satterthwaite degrees of freedom of that pixel, given as the normal z
  with the same two-sided p-value (so one threshold serves every pixel; at
  thousands of examples z and t agree);
- the azimuthally averaged profile about the source pixel (S/2, S/2) in annuli
  one pixel wide, each example's profile first, then the class mean and its
  standard error across examples, so the interval is an honest one for the
  mean profile (its significance the same Welch z).

A size error shows as a difference at large radii (wider wings) and a PSF
error as one in the core (an unconvolved fake has a sharper one); an
inverse-variance difference shows in the ivar channels. Those are taken, as the
CNN takes them (:class:`realfake.model.network.InputNormalization`), as each pixel's
depth relative to its stamp's mean over covered pixels: depth varies by tens of
percent from stamp to stamp, which would bury a dip of a few percent at a
fake's centre in the per-pixel scatter (measured on the ``ivar`` control: no
pixel past the threshold in absolute inverse variance, the central dip past it
in relative depth).

The significance maps are judged against Bonferroni over every tested pixel of
every channel and bin: a pixel passes when its p-value is below alpha / m (m
the tested pixels), that is when |z| > ``bonferroni_z`` = the normal quantile
of 1 - alpha / (2 m); under no difference no pixel passes with probability at
least 1 - alpha. The p-value comes from the t distribution, not the normal: at
50 examples per class and bin the normal quantile applied to t let a pixel of
the demo's 98,304 through in about 20% of null runs (docs/pixels.md has the
simulation). A pixel with no scatter in either class is decided exactly: with
the same value in both classes it is not tested (it cannot differ); with
different values it is tested and counted, its p-value the permutation test's
for a complete separation, 1 / C(n_real + n_fake, n_fake) (twice that when the
classes are the same size), which passes the demo's threshold from 13 examples per class. A
pixel with fewer than two examples in a class has no z and is not tested.

Computed from sums (and each pixel's least and greatest value, which tell a
constant pixel exactly): one pass over the test shards, one block of stamps at
a time, so the cost is one read of the test split and the memory is a few
stamps per bin and class, whatever the number of examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

from realfake.conventions import PIXEL_BINS, is_inverse_variance
from realfake.errors import RealfakeError
from realfake.formats.shardset import ShardSet, load_stamps

BLOCK = 256  # stamps read and summed at once
TAIL_UNDERFLOW = 1e-300  # below it a t tail probability is taken from its asymptotic form, not stdtr


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
    """Running sums per (magnitude bin, class): examples, stamps and their squares, each pixel's least and
    greatest value, and the same of the profiles."""

    edges: np.ndarray
    counts: np.ndarray  # (B, 2)
    sums: np.ndarray  # (B, 2, S, S, C)
    squares: np.ndarray
    minimum: np.ndarray  # (B, 2, S, S, C); +inf before any example (-inf: not known)
    maximum: np.ndarray  # (B, 2, S, S, C); -inf before any example (+inf: not known)
    profile_sums: np.ndarray  # (B, 2, R, C)
    profile_squares: np.ndarray
    profile_minimum: np.ndarray  # (B, 2, R, C), as ``minimum``
    profile_maximum: np.ndarray
    radii: np.ndarray
    skipped: int = 0  # examples without a finite magnitude

    @classmethod
    def empty(cls, edges: np.ndarray, stamp_size: int, channels: int) -> PixelSums:
        bins = edges.size - 1
        radii, _ = annuli(stamp_size)
        stamp = (bins, 2, stamp_size, stamp_size, channels)
        profile = (bins, 2, radii.size, channels)
        return cls(edges, np.zeros((bins, 2), np.int64), np.zeros(stamp), np.zeros(stamp), np.full(stamp, np.inf),
                   np.full(stamp, -np.inf), np.zeros(profile), np.zeros(profile), np.full(profile, np.inf),
                   np.full(profile, -np.inf), radii)  # fmt: skip

    def add(
        self, stamps: np.ndarray, labels: np.ndarray, bins: np.ndarray, averaging: np.ndarray, ivar: np.ndarray
    ) -> None:
        """Add a block of stamps (n, S, S, C) with their labels and magnitude bins (-1: skipped); ``ivar``
        marks the inverse-variance channels (taken relative to each stamp's covered mean)."""
        stamps = relative_depth(stamps.astype(np.float64), ivar)
        profiles = averaging.T @ stamps.reshape(stamps.shape[0], -1, stamps.shape[-1])  # (n, R, C)
        self.skipped += int((bins < 0).sum())
        for magnitude_bin in np.unique(bins[bins >= 0]):
            for label in (0, 1):
                members = (bins == magnitude_bin) & (labels == label)
                if members.any():
                    self.counts[magnitude_bin, label] += int(members.sum())
                    where = (magnitude_bin, label)
                    _add_to((self.sums, self.squares, self.minimum, self.maximum), where, stamps[members])
                    _add_to(
                        (self.profile_sums, self.profile_squares, self.profile_minimum, self.profile_maximum),
                        where,
                        profiles[members],
                    )


def _add_to(accumulators: tuple[np.ndarray, ...], where: tuple[int, int], values: np.ndarray) -> None:
    """Add ``values`` (n, ...) to (sums, squares, minimum, maximum) at index ``where``."""
    sums, squares, minimum, maximum = accumulators
    sums[where] += values.sum(axis=0)
    squares[where] += np.square(values).sum(axis=0)
    np.minimum(minimum[where], values.min(axis=0), out=minimum[where])
    np.maximum(maximum[where], values.max(axis=0), out=maximum[where])


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


def _mean_and_variance(
    sums: np.ndarray,
    squares: np.ndarray,
    counts: np.ndarray,
    minimum: np.ndarray | None = None,
    maximum: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample variance from sums over ``counts`` examples (counts broadcast over the trailing axes).

    With each element's least and greatest value (finite: known), a constant element gets its value as the mean
    and a variance of exactly 0, and any other a variance of at least range^2 / (2 (n - 1)), the least any n
    values with that range have: what the rounding of the sums cannot give.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
        variance = np.clip((squares - counts * np.square(mean)) / (counts - 1), 0, None)
        if minimum is not None and maximum is not None:
            known = np.isfinite(minimum) & np.isfinite(maximum) & (counts > 1)
            constant = known & (minimum == maximum)
            mean = np.where(constant, minimum, mean)
            floor = np.where(known, np.square(maximum - minimum) / (2 * (counts - 1)), 0.0)
            variance = np.where(constant, 0.0, np.maximum(variance, floor))
    return mean, variance


def welch_significance(
    difference: np.ndarray,
    variances: tuple[np.ndarray, np.ndarray],
    counts: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """The significance of ``difference`` = mean_fake - mean_real, element by element, as a signed normal z.

    ``variances`` and ``counts``: the (real, fake) sample variances and numbers of examples, broadcast
    against ``difference``. The Welch t = difference / sqrt(v_real / n_real + v_fake / n_fake) with the
    Welch-Satterthwaite degrees of freedom gives a two-sided p-value (from the t distribution, in logarithms
    so that no p underflows to 0); z is the normal quantile with that p-value, signed as the difference.
    Where both variances are 0 (each class constant) z is the exact permutation test's for a complete
    separation (p = 1 / C(n_real + n_fake, n_fake), twice that when n_real = n_fake), or NaN when the
    difference is 0. NaN where a class has fewer than 2 examples.
    """
    variance_real, variance_fake = variances
    count_real, count_fake = (np.asarray(count, dtype=np.float64) for count in counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        error_real, error_fake = variance_real / count_real, variance_fake / count_fake
        total = error_real + error_fake
        t = np.abs(difference) / np.sqrt(total)
        freedom = np.square(total) / (
            np.square(error_real) / (count_real - 1) + np.square(error_fake) / (count_fake - 1)
        )
        t, freedom, count_real, count_fake = np.broadcast_arrays(t, freedom, count_real, count_fake)
        tail = special.stdtr(freedom, -t)  # P(T > t), one side
        log_tail = np.log(tail)
        far = (tail <= TAIL_UNDERFLOW) & (total > 0)
        if far.any():
            # Where stdtr underflows: P(T > t) = I_x(f / 2, 1 / 2) / 2 with x = f / (f + t^2) -> 0, and
            # I_x(a, b) = x^a (1 - x)^b / (a B(a, b)) (1 + O(x)); the logarithms keep t^2 from overflowing.
            f, log_t = freedom[far], np.log(t[far])
            log_both = np.logaddexp(np.log(f), 2 * log_t)
            log_tail[far] = (
                (f / 2) * (np.log(f) - log_both) + (log_t - log_both / 2) - np.log(f) - special.betaln(f / 2, 0.5)
            )
        constant = total == 0
        if constant.any():
            # The permutation test's p / 2 for a complete separation of two constant classes.
            real, fake = count_real[constant], count_fake[constant]
            arrangements = special.gammaln(real + fake + 1) - special.gammaln(real + 1) - special.gammaln(fake + 1)
            log_tail[constant] = np.where(real == fake, 0.0, np.log(0.5)) - arrangements
        z = -special.ndtri_exp(log_tail)
    defined = (count_real >= 2) & (count_fake >= 2) & np.isfinite(difference) & ((total > 0) | (difference != 0))
    return np.where(defined & np.isfinite(total), np.sign(difference) * z, np.nan)


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
    arrays for ``mean_stamps.npz`` (see the module docstring). ``significance``: the family-wise error rate
    alpha of the Bonferroni threshold."""
    counts = sums.counts[:, :, None, None, None].astype(np.float64)
    mean, variance = _mean_and_variance(sums.sums, sums.squares, counts, sums.minimum, sums.maximum)
    difference = mean[:, 1] - mean[:, 0]
    z = welch_significance(difference, (variance[:, 0], variance[:, 1]), (counts[:, 0], counts[:, 1]))
    tests = int(np.isfinite(z).sum())
    threshold = float(stats.norm.isf(significance / (2 * max(tests, 1))))
    profile_counts = sums.counts[:, :, None, None].astype(np.float64)
    profile_mean, profile_variance = _mean_and_variance(
        sums.profile_sums, sums.profile_squares, profile_counts, sums.profile_minimum, sums.profile_maximum
    )
    profile_difference = profile_mean[:, 1] - profile_mean[:, 0]
    profile_z = welch_significance(
        profile_difference,
        (profile_variance[:, 0], profile_variance[:, 1]),
        (profile_counts[:, 0], profile_counts[:, 1]),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        error = np.sqrt(variance / counts)
        profile_error = np.sqrt(profile_variance / profile_counts)
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
        "significant_pixels": (np.abs(np.nan_to_num(z, nan=0.0)) > threshold).sum(axis=(1, 2)),  # (B, C)
        "radii": sums.radii,
        "profile_mean": profile_mean,
        "profile_error": profile_error,
        "profile_difference": profile_difference,
        "profile_significance": profile_z,
    }


def pixel_statistics(shard_set: ShardSet, significance: float = 0.05, bins: int = PIXEL_BINS) -> dict:
    """:func:`pixel_summary` of the test split, binned in :func:`magnitude_column` (plus ``column``)."""
    catalog = shard_set.catalog("test")
    matching = (shard_set.manifest.matching or {}).get("columns", [])
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

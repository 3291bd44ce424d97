"""The one code path: S x S stamps of sources at their pixel from ra, dec through the coadd WCS.

See :mod:`realfake.cutouts` for the pixel conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from realfake.conventions import STAMP_SIZE
from realfake.cutouts.settings import CutoutCounts, CutoutSettings
from realfake.survey import legacy

KEPT, OFF_IMAGE, NO_COVERAGE = 0, 1, 2
# distance_to_no_coverage is exact up to this many pixels and this value beyond (two stamp half-widths).
DISTANCE_CAP = 64


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class StampCut:
    """Stamps of N sources in one coadd.

    x, y: float64 (N,), 0-indexed pixel of each source from ra, dec (NaN if the
    WCS gives none); centre_x, centre_y: int64 (N,), the stamp centre pixel
    (meaningless where status is OFF_IMAGE and x or y is NaN); status: int8 (N,),
    KEPT, OFF_IMAGE or NO_COVERAGE; stamps: float32 (K, S, S, 2B) for the K kept
    sources in source order, channels = bands then inverse variances.
    """

    x: np.ndarray
    y: np.ndarray
    centre_x: np.ndarray
    centre_y: np.ndarray
    status: np.ndarray
    stamps: np.ndarray


def cut_stamps(
    coadd: legacy.Coadd, ra: np.ndarray, dec: np.ndarray, stamp_size: int = STAMP_SIZE, pad_edges: bool = False
) -> StampCut:
    """Cut an S x S stamp around each (ra, dec) from ``coadd``; see the module docstring for the conventions.

    Works on the coadd arrays already in memory: one gather of S x S windows
    per channel for all stamps at once.
    """
    x, y = legacy.wcs_pixel(coadd.wcs, ra, dec, origin=0)
    count = len(x)
    bands, height, width = coadd.image.shape
    half = stamp_size // 2
    finite = np.isfinite(x) & np.isfinite(y)
    centre_x = np.zeros(count, dtype=np.int64)
    centre_y = np.zeros(count, dtype=np.int64)
    centre_x[finite] = np.floor(x[finite] + 0.5)
    centre_y[finite] = np.floor(y[finite] + 0.5)

    centre_on_image = finite & (centre_x >= 0) & (centre_x < width) & (centre_y >= 0) & (centre_y < height)
    # Rows centre_y - half .. centre_y + half - 1 (likewise columns) must all exist.
    stamp_on_image = (
        centre_on_image
        & (centre_x - half >= 0)
        & (centre_x + half <= width)
        & (centre_y - half >= 0)
        & (centre_y + half <= height)
    )
    usable = centre_on_image if pad_edges else stamp_on_image
    status = np.full(count, OFF_IMAGE, dtype=np.int8)
    centre_inverse_variance = coadd.inverse_variance[:, centre_y[usable], centre_x[usable]]  # (B, n usable)
    status[usable] = np.where(np.all(centre_inverse_variance > 0, axis=0), KEPT, NO_COVERAGE)

    kept = status == KEPT
    top, left = centre_y[kept] - half, centre_x[kept] - half
    whole = (top >= 0) & (left >= 0) & (top + stamp_size <= height) & (left + stamp_size <= width)
    stamps = np.zeros((int(kept.sum()), stamp_size, stamp_size, 2 * bands), dtype=np.float32)
    planes = [*coadd.image, *coadd.inverse_variance]
    for channel, plane in enumerate(planes):
        # windows[t, l] is the S x S view of plane starting at row t, column l: no copy until indexed.
        windows = np.lib.stride_tricks.sliding_window_view(plane, (stamp_size, stamp_size))
        stamps[whole, :, :, channel] = windows[top[whole], left[whole]]
    # Stamps over the image edge (pad_edges only): copy the part on the image, leave the rest 0.
    for index in np.flatnonzero(~whole):
        rows = slice(max(top[index], 0), min(top[index] + stamp_size, height))
        columns = slice(max(left[index], 0), min(left[index] + stamp_size, width))
        stamp_rows = slice(rows.start - top[index], rows.stop - top[index])
        stamp_columns = slice(columns.start - left[index], columns.stop - left[index])
        for channel, plane in enumerate(planes):
            stamps[index, stamp_rows, stamp_columns, channel] = plane[rows, columns]
    return StampCut(x, y, centre_x, centre_y, status, stamps)


def cut_sources(
    coadd: legacy.Coadd, sources: pd.DataFrame, settings: CutoutSettings
) -> tuple[pd.DataFrame, np.ndarray, CutoutCounts]:
    """Stamps of ``sources`` (a source table, see :func:`realfake.cutouts.sources.real_source_table`) in ``coadd``.

    Returns the kept rows completed to the cutouts catalog, their stamps, and
    the selected/written/dropped counts.
    """
    cut = cut_stamps(
        coadd, sources["ra"].to_numpy(), sources["dec"].to_numpy(), settings.stamp_size, settings.pad_edges
    )
    kept = cut.status == KEPT
    catalog = sources.assign(
        x=cut.x, y=cut.y, centre_x=cut.centre_x, centre_y=cut.centre_y, offset_x=cut.x - cut.centre_x,
        offset_y=cut.y - cut.centre_y,
    )[kept]  # fmt: skip
    catalog = catalog.assign(
        distance_to_no_coverage=distance_to_no_coverage(coadd.inverse_variance, cut.centre_x[kept], cut.centre_y[kept])
    )
    counts = CutoutCounts(
        sources_selected=len(sources),
        sources_written=int(kept.sum()),
        dropped_off_image=int((cut.status == OFF_IMAGE).sum()),
        dropped_no_coverage=int((cut.status == NO_COVERAGE).sum()),
    )
    return catalog, cut.stamps, counts


def distance_to_no_coverage(inverse_variance: np.ndarray, centre_x: np.ndarray, centre_y: np.ndarray) -> np.ndarray:
    """Pixels (chessboard: max(|dx|, |dy|)) from each centre to the nearest pixel with inverse variance 0 in
    some band, or off the image; capped at ``DISTANCE_CAP``. int32 (K,).

    ``inverse_variance``: float (B, H, W). A stamp of half-width h lies wholly on covered pixels exactly when
    this is more than h: obiwan only injected fakes there, so it is the placement audit's quantity.
    """
    uncovered = ~(np.asarray(inverse_variance) > 0).all(axis=0)
    height, width = uncovered.shape
    distances = np.empty(len(centre_x), dtype=np.int32)
    for index, (column, row) in enumerate(zip(np.asarray(centre_x), np.asarray(centre_y), strict=True)):
        column, row = int(column), int(row)
        to_edge = min(column + 1, row + 1, width - column, height - row)
        reach = min(DISTANCE_CAP, to_edge)
        window = uncovered[max(row - reach, 0) : row + reach + 1, max(column - reach, 0) : column + reach + 1]
        rows, columns = np.nonzero(window)
        nearest = reach
        if rows.size:
            offsets = np.maximum(
                np.abs(rows + max(row - reach, 0) - row), np.abs(columns + max(column - reach, 0) - column)
            )
            nearest = min(nearest, int(offsets.min()))
        distances[index] = nearest
    return distances

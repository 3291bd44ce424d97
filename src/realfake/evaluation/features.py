"""Stamp features: simple per-example pixel statistics, for the shortcut baselines and the breakdowns.

Stamps are float32 (n, S, S, C), channels-last, the bands in nanomaggies then
their inverse variances (``docs/shards_format.md``), the source at pixel
(S/2, S/2), 0-indexed. Only the central pixels are read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from realfake.conventions import bands_of, inverse_variance_channel
from realfake.formats.shardset import ShardSet

CENTRAL_FLUX_HALF_WIDTH = 1  # the central 3 x 3 pixels
CENTROID_HALF_WIDTH = 4  # the central 9 x 9 pixels


def stamp_statistics(stamps: np.ndarray, channel_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Simple per-example statistics of stamps float32 (n, S, S, C), source at pixel (S/2, S/2), 0-indexed.

    Returns float64 (n,) arrays:

    - ``pixel_flux3x3_<b>``: sum of the central 3 x 3 pixels of band b, nanomaggies;
    - ``ivar_centre_<b>``: inverse variance of pixel (S/2, S/2) of band b, 1/nanomaggy^2;
    - ``centroid_dx``, ``centroid_dy``: centroid of the central 9 x 9 pixels of
      the band sum, weighted by its positive part, in pixels from (S/2, S/2)
      (x = column, y = row); 0 when no pixel is positive.
    """
    stamps = np.asarray(stamps)
    centre = stamps.shape[1] // 2
    index = {name: channel for channel, name in enumerate(channel_names)}
    bands = bands_of(channel_names)
    result = {}
    flux_window = slice(centre - CENTRAL_FLUX_HALF_WIDTH, centre + CENTRAL_FLUX_HALF_WIDTH + 1)
    for band in bands:
        result[f"pixel_flux3x3_{band}"] = stamps[:, flux_window, flux_window, index[band]].sum(
            axis=(1, 2), dtype=np.float64
        )
    for band in bands:
        name = inverse_variance_channel(band)
        if name in index:
            result[f"ivar_centre_{band}"] = stamps[:, centre, centre, index[name]].astype(np.float64)
    window = slice(centre - CENTROID_HALF_WIDTH, centre + CENTROID_HALF_WIDTH + 1)
    total = stamps[:, window, window, :][..., [index[band] for band in bands]].sum(axis=3, dtype=np.float64)
    weights = np.clip(total, 0.0, None)
    offsets = np.arange(-CENTROID_HALF_WIDTH, CENTROID_HALF_WIDTH + 1, dtype=np.float64)
    weight_sum = weights.sum(axis=(1, 2))
    safe_sum = np.where(weight_sum > 0, weight_sum, 1.0)
    result["centroid_dx"] = np.where(
        weight_sum > 0, (weights * offsets[None, None, :]).sum(axis=(1, 2)) / safe_sum, 0.0
    )
    result["centroid_dy"] = np.where(
        weight_sum > 0, (weights * offsets[None, :, None]).sum(axis=(1, 2)) / safe_sum, 0.0
    )
    return result


def statistics_of_examples(
    shard_set: ShardSet, split: str, positions: np.ndarray, batch_size: int = 256
) -> pd.DataFrame:
    """:func:`stamp_statistics` of the examples of ``split`` at ``positions``, block by block; only the central
    (2h + 1) x (2h + 1) pixels of each stamp are read (h = :data:`CENTROID_HALF_WIDTH`, all the statistics
    need)."""
    parts = [
        pd.DataFrame(
            stamp_statistics(
                shard_set.read_examples(split, positions[start : start + batch_size], CENTROID_HALF_WIDTH),
                shard_set.channel_names,
            )
        )
        for start in range(0, len(positions), batch_size)
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

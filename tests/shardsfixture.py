"""A small synthetic shard set per ``docs/shards_format.md``, for the training tests and benchmark.

Stamps are 64x64 with channels g, r, z, ivar_g, ivar_r, ivar_z (nanomaggies,
1/nanomaggy^2): Gaussian sky noise from a per-stamp depth, a central source
(real: compact, sigma 1 pixel; fake: extended, sigma 3 pixels; the same
flux distribution), sometimes a neighbour off-centre, and an uncovered corner
(inverse variance 0, flux 0) in a quarter of the stamps. The size difference
is the learnable signal. Classes alternate within each shard (balanced).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from realfake.formats.shardset import write_shard_set as write_shard_set_arrays

BANDS = ("g", "r", "z")
CHANNEL_NAMES = (*BANDS, *(f"ivar_{band}" for band in BANDS))
SKY_SIGMA = 0.01  # nanomaggies per pixel at unit depth


def synthetic_stamps(count: int, stamp_size: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """float32 (count, S, S, 6) stamps and int32 (count,) labels (alternating 0, 1)."""
    labels = (np.arange(count) % 2).astype(np.int32)
    y, x = np.mgrid[0:stamp_size, 0:stamp_size].astype(np.float32)
    center = stamp_size / 2
    stamps = np.empty((count, stamp_size, stamp_size, 2 * len(BANDS)), dtype=np.float32)
    for index in range(count):
        depth = generator.uniform(0.5, 1.5)
        sigma_noise = SKY_SIGMA / np.sqrt(depth)
        width = 3.0 if labels[index] else 1.0
        flux = generator.lognormal(mean=2.0, sigma=0.5)
        profile = np.exp(-((x - center) ** 2 + (y - center) ** 2) / (2 * width**2)) / (2 * np.pi * width**2)
        if generator.random() < 0.5:
            neighbour_x, neighbour_y = generator.uniform(5, stamp_size - 5, size=2)
            profile = profile + generator.uniform(0.2, 2) * np.exp(
                -((x - neighbour_x) ** 2 + (y - neighbour_y) ** 2) / 4
            ) / (4 * np.pi)
        covered = np.ones((stamp_size, stamp_size), dtype=bool)
        if generator.random() < 0.25:
            covered[: stamp_size // 4, : stamp_size // 4] = False
        for band_index in range(len(BANDS)):
            colour = (0.6, 1.0, 1.4)[band_index]
            image = flux * colour * profile + generator.normal(0, sigma_noise, size=profile.shape)
            stamps[index, :, :, band_index] = np.where(covered, image, 0.0)
            stamps[index, :, :, len(BANDS) + band_index] = np.where(covered, 1 / sigma_noise**2, 0.0)
    return stamps, labels


def write_shard_set(
    directory: Path,
    train_shards: int = 3,
    test_shards: int = 1,
    validation_shards: int = 1,
    shard_size: int = 64,
    stamp_size: int = 64,
    seed: int = 0,
) -> Path:
    """Write the shard set under ``directory`` through the format's own writer
    (:func:`realfake.formats.shardset.write_shard_set`). Returns ``directory``."""
    generator = np.random.default_rng(seed)
    splits = {}
    for split, count in (("train", train_shards), ("validation", validation_shards), ("test", test_shards)):
        drawn = [synthetic_stamps(shard_size, stamp_size, generator) for _ in range(count)]
        stamps = np.concatenate([stamps for stamps, _ in drawn]) if drawn else np.zeros((0, stamp_size, stamp_size, 6))
        labels = np.concatenate([labels for _, labels in drawn]) if drawn else np.zeros(0, dtype=np.int32)
        catalog = pd.DataFrame(
            {
                "label": labels,
                "kind": np.where(labels == 1, "sim", "real"),
                "brickname": "1238p245",
                "rsdir": np.where(labels == 1, "rs0", ""),
                "id": np.arange(len(labels)),
            }
        )
        splits[split] = (stamps, labels, catalog)
    definition = {"fixture": "tests/shardsfixture.py", "train": train_shards, "validation": validation_shards,
                  "test": test_shards, "shard_size": shard_size, "stamp_size": stamp_size, "seed": seed}  # fmt: skip
    write_shard_set_arrays(directory, splits, list(CHANNEL_NAMES), definition, shard_size)
    return Path(directory)

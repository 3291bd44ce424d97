"""A small synthetic shard set per ``docs/shards_format.md``, for the training tests and benchmark.

Stamps are 64x64 with channels g, r, z, ivar_g, ivar_r, ivar_z (nanomaggies,
1/nanomaggy^2): Gaussian sky noise from a per-stamp depth, a central source
(real: compact, sigma 1 pixel; fake: extended, sigma 3 pixels; the same
flux distribution), sometimes a neighbour off-centre, and an uncovered corner
(inverse variance 0, flux 0) in a quarter of the stamps. The size difference
is the learnable signal. Classes alternate within each shard (balanced).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.shards import shard_set_identity

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


def channel_statistics(stamps: np.ndarray) -> dict:
    """normalization.channels: median and 1.4826 x MAD per channel (ivar: covered pixels only)."""
    statistics = {}
    for index, name in enumerate(CHANNEL_NAMES):
        values = stamps[..., index].ravel().astype(np.float64)
        if name.startswith("ivar_"):
            values = values[values > 0]
        median = float(np.median(values))
        statistics[name] = {"median": median, "mad_sigma": float(1.4826 * np.median(np.abs(values - median)))}
    return statistics


def write_shard_set(
    directory: Path,
    train_shards: int = 3,
    test_shards: int = 1,
    validation_shards: int = 1,
    shard_size: int = 64,
    stamp_size: int = 64,
    seed: int = 0,
) -> Path:
    """Write the shard set under ``directory`` (created); the manifest last. Returns ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(seed)
    splits = {}
    train_stamps = []
    for split, count in (("train", train_shards), ("validation", validation_shards), ("test", test_shards)):
        shards, catalog = [], []
        for shard in range(count):
            stamps, labels = synthetic_stamps(shard_size, stamp_size, generator)
            if split == "train":
                train_stamps.append(stamps)
            np.save(directory / f"x{split}_{shard}.npy", stamps)
            np.save(directory / f"y{split}_{shard}.npy", labels)
            shards.append({"x": f"x{split}_{shard}.npy", "y": f"y{split}_{shard}.npy", "examples": shard_size})
            catalog.append(
                pd.DataFrame(
                    {
                        "shard": shard,
                        "row": np.arange(shard_size),
                        "label": labels,
                        "kind": np.where(labels == 1, "sim", "real"),
                        "brickname": "1238p245",
                        "rsdir": np.where(labels == 1, "rs0", ""),
                        "id": np.arange(shard_size) + shard * shard_size,
                    }
                )
            )
        pd.concat(catalog, ignore_index=True).to_parquet(directory / f"{split}_catalog.parquet")
        examples = count * shard_size
        splits[split] = {"examples": examples, "real": examples // 2, "fake": examples // 2, "shards": shards}
    definition = {"fixture": "tests/shardsfixture.py", "train": train_shards, "validation": validation_shards,
                  "test": test_shards, "shard_size": shard_size, "stamp_size": stamp_size, "seed": seed}  # fmt: skip
    manifest = {
        "format_version": 2,
        "identity": shard_set_identity(definition),
        "package_version": "0.1.0",
        "bands": list(BANDS),
        "channel_names": list(CHANNEL_NAMES),
        "stamp_size": stamp_size,
        "seed": seed,
        "shard_size": shard_size,
        "test_fraction": test_shards / (train_shards + validation_shards + test_shards),
        "validation_fraction": validation_shards / (train_shards + validation_shards),
        "labels": {"real": 0, "fake": 1},
        "splits": splits,
        "normalization": {"computed_on": "train", "channels": channel_statistics(np.concatenate(train_stamps))},
        "balance": "synthetic: alternating labels",
        "matching": "none",
        "selection": "none",
        "inputs": "tests/shardsfixture.py",
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory

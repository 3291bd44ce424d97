"""A small shard set written per docs/shards_format.md, for the evaluate and report tests.

Stamps: float32 (n, 64, 64, C), the bands (nanomaggies) then their inverse
variances; each holds Gaussian noise of the stamp's inverse variance and a
round Gaussian source of the catalog's flux at pixel (32 + offset_y,
32 + offset_x). Labels are balanced (fake = 1) and shuffled.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from realfake.conventions import channel_names as channel_names_of_bands
from realfake.formats.model import save_model as save_model_file
from realfake.formats.shardset import write_shard_set as write_shard_set_arrays

STAMP_SIZE = 64


def _catalog(rng: np.random.Generator, labels: np.ndarray, bands: tuple[str, ...]) -> pd.DataFrame:
    count = labels.size
    g = rng.uniform(20.0, 24.0, count)
    colours = {"g": 0.0, "r": -rng.normal(0.5, 0.2, count), "z": -rng.normal(1.2, 0.3, count)}
    magnitudes = {"g": g, "r": g + colours["r"], "z": g + colours["r"] + colours["z"]}
    table = pd.DataFrame(
        {
            "label": labels.astype(np.int32),
            "kind": np.where(labels == 1, "sim", "real"),
            "cutouts_file": np.where(labels == 1, "sim/123/1238p245.h5", "real/123/1238p245.h5"),
            "id": np.arange(count, dtype=np.int64),
            "brickname": "1238p245",
            "rsdir": np.where(labels == 1, "rs0", ""),
            "ra": rng.uniform(123.8, 124.0, count),
            "dec": rng.uniform(24.4, 24.6, count),
            "offset_x": rng.uniform(-0.5, 0.5, count),
            "offset_y": rng.uniform(-0.5, 0.5, count),
        }
    )
    for band in bands:
        table[f"flux_{band}"] = 10 ** ((22.5 - magnitudes[band]) / 2.5)
        table[f"mw_transmission_{band}"] = 1.0
        table[f"mag_dered_{band}"] = magnitudes[band]
    table["type"] = rng.choice(["EXP", "REX", "PSF"], count, p=[0.6, 0.3, 0.1])
    table["size"] = np.where(table["type"] == "PSF", 0.0, rng.uniform(0.2, 1.0, count))
    table["sersic_n"] = 1.0
    table["e1"] = rng.normal(0, 0.1, count)
    table["e2"] = rng.normal(0, 0.1, count)
    return table


def _stamps(rng: np.random.Generator, catalog: pd.DataFrame, bands: tuple[str, ...]) -> np.ndarray:
    count = len(catalog)
    stamps = np.zeros((count, STAMP_SIZE, STAMP_SIZE, 2 * len(bands)), dtype=np.float32)
    rows, columns = np.mgrid[0:STAMP_SIZE, 0:STAMP_SIZE]
    centre = STAMP_SIZE // 2
    for index, example in enumerate(catalog.itertuples()):
        x, y = centre + example.offset_x, centre + example.offset_y
        profile = np.exp(-((columns - x) ** 2 + (rows - y) ** 2) / (2 * 1.5**2))
        profile /= profile.sum()
        for channel, band in enumerate(bands):
            inverse_variance = rng.uniform(500.0, 2000.0)
            noise = rng.normal(0.0, 1.0 / np.sqrt(inverse_variance), (STAMP_SIZE, STAMP_SIZE))
            stamps[index, :, :, channel] = getattr(example, f"flux_{band}") * profile + noise
            stamps[index, :, :, len(bands) + channel] = inverse_variance
    return stamps


def write_shard_set(
    directory: Path,
    train_examples: int = 120,
    test_examples: int = 200,
    validation_examples: int = 16,
    bands: tuple[str, ...] = ("g", "r", "z"),
    shard_size: int = 64,
    seed: int = 0,
) -> dict:
    """Write a complete shard set to ``directory`` through the format's own writer
    (:func:`realfake.formats.shardset.write_shard_set`); returns its manifest as in ``manifest.json``
    (:meth:`realfake.formats.manifest.Manifest.to_json`)."""
    rng = np.random.default_rng(seed)
    channel_names = channel_names_of_bands(bands)
    splits = {}
    for split, count in (("train", train_examples), ("validation", validation_examples), ("test", test_examples)):
        labels = rng.permutation(np.arange(count) % 2).astype(np.int32)
        catalog = _catalog(rng, labels, bands)
        splits[split] = (_stamps(rng, catalog, bands), labels, catalog)
    definition = {"fixture": "tests/synthetic_shards.py", "train": train_examples, "validation": validation_examples,
                  "test": test_examples, "bands": list(bands), "shard_size": shard_size, "seed": seed}  # fmt: skip
    return write_shard_set_arrays(directory, splits, channel_names, definition, shard_size).to_json()


def read_test_stamps(directory: Path) -> np.ndarray:
    """All test stamps of a shard set, in shard order (test-sized sets only)."""
    manifest = json.loads((Path(directory) / "manifest.json").read_text())
    return np.concatenate([np.load(Path(directory) / entry["x"]) for entry in manifest["splits"]["test"]["shards"]])


def save_model(path: Path, manifest: dict, channels: int | None = None, shard_set: str | None = None) -> None:
    """A small Keras model for ``manifest``'s shard set, saved to ``path`` by the model file's writer
    (:func:`realfake.formats.model.save_model`): its normalisation layer records the manifest's identity (or
    ``shard_set``); with ``channels``, a model of that many input channels and no normalisation layer."""
    import keras

    from realfake.model.network import InputNormalization, normalization_from_manifest

    inputs = keras.Input((64, 64, channels or len(manifest["channel_names"])))
    features = inputs
    if channels is None:
        normalization = normalization_from_manifest(manifest, "manifest")
        features = InputNormalization(
            normalization.channel_names,
            normalization.centers,
            normalization.scales,
            normalization.inverse_variance,
            shard_set=normalization.shard_set if shard_set is None else shard_set,
        )(features)
    features = keras.layers.GlobalAveragePooling2D()(features)
    outputs = keras.layers.Dense(2, activation="softmax")(features)
    save_model_file(keras.Model(inputs, outputs), path)

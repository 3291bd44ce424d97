"""The shard set: its format's writer and checked reader side by side (``docs/shards_format.md``).

A shard set is one directory: per split (train, validation, test) the shards
``x<split>_<k>.npy`` (float32 (n, S, S, C) stamps) and ``y<split>_<k>.npy``
(int32 (n,) labels, fake = 1), the catalogs ``<split>_catalog.parquet`` (one
row per example in shard order) and ``manifest.json``, written last.

- Reading: :func:`open_shard_set` checks the manifest against every shard
  (headers memory-mapped, labels read: 4 bytes per example; no pixels) and
  returns a :class:`ShardSet`; training, evaluation and the report all read
  through it.
- Writing: :func:`shard_file_names`, :func:`catalog_name`,
  :func:`normalization_record`, :func:`shard_set_identity` and
  :func:`write_manifest` are the pieces every writer uses: the shards stage
  (:mod:`realfake.shards.build`, which streams stamps into place) and
  :func:`write_shard_set`, which writes a small set held in memory (test
  fixtures, benchmarks).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from realfake.conventions import LABELS, SPLITS, is_inverse_variance
from realfake.digests import digest_array
from realfake.errors import RealfakeError

MANIFEST_NAME = "manifest.json"
CATALOG_BATCH_ROWS = 65_536  # catalog rows read at once by ShardSet.catalog_rows
# Stamps stored as float16: each channel divided by its scale (a power of two, so exact). Fluxes (nanomaggies)
# keep 1: float16's ~3 significant digits are far below the sky noise, and its largest value (65504 nanomaggies
# in one pixel, a star of about magnitude 10) is clipped there and counted. Inverse variances reach 1e5 to 1e6
# 1/nanomaggy^2 in deep regions, past float16's 65504: stored divided by 2^10, they are exact to 0.05% from
# 0.06 to 6.7e7.
STORAGE_SCALES = {"flux": 1.0, "inverse_variance": 1024.0}
FLOAT16_MAX = float(np.finfo(np.float16).max)
FORMAT_VERSION = 2
# How a stamp with NaN or infinite pixels is named in errors (training and evaluation refuse them).
NON_FINITE_INPUT = "non-finite pixels"


# -- writing ------------------------------------------------------------------------------------


def shard_file_names(split: str, count: int, shard_size: int) -> list[dict]:
    """The manifest's shard entries of a split of ``count`` examples: ``{"x", "y", "examples"}`` per shard,
    every shard ``shard_size`` long but the last."""
    shards = []
    for shard in range(math.ceil(count / shard_size)):
        examples = min(shard_size, count - shard * shard_size)
        shards.append({"x": f"x{split}_{shard}.npy", "y": f"y{split}_{shard}.npy", "examples": examples})
    return shards


def catalog_name(split: str) -> str:
    """The file name of a split's catalog: ``<split>_catalog.parquet``."""
    return f"{split}_catalog.parquet"


def _robust_statistics(values: np.ndarray) -> dict[str, float]:
    median = float(np.median(values)) if values.size else 0.0
    mad = float(np.median(np.abs(values - median))) if values.size else 0.0
    return {"median": median, "mad_sigma": 1.4826 * mad}


def normalization_record(
    pixels: np.ndarray, channel_names: list[str], examples_sampled: int, pixels_per_example: int
) -> dict:
    """The manifest's ``normalization``: per channel the median and robust sigma (1.4826 x MAD) of
    training pixels ``pixels`` (n, C); inverse-variance channels count only pixels > 0."""
    statistics = {}
    for column, name in enumerate(channel_names):
        values = pixels[:, column].astype(np.float64)
        if is_inverse_variance(name):
            values = values[values > 0]
        statistics[name] = _robust_statistics(values)
    return {
        "computed_on": "train",
        "examples_sampled": examples_sampled,
        "pixels_per_example": pixels_per_example,
        "channels": statistics,
    }


def shard_set_identity(definition: dict, placement: dict[str, np.ndarray] | None = None) -> str:
    """SHA-256 (hex) of a shard set's ``definition`` (JSON-ready) and ``placement``.

    ``placement[split]`` is an integer array (n, 2): for each example in shard
    order, the number of its input file and its row there. Both are hashed in
    a canonical form (sorted JSON keys; little-endian int64), so the identity
    is the same on every machine.
    """
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode())
    for split in sorted(placement or {}):
        array = np.ascontiguousarray(placement[split], dtype="<i8")
        digest.update(f"\n{split} {array.shape}\n".encode())
        digest_array(digest, array)
    return digest.hexdigest()


def write_manifest(directory: Path, manifest: Mapping) -> Path:
    """Write ``manifest.json`` (sorted keys, indented): the last file of a shard set."""
    path = Path(directory) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def write_shard_set(
    directory: Path,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]],
    channel_names: list[str],
    definition: dict,
    shard_size: int = 512,
    extra: Mapping | None = None,
) -> dict:
    """Write a shard set held in memory to ``directory``; return its manifest.

    ``splits[split]`` = (stamps float32 (n, S, S, C), labels int32 (n,),
    catalog with n rows) for each of train, validation and test, in shard
    order; ``definition`` is what the identity is computed from
    (:func:`shard_set_identity`); ``extra`` adds manifest keys. The
    normalisation comes from every training pixel.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = {}
    for split in SPLITS:
        stamps, labels, catalog = splits[split]
        entries[split] = shard_file_names(split, len(labels), shard_size)
        shard_column, row_column = np.divmod(np.arange(len(labels)), shard_size)
        for number, shard in enumerate(entries[split]):
            rows = slice(number * shard_size, number * shard_size + shard["examples"])
            np.save(directory / shard["x"], np.ascontiguousarray(stamps[rows], dtype=np.float32))
            np.save(directory / shard["y"], np.asarray(labels[rows], dtype=np.int32))
        table = catalog.reset_index(drop=True).drop(columns=["shard", "row"], errors="ignore")
        table.insert(0, "row", row_column.astype(np.int32))
        table.insert(0, "shard", shard_column.astype(np.int32))
        table.to_parquet(directory / catalog_name(split), index=False)
    train_stamps = splits["train"][0]
    pixels = np.asarray(train_stamps, dtype=np.float32).reshape(-1, len(channel_names))
    stamp_size = int(train_stamps.shape[1])
    manifest = {
        "format_version": FORMAT_VERSION,
        "identity": shard_set_identity(definition),
        "channel_names": list(channel_names),
        "stamp_size": stamp_size,
        "shard_size": shard_size,
        "labels": LABELS,
        "splits": {
            split: {
                "examples": int(len(splits[split][1])),
                "real": int(np.sum(np.asarray(splits[split][1]) == 0)),
                "fake": int(np.sum(np.asarray(splits[split][1]) == 1)),
                "shards": entries[split],
            }
            for split in SPLITS
        },
        "normalization": normalization_record(pixels, list(channel_names), len(train_stamps), stamp_size**2),
        **(extra or {}),
    }
    write_manifest(directory, manifest)
    return manifest


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """One shard: stamps ``x`` (n, S, S, C) and labels ``y`` int32 (n,).

    The stamps are stored float32, or float16 with each channel divided by its
    ``scale`` (the manifest's ``storage``: :data:`STORAGE_SCALES`); read them
    through :meth:`decode`, which gives float32 in the physical units whatever
    the storage.
    """

    x: Path
    y: Path
    examples: int
    scale: tuple[float, ...] | None = None

    def decode(self, stored: np.ndarray) -> np.ndarray:
        """Stored stamps (any leading shape, channels last) as float32 in nanomaggies and 1/nanomaggy^2."""
        if self.scale is None:
            return np.asarray(stored, dtype=np.float32)
        return np.asarray(stored, dtype=np.float32) * np.asarray(self.scale, dtype=np.float32)


@dataclass(frozen=True)
class ShardSet:
    """A checked shard set: the manifest and, per split (train, validation, test), the shards in order."""

    directory: Path
    manifest: dict
    identity: str
    channel_names: tuple[str, ...]
    stamp_size: int
    train: tuple[Shard, ...]
    validation: tuple[Shard, ...]
    test: tuple[Shard, ...]

    @property
    def stamp_shape(self) -> tuple[int, int, int]:
        """(S, S, C) of one example."""
        return (self.stamp_size, self.stamp_size, len(self.channel_names))

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST_NAME

    def split(self, name: str) -> tuple[Shard, ...]:
        """The shards of split ``name`` ("train", "validation" or "test"), in order."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def examples(self, split: str) -> int:
        return sum(shard.examples for shard in self.split(split))

    def read_examples(self, split: str, positions: Sequence[int], half_width: int | None = None) -> np.ndarray:
        """Stamps float32 (k, S, S, C) of ``split`` at ``positions`` (0-based, in shard order, as the split's
        catalog rows), in the order given; only those stamps are read, each shard opened once. With
        ``half_width`` h, only the central (2h + 1) x (2h + 1) pixels of each, centred on pixel (S/2, S/2)."""
        shards = self.split(split)
        starts = np.concatenate([[0], np.cumsum([shard.examples for shard in shards])])
        positions = np.asarray(positions, dtype=np.int64).reshape(-1)
        size = self.stamp_size if half_width is None else 2 * half_width + 1
        first = 0 if half_width is None else self.stamp_size // 2 - half_width
        window = np.arange(first, first + size)
        stamps = np.empty((len(positions), size, size, len(self.channel_names)), dtype=np.float32)
        numbers = np.searchsorted(starts, positions, side="right") - 1
        outside = (numbers < 0) | (numbers >= len(shards)) | (positions < 0)
        if outside.any():
            raise RealfakeError(f"{split} example {positions[outside][0]} is not in the shards of {self.directory}")
        for number in np.unique(numbers):
            members = np.flatnonzero(numbers == number)
            rows = positions[members] - starts[number]
            order = np.argsort(rows, kind="stable")  # forward through the file
            shard = shards[number]
            mapped = load_stamps(shard.x)
            if half_width is None:
                stamps[members[order]] = shard.decode(mapped[rows[order]])
            else:  # advanced indexing on the memory map reads only these pixels
                picked = mapped[rows[order][:, None, None], window[None, :, None], window[None, None, :]]
                stamps[members[order]] = shard.decode(picked)
        return stamps

    def catalog_column(self, split: str, column: str) -> np.ndarray:
        """One column of ``<split>_catalog.parquet`` (all rows, in shard order), read alone."""
        path = self.directory / catalog_name(split)
        if not path.is_file():
            raise RealfakeError(f"{path} is missing: the shard set has no {split} catalog (docs/shards_format.md)")
        return pq.read_table(path, columns=[column]).column(0).to_numpy()

    def catalog_rows(self, split: str, positions: np.ndarray) -> pd.DataFrame:
        """The rows of ``<split>_catalog.parquet`` at sorted ``positions``, read batch by batch: the memory is
        the rows kept and one batch, however long the catalog."""
        path = self.directory / catalog_name(split)
        if not path.is_file():
            raise RealfakeError(f"{path} is missing: the shard set has no {split} catalog (docs/shards_format.md)")
        positions = np.asarray(positions, dtype=np.int64)
        parts, start = [], 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=CATALOG_BATCH_ROWS):
            stop = start + batch.num_rows
            chosen = positions[(positions >= start) & (positions < stop)] - start
            if chosen.size:
                parts.append(batch.take(chosen).to_pandas())
            start = stop
        if not parts:
            return pd.read_parquet(path).iloc[:0]
        return pd.concat(parts, ignore_index=True)

    def catalog(self, split: str) -> pd.DataFrame:
        """``<split>_catalog.parquet``: one row per example in shard order, checked against the shards."""
        path = self.directory / catalog_name(split)
        if not path.is_file():
            raise RealfakeError(f"{path} is missing: the shard set has no {split} catalog (docs/shards_format.md)")
        catalog = pd.read_parquet(path)
        if len(catalog) != self.examples(split):
            raise RealfakeError(f"{path} has {len(catalog)} rows but the {split} shards hold {self.examples(split)}")
        if "label" not in catalog.columns:
            raise RealfakeError(f"{path} has no 'label' column")
        return catalog.reset_index(drop=True)


def open_shard_set(directory: Path) -> ShardSet:
    """Read ``directory/manifest.json`` and check every shard it lists.

    Raises RealfakeError, naming the directory, file or manifest key, when the
    directory is missing or empty, the manifest is missing or malformed or of
    another ``format_version`` than :data:`FORMAT_VERSION`, a shard
    file is missing, a shard's shape or dtype disagrees with the manifest, a
    label is not 0 or 1, or the training split is empty.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RealfakeError(f"shard directory {directory} does not exist")
    if not any(directory.iterdir()):
        raise RealfakeError(f"shard directory {directory} is empty")
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise RealfakeError(f"{manifest_path} is missing: the shard set is incomplete (the manifest is written last)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise RealfakeError(f"{manifest_path}: not valid JSON ({error})") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise RealfakeError(
            f"{manifest_path}: format_version {version!r}, but this realfake reads shard sets of format "
            f"{FORMAT_VERSION} only: make the shard set again with this realfake (`realfake shards`)"
        )
    identity = manifest_identity(manifest, manifest_path)
    channel_names = tuple(_manifest_value(manifest, manifest_path, "channel_names"))
    stamp_size = int(_manifest_value(manifest, manifest_path, "stamp_size"))
    if not channel_names:
        raise RealfakeError(f"{manifest_path}: channel_names is empty")
    shape = (stamp_size, stamp_size, len(channel_names))
    dtype, scale = _storage(manifest, manifest_path, channel_names)
    splits = {}
    for split in SPLITS:
        entries = _manifest_value(manifest, manifest_path, "splits", split, "shards")
        splits[split] = tuple(
            _checked_shard(directory, manifest_path, split, index, entry, shape, dtype, scale)
            for index, entry in enumerate(entries)
        )
    shard_set = ShardSet(
        directory, manifest, identity, channel_names, stamp_size, splits["train"], splits["validation"], splits["test"]
    )
    for split in SPLITS:
        listed = _manifest_value(manifest, manifest_path, "splits", split, "examples")
        if int(listed) != shard_set.examples(split):
            raise RealfakeError(
                f"{manifest_path}: splits.{split}.examples is {listed} but its shards hold {shard_set.examples(split)}"
            )
    if shard_set.examples("train") == 0:
        raise RealfakeError(f"{manifest_path}: the training split has no examples")
    return shard_set


def manifest_identity(manifest: dict, manifest_path: Path) -> str:
    """The shard set's ``identity`` (:func:`shard_set_identity`); RealfakeError when absent."""
    identity = manifest.get("identity") if isinstance(manifest, dict) else None
    if not isinstance(identity, str) or not identity:
        raise RealfakeError(
            f"{manifest_path}: missing key identity (the shard set was made by an older realfake); "
            f"make it again with `realfake shards`"
        )
    return identity


def short_identity(identity: str | None) -> str:
    """The first 12 hex digits of an identity, for messages and folder names ("unknown" for None)."""
    return identity[:12] if identity else "unknown"


def _manifest_value(manifest: dict, manifest_path: Path, *keys: str):
    value = manifest
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            raise RealfakeError(f"{manifest_path}: missing key {'.'.join(keys[: depth + 1])}")
        value = value[key]
    return value


def storage_record(dtype: str, channel_names: tuple[str, ...]) -> dict:
    """The manifest's ``storage``: the stamps' dtype and, for float16, each channel's scale (stored = value /
    scale)."""
    if dtype == "float32":
        return {"dtype": "float32"}
    scales = {
        name: STORAGE_SCALES["inverse_variance" if is_inverse_variance(name) else "flux"] for name in channel_names
    }
    return {"dtype": dtype, "channel_scales": scales}


def _storage(manifest: dict, manifest_path: Path, channel_names: tuple[str, ...]) -> tuple[np.dtype, tuple | None]:
    """The stamps' dtype and per-channel scales from the manifest's ``storage`` (absent: float32)."""
    storage = manifest.get("storage") or {"dtype": "float32"}
    if storage.get("dtype") == "float32":
        return np.dtype(np.float32), None
    if storage.get("dtype") != "float16":
        raise RealfakeError(f"{manifest_path}: storage.dtype must be float32 or float16, got {storage.get('dtype')!r}")
    scales = storage.get("channel_scales") or {}
    missing = [name for name in channel_names if name not in scales]
    if missing:
        raise RealfakeError(f"{manifest_path}: storage.channel_scales has no scale for channel {missing[0]}")
    return np.dtype(np.float16), tuple(float(scales[name]) for name in channel_names)


def _checked_shard(
    directory: Path,
    manifest_path: Path,
    split: str,
    index: int,
    entry: dict,
    shape: tuple[int, int, int],
    dtype: np.dtype = np.dtype(np.float32),
    scale: tuple[float, ...] | None = None,
) -> Shard:
    key = f"splits.{split}.shards[{index}]"
    try:
        shard = Shard(directory / entry["x"], directory / entry["y"], int(entry["examples"]), scale)
    except (KeyError, TypeError, ValueError):
        raise RealfakeError(f"{manifest_path}: {key} needs 'x', 'y' and 'examples'") from None
    for path in (shard.x, shard.y):
        if not path.is_file():
            raise RealfakeError(f"{path} is missing (listed in {manifest_path} as {key})")
    stamps = load_stamps(shard.x)
    labels = load_stamps(shard.y)
    expected_stamps = (shard.examples, *shape)
    if stamps.shape != expected_stamps or stamps.dtype != dtype:
        raise RealfakeError(
            f"{shard.x}: shape {stamps.shape} {stamps.dtype} disagrees with {manifest_path} "
            f"(expected {expected_stamps} {dtype} from {key}.examples, stamp_size, channel_names and storage)"
        )
    if labels.shape != (shard.examples,) or labels.dtype != np.int32:
        raise RealfakeError(
            f"{shard.y}: shape {labels.shape} {labels.dtype} disagrees with {manifest_path} "
            f"(expected ({shard.examples},) int32)"
        )
    if labels.size and not np.isin(np.asarray(labels), (0, 1)).all():
        raise RealfakeError(f"{shard.y}: labels must be 0 (real) or 1 (fake)")
    return shard


def load_stamps(path: Path) -> np.ndarray:
    """A shard's array, memory-mapped (nothing read until sliced); RealfakeError naming an unreadable file."""
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as error:
        raise RealfakeError(f"{path}: not a readable .npy file ({error})") from None

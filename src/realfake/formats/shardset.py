"""The shard set: its format's writer and checked reader side by side (``docs/shards_format.md``).

A shard set is one directory: per split (train, validation, test) the shards
``x<split>_<k>.npy`` (float32 (n, S, S, C) stamps) and ``y<split>_<k>.npy``
(int32 (n,) labels, fake = 1), the catalogs ``<split>_catalog.parquet`` (one
row per example in shard order) and ``manifest.json``, written last.

- The manifest: :class:`realfake.formats.manifest.Manifest`, one typed record
  that every writer builds and :meth:`realfake.formats.manifest.Manifest.from_json`
  reads and checks, with the pieces every writer builds it from
  (:mod:`realfake.formats.manifest`).
- Reading: :func:`open_shard_set` checks the manifest against every shard
  (headers memory-mapped, labels read: 4 bytes per example; no pixels) and
  returns a :class:`ShardSet`; training, evaluation and the report all read
  through it.
- Writing: the shards stage (:func:`realfake.shards.build.run_shards`, which
  streams stamps into place) and :func:`write_shard_set`, which writes a small
  set held in memory (test fixtures, benchmarks), name the catalogs with
  :func:`catalog_name` and the shards with
  :func:`realfake.formats.manifest.shard_file_names`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from realfake.conventions import SPLITS, bands_of
from realfake.errors import RealfakeError
from realfake.formats.jsonfile import read_json
from realfake.formats.manifest import (
    MANIFEST_NAME,
    Manifest,
    label_counts,
    normalization_record,
    shard_set_identity,
    split_records,
    write_manifest,
)

CATALOG_BATCH_ROWS = 65_536  # catalog rows read at once by ShardSet.catalog_rows
# How a stamp with NaN or infinite pixels is named in errors (training and evaluation refuse them).
NON_FINITE_INPUT = "non-finite pixels"


# -- writing ------------------------------------------------------------------------------------


def catalog_name(split: str) -> str:
    """The file name of a split's catalog: ``<split>_catalog.parquet``."""
    return f"{split}_catalog.parquet"


def write_shard_set(
    directory: Path,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]],
    channel_names: list[str],
    definition: dict,
    shard_size: int = 512,
) -> Manifest:
    """Write a shard set held in memory to ``directory``; return its manifest.

    ``splits[split]`` = (stamps float32 (n, S, S, C), labels int32 (n,),
    catalog with n rows) for each of train, validation and test, in shard
    order; ``definition`` is what the identity is computed from
    (:func:`realfake.formats.manifest.shard_set_identity`). The stamps are
    stored float32, the bands are the flux channels, and the normalisation
    comes from every training pixel.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    records = split_records({split: splits[split][1] for split in SPLITS}, shard_size)
    for split in SPLITS:
        stamps, labels, catalog = splits[split]
        shard_column, row_column = np.divmod(np.arange(len(labels)), shard_size)
        for number, shard in enumerate(records[split]["shards"]):
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
    manifest = Manifest(
        identity=shard_set_identity(definition),
        channel_names=tuple(channel_names),
        stamp_size=stamp_size,
        shard_size=shard_size,
        splits=records,
        normalization=normalization_record(pixels, list(channel_names), len(train_stamps), stamp_size**2),
        bands=bands_of(channel_names),
        available=label_counts(np.concatenate([np.asarray(splits[split][1]) for split in SPLITS])),
    )
    write_manifest(directory, manifest)
    return manifest


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """One shard: stamps ``x`` (n, S, S, C) and labels ``y`` int32 (n,).

    The stamps are stored float32, or float16 with each channel divided by its
    ``scale`` (the manifest's ``storage``:
    :data:`realfake.formats.manifest.STORAGE_SCALES`); read them through
    :meth:`decode`, which gives float32 in the physical units whatever the
    storage.
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
    manifest: Manifest
    train: tuple[Shard, ...]
    validation: tuple[Shard, ...]
    test: tuple[Shard, ...]

    @property
    def identity(self) -> str:
        """The manifest's ``identity`` (:func:`realfake.formats.manifest.shard_set_identity`)."""
        return self.manifest.identity

    @property
    def channel_names(self) -> tuple[str, ...]:
        return self.manifest.channel_names

    @property
    def stamp_size(self) -> int:
        return self.manifest.stamp_size

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
    directory is missing or empty, the manifest is missing or malformed
    (:meth:`realfake.formats.manifest.Manifest.from_json`: of another
    ``format_version`` than :data:`realfake.formats.manifest.FORMAT_VERSION`,
    or lacking a key), a shard file is missing, a
    shard's shape or dtype disagrees with the manifest, a label is not 0 or 1,
    or the training split is empty.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RealfakeError(f"shard directory {directory} does not exist")
    if not any(directory.iterdir()):
        raise RealfakeError(f"shard directory {directory} is empty")
    manifest_path = directory / MANIFEST_NAME
    record = read_json(manifest_path, "(the shard set is incomplete: the manifest is written last)")
    manifest = Manifest.from_json(record, manifest_path)
    shape = (manifest.stamp_size, manifest.stamp_size, len(manifest.channel_names))
    dtype, scale = manifest.stored_as()
    splits = {}
    for split in SPLITS:
        splits[split] = tuple(
            _checked_shard(directory, manifest_path, split, index, entry, shape, dtype, scale)
            for index, entry in enumerate(manifest.splits[split]["shards"])
        )
    shard_set = ShardSet(directory, manifest, splits["train"], splits["validation"], splits["test"])
    for split in SPLITS:
        listed = manifest.splits[split]["examples"]
        if int(listed) != shard_set.examples(split):
            raise RealfakeError(
                f"{manifest_path}: splits.{split}.examples is {listed} but its shards hold {shard_set.examples(split)}"
            )
    if shard_set.examples("train") == 0:
        raise RealfakeError(f"{manifest_path}: the training split has no examples")
    return shard_set


def short_identity(identity: str | None) -> str:
    """The first 12 hex digits of an identity, for messages and folder names ("unknown" for None)."""
    return identity[:12] if identity else "unknown"


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

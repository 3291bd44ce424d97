"""The shard set: its format's writer and checked reader side by side (``docs/shards_format.md``).

A shard set is one directory: per split (train, validation, test) the shards
``x<split>_<k>.npy`` (float32 (n, S, S, C) stamps) and ``y<split>_<k>.npy``
(int32 (n,) labels, fake = 1), the catalogs ``<split>_catalog.parquet`` (one
row per example in shard order) and ``manifest.json``, written last. A set
cross-fitted in K >= 2 folds (``realfake shards --folds K``) has the same files
per part instead (``fold<j>-train``, ``fold<j>-validation``:
:func:`realfake.conventions.fold_parts`), and each model's splits are assembled
from the parts (:meth:`ShardSet.fold_view`, :meth:`ShardSet.pooled_view`).

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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from realfake.conventions import FOLD_ROLES, SPLITS, bands_of, fold_parts, part_name
from realfake.errors import RealfakeError
from realfake.formats.jsonfile import read_json
from realfake.formats.manifest import (
    FOLDS_NORMALIZATION_SOURCE,
    MANIFEST_NAME,
    Manifest,
    label_counts,
    normalization_record,
    shard_set_identity,
    split_records,
    write_manifest,
)

# What a fold view's identity appends to the shard set's, before the fold: "<sha256>-fold2" (ShardSet.identity).
FOLD_IDENTITY_SUFFIX = "-fold"
CATALOG_BATCH_ROWS = 65_536  # catalog rows read at once by ShardSet.catalog_rows
# How a stamp with NaN or infinite pixels is named in errors (training and evaluation refuse them).
NON_FINITE_INPUT = "non-finite pixels"


# -- writing ------------------------------------------------------------------------------------


CATALOG_SUFFIX = "_catalog.parquet"


def catalog_name(split: str) -> str:
    """The file name of a split's (with folds, a part's) catalog: ``<split>_catalog.parquet``."""
    return f"{split}{CATALOG_SUFFIX}"


def write_shard_set(
    directory: Path,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]],
    channel_names: list[str],
    definition: dict,
    shard_size: int = 512,
    folds: int = 1,
) -> Manifest:
    """Write a shard set held in memory to ``directory``; return its manifest.

    ``splits[split]`` = (stamps float32 (n, S, S, C), labels int32 (n,),
    catalog with n rows) for each of train, validation and test, in shard
    order; with ``folds`` K >= 2, for each part instead (fold0-train,
    fold0-validation, ..., :func:`realfake.conventions.fold_parts`).
    ``definition`` is what the identity is computed from
    (:func:`realfake.formats.manifest.shard_set_identity`). The stamps are
    stored float32, the bands are the flux channels, and the normalisation
    comes from every training pixel (with folds, of every fold's training part).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = fold_parts(folds)
    missing = [part for part in parts if part not in splits]
    if missing:
        raise ValueError(f"write_shard_set with folds={folds} needs the parts {', '.join(parts)}; no {missing[0]}")
    records = split_records({part: splits[part][1] for part in parts}, shard_size)
    for part in parts:
        stamps, labels, catalog = splits[part]
        shard_column, row_column = np.divmod(np.arange(len(labels)), shard_size)
        for number, shard in enumerate(records[part]["shards"]):
            rows = slice(number * shard_size, number * shard_size + shard["examples"])
            np.save(directory / shard["x"], np.ascontiguousarray(stamps[rows], dtype=np.float32))
            np.save(directory / shard["y"], np.asarray(labels[rows], dtype=np.int32))
        table = catalog.reset_index(drop=True).drop(columns=["shard", "row"], errors="ignore")
        table.insert(0, "row", row_column.astype(np.int32))
        table.insert(0, "shard", shard_column.astype(np.int32))
        table.to_parquet(directory / catalog_name(part), index=False)
    train_parts = ["train"] if folds == 1 else [part_name(fold, "train") for fold in range(folds)]
    train_stamps = np.concatenate([np.asarray(splits[part][0], dtype=np.float32) for part in train_parts])
    pixels = train_stamps.reshape(-1, len(channel_names))
    stamp_size = int(train_stamps.shape[1])
    computed_on = "train" if folds == 1 else FOLDS_NORMALIZATION_SOURCE
    manifest = Manifest(
        identity=shard_set_identity(definition),
        channel_names=tuple(channel_names),
        stamp_size=stamp_size,
        shard_size=shard_size,
        splits=records,
        normalization=normalization_record(
            pixels, list(channel_names), len(train_stamps), stamp_size**2, computed_on=computed_on
        ),
        bands=bands_of(channel_names),
        available=label_counts(np.concatenate([np.asarray(splits[part][1]) for part in parts])),
        folds=folds if folds > 1 else None,
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


@dataclass(frozen=True, eq=False)
class ShardSet:
    """A checked shard set, or a view of one: the manifest, every part's shards, and the parts each split
    (train, validation, test) is assembled from.

    A set of one fold is stored in the splits themselves: ``parts`` is {"train": ..., "validation": ...,
    "test": ...} and each split is its part. A set cross-fitted in K >= 2 folds is stored in the parts
    ``fold<j>-train`` and ``fold<j>-validation`` (:func:`realfake.conventions.fold_parts`), and each view
    assembles its splits from them: :meth:`fold_view` (model k's: it trains on the other folds and tests fold k)
    and :meth:`pooled_view` (every example in test, as :func:`open_shard_set` returns such a set). Every view
    has the directory and manifest of the set, and its identity, with the fold appended in a fold's view
    (:attr:`identity`); ``fold`` is the fold a view tests (None: the set as opened, or pooled). Positions and
    catalog ``shard`` numbers are those of the assembled split.
    """

    directory: Path
    manifest: Manifest
    parts: Mapping[str, tuple[Shard, ...]]
    assembly: Mapping[str, tuple[str, ...]]
    fold: int | None = None
    # Each split's shards, assembled once (a split of a large set has 100,000 shards, indexed one by one).
    _splits: dict[str, tuple[Shard, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        splits = {name: tuple(shard for part in self.assembly[name] for shard in self.parts[part]) for name in SPLITS}
        object.__setattr__(self, "_splits", splits)

    @property
    def train(self) -> tuple[Shard, ...]:
        return self.split("train")

    @property
    def validation(self) -> tuple[Shard, ...]:
        return self.split("validation")

    @property
    def test(self) -> tuple[Shard, ...]:
        return self.split("test")

    @property
    def identity(self) -> str:
        """The manifest's ``identity`` (:func:`realfake.formats.manifest.shard_set_identity`); in fold k's view
        (:meth:`fold_view`) that identity with ``-fold<k>`` appended, which a model trained on the view, its
        checkpoints and its predictions record, so that none is taken for another fold's."""
        if self.fold is None:
            return self.manifest.identity
        return f"{self.manifest.identity}{FOLD_IDENTITY_SUFFIX}{self.fold}"

    @property
    def folds(self) -> int:
        """The number of folds the set is cross-fitted in: 1 for a set of one split."""
        return self.manifest.fold_count

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

    def fold_view(self, fold: int) -> ShardSet:
        """The view of the model of fold ``fold`` k (0 to K - 1) of a set of K >= 2 folds: validation = the
        validation part of the next fold, k + 1 (mod K); train = every other part of the other folds (their
        training parts, and the validation parts of all but the next, in part order); test = fold k's training
        part, then its validation part. RealfakeError naming the fold for one that is not one of the set's
        (every fold, for a set of one split).

        One validation part per model, not the other folds' K - 1, so that each model trains on as many
        examples as the single split's (with K = 5: four fifths of the examples less one fold's validation
        part, against the single split's four fifths less a tenth of them); a validation part is whole bricks,
        which on a small survey (the demo's 12 bricks in 5 folds) is a large share of its fold."""
        if self.folds == 1:
            raise RealfakeError(
                f"fold {fold}: the shard set in {self.directory} has one split, not folds (it was made without --folds)"
            )
        if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < self.folds:
            raise RealfakeError(f"fold {fold!r}: the shard set in {self.directory} has folds 0 to {self.folds - 1}")
        fold = int(fold)
        validation = part_name((fold + 1) % self.folds, "validation")
        tested = {part_name(fold, role) for role in FOLD_ROLES}
        assembly = {
            "train": tuple(part for part in self.manifest.parts if part not in tested and part != validation),
            "validation": (validation,),
            "test": tuple(part_name(fold, role) for role in FOLD_ROLES),
        }
        return replace(self, assembly=assembly, fold=fold)

    def pooled_view(self) -> ShardSet:
        """Every example in test, in part order (fold0-train, fold0-validation, fold1-train, ...: the test
        splits of :meth:`fold_view` 0, 1, ... one after the other), and empty train and validation splits (no
        model trains on every fold): the view that reads the K models' predictions together. The set itself
        for a set of one split."""
        if self.folds == 1:
            return self
        return replace(self, assembly=_pooled_assembly(self.folds), fold=None)

    def test_folds(self) -> np.ndarray:
        """int64 (n,): the fold of each example of this view's test split, in shard order: all 0 for a set of one
        split, all k in fold k's view, each example's own fold in the pooled view."""
        if self.folds == 1:
            return np.zeros(self.examples("test"), dtype=np.int64)
        fold_of = {part: number // len(FOLD_ROLES) for number, part in enumerate(self.manifest.parts)}
        return np.concatenate(
            [np.zeros(0, dtype=np.int64)]
            + [
                np.full(sum(shard.examples for shard in self.parts[part]), fold_of[part], dtype=np.int64)
                for part in self.assembly["test"]
            ]
        )

    def split(self, name: str) -> tuple[Shard, ...]:
        """The shards of split ``name`` ("train", "validation" or "test"), in order: its parts' shards, one part
        after the other."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; one of {', '.join(SPLITS)}")
        return self._splits[name]

    def split_parts(self, name: str) -> tuple[str, ...]:
        """The parts split ``name`` is assembled from, in order (the split itself for a set of one split)."""
        self.split(name)
        return tuple(self.assembly[name])

    def catalog_paths(self, split: str) -> list[Path]:
        """The catalog files of ``split``'s parts, in order (``<part>_catalog.parquet``)."""
        return [self.directory / catalog_name(part) for part in self.split_parts(split)]

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

    def _catalog_parts(self, split: str) -> list[tuple[Path, int, int, int]]:
        """(catalog path, examples, first position, first shard number) of each part of ``split``, within the
        assembled split; RealfakeError naming a missing catalog."""
        pieces, position, shard_number = [], 0, 0
        for part in self.split_parts(split):
            path = self.directory / catalog_name(part)
            if not path.is_file():
                raise RealfakeError(f"{path} is missing: the shard set has no {part} catalog (docs/shards_format.md)")
            examples = sum(shard.examples for shard in self.parts[part])
            pieces.append((path, examples, position, shard_number))
            position, shard_number = position + examples, shard_number + len(self.parts[part])
        return pieces

    def catalog_column(self, split: str, column: str) -> np.ndarray:
        """One column of ``split``'s catalog (all rows, in shard order; its parts' ``<part>_catalog.parquet``
        one after the other, ``shard`` numbered within the split), read alone."""
        pieces = self._catalog_parts(split)
        values = [
            _numbered(pq.read_table(path, columns=[column]).column(0).to_numpy(), column, first_shard)
            for path, _, _, first_shard in pieces
        ]
        if not values:
            return np.zeros(0, dtype=np.int32 if column in ("shard", "row", "label") else np.float64)
        return values[0] if len(values) == 1 else np.concatenate(values)

    def catalog_rows(self, split: str, positions: np.ndarray) -> pd.DataFrame:
        """The rows of ``split``'s catalog at sorted ``positions`` (of the assembled split), read batch by batch:
        the memory is the rows kept and one batch, however long the catalog."""
        positions = np.asarray(positions, dtype=np.int64)
        parts, empty = [], None
        for path, examples, first, first_shard in self._catalog_parts(split):
            wanted = positions[(positions >= first) & (positions < first + examples)] - first
            start = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=CATALOG_BATCH_ROWS):
                stop = start + batch.num_rows
                chosen = wanted[(wanted >= start) & (wanted < stop)] - start
                if chosen.size:
                    parts.append(_renumbered(batch.take(chosen).to_pandas(), first_shard))
                start = stop
            if empty is None:
                empty = path
        if not parts:
            return pd.read_parquet(empty).iloc[:0] if empty is not None else pd.DataFrame()
        return pd.concat(parts, ignore_index=True)

    def catalog(self, split: str) -> pd.DataFrame:
        """``split``'s catalog: one row per example in shard order (its parts' ``<part>_catalog.parquet`` one
        after the other, ``shard`` numbered within the split), checked against the shards."""
        tables = []
        for path, examples, _, first_shard in self._catalog_parts(split):
            table = pd.read_parquet(path)
            if len(table) != examples:
                part = path.name.removesuffix(CATALOG_SUFFIX)
                raise RealfakeError(f"{path} has {len(table)} rows but the {part} shards hold {examples}")
            if "label" not in table.columns:
                raise RealfakeError(f"{path} has no 'label' column")
            tables.append(_renumbered(table, first_shard))
        if not tables:
            return pd.DataFrame()
        catalog = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
        return catalog.reset_index(drop=True)


def _pooled_assembly(folds: int) -> dict[str, tuple[str, ...]]:
    return {"train": (), "validation": (), "test": tuple(fold_parts(folds))}


def _numbered(values: np.ndarray, column: str, first_shard: int) -> np.ndarray:
    """A catalog column of one part with ``shard`` numbered within the assembled split (from ``first_shard``)."""
    if column != "shard" or first_shard == 0:
        return values
    return (values + first_shard).astype(values.dtype)


def _renumbered(table: pd.DataFrame, first_shard: int) -> pd.DataFrame:
    """A part's catalog rows with ``shard`` numbered within the assembled split (from ``first_shard``)."""
    if first_shard == 0 or "shard" not in table.columns:
        return table
    return table.assign(shard=(table["shard"] + first_shard).astype(table["shard"].dtype))


def open_shard_set(directory: Path) -> ShardSet:
    """Read ``directory/manifest.json`` and check every shard it lists.

    Raises RealfakeError, naming the directory, file or manifest key, when the
    directory is missing or empty, the manifest is missing or malformed
    (:meth:`realfake.formats.manifest.Manifest.from_json`: of another
    ``format_version`` than :data:`realfake.formats.manifest.FORMAT_VERSION`,
    or lacking a key), a shard file is missing, a
    shard's shape or dtype disagrees with the manifest, a label is not 0 or 1,
    or the training split is empty (with folds: a fold's training part, or its
    validation part when the manifest's ``validation_fraction`` is above 0).

    A set of one split is returned as its splits; a set of K >= 2 folds as its
    :meth:`ShardSet.pooled_view` (every example in test): a model's view is
    :meth:`ShardSet.fold_view`.
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
    parts = {}
    for part in manifest.parts:
        parts[part] = tuple(
            _checked_shard(directory, manifest_path, part, index, entry, shape, dtype, scale)
            for index, entry in enumerate(manifest.splits[part]["shards"])
        )
        listed, held = manifest.splits[part]["examples"], sum(shard.examples for shard in parts[part])
        if int(listed) != held:
            raise RealfakeError(f"{manifest_path}: splits.{part}.examples is {listed} but its shards hold {held}")
    if manifest.fold_count == 1:
        shard_set = ShardSet(directory, manifest, parts, {split: (split,) for split in SPLITS})
        if shard_set.examples("train") == 0:
            raise RealfakeError(f"{manifest_path}: the training split has no examples")
        return shard_set
    for fold in range(manifest.fold_count):
        train, validation = part_name(fold, "train"), part_name(fold, "validation")
        if manifest.splits[train]["examples"] == 0:
            raise RealfakeError(f"{manifest_path}: the training part of fold {fold} ({train}) has no examples")
        if (manifest.validation_fraction or 0) > 0 and manifest.splits[validation]["examples"] == 0:
            raise RealfakeError(
                f"{manifest_path}: the validation part of fold {fold} ({validation}) has no examples, but "
                f"validation_fraction is {manifest.validation_fraction:g}"
            )
    return ShardSet(directory, manifest, parts, _pooled_assembly(manifest.fold_count))


def short_identity(identity: str | None) -> str:
    """The first 12 hex digits of an identity, and the fold of a fold view's (``-fold<k>``), for messages and
    folder names ("unknown" for None)."""
    if not identity:
        return "unknown"
    digest, suffix, fold = identity.partition(FOLD_IDENTITY_SUFFIX)
    return digest[:12] + (suffix + fold if suffix else "")


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

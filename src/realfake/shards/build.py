"""Shards: per-brick cutouts -> a globally shuffled, balanced train/validation/test set of .npy shards.

The output directory follows ``docs/shards_format.md``: per split (``train``,
``validation``, ``test``: :data:`realfake.conventions.SPLITS`)
``x<split>_<k>.npy`` and ``y<split>_<k>.npy`` (x float32 (n, S, S, C)
channels-last as in the cutouts; y int32, fake = 1, real = 0) and the catalog
``<split>_catalog.parquet`` (one row per example in shard order), then
``manifest.json`` (written last).

How an example's place is decided, all from one seeded generator:

1. *Index*: every cutouts file's catalog is read (no stamps); each stamp gets
   a label, its brick, its matching values and its (file, row).
2. *Exclude*: an example whose matching value is not finite cannot be matched
   and is excluded, counted in the manifest (``matching.excluded``). With the
   default matching column, ``measured_mag_dered_g`` (legacypipe's measurement
   for both classes: a real source's own, a fake's re-fit in its rs dir),
   these are the fakes legacypipe did not detect.
3. *Split by brick* (``split="brick"``, the default): bricks in a random
   order go to test until the test share is nearest ``test_fraction``, then
   to validation, the rest to train, so no patch of sky (its neighbours, its
   depth pattern) is in two splits; the actual share is recorded.
4. *Balance and match*: within each split and each bin of the matching
   quantities (0.25 mag bins) the larger class is subsampled to the size of
   the smaller, so the classes are balanced and share one binned distribution
   of what legacypipe measured: the classifier cannot win on brightness alone.
   Matching on measured values for both classes matters: a bin of real sources
   selected on measured magnitudes holds galaxies whose true brightness
   scattered in from the neighbouring bins, and fakes matched on their true
   magnitudes would not (``docs/shards_format.md``). Without matching, the
   larger class is subsampled; ``balance="none"`` keeps everything.
5. *Split by example* (``split="example"``): each class is permuted; its
   first ``round(n * test_fraction)`` go to test, the next
   ``round(rest * validation_fraction)`` to validation and the rest to train.
6. *Order*: each split is permuted as a whole, across bricks (the original
   obiwan code shuffled per brick), and cut into shards of ``shard_size``.

The validation split, carved from the training examples, is what training
monitors and selects its checkpoint on; the test split is read only by the
evaluation.

Memory stays bounded in the stamps: the index holds a few numbers per example
(file, row, label, brick number, matching values: about 20 bytes), and the
stamps are moved one input file at a time, each written straight to its place
in the preallocated output ``.npy`` files (``os.pwrite``); catalog rows are
sorted by an external sort in buckets of positions (:class:`_CatalogBuckets`).
Every step costs the same per example at any N (``scripts/bench_scale.py``).
The same inputs and seed give byte-identical shard sets.

Identity. ``manifest["identity"]`` (:func:`realfake.formats.shardset.shard_set_identity`)
is a SHA-256 of what defines the shard set: the format, the settings that shape
it, the content identity of every input cutouts file
(:func:`realfake.formats.cutouts.file_content_digest`) and which input stamp went
to which place in which split. Re-making the same set (same inputs, same
settings) gives the same identity; anything that changes a stamp, a label, a
catalog value or the split gives another. Training and evaluation tie their
state to it: a checkpoint or model of another shard set is never reused.
Computing it costs a hash of a few bytes per example, not of the pixels.

The format itself (its reader and the writer's pieces) is :mod:`realfake.formats.shardset`.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from realfake import __version__
from realfake.atomic import out_of_space, output_directory, remove_stale_temporaries, temporary_path, write_failure
from realfake.conventions import KIND_OF_LABEL, LABELS, SPLITS
from realfake.cutouts import cutouts_path, read_brick_list
from realfake.errors import RealfakeError
from realfake.formats.cutouts import file_content_digest, read_attribute_text, read_cutouts_catalog
from realfake.formats.shardset import (
    FLOAT16_MAX,
    FORMAT_VERSION,
    catalog_name,
    normalization_record,
    shard_file_names,
    shard_set_identity,
    storage_record,
    write_manifest,
)
from realfake.progress import say
from realfake.shards.placement import (
    EXCLUSION_RULE,
    matching_values,
    place_examples,
    split_record,
)
from realfake.shards.settings import DEFINING_SETTINGS, ShardSettings
from realfake.stats.auc import smallest_decisive_split

NORMALIZATION_EXAMPLES = 2048  # training examples sampled for the normalisation statistics
NORMALIZATION_PIXELS = 256  # pixels per example and channel kept for them
# Catalog rows per sorting bucket: bounds the memory of the last pass over the catalogs.
BUCKET_ROWS = 200_000
# Catalog rows held per split before they are written out in buckets (~50 MB each for the cutouts catalog);
# at 60 million examples the train split's catalog is then ~1000 files.
FLUSH_ROWS = 50_000
# The level at which a test split must be able to give a significant verdict (evaluate.significance's default).
DECISIVE_SIGNIFICANCE = 0.05
# Stamps read from a cutouts file at once (25 MB for 64 x 64 x 6).
READ_BLOCK = 256


@dataclass(frozen=True)
class _Source:
    """One cutouts file: its path, kind, number of stamps and content identity."""

    path: Path
    kind: str
    count: int
    digest: str


def _cutouts_files(directory: Path, kind: str, bricks: list[str] | None) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise RealfakeError(f"{kind} cutouts directory not found: {directory}")
    if bricks is None:
        return sorted(directory.rglob("*.h5"))
    paths = [cutouts_path(directory, name) for name in bricks]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise RealfakeError(f"{kind} cutouts file not found: {missing[0]} ({len(missing)} missing)")
    return paths


def _describe(path: Path) -> tuple[dict, int, str]:
    """The attributes, stamp count and content identity of a cutouts file; RealfakeError naming it if unreadable."""
    try:
        with h5py.File(path, "r") as cutouts:
            attributes = {key: read_attribute_text(value) for key, value in cutouts.attrs.items()}
            shape = cutouts["stamps"].shape
        digest = file_content_digest(path)
    except (OSError, KeyError) as error:
        raise RealfakeError(
            f"cannot read cutouts file {path} ({error}); it is truncated or corrupt: delete it, and its "
            f"cutouts job (or `realfake cutouts`) makes it again"
        ) from None
    for key in ("channels", "stamp_size", "bands"):
        if key not in attributes:
            raise RealfakeError(f"cutouts file {path} lacks the attribute {key!r}")
    size = int(attributes["stamp_size"])
    if len(shape) != 4 or shape[1:] != (size, size, len(attributes["channels"])):
        raise RealfakeError(f"cutouts file {path}: stamps of shape {shape} do not match its attributes")
    return attributes, shape[0], digest


def _same_path(recorded: object, given: Path) -> bool:
    recorded = str(recorded or "")
    return bool(recorded) and (
        os.path.normpath(recorded) == os.path.normpath(str(given))
        or os.path.abspath(recorded) == os.path.abspath(str(given))
    )


def _check_trees(path: Path, kind: str, attributes: dict, settings: ShardSettings) -> None:
    """RealfakeError when a cutouts file was made from another DR5 (or, for fakes and reals cut from the rs dirs,
    obiwan) tree than the given one."""
    trees = [("dr5_dir", "DR5", settings.dr5_dir)]
    if kind == "fake" or attributes.get("real_source") == "rsdir":
        trees.append(("obiwan_dir", "obiwan", settings.obiwan_dir))
    for key, name, given in trees:
        if given is not None and not _same_path(attributes.get(key), given):
            raise RealfakeError(
                f"cutouts file {path} was made from the {name} tree {attributes.get(key) or '(not recorded)'}, "
                f"not {given}: it is left from a run on other inputs; delete it, and its cutouts job "
                f"(or `realfake cutouts`) makes it again from {given}"
            )


def _index(settings: ShardSettings, bricks: list[str] | None) -> tuple[list[_Source], pd.DataFrame, dict]:
    """Every stamp of every input file: (source, row, label, matching values). Catalogs only, no stamps."""
    sources, pieces, reference, real_sources = [], [], None, {}
    brick_codes: dict[str, int] = {}  # brick name -> its number, in the order first met
    for kind, directory in (("real", settings.real_dir), ("fake", settings.sim_dir)):
        for path in _cutouts_files(directory, kind, bricks):
            attributes, count, digest = _describe(path)
            _check_trees(path, kind, attributes, settings)
            layout = {"channels": list(attributes["channels"]), "stamp_size": int(attributes["stamp_size"])}
            if reference is None:
                reference = {**layout, "bands": list(attributes["bands"]), "first_file": str(path)}
            elif layout != {key: reference[key] for key in layout}:
                raise RealfakeError(
                    f"cutouts file {path} has channels {layout['channels']} and stamp size {layout['stamp_size']}, "
                    f"but {reference['first_file']} has {reference['channels']} and {reference['stamp_size']}"
                )
            catalog = read_cutouts_catalog(path) if count else pd.DataFrame()
            missing = [name for name in settings.match if count and name not in catalog.columns]
            if missing:
                raise RealfakeError(f"cutouts file {path} has no catalog column {missing[0]!r} to match on")
            if kind == "real":
                real_sources.setdefault(str(attributes.get("real_source", "dr5")), path)
            piece = pd.DataFrame(
                {
                    "source": np.full(count, len(sources), dtype=np.int32),
                    "row": np.arange(count, dtype=np.int32),
                    "label": np.full(count, LABELS[kind], dtype=np.int8),
                    "brick": _brick_numbers(_brick_names(catalog, attributes, path, count), brick_codes),
                }
            )
            for name in settings.match:
                piece[name] = matching_values(catalog, name, path) if count else np.zeros(0)
            sources.append(_Source(path, kind, count, digest))
            pieces.append(piece)
    if not sources:
        raise RealfakeError(f"no cutouts files in {settings.real_dir} or {settings.sim_dir}")
    if len(real_sources) > 1:
        (first, first_path), (second, second_path) = list(real_sources.items())[:2]
        raise RealfakeError(
            f"real cutouts files were cut from different images: {first_path} from {first}, {second_path} from "
            f"{second} (cutouts.real_source); make every brick's real cutouts with one real source"
        )
    reference["real_source"] = next(iter(real_sources), "dr5")
    index = pd.concat(pieces, ignore_index=True)
    # Renumber the bricks in the order of their names, so that a brick's number sorts as its name does.
    names = np.array(list(brick_codes), dtype=object)
    rank = np.empty(len(names), dtype=np.int32)
    rank[np.argsort(names.astype(str), kind="stable")] = np.arange(len(names), dtype=np.int32)
    index["brick"] = rank[index["brick"].to_numpy()]
    for kind, label in LABELS.items():
        if not (index["label"] == label).any():
            directory = settings.real_dir if kind == "real" else settings.sim_dir
            raise RealfakeError(f"no {kind} examples: every cutouts file under {directory} is empty")
    return sources, index, reference


def _brick_numbers(names: np.ndarray, codes: dict[str, int]) -> np.ndarray:
    """Each stamp's brick as a number (4 bytes an example in the index, where a name is a Python string of
    about 60): ``codes`` maps each name to its number and grows with new names. One file's stamps are from
    one brick or a few, so the names are looked up once each."""
    if not len(names):
        return np.zeros(0, dtype=np.int32)
    unique, inverse = np.unique(names.astype(str), return_inverse=True)
    numbers = np.array([codes.setdefault(str(name), len(codes)) for name in unique], dtype=np.int32)
    return numbers[inverse.reshape(-1)]


def _brick_names(catalog: pd.DataFrame, attributes: dict, path: Path, count: int) -> np.ndarray:
    """The brick of each stamp of a cutouts file: its catalog's ``brickname``, else the file's attribute or name."""
    if count and "brickname" in catalog.columns:
        return catalog["brickname"].to_numpy(dtype=object)
    return np.full(count, str(attributes.get("brickname", Path(path).stem)), dtype=object)


def _identity(settings: ShardSettings, sources: list[_Source], index: pd.DataFrame, order, reference: dict) -> str:
    """:func:`realfake.formats.shardset.shard_set_identity` of a shard set being made (see the module docstring)."""
    definition = {
        "format_version": FORMAT_VERSION,
        "channel_names": list(reference["channels"]),
        "stamp_size": int(reference["stamp_size"]),
        "settings": {key: _json_value(getattr(settings, key)) for key in DEFINING_SETTINGS},
        "inputs": [[source.kind, source.digest] for source in sources],
    }
    placement = {
        split: np.stack([index["source"].to_numpy()[order[split]], index["row"].to_numpy()[order[split]]], axis=1)
        for split in SPLITS
    }
    return shard_set_identity(definition, placement)


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def _preallocate(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Write an .npy header for ``shape`` and size the file; return the data's byte offset."""
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
        )
        offset = handle.tell()
        # Allocate the blocks now (not a sparse file): the random-offset writes that follow
        # then land in contiguous extents, and a full disk fails here, before any work.
        os.posix_fallocate(handle.fileno(), 0, offset + math.prod(shape) * np.dtype(dtype).itemsize)
    return offset


def _write_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, array, allow_pickle=False)


class _ShardWriter:
    """Places stamps into the preallocated x shards of one split with positioned writes, encoded for the
    storage (float32 as they are; float16 divided by the channel scales, clipped to float16's range)."""

    def __init__(
        self, directory: Path, shards: list[dict], example_shape: tuple[int, ...], shard_size: int, storage: dict
    ):
        self.shard_size = shard_size
        self.dtype = np.dtype(storage["dtype"])
        self.scale = None
        if "channel_scales" in storage:
            self.scale = np.array(list(storage["channel_scales"].values()), dtype=np.float32)
        self.clipped = 0
        self.example_bytes = math.prod(example_shape) * self.dtype.itemsize
        self.descriptors, self.offsets = [], []
        try:
            for shard in shards:
                path = directory / shard["x"]
                self.offsets.append(_preallocate(path, (shard["examples"], *example_shape), self.dtype))
                self.descriptors.append(os.open(path, os.O_WRONLY))
        except BaseException:
            self.close()
            raise

    def write(self, position: int, stamp: np.ndarray) -> None:
        shard, row = divmod(position, self.shard_size)
        if self.scale is not None:
            scaled = stamp / self.scale
            beyond = np.abs(scaled) > FLOAT16_MAX
            if beyond.any():
                self.clipped += int(beyond.sum())
                scaled = np.clip(scaled, -FLOAT16_MAX, FLOAT16_MAX)
            stamp = np.ascontiguousarray(scaled, dtype=self.dtype)
        os.pwrite(self.descriptors[shard], memoryview(stamp).cast("B"), self.offsets[shard] + row * self.example_bytes)

    def close(self) -> None:
        for descriptor in self.descriptors:
            os.close(descriptor)


def _normalization(samples: list[np.ndarray], channels: list[str]) -> dict:
    """The normalisation record of sampled training pixels (:func:`realfake.formats.shardset.normalization_record`)."""
    pixels = np.concatenate(samples, axis=0) if samples else np.zeros((0, len(channels)), dtype=np.float32)
    return normalization_record(pixels, channels, len(samples), NORMALIZATION_PIXELS)


# One pass over the input files whose stamp copy and catalog bucketing share the destination arrays: two helpers
# per file would split cleanly; left for issue 22's restructuring (no behaviour change here).
def _scatter(  # noqa: C901
    settings: ShardSettings,
    sources: list[_Source],
    index: pd.DataFrame,
    order: dict[str, np.ndarray],
    staging: Path,
    example_shape: tuple[int, ...],
    rng: np.random.Generator,
    progress: TextIO,
    storage: dict,
) -> tuple[dict[str, list[dict]], list[np.ndarray], int]:
    """Copy every kept stamp into its shard, encoded for ``storage``, one input file at a time; bucket the
    catalog rows. Returns the shards, the normalisation samples and the pixels clipped to float16's range."""
    shards = {split: shard_file_names(split, len(order[split]), settings.shard_size) for split in SPLITS}
    destination_split = np.full(len(index), -1, dtype=np.int8)
    destination_position = np.full(len(index), -1, dtype=np.int64)
    for split_number, split in enumerate(SPLITS):
        destination_split[order[split]] = split_number
        destination_position[order[split]] = np.arange(len(order[split]))
    for split in SPLITS:
        for number, shard in enumerate(shards[split]):
            labels = index["label"].to_numpy()[order[split][number * settings.shard_size :][: shard["examples"]]]
            _write_array(staging / shard["y"], labels.astype(np.int32))
    sampled = np.zeros(len(index), dtype=bool)
    train = order["train"]
    sampled[rng.choice(train, size=min(NORMALIZATION_EXAMPLES, len(train)), replace=False)] = True
    writers = {}
    buckets = {split: _CatalogBuckets(staging / f".{split}_buckets") for split in SPLITS}
    samples, pixel_count = [], example_shape[0] * example_shape[1]
    source_column, row_column = index["source"].to_numpy(), index["row"].to_numpy()
    start = time.perf_counter()
    try:
        for split in SPLITS:
            writers[split] = _ShardWriter(staging, shards[split], example_shape, settings.shard_size, storage)
        # The index lists each input file's stamps together, in file order: one file's are a slice of it.
        if np.any(np.diff(source_column) < 0):
            raise AssertionError("the shards index is not in input-file order")
        bounds = np.searchsorted(source_column, np.arange(len(sources) + 1))
        for source_number, source in enumerate(sources):
            first, end = bounds[source_number], bounds[source_number + 1]
            members = first + np.flatnonzero(destination_split[first:end] >= 0)
            if len(members) == 0:
                continue
            rows = row_column[members]
            with h5py.File(source.path, "r") as cutouts:
                stamps = cutouts["stamps"]
                # Contiguous blocks: one read per READ_BLOCK stamps, memory bounded by the block.
                for block_start in range(0, source.count, READ_BLOCK):
                    in_block = (rows >= block_start) & (rows < block_start + READ_BLOCK)
                    if not in_block.any():
                        continue
                    block = np.ascontiguousarray(
                        stamps[block_start : min(block_start + READ_BLOCK, source.count)], dtype=np.float32
                    )
                    for member, row in zip(members[in_block], rows[in_block], strict=True):
                        stamp = block[row - block_start]  # a C-contiguous float32 view
                        split = SPLITS[destination_split[member]]
                        writers[split].write(int(destination_position[member]), stamp)
                        if sampled[member]:
                            pixels = rng.choice(pixel_count, size=min(NORMALIZATION_PIXELS, pixel_count), replace=False)
                            samples.append(stamp.reshape(pixel_count, -1)[pixels])
            catalog = read_cutouts_catalog(source.path).iloc[rows].reset_index(drop=True)
            for split_number, split in enumerate(SPLITS):
                in_split = destination_split[members] == split_number
                if not in_split.any():
                    continue
                positions = destination_position[members][in_split]
                rows_here = catalog[in_split].reset_index(drop=True)
                rows_here.insert(0, "shard", (positions // settings.shard_size).astype(np.int32))
                rows_here.insert(1, "row", (positions % settings.shard_size).astype(np.int32))
                label = LABELS[source.kind]
                rows_here.insert(2, "label", np.int32(label))
                rows_here.insert(3, "kind", KIND_OF_LABEL[label])
                rows_here.insert(4, "cutouts_file", str(source.path))
                buckets[split].add(rows_here, positions)
            if (source_number + 1) % 100 == 0 or source_number + 1 == len(sources):
                elapsed = time.perf_counter() - start
                say("shards", f"{source_number + 1}/{len(sources)} cutouts files, {elapsed:.1f} s", progress)
    finally:
        for writer in writers.values():
            writer.close()
    for split in SPLITS:
        buckets[split].write_sorted(staging / catalog_name(split))
    return shards, samples, sum(writer.clipped for writer in writers.values())


class _CatalogBuckets:
    """An external sort of the catalog rows by destination position, in two passes of bounded memory.

    Rows arrive one input file at a time, at random positions of the split. They are held until
    ``FLUSH_ROWS`` have come, then written as one parquet file with one row group per bucket of
    ``BUCKET_ROWS`` positions; at the end each bucket's row groups are read from every file, sorted and
    appended to the catalog. The number of files grows as N / FLUSH_ROWS and each holds at most
    N / BUCKET_ROWS row groups, so the cost per row stays flat (a file per input file and bucket, as
    before, made N / 600 x N / BUCKET_ROWS files: quadratic in N).
    """

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir()
        self.pending: list[pd.DataFrame] = []
        self.pending_rows = 0
        self.files: list[tuple[Path, dict[int, int]]] = []  # (file, bucket -> its row group)

    def add(self, rows: pd.DataFrame, positions: np.ndarray) -> None:
        self.pending.append(rows.assign(_position=positions))
        self.pending_rows += len(rows)
        if self.pending_rows >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        table = pd.concat(self.pending, ignore_index=True)
        self.pending, self.pending_rows = [], 0
        bucket_of = table["_position"].to_numpy() // BUCKET_ROWS
        by_bucket = np.argsort(bucket_of, kind="stable")
        arrow = pa.Table.from_pandas(table.iloc[by_bucket].reset_index(drop=True), preserve_index=False)
        buckets, starts = np.unique(bucket_of[by_bucket], return_index=True)
        ends = [*starts[1:], len(table)]
        path = self.directory / f"{len(self.files)}.parquet"
        groups = {}
        with pq.ParquetWriter(path, arrow.schema) as writer:
            for group, (bucket, first, end) in enumerate(zip(buckets, starts, ends, strict=True)):
                writer.write_table(arrow.slice(first, end - first), row_group_size=end - first)
                groups[int(bucket)] = group
        self.files.append((path, groups))

    def write_sorted(self, path: Path) -> None:
        self._flush()
        files = [(pq.ParquetFile(file), groups) for file, groups in self.files]
        writer = None
        for bucket in sorted({bucket for _, groups in files for bucket in groups}):
            parts = [file.read_row_group(groups[bucket]).to_pandas() for file, groups in files if bucket in groups]
            table = pd.concat(parts, ignore_index=True).sort_values("_position").drop(columns="_position")
            arrow = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, arrow.schema)
            writer.write_table(arrow)
        if writer is None:
            pd.DataFrame({"shard": np.zeros(0, np.int32), "row": np.zeros(0, np.int32)}).to_parquet(path, index=False)
        else:
            writer.close()
        for file, _ in files:
            file.close()
        shutil.rmtree(self.directory)


def _replace_directory(staging: Path, out: Path) -> None:
    """Move the finished staging directory to ``out``, replacing an old shard set."""
    if out.exists():
        retired = temporary_path(out, kind="old")
        os.replace(out, retired)
        os.replace(staging, out)
        shutil.rmtree(retired)
    else:
        os.replace(staging, out)


def _exclusion_summary(manifest: dict) -> str:
    excluded = manifest["matching"]["excluded"]
    if not any(excluded.values()):
        return ""
    return f"; {excluded['fake']} fake and {excluded['real']} real unmatchable (no finite matching value) excluded"


def _split_summary(manifest: dict) -> str:
    split = manifest["split"]
    bricks = ", ".join(f"{name} {count}" for name, count in split["bricks"].items())
    return f"; split by {split['by']} (bricks: {bricks}; test share {split['test_share']:.3f})"


def check_test_split(settings: ShardSettings, index: pd.DataFrame, order: dict, progress: TextIO) -> None:
    """Refuse a test split too small to support any outcome: with fewer than
    :func:`realfake.stats.auc.smallest_decisive_split` examples of a class (4 at the verdict's default level 0.05),
    even a perfect separation is not significant. Say so when bricks held whole put the test share far from
    the one asked for."""
    labels = index["label"].to_numpy()[order["test"]]
    counts = {kind: int(np.sum(labels == label)) for kind, label in LABELS.items()}
    needed = smallest_decisive_split(DECISIVE_SIGNIFICANCE)
    if min(counts.values()) < needed:
        raise RealfakeError(
            f"the test split would hold {counts['real']} real and {counts['fake']} fake examples; a verdict needs "
            f"at least {needed} of each (fewer cannot be significant at {DECISIVE_SIGNIFICANCE:g} even when perfectly "
            f"separated): raise the test fraction (shards.test_fraction, now {settings.test_fraction:g}) or add bricks"
        )
    total = sum(len(order[split]) for split in SPLITS)
    share = len(order["test"]) / total if total else 0.0
    if settings.split == "brick" and abs(share - settings.test_fraction) > 0.5 * settings.test_fraction:
        bricks = len(np.unique(index["brick"].to_numpy()[np.concatenate([order[split] for split in SPLITS])]))
        say(
            "shards",
            f"the test split holds {share:.3f} of the examples, not the {settings.test_fraction:g} asked for: a brick "
            f"split keeps each of the {bricks} bricks whole (more bricks, or shards.split example, get nearer)",
            progress,
        )


def run_shards(settings: ShardSettings, progress: TextIO | None = None) -> dict:
    """Build the shard set in ``settings.out``; return its manifest.

    Everything is written into a staging directory next to ``out``
    (``.<out>.tmp-<host>-<pid>``) and moved into place when complete
    (``manifest.json`` last), so an interrupted run never leaves a shard set
    that looks finished; the staging a killed run left is removed by the next
    (:func:`realfake.atomic.remove_stale_temporaries`). A full disk is a
    RealfakeError naming ``out``, with the staging removed.
    """
    progress = progress or sys.stderr
    bricks = read_brick_list(settings.bricks_file) if settings.bricks_file else None
    rng = np.random.default_rng(settings.seed)
    sources, index, reference = _index(settings, bricks)
    order, excluded = place_examples(index, settings, rng)
    check_test_split(settings, index, order, progress)
    size, channels = reference["stamp_size"], reference["channels"]
    out = Path(settings.out)
    output_directory(out.parent, out)
    leftovers = remove_stale_temporaries(out) + remove_stale_temporaries(out, kind="old")
    if leftovers:
        names = ", ".join(str(path) for path in leftovers)
        say("shards", f"removed the staging left by a killed run: {names}", progress)
    staging = temporary_path(out)
    if staging.exists():
        shutil.rmtree(staging)
    output_directory(staging, out)
    try:
        storage = storage_record(settings.dtype, tuple(channels))
        shards, samples, clipped = _scatter(
            settings, sources, index, order, staging, (size, size, len(channels)), rng, progress, storage
        )
        if settings.dtype == "float16":
            storage["clipped_pixels"] = clipped
            if clipped:
                say("shards", f"{clipped} pixel(s) beyond float16's range were clipped to it (manifest storage)")
        labels = index["label"].to_numpy()
        manifest = {
            "format_version": FORMAT_VERSION,
            "identity": _identity(settings, sources, index, order, reference),
            "package_version": __version__,
            "bands": reference["bands"],
            "channel_names": channels,
            "stamp_size": size,
            "seed": settings.seed,
            "shard_size": settings.shard_size,
            "test_fraction": settings.test_fraction,
            "validation_fraction": settings.validation_fraction,
            "storage": storage,
            "labels": LABELS,
            "splits": {
                split: {
                    "examples": len(order[split]),
                    "real": int((labels[order[split]] == 0).sum()),
                    "fake": int((labels[order[split]] == 1).sum()),
                    "shards": shards[split],
                }
                for split in SPLITS
            },
            "balance": settings.balance,
            "matching": {
                "columns": list(settings.match),
                "bin_width": settings.match_bin_width,
                "excluded": {kind: int((excluded & (labels == label)).sum()) for kind, label in LABELS.items()},
                "excluded_rule": EXCLUSION_RULE,
            },
            "split": split_record(settings, index, order),
            "real_source": reference["real_source"],
            "available": {kind: int((labels == label).sum()) for kind, label in LABELS.items()},
            "normalization": _normalization(samples, channels),
            "inputs": {
                "real_dir": str(settings.real_dir),
                "sim_dir": str(settings.sim_dir),
                "bricks_file": str(settings.bricks_file) if settings.bricks_file else None,
                "files": [str(source.path) for source in sources],
                "content_sha256": [source.digest for source in sources],
            },
            "settings": {
                key: str(value) if isinstance(value, Path) else value for key, value in asdict(settings).items()
            },
        }
        write_manifest(staging, manifest)
        _replace_directory(staging, out)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if out_of_space(error):
            raise write_failure(error, out) from None
        raise
    say(
        "shards",
        "; ".join(
            f"{split} {manifest['splits'][split]['examples']} examples "
            f"({manifest['splits'][split]['real']} real, {manifest['splits'][split]['fake']} fake) "
            f"in {len(shards[split])} shards"
            for split in SPLITS
        )
        + f"; from {manifest['available']['real']} real and {manifest['available']['fake']} fake stamps"
        + _exclusion_summary(manifest)
        + _split_summary(manifest),
        progress,
    )
    return manifest

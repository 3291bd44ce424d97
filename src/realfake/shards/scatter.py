"""The shards stage's writing: every kept stamp to its place in the shards, one input file at a time.

:func:`scatter` writes a shard set's y shards (labels), its x shards
(preallocated ``.npy`` files, each stamp put in place with ``os.pwrite``:
:class:`_ShardWriter`, float32 or float16 as the manifest's ``storage`` says)
and its catalogs (:class:`realfake.shards.catalog_sort.CatalogBuckets`), and
samples training pixels for the normalisation. Memory is bounded by one block
of ``READ_BLOCK`` stamps and the catalog buckets, whatever the number of examples.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import h5py
import numpy as np
import pandas as pd

from realfake.conventions import KIND_OF_LABEL, LABELS, part_name
from realfake.formats.cutouts import read_cutouts_catalog
from realfake.formats.manifest import (
    FLOAT16_MAX,
    FOLDS_NORMALIZATION_SOURCE,
    normalization_record,
    shard_file_names,
)
from realfake.formats.shardset import catalog_name
from realfake.progress import say
from realfake.shards.catalog_sort import CatalogBuckets
from realfake.shards.index import Source
from realfake.shards.settings import ShardSettings

NORMALIZATION_EXAMPLES = 2048  # training examples sampled for the normalisation statistics
NORMALIZATION_PIXELS = 256  # pixels per example and channel kept for them
# Stamps read from a cutouts file at once (25 MB for 64 x 64 x 6).
READ_BLOCK = 256


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


def normalization(samples: list[np.ndarray], channels: list[str], folds: int = 1) -> dict:
    """The normalisation record of sampled training pixels (:func:`realfake.formats.manifest.normalization_record`;
    with ``folds`` K >= 2, of every fold's training part)."""
    pixels = np.concatenate(samples, axis=0) if samples else np.zeros((0, len(channels)), dtype=np.float32)
    computed_on = "train" if folds == 1 else FOLDS_NORMALIZATION_SOURCE
    return normalization_record(pixels, channels, len(samples), NORMALIZATION_PIXELS, computed_on=computed_on)


def training_examples(order: dict[str, np.ndarray], folds: int) -> np.ndarray:
    """The positions (into the index) of the training examples the normalisation is sampled from: the train
    split's, or with ``folds`` K >= 2 every fold's training part, in fold order."""
    if folds == 1:
        return order["train"]
    return np.concatenate([order[part_name(fold, "train")] for fold in range(folds)])


@dataclass(frozen=True)
class _Destinations:
    """Where each example of the index goes: ``split`` int16 (N,), the number of its split (with folds, its
    part) in the order of ``order`` (-1: left out), and ``position`` int64 (N,), its place in that split's shard
    order."""

    split: np.ndarray
    position: np.ndarray

    @classmethod
    def of(cls, count: int, order: dict[str, np.ndarray]) -> _Destinations:
        split = np.full(count, -1, dtype=np.int16)
        position = np.full(count, -1, dtype=np.int64)
        for split_number, name in enumerate(order):
            split[order[name]] = split_number
            position[order[name]] = np.arange(len(order[name]))
        return cls(split, position)


def scatter(
    settings: ShardSettings,
    sources: list[Source],
    index: pd.DataFrame,
    order: dict[str, np.ndarray],
    staging: Path,
    example_shape: tuple[int, ...],
    rng: np.random.Generator,
    progress: TextIO,
    storage: dict,
) -> tuple[list[np.ndarray], int]:
    """Copy every kept stamp into its shard, encoded for ``storage``, one input file at a time; write the labels
    and the catalogs. ``order``: per split (with folds, per part), the index positions of its examples in shard
    order. Returns the normalisation samples (training pixels, (NORMALIZATION_PIXELS, C) per sampled example)
    and the pixels clipped to float16's range."""
    splits = list(order)
    shards = {split: shard_file_names(split, len(order[split]), settings.shard_size) for split in splits}
    destinations = _Destinations.of(len(index), order)
    for split in splits:
        for number, shard in enumerate(shards[split]):
            labels = index["label"].to_numpy()[order[split][number * settings.shard_size :][: shard["examples"]]]
            _write_array(staging / shard["y"], labels.astype(np.int32))
    sampled = np.zeros(len(index), dtype=bool)
    train = training_examples(order, settings.folds)
    sampled[rng.choice(train, size=min(NORMALIZATION_EXAMPLES, len(train)), replace=False)] = True
    writers = {}
    buckets = {split: CatalogBuckets(staging / f".{split}_buckets") for split in splits}
    samples = []
    source_column, row_column = index["source"].to_numpy(), index["row"].to_numpy()
    start = time.perf_counter()
    try:
        for split in splits:
            writers[split] = _ShardWriter(staging, shards[split], example_shape, settings.shard_size, storage)
        # The index lists each input file's stamps together, in file order: one file's are a slice of it.
        if np.any(np.diff(source_column) < 0):
            raise AssertionError("the shards index is not in input-file order")
        bounds = np.searchsorted(source_column, np.arange(len(sources) + 1))
        for source_number, source in enumerate(sources):
            first, end = bounds[source_number], bounds[source_number + 1]
            members = first + np.flatnonzero(destinations.split[first:end] >= 0)
            if len(members) == 0:
                continue
            rows = row_column[members]
            samples += _copy_stamps(source, members, rows, destinations, writers, sampled, rng, splits)
            _bucket_catalog_rows(source, rows, destinations, members, buckets, settings.shard_size, splits)
            if (source_number + 1) % 100 == 0 or source_number + 1 == len(sources):
                elapsed = time.perf_counter() - start
                say("shards", f"{source_number + 1}/{len(sources)} cutouts files, {elapsed:.1f} s", progress)
    finally:
        for writer in writers.values():
            writer.close()
    for split in splits:
        buckets[split].write_sorted(staging / catalog_name(split))
    return samples, sum(writer.clipped for writer in writers.values())


def _copy_stamps(
    source: Source,
    members: np.ndarray,
    rows: np.ndarray,
    destinations: _Destinations,
    writers: dict[str, _ShardWriter],
    sampled: np.ndarray,
    rng: np.random.Generator,
    splits: list[str],
) -> list[np.ndarray]:
    """Write the stamps of one input file's ``members`` (index rows; ``rows``: their rows in the file, ascending)
    to their places (``splits``: the names of the destinations' split numbers); return the normalisation samples
    of those that are ``sampled``."""
    samples = []
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
                split = splits[destinations.split[member]]
                writers[split].write(int(destinations.position[member]), stamp)
                if sampled[member]:
                    pixel_count = stamp.shape[0] * stamp.shape[1]
                    pixels = rng.choice(pixel_count, size=min(NORMALIZATION_PIXELS, pixel_count), replace=False)
                    samples.append(stamp.reshape(pixel_count, -1)[pixels])
    return samples


def _bucket_catalog_rows(
    source: Source,
    rows: np.ndarray,
    destinations: _Destinations,
    members: np.ndarray,
    buckets: dict[str, CatalogBuckets],
    shard_size: int,
    splits: list[str],
) -> None:
    """Add the catalog rows of one input file's ``members`` (at ``rows`` of its catalog) to their splits' buckets,
    each with its shard, row, label, kind and file first."""
    catalog = read_cutouts_catalog(source.path).iloc[rows].reset_index(drop=True)
    for split_number, split in enumerate(splits):
        in_split = destinations.split[members] == split_number
        if not in_split.any():
            continue
        positions = destinations.position[members][in_split]
        rows_here = catalog[in_split].reset_index(drop=True)
        rows_here.insert(0, "shard", (positions // shard_size).astype(np.int32))
        rows_here.insert(1, "row", (positions % shard_size).astype(np.int32))
        label = LABELS[source.kind]
        rows_here.insert(2, "label", np.int32(label))
        rows_here.insert(3, "kind", KIND_OF_LABEL[label])
        rows_here.insert(4, "cutouts_file", str(source.path))
        buckets[split].add(rows_here, positions)

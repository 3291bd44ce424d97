"""The input pipeline: epoch order, batch reads from memory-mapped shards, tf.data.

Order. An epoch's example order is a pure function of (seed, epoch, shard
sizes, ``shuffle_shards``) (:func:`epoch_order`): the shards are permuted,
taken ``shuffle_shards`` at a time, and the examples of each group are
permuted together. Batches are consecutive runs of ``batch_size`` examples of
that order; the ``N mod batch_size`` examples left at the end of an epoch are
not used in that epoch (a different random few each epoch). Resuming at batch
``b`` of epoch ``e`` therefore means: the same order, starting at ``b``.

Reads. Each batch gathers its rows from the ``.npy`` shards opened with
``np.load(mmap_mode="r")`` (rows are sorted per shard so reads go forward in
the file); only the batch is copied into memory (``ShardReader``). tf.data runs the reads in
parallel (``num_parallel_calls``, order kept) and prefetches ahead of the
training step.

Augmentation. With ``augment`` each training example is drawn through one of
the 8 symmetries of the square pixel grid (rotations by multiples of 90
degrees and reflections, :func:`apply_symmetries`), chosen per example and
epoch by :func:`epoch_symmetries`, a pure function of (seed, epoch, number of
examples) like the order; validation stamps are never transformed. The
symmetries act about the stamp's centre pixel ``(S/2, S/2)``, where the
source is, so augmented sources stay centred. Both classes get the same
transforms and galaxies have random position angles, so the labels hold;
the classifier sees 8x as many distinct stamps, which it needs: the mock
survey's ~1500 training stamps are otherwise memorised before the difference
between the classes is found (``size`` control: test accuracy 0.63 without,
0.67 with, same network and epochs). The price: a difference that lies only
in orientation relative to the pixel grid (say, fakes whose PSF is elongated
along x where the real one is elongated along y) becomes invisible; train
with ``augment`` off to look for one.

Data parallelism. Global batch ``b`` is cut into ``num_replicas`` equal
consecutive slices, replica ``r`` gets slice ``r``; worker ``p`` (an input
pipeline) hosts replicas ``p * L ... p * L + L - 1`` and its dataset yields
their slices in that order (``tf.distribute`` hands consecutive elements to
consecutive local replicas). The union over replicas of one step is exactly
the single-worker batch.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from realfake.errors import RealfakeError
from realfake.formats.shardset import NON_FINITE_INPUT, Shard


def epoch_order(shard_sizes: Sequence[int], seed: int, epoch: int, shuffle_shards: int) -> np.ndarray:
    """int32 (N, 2) array of (shard index, row) pairs: every example once, in epoch order.

    ``epoch`` counts from 0. Pure: the same arguments always give the same
    array. 8 bytes per example (60 million examples: 480 MB, against 6 TB of stamps).
    """
    generator = np.random.default_rng([seed, epoch])
    shard_order = generator.permutation(len(shard_sizes))
    groups = []
    for start in range(0, len(shard_order), shuffle_shards):
        pairs = sequential_order([shard_sizes[shard] for shard in shard_order[start : start + shuffle_shards]])
        pairs[:, 0] = shard_order[start : start + shuffle_shards][pairs[:, 0]]
        groups.append(pairs[generator.permutation(len(pairs))])
    if not groups:
        return np.zeros((0, 2), dtype=np.int32)
    return np.concatenate(groups)


SYMMETRIES = 8


def epoch_symmetries(count: int, seed: int, epoch: int) -> np.ndarray:
    """int8 (count,) symmetry index 0-7 per position of an epoch's order (:func:`apply_symmetries`).

    Pure, and independent of :func:`epoch_order`'s stream for the same (seed, epoch).
    """
    return np.random.default_rng([seed, epoch, 1]).integers(0, SYMMETRIES, count).astype(np.int8)


def apply_symmetries(stamps: np.ndarray, symmetries: np.ndarray) -> np.ndarray:
    """Stamps (n, S, S, C) each mapped by one symmetry of the square about pixel (S/2, S/2).

    Symmetry ``k`` (0-7): bit 0 swaps rows and columns (transpose), bit 1
    reflects the rows (y -> S - y), bit 2 reflects the columns (x -> S - x);
    together the 8 rotations and reflections of the square, 0 the identity.
    Each reflection maps index i to (S - i) mod S, so the centre pixel S/2
    stays put (and row or column 0 maps to itself: an edge, of no consequence).
    All channels move together. Returns a new array.
    """
    size = stamps.shape[1]
    if stamps.shape[2] != size:
        raise ValueError(f"stamps must be square to be rotated, got {stamps.shape[1:3]}")
    reflected = (size - np.arange(size)) % size
    out = np.empty_like(stamps)
    for symmetry in range(SYMMETRIES):
        chosen = np.flatnonzero(symmetries == symmetry)
        if chosen.size == 0:
            continue
        part = stamps[chosen]
        if symmetry & 1:
            part = part.transpose(0, 2, 1, 3)
        if symmetry & 2:
            part = part[:, reflected]
        if symmetry & 4:
            part = part[:, :, reflected]
        out[chosen] = part
    return out


def sequential_order(shard_sizes: Sequence[int]) -> np.ndarray:
    """int32 (N, 2) (shard index, row) pairs in file order (validation)."""
    sizes = np.asarray(shard_sizes, dtype=np.int64)
    shards = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    first_rows = np.repeat(np.cumsum(sizes) - sizes, sizes)
    rows = (np.arange(int(sizes.sum()), dtype=np.int64) - first_rows).astype(np.int32)
    return np.stack([shards, rows], axis=1)


class ShardReader:
    """Gathers examples from a split's shards: stamps float32 (n, S, S, C), labels int32 (n,).

    Shards are memory-mapped when first read, and at most ``max_open`` stay
    mapped (each mapping holds a file descriptor; a full survey has ~10^5
    shards). A batch with a NaN or infinite pixel raises ValueError naming the
    file and row (:func:`input_error` turns it into a RealfakeError). ``read``
    may be called from several threads at once.
    """

    def __init__(self, shards: Sequence[Shard], max_open: int = 64):
        self.shards = list(shards)
        self.shard_sizes = [shard.examples for shard in self.shards]
        self.max_open = max_open
        self._mapped: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self.stamp_shape = tuple(self._arrays(0)[0].shape[1:]) if self.shards else (0, 0, 0)

    def _arrays(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if shard in self._mapped:
                self._mapped.move_to_end(shard)
                return self._mapped[shard]
            arrays = (np.load(self.shards[shard].x, mmap_mode="r"), np.load(self.shards[shard].y, mmap_mode="r"))
            self._mapped[shard] = arrays
            if len(self._mapped) > self.max_open:
                # A thread still reading an evicted shard keeps its own reference to the map.
                self._mapped.popitem(last=False)
            return arrays

    def read(self, pairs: np.ndarray, symmetries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The examples at (shard, row) ``pairs``, in the order given.

        ``symmetries`` (one per pair, :func:`apply_symmetries`) transforms the stamps.
        """
        stamps = np.empty((len(pairs), *self.stamp_shape), dtype=np.float32)
        labels = np.empty(len(pairs), dtype=np.int32)
        for shard in np.unique(pairs[:, 0]):
            positions = np.flatnonzero(pairs[:, 0] == shard)
            rows = pairs[positions, 1]
            forward = np.argsort(rows, kind="stable")
            shard_stamps, shard_labels = self._arrays(int(shard))
            stamps[positions[forward]] = self.shards[int(shard)].decode(shard_stamps[rows[forward]])
            labels[positions[forward]] = shard_labels[rows[forward]]
        finite = np.isfinite(stamps).reshape(len(stamps), -1).all(axis=1)
        if not finite.all():
            shard, row = pairs[np.flatnonzero(~finite)[0]]
            raise ValueError(f"{NON_FINITE_INPUT} in {self.shards[shard].x} row {row}")
        if symmetries is not None:
            stamps = apply_symmetries(stamps, symmetries)
        return stamps, labels


def replica_slice(batch_start: int, batch_length: int, replica: int, num_replicas: int) -> tuple[int, int]:
    """[start, stop) of ``replica``'s consecutive share of a global batch of ``batch_length``.

    Shares are ``ceil(batch_length / num_replicas)`` long; the last ones may be
    shorter or empty when the batch is short (validation's last batch).
    """
    share = math.ceil(batch_length / num_replicas)
    start = min(batch_start + replica * share, batch_start + batch_length)
    stop = min(start + share, batch_start + batch_length)
    return start, stop


def _dataset_from_bounds(
    reader: ShardReader, order: np.ndarray, bounds: np.ndarray, symmetries: np.ndarray | None = None
) -> tf.data.Dataset:
    """Elements = reader.read(order[start:stop]) for each row (start, stop) of ``bounds``, read in parallel, in order.

    ``symmetries``, when given, holds one symmetry per position of ``order``.
    """

    def read(index):
        start, stop = bounds[index]
        return reader.read(order[start:stop], None if symmetries is None else symmetries[start:stop])

    def read_element(index):
        stamps, labels = tf.numpy_function(read, [index], (tf.float32, tf.int32), stateful=False)
        stamps.set_shape((None, *reader.stamp_shape))
        labels.set_shape((None,))
        return stamps, labels

    dataset = tf.data.Dataset.range(len(bounds))
    dataset = dataset.map(read_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def training_dataset(
    reader: ShardReader,
    order: np.ndarray,
    batch_size: int,
    start_batch: int,
    input_context: tf.distribute.InputContext | None = None,
    symmetries: np.ndarray | None = None,
) -> tf.data.Dataset:
    """This input pipeline's per-replica slices of global batches ``start_batch ...`` of ``order``.

    ``batch_size`` is the global batch; it must divide by the number of replicas.
    Without ``input_context`` (one replica) the elements are whole batches.
    ``symmetries`` (one per position of ``order``, :func:`epoch_symmetries`)
    augments the stamps.
    """
    if symmetries is not None and len(symmetries) != len(order):
        raise ValueError(f"{len(symmetries)} symmetries for an order of {len(order)} examples")
    pipeline, num_pipelines, num_replicas = _pipeline_position(input_context)
    local_replicas = num_replicas // num_pipelines
    share = batch_size // num_replicas
    batches = np.arange(start_batch, len(order) // batch_size, dtype=np.int64)
    replicas = pipeline * local_replicas + np.arange(local_replicas, dtype=np.int64)
    starts = (batches[:, None] * batch_size + replicas[None, :] * share).reshape(-1)
    return _dataset_from_bounds(reader, order, np.stack([starts, starts + share], axis=1), symmetries)


def validation_dataset(
    reader: ShardReader, batch_size: int, input_context: tf.distribute.InputContext | None = None
) -> tf.data.Dataset:
    """This input pipeline's per-replica slices of the whole split in file order, last batch short."""
    pipeline, num_pipelines, num_replicas = _pipeline_position(input_context)
    local_replicas = num_replicas // num_pipelines
    order = sequential_order(reader.shard_sizes)
    slices = []
    for batch_start in range(0, len(order), batch_size):
        length = min(batch_size, len(order) - batch_start)
        for local in range(local_replicas):
            slices.append(replica_slice(batch_start, length, pipeline * local_replicas + local, num_replicas))
    return _dataset_from_bounds(reader, order, np.asarray(slices, dtype=np.int64).reshape(-1, 2))


def _pipeline_position(input_context: tf.distribute.InputContext | None) -> tuple[int, int, int]:
    if input_context is None:
        return 0, 1, 1
    return input_context.input_pipeline_id, input_context.num_input_pipelines, input_context.num_replicas_in_sync


def input_error(error: tf.errors.OpError) -> Exception:
    """A data-reading failure (the ValueError of :class:`ShardReader`, raised inside tf.data) as one RealfakeError
    line; anything else stays a TensorFlow error."""
    match = re.search(rf"{NON_FINITE_INPUT} in \S+ row \d+", str(error))
    if match:
        return RealfakeError(f"{match.group(0)}")
    return error

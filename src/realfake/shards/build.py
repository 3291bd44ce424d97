"""Shards: per-brick cutouts -> a globally shuffled, balanced train/validation/test set of .npy shards.

The output directory follows ``docs/shards_format.md``: per split (``train``,
``validation``, ``test``: :data:`realfake.conventions.SPLITS`)
``x<split>_<k>.npy`` and ``y<split>_<k>.npy`` (x float32 (n, S, S, C)
channels-last as in the cutouts; y int32, fake = 1, real = 0) and the catalog
``<split>_catalog.parquet`` (one row per example in shard order), then
``manifest.json`` (written last).

How an example's place is decided, all from one seeded generator:

1. *Index* (:mod:`realfake.shards.index`): every cutouts file's catalog is read
   (no stamps); each stamp gets a label, its brick, its matching values and its
   (file, row).
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

Cross-fitting (``folds`` K >= 2, ``--folds``; needs ``split="brick"``): step 3
becomes: bricks in a random order go each to the fold with the fewest examples
so far (folds of near-equal size, bricks whole), then within each fold to
validation until its share of the fold is nearest ``validation_fraction``, the
rest to train (:func:`realfake.shards.placement.fold_groups`). Steps 4 and 6
work per part (``fold<j>-train``, ``fold<j>-validation``:
:func:`realfake.conventions.fold_parts`), which replace the splits on disk.
``test_fraction`` is not used: model k trains on the other folds and tests
fold k, so every example is tested once, and one shard set serves the K models
(:meth:`realfake.formats.shardset.ShardSet.fold_view`). The normalisation is
sampled from every fold's training part (label-free, so no model learns its test
examples' classes from it). With K = 1 (the default) nothing of the above
applies and the set is byte for byte what it was before folds existed.

Steps 2 to 6 are :mod:`realfake.shards.placement`.

The validation split, carved from the training examples, is what training
monitors and selects its checkpoint on; the test split is read only by the
evaluation.

Memory stays bounded in the stamps: the index holds a few numbers per example
(file, row, label, brick number, matching values: about 20 bytes), and the
stamps are moved one input file at a time, each written straight to its place
in the preallocated output ``.npy`` files (``os.pwrite``: :mod:`realfake.shards.scatter`);
catalog rows are sorted by an external sort in buckets of positions
(:class:`realfake.shards.catalog_sort.CatalogBuckets`).
Every step costs the same per example at any N (``scripts/bench_scale.py``).
The same inputs and seed give byte-identical shard sets.

Identity. The manifest's ``identity`` (:func:`realfake.formats.manifest.shard_set_identity`)
is a SHA-256 of what defines the shard set: the format, the settings that shape
it, the content identity of every input cutouts file
(:func:`realfake.formats.cutouts.file_content_digest`) and which input stamp went
to which place in which split (with folds, in which part; the settings then
include ``folds`` and leave out the unused ``test_fraction``). Re-making the same set (same inputs, same
settings) gives the same identity; anything that changes a stamp, a label, a
catalog value or the split gives another. Training and evaluation tie their
state to it: a checkpoint or model of another shard set is never reused.
Computing it costs a hash of a few bytes per example, not of the pixels.

The format itself is :mod:`realfake.formats.shardset` (its reader) and :mod:`realfake.formats.manifest` (its
:class:`realfake.formats.manifest.Manifest` and the writer's pieces); this module runs the stage
(:func:`run_shards`) and builds its manifest.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from realfake.atomic import atomic_directory, remove_stale_temporaries
from realfake.conventions import LABELS, SPLITS, part_name
from realfake.errors import RealfakeError
from realfake.formats.manifest import (
    FORMAT_VERSION,
    Manifest,
    label_counts,
    shard_set_identity,
    split_records,
    storage_record,
    write_manifest,
)
from realfake.paths import read_brick_list
from realfake.progress import say
from realfake.shards.index import Source, index_cutouts
from realfake.shards.placement import EXCLUSION_RULE, place_examples, split_record
from realfake.shards.scatter import normalization, scatter
from realfake.shards.settings import ShardSettings, defining_settings
from realfake.stats.tolerance import smallest_decisive_split

# The level at which a test split must be able to give a significant verdict (evaluate.significance's default).
DECISIVE_SIGNIFICANCE = 0.05


def _identity(settings: ShardSettings, sources: list[Source], index: pd.DataFrame, order, reference: dict) -> str:
    """:func:`realfake.formats.manifest.shard_set_identity` of a shard set being made (see the module docstring)."""
    definition = {
        "format_version": FORMAT_VERSION,
        "channel_names": list(reference["channels"]),
        "stamp_size": int(reference["stamp_size"]),
        "settings": {key: _json_value(getattr(settings, key)) for key in defining_settings(settings)},
        "inputs": [[source.kind, source.digest] for source in sources],
    }
    placement = {
        split: np.stack([index["source"].to_numpy()[order[split]], index["row"].to_numpy()[order[split]]], axis=1)
        for split in order
    }
    return shard_set_identity(definition, placement)


def _json_value(value):
    return list(value) if isinstance(value, tuple) else value


def check_test_split(settings: ShardSettings, index: pd.DataFrame, order: dict, progress: TextIO) -> None:
    """Refuse a test split too small to support any outcome: with fewer than
    :func:`realfake.stats.tolerance.smallest_decisive_split` examples of a class (4 at the verdict's default level
    0.05), even a perfect separation is not significant. Say so when bricks held whole put the test share far from
    the one asked for. With folds every example is tested (by the model of the other folds): the examples of all
    folds together are checked."""
    tested = order["test"] if settings.folds == 1 else np.concatenate(list(order.values()))
    labels = index["label"].to_numpy()[tested]
    counts = {kind: int(np.sum(labels == label)) for kind, label in LABELS.items()}
    needed = smallest_decisive_split(DECISIVE_SIGNIFICANCE)
    if settings.folds > 1 and min(counts.values()) < needed:
        raise RealfakeError(
            f"the {settings.folds} folds would hold {counts['real']} real and {counts['fake']} fake examples, each "
            f"tested once; a verdict needs at least {needed} of each (fewer cannot be significant at "
            f"{DECISIVE_SIGNIFICANCE:g} even when perfectly separated): add bricks"
        )
    if settings.folds > 1:
        return
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


def _manifest(
    settings: ShardSettings,
    sources: list[Source],
    index: pd.DataFrame,
    order: dict[str, np.ndarray],
    excluded: np.ndarray,
    reference: dict,
    storage: dict,
    normalization_record: dict,
) -> Manifest:
    """The manifest of the shard set made from ``sources`` (see ``docs/shards_format.md``)."""
    labels = index["label"].to_numpy()
    folds = settings.folds
    recorded_settings = {
        key: str(value) if isinstance(value, Path) else value for key, value in asdict(settings).items()
    }
    if folds == 1:
        del recorded_settings["folds"]  # a set of one split is recorded as before folds existed
    return Manifest(
        identity=_identity(settings, sources, index, order, reference),
        channel_names=tuple(reference["channels"]),
        stamp_size=reference["stamp_size"],
        shard_size=settings.shard_size,
        splits=split_records({split: labels[order[split]] for split in order}, settings.shard_size),
        folds=folds if folds > 1 else None,
        normalization=normalization_record,
        storage=storage,
        bands=tuple(reference["bands"]),
        available=label_counts(labels),
        seed=settings.seed,
        test_fraction=settings.test_fraction if folds == 1 else None,
        validation_fraction=settings.validation_fraction,
        balance=settings.balance,
        matching={
            "columns": list(settings.match),
            "bin_width": settings.match_bin_width,
            "excluded": label_counts(labels[excluded]),
            "excluded_rule": EXCLUSION_RULE,
        },
        split=split_record(settings, index, order),
        real_source=reference["real_source"],
        inputs={
            "real_dir": str(settings.real_dir),
            "sim_dir": str(settings.sim_dir),
            "bricks_file": str(settings.bricks_file) if settings.bricks_file else None,
            "files": [str(source.path) for source in sources],
            "content_sha256": [source.digest for source in sources],
        },
        settings=recorded_settings,
    )


def _summary(manifest: Manifest) -> str:
    """One line: each split's (with folds, each fold's) examples and shards, the stamps available, those excluded
    and how the split was made."""
    if manifest.folds:
        return _folds_summary(manifest)
    splits = "; ".join(
        f"{split} {manifest.splits[split]['examples']} examples "
        f"({manifest.splits[split]['real']} real, {manifest.splits[split]['fake']} fake) "
        f"in {len(manifest.splits[split]['shards'])} shards"
        for split in SPLITS
    )
    exclusion = _exclusion(manifest)
    bricks = ", ".join(f"{name} {count}" for name, count in manifest.split["bricks"].items())
    return (
        f"{splits}; from {manifest.available['real']} real and {manifest.available['fake']} fake stamps{exclusion}"
        f"; split by {manifest.split['by']} (bricks: {bricks}; test share {manifest.split['test_share']:.3f})"
    )


def _exclusion(manifest: Manifest) -> str:
    excluded = manifest.matching["excluded"]
    if not any(excluded.values()):
        return ""
    return f"; {excluded['fake']} fake and {excluded['real']} real unmatchable (no finite matching value) excluded"


def _folds_summary(manifest: Manifest) -> str:
    """:func:`_summary` of a set of folds: "3 folds: fold0 120 train + 30 validation examples (5 + 1 bricks), ..."."""
    folds = []
    for fold in range(manifest.folds):
        train, validation = part_name(fold, "train"), part_name(fold, "validation")
        folds.append(
            f"fold{fold} {manifest.splits[train]['examples']} train + {manifest.splits[validation]['examples']} "
            f"validation examples ({manifest.split['bricks'][train]} + {manifest.split['bricks'][validation]} bricks)"
        )
    shards = sum(len(record["shards"]) for record in manifest.splits.values())
    return (
        f"{manifest.folds} folds: {', '.join(folds)}; {shards} shards; every example is tested once, by the model "
        f"of the other folds; classes balanced within each part; from {manifest.available['real']} real and "
        f"{manifest.available['fake']} fake stamps{_exclusion(manifest)}"
    )


def run_shards(settings: ShardSettings, progress: TextIO | None = None) -> Manifest:
    """Build the shard set in ``settings.out``; return its manifest.

    Everything is written into a staging directory next to ``out``
    (``.<out>.tmp-<host>-<pid>``) and moved into place when complete
    (``manifest.json`` last; :func:`realfake.atomic.atomic_directory`), so an
    interrupted run never leaves a shard set that looks finished; the staging a
    killed run left is removed by the next, which says so
    (:func:`realfake.atomic.remove_stale_temporaries`). A full disk is a
    RealfakeError naming ``out``, with the staging removed.
    """
    progress = progress or sys.stderr
    bricks = read_brick_list(settings.bricks_file) if settings.bricks_file else None
    rng = np.random.default_rng(settings.seed)
    sources, index, reference = index_cutouts(settings, bricks)
    order, excluded = place_examples(index, settings, rng)
    check_test_split(settings, index, order, progress)
    size, channels = reference["stamp_size"], reference["channels"]
    out = Path(settings.out)
    leftovers = remove_stale_temporaries(out) + remove_stale_temporaries(out, kind="old")
    if leftovers:
        names = ", ".join(str(path) for path in leftovers)
        say("shards", f"removed the staging left by a killed run: {names}", progress)
    with atomic_directory(out) as staging:
        storage = storage_record(settings.dtype, tuple(channels))
        samples, clipped = scatter(
            settings, sources, index, order, staging, (size, size, len(channels)), rng, progress, storage
        )
        if settings.dtype == "float16":
            storage["clipped_pixels"] = clipped
            if clipped:
                say("shards", f"{clipped} pixel(s) beyond float16's range were clipped to it (manifest storage)")
        statistics = normalization(samples, channels, settings.folds)
        manifest = _manifest(settings, sources, index, order, excluded, reference, storage, statistics)
        write_manifest(staging, manifest)
    say("shards", _summary(manifest), progress)
    return manifest

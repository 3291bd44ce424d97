"""Which example goes where in a shard set: exclusion, the split, balance and matching, the order.

A pure function of the index of examples (one row per stamp: its label, its
brick, its matching values) and a seeded generator, so the shard set's
placement can be reasoned about, and tested, without any stamp. The steps, as
:func:`place_examples` runs them, are in :mod:`realfake.shards.build`' docstring;
their cost is O(N log N) in the examples, whatever the number of bins or bricks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from realfake.conventions import SPLITS
from realfake.errors import RealfakeError

if TYPE_CHECKING:
    from pathlib import Path

    from realfake.shards.settings import ShardSettings


def matching_values(catalog: pd.DataFrame, name: str, path: Path) -> np.ndarray:
    """Column ``name`` of the catalog of cutouts file ``path`` as float64 matching values (booleans as 0 and 1).

    Raises RealfakeError naming the file and the column when the column holds text.
    """
    column = catalog[name]
    if not pd.api.types.is_numeric_dtype(column):
        raise RealfakeError(f"cutouts file {path}: match column {name!r} holds text; matching needs a numeric column")
    return column.to_numpy(dtype=np.float64)


def unmatchable(index: pd.DataFrame, settings: ShardSettings) -> np.ndarray:
    """Examples that cannot be matched: a matching value that is not finite (an undetected fake has no
    measured magnitude; a source of negative flux has no magnitude at all)."""
    excluded = np.zeros(len(index), dtype=bool)
    if settings.balance == "none":
        return excluded
    for name in settings.match:
        excluded |= ~np.isfinite(index[name].to_numpy(dtype=np.float64))
    return excluded


def matching_bins(index: pd.DataFrame, settings: ShardSettings) -> np.ndarray:
    """One bin per example from the matching quantities (finite values: see :func:`unmatchable`)."""
    if not settings.match:
        return np.zeros(len(index), dtype=np.int64)
    keys = []
    for name in settings.match:
        values = index[name].to_numpy(dtype=np.float64)
        # Bins anchored at 0 (edges at multiples of the width); an unmatchable value's bin is never used.
        keys.append(np.floor(np.where(np.isfinite(values), values, 0) / settings.match_bin_width).astype(np.int64))
    return np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True)[1].ravel()


def balance(
    index: pd.DataFrame, candidates: np.ndarray, groups: np.ndarray, settings: ShardSettings, rng: np.random.Generator
) -> np.ndarray:
    """Positions (into ``index``) of the examples kept, in index order: of the ``candidates``, in each
    group (a split, for a brick split) and matching bin, the larger class subsampled to the smaller.

    Grouped by one sort, so the cost is O(N log N) in the examples, whatever the number of bins.
    """
    if settings.balance == "none":
        return candidates
    bins = matching_bins(index, settings)[candidates]
    cell = groups[candidates].astype(np.int64) * (int(bins.max(initial=0)) + 1) + bins
    labels = index["label"].to_numpy()[candidates].astype(np.int64)
    keys = cell * 2 + labels
    order = np.argsort(keys, kind="stable")
    unique_keys, starts, sizes = np.unique(keys[order], return_index=True, return_counts=True)
    size_of = dict(zip(unique_keys.tolist(), sizes.tolist(), strict=True))
    kept = []
    for key, start, size in zip(unique_keys.tolist(), starts.tolist(), sizes.tolist(), strict=True):
        keep = min(size, size_of.get(key ^ 1, 0))
        if keep:
            members = candidates[order[start : start + size]]
            kept.append(np.sort(rng.permutation(members)[:keep]))
    if not kept:
        raise RealfakeError(f"no bin of {', '.join(settings.match)} holds both real and fake examples")
    return np.sort(np.concatenate(kept))


def bricks_needed_for_split(validation_fraction: float) -> int:
    """The fewest bricks a split by brick can share out: one for test, one for training, and one for
    validation when it has a share."""
    return 2 + (validation_fraction > 0)


def brick_groups(
    index: pd.DataFrame, candidates: np.ndarray, settings: ShardSettings, rng: np.random.Generator
) -> np.ndarray:
    """For a brick split: the split number (:data:`SPLITS` order) of each example, by its brick.

    Bricks are taken in a random order; each goes to test until the test share of the
    examples is nearest ``test_fraction``, then to validation likewise for
    ``validation_fraction`` of the rest, then to train. Every split with a non-zero
    share gets at least one brick. (The shares are of the examples before balancing,
    which is done within each split: the manifest records the actual test share.)
    """
    bricks, brick_of, weight = np.unique(index["brick"].to_numpy()[candidates], return_inverse=True, return_counts=True)
    needed = bricks_needed_for_split(settings.validation_fraction)
    if len(bricks) < needed:
        raise RealfakeError(
            f"a brick split needs at least {needed} bricks, and these inputs have {len(bricks)}: use --split "
            f"example (shards.split), or more bricks"
        )
    order = rng.permutation(len(bricks))
    split_of_brick = np.full(len(bricks), SPLITS.index("train"), dtype=np.int8)
    remaining_weight, position = int(weight[order].sum()), 0
    for split, fraction in (("test", settings.test_fraction), ("validation", settings.validation_fraction)):
        if fraction <= 0:
            continue
        target, taken, chosen = fraction * remaining_weight, 0, 0
        # Leave at least one brick for each later split.
        room = len(order) - position - (1 if split == "test" and settings.validation_fraction > 0 else 0) - 1
        while chosen < room:
            step = int(weight[order[position + chosen]])
            if chosen and abs(taken + step - target) >= abs(taken - target):
                break
            taken, chosen = taken + step, chosen + 1
        split_of_brick[order[position : position + chosen]] = SPLITS.index(split)
        position += chosen
        remaining_weight -= taken
    groups = np.zeros(len(index), dtype=np.int8)
    groups[candidates] = split_of_brick[brick_of]
    return groups


def split_and_order(
    index: pd.DataFrame, kept: np.ndarray, groups: np.ndarray, settings: ShardSettings, rng: np.random.Generator
):
    """Per split, the positions of its examples in shard order: by brick (``groups``) or class-stratified
    by example, then shuffled across bricks."""
    if settings.split == "brick":
        return {split: rng.permutation(kept[groups[kept] == number]) for number, split in enumerate(SPLITS)}
    labels = index["label"].to_numpy()[kept]
    parts = {split: [] for split in SPLITS}
    for label in (0, 1):
        members = rng.permutation(kept[labels == label])
        n_test = int(round(len(members) * settings.test_fraction))
        n_validation = int(round((len(members) - n_test) * settings.validation_fraction))
        parts["test"].append(members[:n_test])
        parts["validation"].append(members[n_test : n_test + n_validation])
        parts["train"].append(members[n_test + n_validation :])
    return {split: rng.permutation(np.concatenate(parts[split])) for split in SPLITS}


def place_examples(index: pd.DataFrame, settings: ShardSettings, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """Which examples go where: per split, the positions of its examples in shard order; and the
    unmatchable examples (excluded before anything else)."""
    excluded = unmatchable(index, settings)
    candidates = np.flatnonzero(~excluded)
    groups = np.zeros(len(index), dtype=np.int8)
    if settings.split == "brick":
        groups = brick_groups(index, candidates, settings, rng)
    kept = balance(index, candidates, groups, settings, rng)
    order = split_and_order(index, kept, groups, settings, rng)
    wanted = {"test": settings.test_fraction, "validation": settings.validation_fraction}
    for split, fraction in wanted.items():
        if settings.split == "brick" and fraction > 0 and len(order[split]) == 0:
            raise RealfakeError(
                f"the {split} split holds no example: its bricks have no real and fake examples in a common "
                f"matching bin; use --split example (shards.split), or more bricks"
            )
    return order, excluded


EXCLUSION_RULE = (
    "examples whose matching value is not finite are excluded before matching: for measured_* columns, the fakes "
    "legacypipe did not detect (no measured value); they are counted here and not in any split"
)


def split_record(settings: ShardSettings, index: pd.DataFrame, order: dict[str, np.ndarray]) -> dict:
    """How the examples were split: by example or by brick, with each split's bricks and actual test share."""
    total = sum(len(order[split]) for split in SPLITS)
    bricks = index["brick"].to_numpy()
    return {
        "by": settings.split,
        "test_share": len(order["test"]) / total if total else 0.0,
        "bricks": {split: int(len(np.unique(bricks[order[split]]))) for split in SPLITS},
    }

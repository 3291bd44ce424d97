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

from realfake.conventions import FOLD_ROLES, SPLITS, fold_parts, part_name
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


def _nearest_share(weights: np.ndarray, target: float, room: int) -> tuple[int, int]:
    """How many of the first bricks (``weights``: their examples, in the order taken) bring their examples nearest
    ``target``: at least one, at most ``room``; and those bricks' examples."""
    taken, chosen = 0, 0
    while chosen < room:
        step = int(weights[chosen])
        if chosen and abs(taken + step - target) >= abs(taken - target):
            break
        taken, chosen = taken + step, chosen + 1
    return chosen, taken


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
        # Leave at least one brick for each later split.
        room = len(order) - position - (1 if split == "test" and settings.validation_fraction > 0 else 0) - 1
        chosen, taken = _nearest_share(weight[order[position:]], fraction * remaining_weight, room)
        split_of_brick[order[position : position + chosen]] = SPLITS.index(split)
        position += chosen
        remaining_weight -= taken
    groups = np.zeros(len(index), dtype=np.int8)
    groups[candidates] = split_of_brick[brick_of]
    return groups


def bricks_needed_for_folds(folds: int, validation_fraction: float) -> int:
    """The fewest bricks ``folds`` folds can share out: one for each fold's training part, and one for each
    fold's validation part when it has a share."""
    return folds * (1 + (validation_fraction > 0))


def fold_groups(
    index: pd.DataFrame, candidates: np.ndarray, settings: ShardSettings, rng: np.random.Generator
) -> np.ndarray:
    """For ``settings.folds`` K >= 2: the part number of each example, by its brick: ``2 * fold + role``
    (role 0 train, 1 validation), the order of :func:`realfake.conventions.fold_parts`.

    Bricks are taken in a random order; each goes to the fold with the fewest examples so far (the lowest
    fold on a tie), so the folds are of near-equal size, bricks held whole (a fold short of the bricks its
    parts need takes the last bricks). Within each fold, its bricks, in the order they came, go to validation
    until the validation share of the fold's examples is nearest ``validation_fraction`` (as
    :func:`brick_groups`), the rest to train; each non-empty role gets at least one brick. The shares are of
    the examples before balancing, which is done within each part.
    """
    folds, fraction = settings.folds, settings.validation_fraction
    bricks, brick_of, weight = np.unique(index["brick"].to_numpy()[candidates], return_inverse=True, return_counts=True)
    needed, per_fold = bricks_needed_for_folds(folds, fraction), 1 + (fraction > 0)
    if len(bricks) < needed:
        raise RealfakeError(
            f"{folds} folds (--folds) need at least {needed} bricks (one for each fold's training part"
            f"{' and one for its validation part' if fraction > 0 else ''}), and these inputs have {len(bricks)}: "
            f"use fewer folds, or more bricks"
        )
    order = rng.permutation(len(bricks))
    fold_weight = np.zeros(folds, dtype=np.int64)
    members: list[list[int]] = [[] for _ in range(folds)]
    for placed, brick in enumerate(order.tolist()):
        short = [fold for fold in range(folds) if len(members[fold]) < per_fold]
        missing = sum(per_fold - len(members[fold]) for fold in short)
        # Only as many bricks left as the folds short of bricks need: they go to those folds.
        allowed = short if missing >= len(order) - placed else range(folds)
        fold = min(allowed, key=lambda number: (fold_weight[number], number))
        members[fold].append(brick)
        fold_weight[fold] += weight[brick]
    part_of_brick = np.zeros(len(bricks), dtype=np.int16)
    for fold, fold_bricks in enumerate(members):
        fold_bricks = np.asarray(fold_bricks, dtype=np.int64)
        chosen = 0
        if fraction > 0:
            chosen, _ = _nearest_share(weight[fold_bricks], fraction * fold_weight[fold], len(fold_bricks) - 1)
        part_of_brick[fold_bricks] = 2 * fold
        part_of_brick[fold_bricks[:chosen]] = 2 * fold + 1
    groups = np.zeros(len(index), dtype=np.int16)
    groups[candidates] = part_of_brick[brick_of]
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
    """Which examples go where: per split (per part, :func:`realfake.conventions.fold_parts`, with folds), the
    positions of its examples in shard order; and the unmatchable examples (excluded before anything else)."""
    excluded = unmatchable(index, settings)
    candidates = np.flatnonzero(~excluded)
    if settings.folds > 1:
        return place_in_folds(index, candidates, settings, rng), excluded
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


def place_in_folds(
    index: pd.DataFrame, candidates: np.ndarray, settings: ShardSettings, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """For ``settings.folds`` K >= 2: per part (fold0-train, fold0-validation, fold1-train, ...), the positions
    of its examples in shard order: bricks to folds and roles (:func:`fold_groups`), balanced and matched
    within each part, each part permuted across its bricks."""
    groups = fold_groups(index, candidates, settings, rng)
    kept = balance(index, candidates, groups, settings, rng)
    order = {
        part: rng.permutation(kept[groups[kept] == number]) for number, part in enumerate(fold_parts(settings.folds))
    }
    for fold in range(settings.folds):
        for role in FOLD_ROLES:
            if (role == "train" or settings.validation_fraction > 0) and len(order[part_name(fold, role)]) == 0:
                raise RealfakeError(
                    f"fold {fold}'s {role} part holds no example: its bricks have no real and fake examples in a "
                    f"common matching bin; use fewer folds (--folds), or more bricks"
                )
    return order


EXCLUSION_RULE = (
    "examples whose matching value is not finite are excluded before matching: for measured_* columns, the fakes "
    "legacypipe did not detect (no measured value); they are counted here and not in any split"
)


# The split record's word on the test split of a set of folds (settings.test_fraction is not used).
FOLDS_TEST_RULE = (
    "every example is tested once: fold k's examples (its train and validation parts) are the test split of model k, "
    "trained on the other folds; test_fraction is not used"
)


def split_record(settings: ShardSettings, index: pd.DataFrame, order: dict[str, np.ndarray]) -> dict:
    """How the examples were split: by example or by brick, with each split's bricks and actual test share; with
    folds, each part's bricks, each fold's examples and how the test splits are made."""
    bricks = index["brick"].to_numpy()
    if settings.folds > 1:
        parts = fold_parts(settings.folds)
        return {
            "by": settings.split,
            "folds": settings.folds,
            "test": FOLDS_TEST_RULE,
            "bricks": {part: int(len(np.unique(bricks[order[part]]))) for part in parts},
            "fold_examples": [
                sum(len(order[part_name(fold, role)]) for role in FOLD_ROLES) for fold in range(settings.folds)
            ],
        }
    total = sum(len(order[split]) for split in SPLITS)
    return {
        "by": settings.split,
        "test_share": len(order["test"]) / total if total else 0.0,
        "bricks": {split: int(len(np.unique(bricks[order[split]]))) for split in SPLITS},
    }

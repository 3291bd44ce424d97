"""Cross-fitting by brick: which view of a shard set each model and each command sees.

A shard set made with ``--folds K`` (``evaluate.folds`` in the workflow, K >= 2) holds the examples in K folds of
whole bricks (``docs/shards_format.md``). The model of fold k trains on the other folds, selects its epoch on the
validation part of the next fold (k + 1 mod K, which it does not train on), and scores fold k's examples: every
example is scored once, by the one model that never saw its brick
(:meth:`realfake.formats.shardset.ShardSet.fold_view`). The evaluation reads the K models' predictions together,
in the pooled view (:meth:`realfake.formats.shardset.ShardSet.pooled_view`), and compares scores only within a
fold, as the K models' scores are not on one scale (``docs/verdict.md``, "Cross-fitting").

A model records the identity of the view it was trained on, which names its fold, so a model is never used to
score another fold's examples, and a checkpoint of one fold never resumes another's training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from realfake.errors import RealfakeError

if TYPE_CHECKING:
    from realfake.formats.shardset import ShardSet


def model_view_of(shard_set: ShardSet, fold: int | None) -> ShardSet:
    """The view of ``shard_set`` that the model of ``fold`` trains on and scores (``--fold``): the set itself
    when it has one split (``fold`` None), else fold ``fold``'s view.

    Raises RealfakeError naming ``--fold`` and the shard set when a fold is named for a set of one split, none
    is named for a cross-fitted set, or it is not one of its folds.
    """
    folds = shard_set.folds
    if folds == 1:
        if fold is not None:
            raise RealfakeError(
                f"--fold {fold}: the shard set in {shard_set.directory} has one split, not folds (it was made "
                f"without --folds): leave --fold out"
            )
        return shard_set
    if fold is None:
        raise RealfakeError(
            f"the shard set in {shard_set.directory} is cross-fitted in {folds} folds (made with --folds {folds}): "
            f"name the model's fold with --fold, 0 to {folds - 1}"
        )
    if not 0 <= fold < folds:
        raise RealfakeError(
            f"--fold {fold}: the shard set in {shard_set.directory} has folds 0 to {folds - 1} (made with --folds "
            f"{folds})"
        )
    return shard_set.fold_view(fold)

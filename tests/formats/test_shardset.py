"""The shard set's reader for sets cross-fitted in folds: its parts, the views assembled from them, and its checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realfake.conventions import SPLITS, fold_parts, part_name
from realfake.errors import RealfakeError
from realfake.formats.manifest import Manifest
from realfake.formats.shardset import open_shard_set, write_shard_set

CHANNELS = ["g", "r", "ivar_g", "ivar_r"]
SHARD_SIZE = 4
# Examples of each part: several shards each, the last short, so that views cross shard and part boundaries.
PART_SIZES = {"fold0-train": 10, "fold0-validation": 4, "fold1-train": 9, "fold1-validation": 6,
              "fold2-train": 12, "fold2-validation": 5}  # fmt: skip


def coded_parts(sizes: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray, pd.DataFrame]]:
    """Per part, stamps (n, 4, 4, 4) whose channel 0 holds the example's code (part number x 1000 + its place in
    the part), balanced labels and a catalog with the code."""
    parts = {}
    for number, (part, size) in enumerate(sizes.items()):
        codes = number * 1000 + np.arange(size)
        stamps = np.ones((size, 4, 4, len(CHANNELS)), dtype=np.float32)
        stamps[..., 0] = codes[:, None, None]
        labels = (np.arange(size) % 2).astype(np.int32)
        parts[part] = (stamps, labels, pd.DataFrame({"label": labels, "code": codes, "part": part}))
    return parts


@pytest.fixture
def folds_set(tmp_path) -> Path:
    write_shard_set(tmp_path / "folds", coded_parts(PART_SIZES), CHANNELS, {"test": "folds"}, SHARD_SIZE, folds=3)
    return tmp_path / "folds"


def codes_of(parts: list[str]) -> np.ndarray:
    return np.concatenate([fold_parts(3).index(part) * 1000 + np.arange(PART_SIZES[part]) for part in parts])


def test_a_fold_view_trains_on_the_other_folds_and_tests_its_own(folds_set):
    shard_set = open_shard_set(folds_set)
    assert shard_set.folds == 3 and shard_set.manifest.folds == 3
    for fold in range(3):
        view = shard_set.fold_view(fold)
        # Validation: the next fold's validation part; training: every other part of the other folds.
        following, last = (fold + 1) % 3, (fold + 2) % 3
        expected = {
            "train": sorted(
                [part_name(following, "train"), part_name(last, "train"), part_name(last, "validation")],
                key=fold_parts(3).index,
            ),
            "validation": [part_name(following, "validation")],
            "test": [part_name(fold, "train"), part_name(fold, "validation")],
        }
        assert (
            view.fold == fold
            and view.identity == f"{shard_set.identity}-fold{fold}"
            and view.manifest is shard_set.manifest
        )
        for split in SPLITS:
            codes = codes_of(expected[split])
            assert view.examples(split) == len(codes)
            assert len(view.split(split)) == sum(-(-PART_SIZES[part] // SHARD_SIZE) for part in expected[split])
            # Positions are those of the assembled split: in order, and in any order.
            np.testing.assert_array_equal(view.read_examples(split, np.arange(len(codes)))[:, 0, 0, 0], codes)
            chosen = np.random.default_rng(fold).permutation(len(codes))[:7]
            np.testing.assert_array_equal(view.read_examples(split, chosen)[:, 0, 0, 0], codes[chosen])
            catalog = view.catalog(split)
            np.testing.assert_array_equal(catalog["code"], codes)
            np.testing.assert_array_equal(view.catalog_column(split, "code"), codes)
            np.testing.assert_array_equal(view.catalog_column(split, "shard"), catalog["shard"])
            # shard numbers index the view's shards: each row's stamp is at (shard, row) of view.split(split).
            for number in np.unique(catalog["shard"]):
                rows = catalog[catalog["shard"] == number]
                x = np.load(view.split(split)[number].x)
                np.testing.assert_array_equal(x[rows["row"].to_numpy(), 0, 0, 0], rows["code"])
            assert catalog["shard"].max() == len(view.split(split)) - 1
            # Rows across part boundaries, by position in the assembled split.
            positions = np.sort(chosen)
            pd.testing.assert_frame_equal(
                view.catalog_rows(split, positions), catalog.iloc[positions].reset_index(drop=True)
            )
        np.testing.assert_array_equal(view.test_folds(), np.full(view.examples("test"), fold))
        assert view.test == view.split("test") and view.train == view.split("train")
    assert shard_set.fold_view(1).fold_view(0).split_parts("test") == ("fold0-train", "fold0-validation")


def test_the_pooled_view_tests_every_example_once_in_fold_order(folds_set):
    shard_set = open_shard_set(folds_set)
    pooled = shard_set.pooled_view()
    assert pooled.split_parts("test") == tuple(fold_parts(3)) == shard_set.split_parts("test")
    np.testing.assert_array_equal(pooled.catalog("test")["code"], codes_of(fold_parts(3)))
    np.testing.assert_array_equal(
        pooled.test_folds(), np.concatenate([np.full(shard_set.fold_view(k).examples("test"), k) for k in range(3)])
    )
    pd.testing.assert_frame_equal(
        pooled.catalog("test").drop(columns="shard"),
        pd.concat([shard_set.fold_view(k).catalog("test") for k in range(3)], ignore_index=True).drop(columns="shard"),
    )
    # No model trains on every fold: the pooled view's train and validation splits are empty.
    assert pooled.train == pooled.validation == () and pooled.examples("train") == 0
    assert pooled.catalog_column("train", "label").size == 0 and pooled.catalog("validation").empty


def test_a_set_of_one_split_is_its_own_pooled_view_and_has_no_fold_views(tmp_path):
    parts = coded_parts({"train": 6, "validation": 2, "test": 5})
    write_shard_set(tmp_path / "one", parts, CHANNELS, {"test": "one"}, SHARD_SIZE)
    shard_set = open_shard_set(tmp_path / "one")
    assert shard_set.folds == 1 and shard_set.pooled_view() is shard_set and shard_set.fold is None
    assert "folds" not in json.loads((tmp_path / "one" / "manifest.json").read_text())
    np.testing.assert_array_equal(shard_set.test_folds(), np.zeros(5, dtype=np.int64))
    np.testing.assert_array_equal(shard_set.catalog("test")["code"], 2000 + np.arange(5))
    with pytest.raises(RealfakeError) as error:
        shard_set.fold_view(0)
    assert str(error.value) == (
        f"fold 0: the shard set in {tmp_path / 'one'} has one split, not folds (it was made without --folds)"
    )
    write_shard_set(tmp_path / "folds", coded_parts(PART_SIZES), CHANNELS, {}, SHARD_SIZE, folds=3)
    with pytest.raises(RealfakeError) as error:
        open_shard_set(tmp_path / "folds").fold_view(3)
    assert str(error.value) == f"fold 3: the shard set in {tmp_path / 'folds'} has folds 0 to 2"


def test_the_manifest_of_folds_round_trips_and_normalises_on_every_training_part(folds_set):
    written = json.loads((folds_set / "manifest.json").read_text())
    assert written["folds"] == 3 and sorted(written["splits"]) == sorted(fold_parts(3))
    assert written["normalization"]["computed_on"] == "train parts of all folds"
    assert written["normalization"]["examples_sampled"] == sum(PART_SIZES[part_name(k, "train")] for k in range(3))
    manifest = Manifest.from_json(written, folds_set / "manifest.json")
    assert manifest.folds == 3 and manifest.parts == fold_parts(3)
    assert manifest.to_json() == written
    assert sorted(path.name for path in folds_set.glob("*.parquet")) == sorted(
        f"{p}_catalog.parquet" for p in fold_parts(3)
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda record: record.update(folds=1), "folds must be a whole number of at least 2 (absent for a set of one "
                                                "split), got 1"),
        (lambda record: record.update(folds="3"), "folds must be a whole number of at least 2"),
        (lambda record: record["splits"].pop("fold2-validation"), "missing key splits.fold2-validation"),
        (lambda record: record.pop("folds"), "missing key splits.train"),
    ],
)  # fmt: skip
def test_a_manifest_of_folds_with_a_bad_key_is_refused_naming_it(folds_set, edit, message):
    path = folds_set / "manifest.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(RealfakeError) as error:
        open_shard_set(folds_set)
    assert str(error.value).startswith(f"{path}: {message}")


def test_every_part_is_checked_and_every_fold_must_train(tmp_path, folds_set):
    (folds_set / "yfold1-train_2.npy").unlink()
    with pytest.raises(RealfakeError) as error:
        open_shard_set(folds_set)
    assert str(error.value) == (
        f"{folds_set / 'yfold1-train_2.npy'} is missing (listed in {folds_set / 'manifest.json'} as "
        "splits.fold1-train.shards[2])"
    )
    empty = tmp_path / "empty"
    write_shard_set(empty, coded_parts(PART_SIZES | {"fold2-train": 0}), CHANNELS, {}, SHARD_SIZE, folds=3)
    with pytest.raises(RealfakeError) as error:
        open_shard_set(empty)
    assert str(error.value) == (f"{empty / 'manifest.json'}: the training part of fold 2 (fold2-train) has no examples")
    # A fold's validation part may be empty (a set made with validation_fraction 0).
    no_validation = tmp_path / "no_validation"
    write_shard_set(no_validation, coded_parts(PART_SIZES | {"fold1-validation": 0}), CHANNELS, {}, SHARD_SIZE, 3)
    assert open_shard_set(no_validation).fold_view(0).examples("validation") == 0
    assert open_shard_set(no_validation).fold_view(1).examples("validation") == PART_SIZES["fold2-validation"]


def test_the_writer_of_folds_needs_every_part(tmp_path):
    with pytest.raises(ValueError) as error:
        write_shard_set(tmp_path / "set", coded_parts({"train": 4, "validation": 2, "test": 2}), CHANNELS, {},
                        SHARD_SIZE, folds=2)  # fmt: skip
    assert str(error.value) == (
        "write_shard_set with folds=2 needs the parts fold0-train, fold0-validation, fold1-train, fold1-validation; "
        "no fold0-train"
    )

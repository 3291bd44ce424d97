"""Shards cross-fitted by brick (--folds K): every example tested once, bricks held whole, one set for K models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from fixtures.cutouts_files import BRICKS, CHANNELS, code, write_fixture

from realfake.cli import build_parser
from realfake.conventions import SPLITS, fold_parts, part_name
from realfake.errors import RealfakeError
from realfake.formats.shardset import open_shard_set
from realfake.settings import settings_from_arguments
from realfake.shards.build import run_shards
from realfake.shards.placement import fold_groups
from realfake.shards.settings import ShardSettings

UNDETECTED = 3  # fakes of each brick without a measured magnitude: excluded before anything else


@pytest.fixture
def twelve_bricks(tmp_path) -> Path:
    rng = np.random.default_rng(4)
    counts = {kind: list(rng.integers(20, 60, 12)) for kind in ("real", "sim")}
    write_fixture(tmp_path / "twelve", counts, undetected=UNDETECTED)
    return tmp_path / "twelve"


def settings_for(root: Path, out: Path, **overrides) -> ShardSettings:
    return ShardSettings(real_dir=root / "real", sim_dir=root / "sim", out=out, shard_size=16, **overrides)


def content_digest(out: Path) -> str:
    """SHA-256 of a one-fold set's stamps, labels and catalog keys, split by split in shard order."""
    manifest = json.loads((out / "manifest.json").read_text())
    digest = hashlib.sha256()
    for split in SPLITS:
        for shard in manifest["splits"][split]["shards"]:
            digest.update(np.load(out / shard["x"]).tobytes())
            digest.update(np.load(out / shard["y"]).tobytes())
        catalog = pd.read_parquet(out / f"{split}_catalog.parquet")
        digest.update(catalog[["shard", "row", "label", "brickname", "id"]].to_csv(index=False).encode())
    return digest.hexdigest()


def file_bytes(out: Path) -> dict[str, bytes]:
    """Every file of a shard set; the manifest's paths of ``out`` left out, so two directories compare."""
    return {path.name: path.read_bytes().replace(str(out).encode(), b"OUT") for path in sorted(Path(out).iterdir())}


def stamp_codes(catalog: pd.DataFrame) -> list[float]:
    """The code each catalog row's stamp holds in its channel 0 pixel (0, 0) (fixtures.cutouts_files.code)."""
    brick_number = catalog["brickname"].map({name: number for number, name in enumerate(BRICKS)})
    return [code(*values) for values in zip(catalog["label"], brick_number, catalog["id"], strict=True)]


def test_one_fold_is_the_set_made_before_folds_existed(twelve_bricks, tmp_path):
    """--folds 1 (the default) changes no byte: the identity and content below are those the shards stage gave
    these inputs before folds existed (realfake before cross-fitting, run on this fixture)."""
    default, one = tmp_path / "default", tmp_path / "one"
    manifest = run_shards(settings_for(twelve_bricks, default))
    assert run_shards(settings_for(twelve_bricks, one, folds=1)).identity == manifest.identity
    assert file_bytes(default) == file_bytes(one)
    assert manifest.identity == "a027c6055d7cb4876d90fe2b0a61ac1d2db3ffc8b4da96ba9d2f222dedb52398"
    assert content_digest(default) == "b598104092499cd585cf2f79e416abe84d4c1e44236c88530d694bda10d9364e"
    written = json.loads((default / "manifest.json").read_text())
    assert "folds" not in written and "folds" not in written["settings"]
    assert set(written["splits"]) == set(SPLITS) and written["test_fraction"] == 0.2
    assert written["normalization"]["computed_on"] == "train"
    assert sorted(path.name for path in default.glob("*_catalog.parquet")) == [
        "test_catalog.parquet", "train_catalog.parquet", "validation_catalog.parquet"
    ]  # fmt: skip
    shard_set = open_shard_set(default)
    assert shard_set.folds == 1 and shard_set.pooled_view() is shard_set
    np.testing.assert_array_equal(shard_set.test_folds(), np.zeros(shard_set.examples("test"), dtype=np.int64))


def brick_weights(root: Path) -> dict[str, int]:
    """Each brick's matchable examples (its stamps less the undetected fakes), from the input files."""
    weights: dict[str, int] = {}
    for path in sorted(root.rglob("*.h5")):
        with h5py.File(path, "r") as cutouts:
            count = len(cutouts["stamps"])
        undetected = min(UNDETECTED, count) if "sim" in path.parts else 0
        weights[path.stem] = weights.get(path.stem, 0) + count - undetected
    return weights


def test_three_folds_test_every_example_once_with_bricks_held_whole(twelve_bricks, tmp_path, capsys):
    out = tmp_path / "folds"
    manifest = run_shards(settings_for(twelve_bricks, out, folds=3))
    parts = fold_parts(3)
    assert parts == [f"fold{fold}-{role}" for fold in range(3) for role in ("train", "validation")]
    # One set of files per part, no split files; the manifest keyed by the parts.
    assert sorted(path.name for path in out.glob("*_catalog.parquet")) == sorted(f"{part}_catalog.parquet"
                                                                                 for part in parts)  # fmt: skip
    assert not list(out.glob("xtrain_*.npy")) and not list(out.glob("xtest_*.npy"))
    written = json.loads((out / "manifest.json").read_text())
    assert written["folds"] == 3 and list(written["splits"]) == sorted(parts)
    assert written["settings"]["folds"] == 3 and "test_fraction" not in written
    assert written["normalization"]["computed_on"] == "train parts of all folds"
    assert written["split"]["by"] == "brick" and "test_fraction is not used" in written["split"]["test"]

    shard_set = open_shard_set(out)
    assert shard_set.folds == 3
    catalogs = {part: pd.read_parquet(out / f"{part}_catalog.parquet") for part in parts}
    bricks_of = {part: set(catalog["brickname"]) for part, catalog in catalogs.items()}
    for part, catalog in catalogs.items():
        assert len(catalog) == manifest.splits[part]["examples"] > 0, part
        # Balanced and matched within each part.
        bins = np.floor(catalog["measured_mag_dered_g"] / 0.25)
        pd.testing.assert_series_equal(
            bins[catalog["label"] == 0].value_counts().sort_index(),
            bins[catalog["label"] == 1].value_counts().sort_index(),
            check_names=False,
        )
        assert manifest.split["bricks"][part] == len(bricks_of[part])
    # Every brick in one part only: no sky in two folds, nor in a fold's training and validation parts.
    assert sum(len(bricks) for bricks in bricks_of.values()) == len(set().union(*bricks_of.values()))
    # Every example (of a kept brick) in exactly one part, each example once.
    keys = [
        set(zip(catalog["kind"], catalog["brickname"], catalog["id"], strict=True)) for catalog in catalogs.values()
    ]
    assert sum(len(part_keys) for part_keys in keys) == len(set().union(*keys)) == sum(map(len, catalogs.values()))
    # Folds of near-equal size before balancing: bricks go to the smallest fold, so no two folds differ by more
    # than the largest brick.
    weights = brick_weights(twelve_bricks)
    fold_bricks = [bricks_of[part_name(fold, "train")] | bricks_of[part_name(fold, "validation")] for fold in range(3)]
    fold_weights = [sum(weights[brick] for brick in bricks) for bricks in fold_bricks]
    assert sum(fold_weights) == sum(weights.values())
    assert max(fold_weights) - min(fold_weights) <= max(weights.values())
    examples = {part: record["examples"] for part, record in manifest.splits.items()}
    assert manifest.split["fold_examples"] == [
        examples[part_name(fold, "train")] + examples[part_name(fold, "validation")] for fold in range(3)
    ]

    # The views: model k trains on the other folds and tests fold k; every example is tested once.
    tested = []
    for fold in range(3):
        view = shard_set.fold_view(fold)
        following = (fold + 1) % 3
        assert view.identity == f"{shard_set.identity}-fold{fold}" and view.directory == out
        assert view.split_parts("validation") == (part_name(following, "validation"),)
        assert view.split_parts("train") == tuple(
            part
            for part in fold_parts(3)
            if not part.startswith(f"fold{fold}-") and part != part_name(following, "validation")
        )
        assert view.split_parts("test") == (part_name(fold, "train"), part_name(fold, "validation"))
        for split in SPLITS:
            expected = pd.concat([catalogs[part] for part in view.split_parts(split)], ignore_index=True)
            catalog = view.catalog(split)
            pd.testing.assert_frame_equal(catalog.drop(columns="shard"), expected.drop(columns="shard"))
            # The stamp at each position is the one its catalog row names, through the renumbered shards.
            stamps = view.read_examples(split, np.arange(len(catalog)))
            np.testing.assert_array_equal(stamps[:, 0, 0, 0], stamp_codes(catalog))
            for number in np.unique(catalog["shard"]):
                rows = catalog[catalog["shard"] == number]
                x = np.load(view.split(split)[number].x)
                np.testing.assert_array_equal(x[rows["row"].to_numpy(), 0, 0, 0], stamp_codes(rows))
        np.testing.assert_array_equal(view.test_folds(), np.full(view.examples("test"), fold))
        tested.append(view.catalog("test"))
    pooled = shard_set.pooled_view()
    assert pooled.examples("train") == pooled.examples("validation") == 0
    pd.testing.assert_frame_equal(
        pooled.catalog("test").drop(columns="shard"),
        pd.concat(tested, ignore_index=True).drop(columns="shard"),
    )
    np.testing.assert_array_equal(pooled.test_folds(), np.repeat([0, 1, 2], [len(catalog) for catalog in tested]))
    assert "3 folds: fold0 " in capsys.readouterr().err

    # The same inputs and settings give the same bytes; other folds another identity.
    again = tmp_path / "again"
    assert run_shards(settings_for(twelve_bricks, again, folds=3)).identity == manifest.identity
    assert file_bytes(out) == file_bytes(again)
    two = run_shards(settings_for(twelve_bricks, tmp_path / "two", folds=2))
    assert two.identity != manifest.identity and two.folds == 2
    one = run_shards(settings_for(twelve_bricks, tmp_path / "one"))
    assert one.identity not in (manifest.identity, two.identity)


def test_the_test_fraction_does_not_shape_a_set_of_folds(twelve_bricks, tmp_path):
    first = run_shards(settings_for(twelve_bricks, tmp_path / "a", folds=3))
    second = run_shards(settings_for(twelve_bricks, tmp_path / "b", folds=3, test_fraction=0.5))
    assert first.identity == second.identity
    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b") | {
        "manifest.json": file_bytes(tmp_path / "a")["manifest.json"]
    }


def test_the_normalisation_of_a_set_of_folds_comes_from_every_folds_training_part(twelve_bricks, tmp_path):
    out = tmp_path / "folds"
    manifest = run_shards(settings_for(twelve_bricks, out, folds=3))
    stamps = np.concatenate([
        np.load(out / shard["x"]) for fold in range(3) for shard in manifest.splits[part_name(fold, "train")]["shards"]
    ])  # fmt: skip
    assert manifest.normalization["examples_sampled"] == len(stamps)  # fewer than the 2048 sampled
    for channel in (1, 2, 4):
        values = stamps[..., channel].ravel()
        statistics = manifest.normalization["channels"][CHANNELS[channel]]
        assert statistics["median"] == pytest.approx(float(np.median(values)), abs=0.05 * float(values.std()) + 1e-6)


def test_folds_need_a_brick_split():
    with pytest.raises(RealfakeError) as error:
        ShardSettings(real_dir=Path("r"), sim_dir=Path("s"), out=Path("o"), folds=3, split="example")
    assert str(error.value) == (
        "--folds 3 needs --split brick (shards.split): cross-fitting holds whole bricks out of each model, and "
        "--split example does not keep bricks whole"
    )
    with pytest.raises(RealfakeError, match=r"^folds must be at least 1, got 0$"):
        ShardSettings(real_dir=Path("r"), sim_dir=Path("s"), out=Path("o"), folds=0)


def test_the_folds_flag_reaches_the_settings():
    arguments = build_parser().parse_args(["shards", "--real", "r", "--sim", "s", "--out", "o", "--folds", "5"])
    assert settings_from_arguments(ShardSettings, arguments).folds == 5
    arguments = build_parser().parse_args(["shards", "--real", "r", "--sim", "s", "--out", "o"])
    assert settings_from_arguments(ShardSettings, arguments).folds == 1


def test_too_few_bricks_for_the_folds_are_refused_with_the_number_needed(tmp_path):
    write_fixture(tmp_path / "cutouts", {"real": [30, 30, 30, 30], "sim": [30, 30, 30, 30]})
    with pytest.raises(RealfakeError) as error:
        run_shards(settings_for(tmp_path / "cutouts", tmp_path / "shards", folds=3))
    assert str(error.value) == (
        "3 folds (--folds) need at least 6 bricks (one for each fold's training part and one for its validation "
        "part), and these inputs have 4: use fewer folds, or more bricks"
    )
    assert not (tmp_path / "shards").exists()
    # Without validation one brick a fold does; each fold's validation part is then empty.
    manifest = run_shards(settings_for(tmp_path / "cutouts", tmp_path / "shards", folds=4, validation_fraction=0))
    assert [manifest.splits[part_name(fold, "validation")]["examples"] for fold in range(4)] == [0, 0, 0, 0]
    assert [manifest.split["bricks"][part_name(fold, "train")] for fold in range(4)] == [1, 1, 1, 1]
    view = open_shard_set(tmp_path / "shards").fold_view(2)
    assert view.examples("validation") == 0 and view.examples("test") == manifest.splits["fold2-train"]["examples"]


@pytest.mark.parametrize("seed", range(8))
def test_every_fold_gets_the_bricks_its_parts_need_even_beside_one_large_brick(seed):
    """Bricks go to the smallest fold, but a fold still short of the bricks its parts need takes the last ones:
    the fold holding the large brick still gets a validation brick."""
    sizes = [100, 1, 1, 1]
    index = pd.DataFrame({"brick": np.repeat(np.arange(4), sizes), "label": np.zeros(sum(sizes), dtype=np.int8)})
    settings = ShardSettings(real_dir=Path("r"), sim_dir=Path("s"), out=Path("o"), folds=2, balance="none", match=())
    groups = fold_groups(index, np.arange(len(index)), settings, np.random.default_rng(seed))
    part_of_brick = [set(groups[index["brick"] == brick]) for brick in range(4)]
    assert all(len(parts) == 1 for parts in part_of_brick), "a brick split between parts"
    assert sorted(parts.pop() for parts in part_of_brick) == [0, 1, 2, 3]  # fold0-train ... fold1-validation

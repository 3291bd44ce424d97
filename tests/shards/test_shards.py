"""Shards: balanced, matched, globally shuffled, complete, reproducible, and refusing bad input."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from fixtures.cutouts_files import BRICKS, CHANNELS, SIZE, code, write_fixture
from fixtures.training_shards import write_shard_set as write_training_shards

from realfake.errors import RealfakeError
from realfake.formats.cutouts import content_digest, file_content_digest, read_cutouts_catalog, write_cutouts_file
from realfake.formats.shardset import open_shard_set
from realfake.shards.build import run_shards
from realfake.shards.settings import ShardSettings


@pytest.fixture
def cutouts(tmp_path) -> Path:
    write_fixture(tmp_path / "cutouts", {"real": [60, 12, 45, 70], "sim": [50, 40, 30, 25]})
    return tmp_path / "cutouts"


def load_cutouts(path: Path) -> tuple[np.ndarray, pd.DataFrame]:
    with h5py.File(path, "r") as cutouts:
        return cutouts["stamps"][()], read_cutouts_catalog(path)


def rewrite_cutouts(path: Path, stamps: np.ndarray, catalog: pd.DataFrame) -> None:
    """Write a cutouts file again with other content and the same attributes."""
    with h5py.File(path, "r") as cutouts:
        attributes = {key: value for key, value in cutouts.attrs.items() if key != "content_sha256"}
    write_cutouts_file(path, stamps, catalog, attributes)


def settings_for(root: Path, out: Path, **overrides) -> ShardSettings:
    return ShardSettings(real_dir=root / "real", sim_dir=root / "sim", out=out, shard_size=16, **overrides)


def load_split(out: Path, split: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    manifest = json.loads((out / "manifest.json").read_text())
    shards = manifest["splits"][split]["shards"]
    x = np.concatenate([np.load(out / shard["x"]) for shard in shards])
    y = np.concatenate([np.load(out / shard["y"]) for shard in shards])
    return x, y, pd.read_parquet(out / f"{split}_catalog.parquet")


def keys(catalog: pd.DataFrame) -> set[tuple]:
    return set(zip(catalog["kind"], catalog["brickname"], catalog["id"], strict=True))


def test_every_stamp_once_and_traceable(cutouts, tmp_path):
    out = tmp_path / "shards"
    run_shards(settings_for(cutouts, out, balance="none", match=(), split="example"))
    seen = []
    for split in ("train", "validation", "test"):
        x, y, catalog = load_split(out, split)
        assert x.dtype == np.float32 and x.shape[1:] == (SIZE, SIZE, 6)
        assert y.dtype == np.int32
        assert len(x) == len(y) == len(catalog)
        assert list(catalog["label"]) == list(y)
        assert (catalog["label"] == (catalog["kind"] == "sim")).all()
        # The stamp in each position is the one its catalog row names.
        brick_number = catalog["brickname"].map({name: number for number, name in enumerate(BRICKS)})
        expected = [code(*values) for values in zip(catalog["label"], brick_number, catalog["id"], strict=True)]
        np.testing.assert_array_equal(x[:, 0, 0, 0], expected)
        assert list(catalog["shard"] * 16 + catalog["row"]) == list(range(len(catalog)))
        seen.append(keys(catalog))
    assert not seen[0] & seen[1] and not seen[0] & seen[2] and not seen[1] & seen[2], "an example is in two splits"
    assert len(seen[0] | seen[1] | seen[2]) == 187 + 145, "an example was lost"
    manifest = json.loads((out / "manifest.json").read_text())
    test, validation = manifest["splits"]["test"]["examples"], manifest["splits"]["validation"]["examples"]
    assert test == pytest.approx(0.2 * 332, abs=2) and validation == pytest.approx(0.1 * (332 - test), abs=2)


def test_balanced_matched_and_globally_shuffled(cutouts, tmp_path):
    out = tmp_path / "shards"
    manifest = run_shards(settings_for(cutouts, out, split="example"))
    union = []
    for split in ("train", "validation", "test"):
        _, y, catalog = load_split(out, split)
        assert (y == 0).sum() == (y == 1).sum() == manifest.splits[split]["real"] == manifest.splits[split]["fake"]
        union.append(catalog)
        first_shard = catalog[catalog["shard"] == 0]
        assert first_shard["brickname"].nunique() >= 3
        assert set(first_shard["label"]) == {0, 1}
    union = pd.concat(union)
    bins = np.floor(union["measured_mag_dered_g"] / 0.25)
    real_bins = bins[union["label"] == 0].value_counts().sort_index()
    fake_bins = bins[union["label"] == 1].value_counts().sort_index()
    pd.testing.assert_series_equal(real_bins, fake_bins, check_names=False)
    assert manifest.matching["columns"] == ["measured_mag_dered_g"] and manifest.matching["bin_width"] == 0.25
    assert manifest.matching["excluded"] == {"real": 0, "fake": 0}
    train = manifest.splits["train"]
    assert all(shard["examples"] == 16 for shard in train["shards"][:-1])
    assert 0 < train["shards"][-1]["examples"] <= 16
    total = sum(manifest.splits[split]["examples"] for split in ("train", "validation", "test"))
    assert manifest.splits["test"]["examples"] == pytest.approx(0.2 * total, abs=2)


@pytest.fixture
def twelve_bricks(tmp_path) -> Path:
    rng = np.random.default_rng(4)
    counts = {kind: list(rng.integers(20, 60, 12)) for kind in ("real", "sim")}
    write_fixture(tmp_path / "twelve", counts, undetected=3)
    return tmp_path / "twelve"


def test_a_brick_split_keeps_each_brick_in_one_split_and_every_example_once(twelve_bricks, tmp_path):
    out = tmp_path / "shards"
    manifest = run_shards(settings_for(twelve_bricks, out))
    assert manifest.split["by"] == "brick"
    bricks_of, seen = {}, []
    for split in ("train", "validation", "test"):
        x, y, catalog = load_split(out, split)
        bricks_of[split] = set(catalog["brickname"])
        # Balanced and matched within the split.
        assert (y == 0).sum() == (y == 1).sum() > 0
        bins = np.floor(catalog["measured_mag_dered_g"] / 0.25)
        pd.testing.assert_series_equal(
            bins[catalog["label"] == 0].value_counts().sort_index(),
            bins[catalog["label"] == 1].value_counts().sort_index(),
            check_names=False,
        )
        brick_number = catalog["brickname"].map({name: number for number, name in enumerate(BRICKS)})
        np.testing.assert_array_equal(
            x[:, 0, 0, 0], [code(*values) for values in zip(catalog["label"], brick_number, catalog["id"], strict=True)]
        )
        seen.append(keys(catalog))
    assert not bricks_of["train"] & bricks_of["test"], "a brick in both train and test"
    assert not bricks_of["train"] & bricks_of["validation"] and not bricks_of["validation"] & bricks_of["test"]
    assert manifest.split["bricks"] == {split: len(bricks) for split, bricks in bricks_of.items()}
    union = seen[0] | seen[1] | seen[2]
    assert len(union) == sum(len(part) for part in seen), "an example in two splits"
    total = sum(manifest.splits[split]["examples"] for split in ("train", "validation", "test"))
    assert manifest.split["test_share"] == pytest.approx(manifest.splits["test"]["examples"] / total)
    assert 0.1 < manifest.split["test_share"] < 0.3
    # The undetected fakes (no measured magnitude) are excluded and counted, never in a split.
    assert manifest.matching["excluded"] == {"real": 0, "fake": 3 * 12}
    assert "not detect" in manifest.matching["excluded_rule"]
    assert not any(kind == "sim" and (brick, identifier) in {(b, i) for b in BRICKS for i in range(3)}
                   for kind, brick, identifier in union)  # fmt: skip
    # The same inputs split by example put most bricks in both splits.
    by_example = run_shards(settings_for(twelve_bricks, tmp_path / "by_example", split="example"))
    assert by_example.split["by"] == "example" and by_example.identity != manifest.identity
    _, _, train = load_split(tmp_path / "by_example", "train")
    _, _, test = load_split(tmp_path / "by_example", "test")
    assert len(set(train["brickname"]) & set(test["brickname"])) >= 6


def test_a_brick_split_needs_three_bricks(tmp_path):
    write_fixture(tmp_path / "cutouts", {"real": [20, 20], "sim": [20, 20]})
    with pytest.raises(RealfakeError) as error:
        run_shards(settings_for(tmp_path / "cutouts", tmp_path / "shards"))
    assert str(error.value) == (
        "a brick split needs at least 3 bricks, and these inputs have 2: use --split example (shards.split), "
        "or more bricks"
    )
    assert not (tmp_path / "shards").exists()
    # Without a validation split two bricks do: one for test, one for train.
    manifest = run_shards(settings_for(tmp_path / "cutouts", tmp_path / "shards", validation_fraction=0))
    assert manifest.split["bricks"] == {"train": 1, "validation": 0, "test": 1}


def test_a_test_split_too_small_for_any_outcome_is_refused_with_the_number_it_needs(cutouts, tmp_path, capsys):
    # --split example --test-fraction 0.01 gave a 2-example test split, later called distinguishable with p = 0.5.
    settings = settings_for(cutouts, tmp_path / "shards", split="example", test_fraction=0.01)
    with pytest.raises(RealfakeError) as error:
        run_shards(settings)
    assert str(error.value) == (
        "the test split would hold 1 real and 1 fake examples; a verdict needs at least 4 of each (fewer cannot be "
        "significant at 0.05 even when perfectly separated): raise the test fraction (shards.test_fraction, now "
        "0.01) or add bricks"
    )
    assert not (tmp_path / "shards").exists()
    run_shards(settings_for(cutouts, tmp_path / "shards", split="example", test_fraction=0.05))
    assert "not the" not in capsys.readouterr().err  # a split by example gets the share asked for


def test_a_brick_split_far_from_the_test_fraction_asked_for_says_so(tmp_path, capsys):
    write_fixture(tmp_path / "cutouts", {"real": [40, 40, 40], "sim": [40, 40, 40]})
    manifest = run_shards(settings_for(tmp_path / "cutouts", tmp_path / "shards", test_fraction=0.01))
    assert manifest.split["test_share"] == pytest.approx(1 / 3, abs=0.05)
    err = capsys.readouterr().err
    assert f"the test split holds {manifest.split['test_share']:.3f} of the examples, not the 0.01 asked for: a " \
        "brick split keeps each of the 3 bricks whole" in err  # fmt: skip


def test_matching_on_true_magnitudes_keeps_the_undetected_fakes(twelve_bricks, tmp_path):
    manifest = run_shards(settings_for(twelve_bricks, tmp_path / "shards", match=("mag_dered_g",)))
    assert manifest.matching["excluded"] == {"real": 0, "fake": 0}
    catalogs = pd.concat([load_split(tmp_path / "shards", split)[2] for split in ("train", "validation", "test")])
    assert (~catalogs["detected"]).sum() > 0


def test_same_seed_same_bytes_other_seed_other_order(cutouts, tmp_path):
    first, second, third = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_shards(settings_for(cutouts, first, seed=5))
    run_shards(settings_for(cutouts, second, seed=5))
    run_shards(settings_for(cutouts, third, seed=6))
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    manifest_a = json.loads((first / "manifest.json").read_text())
    manifest_b = json.loads((second / "manifest.json").read_text())
    manifest_a.pop("settings"), manifest_b.pop("settings")
    assert manifest_a == manifest_b
    for name in names:
        if name != "manifest.json":
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "xtrain_0.npy").read_bytes() != (third / "xtrain_0.npy").read_bytes()


def test_the_manifest_read_is_the_one_written_and_returned(cutouts, tmp_path):
    out = tmp_path / "shards"
    manifest = run_shards(settings_for(cutouts, out, split="example"))
    written = json.loads((out / "manifest.json").read_text())
    assert written == json.loads(json.dumps(manifest.to_json()))
    assert open_shard_set(out).manifest.to_json() == written


def test_both_writers_write_one_manifest_but_for_how_the_stage_made_its_set(cutouts, tmp_path):
    stage = run_shards(settings_for(cutouts, tmp_path / "stage", split="example")).to_json()
    write_training_shards(tmp_path / "memory", train_shards=1, test_shards=1, shard_size=8, stamp_size=16)
    in_memory = json.loads((tmp_path / "memory" / "manifest.json").read_text())
    how_made = {"seed", "test_fraction", "validation_fraction", "balance", "matching", "split", "real_source",
                "inputs", "settings"}  # fmt: skip
    assert set(stage) - set(in_memory) == how_made and set(in_memory) <= set(stage)
    assert in_memory["storage"] == {"dtype": "float32"} and in_memory["bands"] == ["g", "r", "z"]
    assert in_memory["available"] == {"real": 12, "fake": 12}  # 3 splits of one shard of 8, half of each class
    assert open_shard_set(tmp_path / "memory").manifest.to_json() == in_memory


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (("identity",), "missing key identity (the shard set was made by an older realfake)"),
        (("normalization",), "missing key normalization"),
        (("splits", "test", "shards"), "missing key splits.test.shards"),
        (("storage", "channel_scales"), "storage.channel_scales has no scale for channel g"),
    ],
)
def test_a_manifest_lacking_a_key_is_refused_naming_it(cutouts, tmp_path, key, message):
    out = tmp_path / "shards"
    run_shards(settings_for(cutouts, out, split="example", dtype="float16"))
    record = json.loads((out / "manifest.json").read_text())
    parent = record
    for name in key[:-1]:
        parent = parent[name]
    del parent[key[-1]]
    (out / "manifest.json").write_text(json.dumps(record))
    with pytest.raises(RealfakeError) as raised:
        open_shard_set(out)
    assert str(raised.value).startswith(f"{out / 'manifest.json'}: {message}")


def test_normalisation_comes_from_the_training_split(cutouts, tmp_path):
    out = tmp_path / "shards"
    manifest = run_shards(settings_for(cutouts, out))
    statistics = manifest.normalization["channels"]
    assert manifest.normalization["computed_on"] == "train"
    x, _, _ = load_split(out, "train")
    for channel in (1, 2, 4):
        name = CHANNELS[channel]
        values = x[..., channel].ravel()
        assert statistics[name]["median"] == pytest.approx(
            float(np.median(values)), abs=0.05 * float(values.std()) + 1e-6
        )
        mad_sigma = 1.4826 * np.median(np.abs(values - np.median(values)))
        assert statistics[name]["mad_sigma"] == pytest.approx(float(mad_sigma), rel=0.1)


def test_bricks_file_restricts_the_inputs(cutouts, tmp_path):
    bricks = tmp_path / "bricks.txt"
    bricks.write_text("1238p245\n1244p245\n")
    out = tmp_path / "shards"
    manifest = run_shards(settings_for(cutouts, out, bricks_file=bricks, split="example"))
    assert len(manifest.inputs["files"]) == 4
    _, _, catalog = load_split(out, "train")
    assert set(catalog["brickname"]) == {"1238p245", "1244p245"}
    bricks.write_text("1238p245\n1250p245\n")
    with pytest.raises(RealfakeError, match="1250p245.h5"):
        run_shards(settings_for(cutouts, tmp_path / "other", bricks_file=bricks))


def test_bad_inputs_fail_naming_the_file_and_leave_the_old_set(cutouts, tmp_path):
    out = tmp_path / "shards"
    run_shards(settings_for(cutouts, out))
    before = sorted(path.name for path in out.iterdir())
    broken = cutouts / "sim" / "124" / "1244p245.h5"
    broken.write_bytes(b"not an HDF5 file")
    with pytest.raises(RealfakeError, match="1244p245.h5"):
        run_shards(settings_for(cutouts, out))
    assert sorted(path.name for path in out.iterdir()) == before
    assert not list(tmp_path.glob(".shards.tmp-*"))


def test_inconsistent_channels_are_refused(tmp_path):
    write_fixture(tmp_path / "cutouts", {"real": [20, 20], "sim": [20]})
    write_fixture(tmp_path / "odd", {"real": [], "sim": [0, 20]}, channels=["z", "ivar_z"])
    odd = tmp_path / "odd" / "sim" / "124" / "1241p245.h5"
    (tmp_path / "cutouts" / "sim" / "124").mkdir()
    odd.rename(tmp_path / "cutouts" / "sim" / "124" / "1241p245.h5")
    with pytest.raises(RealfakeError, match="1241p245.h5.*channels"):
        run_shards(settings_for(tmp_path / "cutouts", tmp_path / "shards"))
    assert not (tmp_path / "shards").exists()


def test_no_fakes_is_an_error_and_empty_bricks_are_fine(tmp_path):
    write_fixture(tmp_path / "cutouts", {"real": [20, 0], "sim": [0, 0]})
    with pytest.raises(RealfakeError, match="no fake examples"):
        run_shards(settings_for(tmp_path / "cutouts", tmp_path / "shards"))
    write_fixture(tmp_path / "more", {"real": [20, 0], "sim": [0, 30]})
    manifest = run_shards(settings_for(tmp_path / "more", tmp_path / "shards", match=(), split="example"))
    # 20 per class: 4 to test, round(0.1 x 16) = 2 to validation, 14 to train.
    assert manifest.splits["train"]["real"] == manifest.splits["train"]["fake"] == 14
    assert manifest.splits["validation"]["real"] == manifest.splits["validation"]["fake"] == 2


def test_command_line_error_is_one_line(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "realfake.cli",
            "shards",
            "--real",
            str(tmp_path / "none"),
            "--sim",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert str(tmp_path / "none") in result.stderr


def test_the_identity_is_that_of_the_inputs_and_settings(cutouts, tmp_path):
    first = run_shards(settings_for(cutouts, tmp_path / "a"))
    again = run_shards(settings_for(cutouts, tmp_path / "b"))
    assert first.identity == again.identity  # re-made from the same inputs: the same shard set
    assert len(first.identity) == 64
    assert first.inputs["content_sha256"] == [file_content_digest(Path(name)) for name in first.inputs["files"]]
    assert run_shards(settings_for(cutouts, tmp_path / "c", seed=2)).identity != first.identity
    assert run_shards(settings_for(cutouts, tmp_path / "d", test_fraction=0.3)).identity != first.identity
    # One pixel of one input stamp changed: another shard set, though every count stays the same.
    path = cutouts / "sim" / "124" / "1241p245.h5"
    stamps, catalog = load_cutouts(path)
    stamps[3, 4, 4, 1] += 1e-3
    rewrite_cutouts(path, stamps, catalog)
    changed = run_shards(settings_for(cutouts, tmp_path / "e"))
    assert changed.splits["train"]["examples"] == first.splits["train"]["examples"]
    assert changed.identity != first.identity


def test_the_content_digest_survives_the_file_and_older_files_get_one_computed(tmp_path):
    stamps = np.random.default_rng(3).normal(size=(5, SIZE, SIZE, 6)).astype(np.float32)
    catalog = pd.DataFrame(
        {"id": np.arange(5, dtype=np.int32), "type": ["EXP", "PSF", "REX", "EXP", "DEV"],
         "measured": [True, False, True, True, False], "mag_dered_g": np.linspace(21, 23, 5)}
    )  # fmt: skip
    path = tmp_path / "cutouts.h5"
    write_cutouts_file(path, stamps, catalog, {"kind": "real"})
    recorded = file_content_digest(path)
    assert recorded == content_digest(stamps, catalog)
    with h5py.File(path, "a") as cutouts:
        del cutouts.attrs["content_sha256"]  # as written by an older realfake
    assert file_content_digest(path) == recorded
    assert content_digest(stamps[:4], catalog[:4]) != recorded
    assert content_digest(stamps, catalog.assign(type=["EXP", "PSF", "REX", "EXP", "EXP"])) != recorded


def test_a_cutouts_file_from_another_tree_is_refused_naming_both(cutouts, tmp_path):
    out = tmp_path / "shards"
    assert run_shards(settings_for(cutouts, out, dr5_dir=Path("dr5"), obiwan_dir=Path("obiwan")))
    before = json.loads((out / "manifest.json").read_text())
    # One brick's fakes left by a run on another obiwan tree (the mock's, say).
    stale = cutouts / "sim" / "124" / "1244p245.h5"
    with h5py.File(stale, "a") as cutouts_file:
        cutouts_file.attrs["obiwan_dir"] = "results/mock/obiwan"
    with pytest.raises(RealfakeError) as error:
        run_shards(settings_for(cutouts, out, dr5_dir=Path("dr5"), obiwan_dir=Path("obiwan")))
    assert str(error.value) == (
        f"cutouts file {stale} was made from the obiwan tree results/mock/obiwan (attribute obiwan_dir), not obiwan: "
        "it is left from a run on other inputs; delete it, and its cutouts job (or `realfake cutouts`) makes it again"
    )
    assert json.loads((out / "manifest.json").read_text()) == before  # the old set is untouched
    assert not list(tmp_path.glob(".shards.*"))
    # Made again from the given tree (here: its attribute put back), and that tree spelled another way.
    with h5py.File(stale, "a") as cutouts_file:
        cutouts_file.attrs["obiwan_dir"] = "obiwan"
    assert run_shards(settings_for(cutouts, out, dr5_dir=Path("./dr5"), obiwan_dir=Path("sub/../obiwan/")))


def record_attributes(path: Path, **values) -> None:
    """Write a cutouts file again, through its writer, with these attributes changed (None: removed), as a
    cutouts run on other inputs (or an older realfake) would have written it."""
    stamps, catalog = load_cutouts(path)
    with h5py.File(path, "r") as cutouts:
        attributes = {key: value for key, value in cutouts.attrs.items() if key != "content_sha256"}
    attributes = {key: value for key, value in {**attributes, **values}.items() if value is not None}
    write_cutouts_file(path, stamps, catalog, attributes)


TREES = dict(dr5_dir=Path("dr5"), obiwan_dir=Path("obiwan"))


@pytest.mark.parametrize(
    "recorded, shown",
    [("obiwan", "obiwan"), (None, "(not recorded)")],
    ids=["another injector", "made before the attribute"],
)
def test_fakes_from_another_injectors_tree_are_refused_naming_file_key_and_both(cutouts, tmp_path, recorded, shown):
    """A fake cutouts file of an obiwan tree is not taken by a run on a legacysim tree at the same path, nor one
    that does not say which code made its tree; real files cut from DR5 record no injector and are not asked."""
    for path in sorted((cutouts / "sim").rglob("*.h5")):
        record_attributes(path, injector="legacysim")
    stale = cutouts / "sim" / "124" / "1241p245.h5"
    record_attributes(stale, injector=recorded)
    out = tmp_path / "shards"
    with pytest.raises(RealfakeError) as error:
        run_shards(settings_for(cutouts, out, **TREES, injector="legacysim"))
    assert str(error.value) == (
        f"cutouts file {stale} was made from a fakes' tree made by {shown} (attribute injector), not legacysim: it "
        "is left from a run on other inputs; delete it, and its cutouts job (or `realfake cutouts`) makes it again"
    )
    assert not out.exists()
    record_attributes(stale, injector="legacysim")
    manifest = run_shards(settings_for(cutouts, out, **TREES, injector="legacysim"))
    assert manifest.settings["injector"] == "legacysim" and len(manifest.inputs["files"]) == 8


@pytest.mark.parametrize("real_source", ["rsdir", "run"])
def test_reals_cut_from_the_fakes_tree_record_the_injector_and_are_checked_like_fakes(cutouts, tmp_path, real_source):
    """The rs dirs' reals, and a plain legacysim run's (real_source run)."""
    for path in sorted((cutouts / "sim").rglob("*.h5")):
        record_attributes(path, injector="obiwan")
    for path in sorted((cutouts / "real").rglob("*.h5")):
        record_attributes(path, real_source=real_source, obiwan_dir="obiwan", injector="obiwan")
    stale = cutouts / "real" / "123" / "1238p245.h5"
    record_attributes(stale, injector="legacysim")
    with pytest.raises(
        RealfakeError, match=re.escape(f"cutouts file {stale} was made from a fakes' tree made by legacysim ")
    ):
        run_shards(settings_for(cutouts, tmp_path / "shards", **TREES, injector="obiwan"))
    record_attributes(stale, injector="obiwan")
    assert run_shards(settings_for(cutouts, tmp_path / "shards", **TREES, injector="obiwan"))


def write_manifest(path: Path, zeropoint: float) -> str:
    """A one-tile injection run manifest (its files need not exist for these checks); the SHA-256 of its bytes."""
    side = {"image": {"r": ["coadd-r.fits", 1]}, "weight": {"r": ["coadd-r.fits", 2]}, "weight_kind": "invvar"}
    catalog = {"path": "truth.fits", "id": "row", "radec": ["ra", "dec"], "flux": {"r": "flux_r"}}
    document = {
        "bands": ["r"],
        "flux": {"unit": "counts", "zeropoint": zeropoint},
        "tiles": [
            {"tile": "T", "real": {**side, "sources": catalog}, "fake": [{"run": "0", **side, "truth": catalog}]}
        ],
    }
    path.write_text(yaml.safe_dump(document))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tiles_cut_through_another_version_of_the_manifest_are_refused_naming_file_key_and_both(cutouts, tmp_path):
    manifest = tmp_path / "run.yaml"
    cut_through = write_manifest(manifest, zeropoint=30.0)
    for path in sorted(cutouts.rglob("*.h5")):
        record_attributes(path, manifest=str(manifest), manifest_sha256=cut_through, dr5_dir=None, obiwan_dir=None)
    out = tmp_path / "shards"
    assert run_shards(settings_for(cutouts, out, manifest=manifest)).settings["manifest"] == str(manifest)
    # The manifest edited since the tiles were cut: every file is stale; the first is named.
    edited = write_manifest(manifest, zeropoint=31.25)
    first = cutouts / "real" / "123" / "1238p245.h5"
    with pytest.raises(RealfakeError) as error:
        run_shards(settings_for(cutouts, out, manifest=manifest))
    assert str(error.value) == (
        f"cutouts file {first} was made from a manifest of SHA-256 {cut_through} (attribute manifest_sha256), not "
        f"{edited} (of {manifest} now): it is left from a run on other inputs; delete it, and its cutouts job (or "
        "`realfake cutouts`) makes it again"
    )
    # Cut again through the edited manifest, but one tile through another manifest, or by an older realfake.
    for path in sorted(cutouts.rglob("*.h5")):
        record_attributes(path, manifest_sha256=edited)
    stale = cutouts / "sim" / "124" / "1244p245.h5"
    record_attributes(stale, manifest=str(tmp_path / "other.yaml"))
    with pytest.raises(RealfakeError) as error:
        run_shards(settings_for(cutouts, out, manifest=manifest))
    assert str(error.value).startswith(
        f"cutouts file {stale} was made from the manifest {tmp_path / 'other.yaml'} (attribute manifest), "
        f"not {manifest}: "
    )
    record_attributes(stale, manifest=str(manifest), manifest_sha256=None)
    with pytest.raises(RealfakeError) as error:
        run_shards(settings_for(cutouts, out, manifest=manifest))
    assert str(error.value).startswith(f"cutouts file {stale} was made from a manifest of SHA-256 (not recorded) ")
    record_attributes(stale, manifest_sha256=edited)
    assert run_shards(settings_for(cutouts, out, manifest=manifest))


def test_brick_files_are_refused_by_a_manifest_run_and_the_manifest_replaces_the_trees(cutouts, tmp_path):
    manifest = tmp_path / "run.yaml"
    write_manifest(manifest, zeropoint=30.0)
    with pytest.raises(RealfakeError, match=r"cutouts file \S+ was made from the manifest \(not recorded\)"):
        run_shards(settings_for(cutouts, tmp_path / "shards", manifest=manifest))
    with pytest.raises(RealfakeError) as error:
        settings_for(cutouts, tmp_path / "shards", manifest=manifest, injector="obiwan")
    assert str(error.value) == (
        "--manifest and --injector: cutouts cut through a manifest record no tree, so every file would be refused; "
        "give the manifest or the trees, not both"
    )


def test_float16_storage_round_trips_real_depths_and_halves_the_bytes(cutouts, tmp_path):
    """Inverse variances of deep DR5 regions (up to 1e6, past float16's 65504) and fluxes from the sky noise to a
    bright core survive float16 storage to its precision; a pixel beyond float16's range is clipped and counted;
    every reader gets float32 in physical units."""
    rng = np.random.default_rng(5)
    for path in sorted((cutouts / "real").rglob("*.h5")) + sorted((cutouts / "sim").rglob("*.h5")):
        stamps, catalog = load_cutouts(path)
        stamps[..., 1:3] = rng.normal(0, 0.004, stamps[..., 1:3].shape)  # sky noise, nanomaggies
        stamps[:, SIZE // 2, SIZE // 2, 1] = rng.uniform(10, 300, len(stamps))  # bright cores
        stamps[..., 3:] = 10 ** rng.uniform(2, 6, (len(stamps), 1, 1, 3)) * rng.uniform(0.9, 1.1, stamps[..., 3:].shape)
        stamps[..., 3, 3, 3] = 0.0  # no coverage stays exactly 0
        rewrite_cutouts(path, stamps.astype(np.float32), catalog)
    first = sorted((cutouts / "real").rglob("*.h5"))[0]
    stamps, catalog = load_cutouts(first)
    stamps[0, 5, 5, 2] = 1e6  # a saturated star: beyond float16's range
    rewrite_cutouts(first, stamps, catalog)
    single, half = tmp_path / "float32", tmp_path / "float16"
    run_shards(settings_for(cutouts, single, split="example"))
    manifest = run_shards(settings_for(cutouts, half, split="example", dtype="float16"))
    storage = manifest.storage
    assert storage["dtype"] == "float16"
    assert storage["channel_scales"] == dict.fromkeys(CHANNELS[:3], 1.0) | dict.fromkeys(CHANNELS[3:], 1024.0)
    assert manifest.identity != json.loads((single / "manifest.json").read_text())["identity"]
    exact, stored = open_shard_set(single), open_shard_set(half)
    clipped = 0
    for split in ("train", "validation", "test"):
        positions = np.arange(exact.examples(split))
        original, decoded = exact.read_examples(split, positions), stored.read_examples(split, positions)
        assert decoded.dtype == np.float32 and np.isfinite(decoded).all()
        beyond = np.abs(original) / np.array([1, 1, 1, 1024, 1024, 1024]) > 65504  # the fixture's codes, the star
        clipped += int(beyond.sum())
        np.testing.assert_array_equal(np.abs(decoded[beyond]), 65504.0)
        np.testing.assert_allclose(decoded[~beyond], original[~beyond], rtol=1e-3, atol=1e-6)
        assert (decoded[..., 3:][original[..., 3:] == 0] == 0).all()
        # Stored as float16 on disk.
        assert np.load(half / stored.split(split)[0].x, mmap_mode="r").dtype == np.float16
    assert storage["clipped_pixels"] == clipped > 0
    assert sum(path.stat().st_size for path in half.glob("x*.npy")) < 0.51 * sum(
        path.stat().st_size for path in single.glob("x*.npy")
    )
    # The training reader decodes too.
    from realfake.training.pipeline import ShardReader

    reader = ShardReader(stored.train)
    stamps_read, _ = reader.read(np.array([[0, 0], [0, 1]]))
    np.testing.assert_allclose(stamps_read, exact.read_examples("train", [0, 1]), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", ["test_fraction", "validation_fraction", "match_bin_width"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_shard_settings_refuse_a_value_that_is_not_a_finite_number(tmp_path, name, value):
    with pytest.raises(RealfakeError) as error:
        settings_for(tmp_path, tmp_path / "shards", **{name: value})
    assert str(error.value) == f"{name.replace('_', ' ')} must be a finite number, got {value}"


@pytest.mark.parametrize("column", ["brickname", "rsdir", "type", "measured_type"])
def test_matching_on_a_text_column_of_the_cutouts_catalogs_is_refused(tmp_path, column):
    with pytest.raises(RealfakeError) as error:
        settings_for(tmp_path, tmp_path / "shards", match=("measured_mag_dered_g", column))
    assert str(error.value) == (
        f"match column {column!r} of the cutouts catalogs holds text; matching needs a numeric column"
    )


def test_a_cutouts_file_with_text_in_a_matching_column_is_refused_naming_it(cutouts, tmp_path):
    """A column the catalog format does not have (a hand-made file) that holds text: an error, not a traceback."""
    for path in sorted(cutouts.rglob("*.h5")):
        stamps, catalog = load_cutouts(path)
        rewrite_cutouts(path, stamps, catalog.assign(quality="good"))
    out = tmp_path / "shards"
    with pytest.raises(RealfakeError) as error:
        run_shards(settings_for(cutouts, out, match=("quality",)))
    first = sorted((cutouts / "real").rglob("*.h5"))[0]
    assert str(error.value) == (
        f"cutouts file {first}: match column 'quality' holds text; matching needs a numeric column"
    )
    assert not out.exists()


def test_the_text_catalog_columns_are_those_a_cutouts_file_stores_as_text(tmp_path, capsys):
    """realfake.formats.cutouts.TEXT_CATALOG_COLUMNS (what planning and ShardSettings refuse to match on) against the
    files `realfake cutouts` writes, of both kinds."""
    from fixtures.tinysurvey import TinySurvey, cutouts_cli

    from realfake.formats.cutouts import TEXT_CATALOG_COLUMNS

    tiny = TinySurvey(tmp_path / "survey")
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), tiny.constant_planes())
    tiny.write_tractor([64.0], [64.0])
    tiny.write_simcat("rs0", [64.0], [64.0])
    for kind in ("real", "sim"):
        out = tmp_path / f"{kind}.h5"
        assert cutouts_cli(tiny.arguments(kind, out, "--selection", "all_primary"), capsys)[0] == 0
        with h5py.File(out, "r") as cutouts_file:
            catalog = cutouts_file["catalog"]
            assert len(catalog["id"]) == 1
            text = [name for name, dataset in catalog.items() if h5py.check_string_dtype(dataset.dtype)]
        assert sorted(text) == sorted(TEXT_CATALOG_COLUMNS), kind

"""The kernel two-sample test on the central pixels: its level, its power on a size difference, the within-brick
permutations, bricks with one class, the CNN's input transform and its record in metrics.json."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.synthetic_shards import write_shard_set

from realfake.cli import main
from realfake.evaluation.mmd import (
    gaussian_kernel,
    kernel_two_sample,
    mmd_sentence,
    mmd_statistics,
    mmd_test,
    normalized_stamps,
    paired_sample,
    within_brick_permutations,
)
from realfake.formats.evaluation import METRICS_NAME, read_metrics
from realfake.formats.shardset import open_shard_set
from realfake.report.page import baselines_section
from realfake.stats.settings import StatisticsSettings

SETTINGS = StatisticsSettings(seed=5, mmd_permutations=200)
SIZE = 12


def blobs(rng: np.random.Generator, count: int, width: float) -> np.ndarray:
    """``count`` flattened SIZE x SIZE stamps, float32: a round Gaussian source of unit peak and ``width``
    (pixels) at the centre, its flux varying by 30%, in unit Gaussian noise scaled by 0.3."""
    rows, columns = np.mgrid[0:SIZE, 0:SIZE] - SIZE // 2
    profile = np.exp(-(rows**2 + columns**2) / (2 * width**2))
    flux = rng.uniform(0.7, 1.3, (count, 1, 1))
    return (flux * profile + 0.3 * rng.normal(size=(count, SIZE, SIZE))).reshape(count, -1).astype(np.float32)


def test_the_statistic_is_the_unbiased_mmd_computed_directly():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(30, 5))
    labels = np.repeat([0, 1], [12, 18])
    kernel, bandwidth = gaussian_kernel(features)
    distances = ((features[:, None, :] - features[None, :, :]) ** 2).sum(axis=2)
    assert bandwidth == pytest.approx(np.sqrt(np.median(distances[np.triu_indices(30, 1)])), rel=1e-5)
    direct = np.exp(-distances / (2 * bandwidth**2))
    np.testing.assert_allclose(kernel, direct, rtol=1e-5, atol=1e-6)
    fake, real = direct[labels == 1][:, labels == 1], direct[labels == 0][:, labels == 0]
    expected = (
        (fake.sum() - np.trace(fake)) / (18 * 17)
        + (real.sum() - np.trace(real)) / (12 * 11)
        - 2 * direct[labels == 1][:, labels == 0].mean()
    )
    assert mmd_statistics(direct, labels) == pytest.approx(expected, rel=1e-10)


def test_under_no_difference_the_statistic_is_about_zero_and_the_test_keeps_its_level():
    """20 null draws of 60 per class in 6 bricks: MMD^2 about 0 and at most 3 of 20 p-values below 0.05."""
    p_values, statistics = [], []
    for draw in range(20):
        rng = np.random.default_rng([7, draw])
        features = blobs(rng, 120, 1.5)
        labels = np.tile([0, 1], 60)
        bricks = np.repeat(np.arange(6), 20)
        record = mmd_test(features, labels, bricks, StatisticsSettings(seed=draw, mmd_permutations=99))
        p_values.append(record["p_value"])
        statistics.append(record["statistic"])
    assert np.mean(np.array(p_values) < 0.05) <= 3 / 20
    assert abs(np.mean(statistics)) < 3 * np.std(statistics) / np.sqrt(20)
    assert 0.3 < np.mean(p_values) < 0.7


def test_a_size_difference_is_found_from_a_few_hundred_stamps():
    rng = np.random.default_rng(11)
    features = np.concatenate([blobs(rng, 150, 1.5), blobs(rng, 150, 2.25)])  # radii 1.5 times too large
    labels = np.repeat([0, 1], 150)
    bricks = np.concatenate([np.arange(150) % 5, np.arange(150) % 5])
    record = mmd_test(features, labels, bricks, SETTINGS)
    assert record["p_value"] < 0.01
    assert record["p_value"] == pytest.approx(1 / 201)  # no permutation reaches it
    assert record["statistic"] > 0
    assert record["examples_per_class"] == {"real": 150, "fake": 150}
    assert record["bricks"] == 5 and record["permutation"] == "within_brick"


def test_permutations_stay_within_bricks_and_keep_each_bricks_label_counts():
    rng = np.random.default_rng(3)
    bricks = rng.integers(0, 7, 200)
    labels = rng.integers(0, 2, 200)
    permuted = within_brick_permutations(labels, bricks, 50, rng)
    assert permuted.shape == (50, 200)
    for brick in range(7):
        inside = bricks == brick
        assert (permuted[:, inside].sum(axis=1) == labels[inside].sum()).all()
    assert (permuted != labels).any(axis=1).all()  # they do permute


def test_bricks_with_one_class_are_left_out_and_their_sky_cannot_make_a_difference():
    """Two bricks with both classes and six with one class only, the single-class bricks' sky far brighter for the
    fakes: a naive comparison of all stamps would see that sky; the stratified test leaves those bricks out."""
    rng = np.random.default_rng(5)
    mixed = blobs(rng, 80, 1.5)
    mixed_labels = np.tile([0, 1], 40)
    mixed_bricks = np.repeat([0, 1], 40)
    lonely = blobs(rng, 120, 1.5)
    lonely_labels = np.repeat([0, 1], 60)
    lonely += np.where(lonely_labels == 1, 2.0, 0.0)[:, None].astype(np.float32)  # the fakes' bricks' sky
    lonely_bricks = np.repeat([2, 3, 4, 5, 6, 7], 20)
    features = np.concatenate([mixed, lonely])
    labels = np.concatenate([mixed_labels, lonely_labels])
    bricks = np.concatenate([mixed_bricks, lonely_bricks])
    record = mmd_test(features, labels, bricks, SETTINGS)
    assert record["examples_left_out"] == 120 and record["bricks"] == 2
    assert record["examples_per_class"] == {"real": 40, "fake": 40}
    assert record["p_value"] > 0.05
    assert mmd_test(features, labels, None, SETTINGS)["p_value"] < 0.01  # what ignoring the bricks would say

    alone = mmd_test(lonely, lonely_labels, lonely_bricks, SETTINGS)
    assert alone["p_value"] is None and alone["statistic"] is None
    assert alone["reason"] == "no brick holds both classes"
    alone.update(pixels=16, splits=["test"])
    sentence = mmd_sentence(alone, {"significant": False}, 0.05)
    assert sentence == "The kernel two-sample test on the central pixels was not run: no brick holds both classes."


def test_the_sample_is_pairs_within_bricks_spread_over_every_brick():
    rng = np.random.default_rng(9)
    bricks = np.repeat(np.arange(40), 50)
    labels = rng.integers(0, 2, bricks.size)
    labels[bricks == 39] = 1  # a brick of fakes only gives no pair
    chosen = paired_sample(labels, bricks, 60, seed=2)
    assert np.bincount(labels[chosen]).tolist() == [60, 60]
    per_brick = np.bincount(bricks[chosen] * 2 + labels[chosen], minlength=80).reshape(40, 2)
    assert (per_brick[:, 0] == per_brick[:, 1]).all()  # each brick as many reals as fakes
    assert per_brick[39].sum() == 0
    assert set(per_brick[:39, 0]) <= {1, 2}  # one pair from every brick before a second from any
    np.testing.assert_array_equal(chosen, paired_sample(labels, bricks, 60, seed=2))  # seeded
    everything = paired_sample(labels, bricks, 10_000, seed=2)
    pairs = np.minimum(np.bincount(bricks[labels == 0], minlength=40), np.bincount(bricks[labels == 1], minlength=40))
    assert everything.size == 2 * pairs.sum()


def test_the_transform_is_the_cnns_input_layer(tmp_path):
    """normalized_stamps repeats realfake.model.network.InputNormalization (relative depth) in numpy."""
    from realfake.model.network import InputNormalization, normalization_from_manifest

    manifest = write_shard_set(tmp_path / "shards", train_examples=20, test_examples=8, validation_examples=4)
    stamps = open_shard_set(tmp_path / "shards").read_examples("test", np.arange(8))
    stamps[..., 3:] *= np.random.default_rng(2).uniform(0.8, 1.2, stamps[..., 3:].shape).astype(np.float32)
    stamps[0, :5, :5, 3] = 0.0  # uncovered pixels
    stamps[1, ..., 4] = 0.0  # a stamp with no coverage in one band
    normalization = normalization_from_manifest(manifest, "manifest")
    layer = InputNormalization(
        normalization.channel_names,
        normalization.centers,
        normalization.scales,
        normalization.inverse_variance,
        relative_depth=True,
    )
    expected = np.asarray(layer(stamps))
    found = normalized_stamps(stamps, manifest["channel_names"], manifest["normalization"])
    # The layer sums a stamp's 4,096 inverse variances in float32: about 1e-5 of the mean, 2e-4 in units of 5%.
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=2e-3)


def test_evaluate_records_the_kernel_test_and_its_sentence(tmp_path):
    shards = tmp_path / "shards"
    write_shard_set(shards, train_examples=40, test_examples=60, validation_examples=8, shard_size=32)
    shard_set = open_shard_set(shards)
    record = kernel_two_sample(shard_set, StatisticsSettings(mmd_permutations=50, mmd_pixels=8, mmd_examples=30))
    assert record["splits"] == ["train", "validation", "test"]
    assert record["examples_available"] == 108
    assert record["examples_per_class"] == {"real": 30, "fake": 30}
    assert record["examples_left_out"] == 48
    assert record["pixels"] == 8 and record["permutations"] == 50 and record["bricks"] == 1
    assert 0 < record["p_value"] <= 1 and record["bandwidth"] > 0 and "seconds" not in record

    out = tmp_path / "evaluate"
    model = tmp_path / "model.keras"
    from fixtures.synthetic_shards import save_model

    save_model(model, shard_set.manifest.to_json())
    arguments = ["evaluate", "--shards", str(shards), "--model", str(model), "--out", str(out), "--bootstrap", "50",
                 "--no-attribution", "--mmd-permutations", "40", "--mmd-examples", "20"]  # fmt: skip
    assert main(arguments) == 0
    metrics = read_metrics(out / METRICS_NAME)
    mmd = metrics["mmd"]
    assert mmd["permutations"] == 40 and mmd["examples_per_class"] == {"real": 20, "fake": 20}
    assert mmd["pixels"] == 16 and mmd["splits"] == ["train", "validation", "test"]
    assert mmd["sentence"].startswith("A kernel two-sample test on the central pixels finds")
    assert "from 40 permutations within 1 brick(s)" in mmd["sentence"]
    assert mmd["beyond_cnn"] == (mmd["p_value"] < 0.05 and not metrics["verdict"]["significant"])

    assert main([*arguments[:-4], "--mmd-permutations", "0"]) == 0
    assert read_metrics(out / METRICS_NAME)["mmd"] is None


def test_the_sentence_says_when_the_kernel_test_finds_what_the_cnn_does_not():
    record = {"statistic": 0.0123, "p_value": 0.004975, "permutations": 200, "bricks": 12, "pixels": 16,
              "examples_per_class": {"real": 900, "fake": 900}, "splits": ["train", "validation", "test"]}  # fmt: skip
    beyond = mmd_sentence(record, {"significant": False}, 0.05)
    assert beyond == (
        "A kernel two-sample test on the central pixels finds a difference the CNN does not: MMD² = 0.012, "
        "p = 0.005 from 200 permutations within 12 brick(s), on the central 16×16 pixels of 900 real and 900 "
        "fake stamps from the train, validation, test splits."
    )
    assert mmd_sentence(record, {"significant": True}, 0.05).startswith(
        "A kernel two-sample test on the central pixels finds a difference too: MMD² = 0.012"
    )
    record["p_value"] = 0.4
    assert mmd_sentence(record, {"significant": False}, 0.05).startswith(
        "A kernel two-sample test on the central pixels finds no difference: MMD² = 0.012, p = 0.4"
    )


def test_the_report_shows_the_sentence_in_the_baselines_section():
    from types import SimpleNamespace

    sentence = "A kernel two-sample test on the central pixels finds no difference: MMD² = 1e-05, p = 0.6 ..."
    record = {"sentence": sentence, "pixels": 16, "permutations": 200, "examples_per_class": {"real": 5, "fake": 5}}
    parts = baselines_section(SimpleNamespace(metrics={"mmd": record, "baselines": []}))
    assert parts[1] == f"<p>{sentence}</p>"
    assert "central 16×16 pixels" in parts[2] and "200 permutations" in parts[2] and "10 stamps" in parts[2]
    assert baselines_section(SimpleNamespace(metrics={"mmd": None, "baselines": []}))[1:] == [
        "<p>No shortcut baselines were run.</p>"
    ]

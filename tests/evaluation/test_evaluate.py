"""realfake evaluate: the two-sample verdict, breakdowns, shortcut baselines, stamp statistics and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from fixtures.predictions import prediction_table
from fixtures.synthetic_shards import read_test_stamps, save_model, write_shard_set

from realfake.cli import main
from realfake.evaluation.baselines import catalog_features, shortcut_baselines
from realfake.evaluation.evaluate import baseline_rows, evaluate_predictions, storage_record
from realfake.evaluation.features import stamp_statistics, statistics_of_examples
from realfake.formats.cutouts import measured_view
from realfake.formats.evaluation import (
    ATTRIBUTION_NAME,
    BREAKDOWNS_NAME,
    MEAN_STAMPS_NAME,
    METRICS_NAME,
    PREDICTIONS_NAME,
    read_metrics,
)
from realfake.formats.model import read_model
from realfake.formats.predictions import read_predictions
from realfake.formats.shardset import open_shard_set
from realfake.stats.breakdowns import BREAKDOWN_COLUMNS, breakdown_variables
from realfake.stats.settings import StatisticsSettings

SETTINGS = StatisticsSettings(bootstrap=300, seed=3)


# -- shortcut baselines ------------------------------------------------------------------------


def _baseline_tables(rng: np.random.Generator, size_factor: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = []
    for count in (600, 300):
        labels = rng.permutation(np.repeat([0, 1], count // 2))
        table = prediction_table(labels, np.full(count, 0.5), rng)
        table.loc[labels == 1, "size"] *= size_factor
        for band in ("g", "r", "z"):
            table[f"pixel_flux3x3_{band}"] = rng.lognormal(0, 1, count)
            table[f"ivar_centre_{band}"] = rng.uniform(500, 2000, count)
        table["centroid_dx"] = rng.normal(0, 0.2, count)
        table["centroid_dy"] = rng.normal(0, 0.2, count)
        tables.append(table)
    return tables[0], tables[1]


def test_baselines_find_a_planted_catalog_difference_and_name_it():
    train, test = _baseline_tables(np.random.default_rng(21), size_factor=2.0)
    result = evaluate_predictions(test, SETTINGS, train=train)
    by_name = {record["name"]: record for record in result["baselines"]}
    assert set(by_name) == {"catalog_logistic", "catalog_boosting", "pixel_logistic", "pixel_boosting"}
    assert by_name["catalog_boosting"]["significant"] and by_name["catalog_boosting"]["accuracy"] > 0.7
    assert by_name["catalog_logistic"]["significant"]
    assert not by_name["pixel_logistic"]["significant"] and not by_name["pixel_boosting"]["significant"]
    differing = [item["feature"] for item in by_name["catalog_boosting"]["feature_differences"] if item["differs"]]
    assert differing == ["size"]
    assert "the difference lies in catalog quantities" in result["shortcut_sentence"]
    assert "chiefly size" in result["shortcut_sentence"]
    assert len(result["baseline_scores"]["catalog_boosting"]) == len(test)


def test_baselines_do_not_flag_a_null_and_credit_the_image_structure():
    rng = np.random.default_rng(22)
    train, test = _baseline_tables(rng, size_factor=1.0)
    labels = test["label"].to_numpy()
    test["p_fake"] = np.where(labels == 1, 0.8, 0.2)  # a CNN that sees what the baselines cannot
    result = evaluate_predictions(test, SETTINGS, train=train)
    assert not any(record["significant"] for record in result["baselines"])
    assert all(record["cnn_vs_baseline"]["cnn_better"] for record in result["baselines"])
    assert "the difference is in the image structure" in result["shortcut_sentence"]
    test["p_fake"] = rng.uniform(size=len(test))
    result = evaluate_predictions(test, SETTINGS, train=train)
    assert result["shortcut_sentence"].startswith("Neither the CNN nor any shortcut baseline")


def test_catalog_quantities_are_the_tractor_fits_wherever_there_is_one():
    """Reals are measured; a fake compared on its true values would differ by measurement noise alone."""
    table = pd.DataFrame(
        {
            "label": [0, 1, 1],
            "mag_dered_g": [22.0, 23.0, 23.5],
            "mag_dered_r": [21.5, 22.5, 23.0],
            "size": [0.5, 0.6, 0.7],
            "type": ["REX", "EXP", "EXP"],
            "measured": [True, True, False],
            "measured_mag_dered_g": [22.0, 23.2, np.nan],
            "measured_mag_dered_r": [21.5, 22.4, np.nan],
            "measured_size": [0.5, 0.8, np.nan],
            "measured_type": ["REX", "REX", ""],
        }
    )
    view = measured_view(table)
    assert view["mag_dered_g"].tolist() == [22.0, 23.2, 23.5]
    assert view["size"].tolist() == [0.5, 0.8, 0.7]
    assert view["type"].tolist() == ["REX", "REX", "EXP"]
    features = catalog_features(table)
    np.testing.assert_allclose(features["g - r"], [0.5, 0.8, 0.5])
    variables = breakdown_variables(table)
    np.testing.assert_allclose(variables["g magnitude"], [22.0, 23.2, 23.5])
    assert variables["type"].tolist() == ["REX", "REX", "EXP"]
    # Without the columns (catalogs made before them, or no rs dir tractor) nothing changes.
    plain = table.drop(columns=[column for column in table.columns if column.startswith("measured")])
    assert measured_view(plain) is plain


def test_catalog_features_leave_out_identifiers_and_per_class_definitions():
    rng = np.random.default_rng(3)
    table = prediction_table(np.array([0, 1] * 10), np.full(20, 0.5), rng)
    table["type"] = ["PSF", "EXP"] * 10
    for column in ("kind", "rsdir", "id", "brickname", "cutouts_file", "sersic_n", "e1", "e2", "ra", "dec"):
        table[column] = 1
    features = catalog_features(table)
    assert list(features.columns) == [
        "mag_dered_g",
        "mag_dered_r",
        "mag_dered_z",
        "g - r",
        "r - z",
        "size",
        "offset_x",
        "offset_y",
    ]
    assert features["size"][table["type"] == "PSF"].isna().all()
    assert features["size"][table["type"] == "EXP"].notna().all()
    np.testing.assert_allclose(features["g - r"], table["mag_dered_g"] - table["mag_dered_r"])


def test_baselines_are_skipped_without_a_training_split():
    rng = np.random.default_rng(4)
    test = prediction_table(np.repeat([0, 1], 50), rng.uniform(size=100), rng)
    result = evaluate_predictions(test, SETTINGS)
    assert result["baselines"] == []
    assert "No shortcut baselines were run" in result["shortcut_sentence"]
    assert shortcut_baselines(test, test, SETTINGS)[0][0]["examples"] == 100


# -- stamp statistics --------------------------------------------------------------------------


def test_stamp_statistics_measure_centre_flux_depth_and_centroid():
    stamps = np.zeros((2, 64, 64, 4), dtype=np.float32)
    stamps[0, 32, 33, 0] = 3.0  # one bright pixel one column right of the centre, band g
    stamps[0, 32, 32, 1] = 1.0  # band r at the centre
    stamps[1, 30, 32, 0] = 2.0  # two rows below the centre
    stamps[:, :, :, 2] = 100.0
    stamps[:, 32, 32, 3] = 7.0
    result = stamp_statistics(stamps, ("g", "r", "ivar_g", "ivar_r"))
    np.testing.assert_allclose(result["pixel_flux3x3_g"], [3.0, 0.0])
    np.testing.assert_allclose(result["pixel_flux3x3_r"], [1.0, 0.0])
    np.testing.assert_allclose(result["ivar_centre_g"], [100.0, 100.0])
    np.testing.assert_allclose(result["ivar_centre_r"], [7.0, 7.0])
    np.testing.assert_allclose(result["centroid_dx"], [0.75, 0.0])  # (3 * 1 + 1 * 0) / 4
    np.testing.assert_allclose(result["centroid_dy"], [0.0, -2.0])


def test_statistics_read_from_the_central_pixels_equal_those_of_whole_stamps(tmp_path):
    manifest = write_shard_set(tmp_path / "shards", train_examples=40, test_examples=70, shard_size=32)
    shard_set = open_shard_set(tmp_path / "shards")
    positions = np.array([69, 3, 40, 0, 33, 12])  # across shards, in no order
    on_disk = statistics_of_examples(shard_set, "test", positions, batch_size=4)
    stamps = read_test_stamps(tmp_path / "shards")
    in_memory = pd.DataFrame(stamp_statistics(stamps[positions], tuple(manifest["channel_names"])))
    pd.testing.assert_frame_equal(on_disk, in_memory)
    np.testing.assert_array_equal(shard_set.read_examples("test", positions), stamps[positions])
    np.testing.assert_array_equal(shard_set.read_examples("test", positions, 2), stamps[positions, 30:35, 30:35])


def test_the_baselines_train_on_a_capped_stratified_sample_of_the_training_split():
    labels = np.repeat([0, 1], [600, 400])
    rows = baseline_rows(labels, 100, seed=3)
    assert len(rows) == 100 and (np.diff(rows) > 0).all()
    assert (labels[rows] == 1).sum() == 40  # each class keeps its share
    np.testing.assert_array_equal(rows, baseline_rows(labels, 100, seed=3))  # seeded
    assert not np.array_equal(rows, baseline_rows(labels, 100, seed=4))
    np.testing.assert_array_equal(baseline_rows(labels, 5000, seed=3), np.arange(1000))  # all when fewer


# -- the command line --------------------------------------------------------------------------


def test_evaluate_cli_writes_predictions_metrics_and_breakdowns(tmp_path, capsys):
    shards = tmp_path / "shards"
    manifest = write_shard_set(shards, train_examples=120, test_examples=200, shard_size=64)
    save_model(tmp_path / "model.keras", manifest)
    out = tmp_path / "evaluate"
    status = main(
        [
            "evaluate",
            "--shards",
            str(shards),
            "--model",
            str(tmp_path / "model.keras"),
            "--out",
            str(out),
            "--bootstrap",
            "200",
            "--batch-size",
            "48",
        ]
    )
    assert status == 0
    predictions = read_predictions(out / PREDICTIONS_NAME, open_shard_set(shards), view="full")
    catalog = pd.read_parquet(shards / "test_catalog.parquet")
    assert len(predictions) == 200
    pd.testing.assert_frame_equal(predictions[catalog.columns], catalog)
    expected = read_model(tmp_path / "model.keras").predict(read_test_stamps(shards), verbose=0)[:, 1]
    np.testing.assert_allclose(predictions["p_fake"], expected, rtol=1e-5, atol=1e-6)
    for column in ("ivar_centre_r", "pixel_flux3x3_g", "centroid_dx", "p_fake_catalog_boosting"):
        assert column in predictions.columns
    metrics = read_metrics(out / METRICS_NAME)
    assert metrics["verdict"]["examples"] == 200
    assert metrics["verdict"]["accuracy"] == pytest.approx(
        np.mean((predictions["p_fake"] > 0.5) == (predictions["label"] == 1))
    )
    assert len(metrics["baselines"]) == 4
    assert metrics["settings"]["statistics"]["bootstrap"] == 200
    table = pd.read_csv(out / BREAKDOWNS_NAME)
    assert list(table.columns) == BREAKDOWN_COLUMNS
    assert len(table) == len(metrics["breakdowns"])
    # The attribution maps are on by default: made from the model and listed for the report.
    assert metrics["settings"]["attribution"] is True
    assert metrics["files"]["arrays"] == [ATTRIBUTION_NAME, MEAN_STAMPS_NAME]
    with np.load(out / ATTRIBUTION_NAME) as maps:
        assert maps.files
    progress = capsys.readouterr().err
    assert f"evaluate: {metrics['verdict']['sentence']}" in progress
    assert "attribution" not in progress


def test_evaluate_with_attribution_off_writes_no_maps_and_says_so(tmp_path, capsys):
    """--no-attribution (evaluate.attribution: false): the model is given, yet no attribution.npz is written,
    metrics.json lists none and records the setting (the report reads it), and the progress output says why."""
    shards = tmp_path / "shards"
    manifest = write_shard_set(shards, train_examples=40, test_examples=60, shard_size=32)
    save_model(tmp_path / "model.keras", manifest)
    out = tmp_path / "evaluate"
    arguments = ["evaluate", "--shards", str(shards), "--model", str(tmp_path / "model.keras"), "--out", str(out),
                 "--bootstrap", "50", "--no-attribution"]  # fmt: skip
    assert main(arguments) == 0
    assert sorted(path.name for path in out.iterdir()) == [
        BREAKDOWNS_NAME, MEAN_STAMPS_NAME, METRICS_NAME, PREDICTIONS_NAME
    ]  # fmt: skip
    metrics = read_metrics(out / METRICS_NAME)
    assert metrics["files"]["arrays"] == [MEAN_STAMPS_NAME]
    assert metrics["settings"]["attribution"] is False
    assert metrics["verdict"]["examples"] == 60  # the rest of the evaluation is made as before
    progress = capsys.readouterr().err.splitlines()
    switched_off = "evaluate: attribution maps switched off (--no-attribution; evaluate.attribution in the workflow)"
    assert switched_off in progress
    assert not any("no model given" in line for line in progress)


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_missing_model_is_one_line_and_exit_2(tmp_path):
    shards = tmp_path / "shards"
    write_shard_set(shards, train_examples=8, test_examples=8)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "realfake.cli",
            "evaluate",
            "--shards",
            str(shards),
            "--model",
            str(tmp_path / "absent.keras"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"realfake evaluate: error: model file {tmp_path / 'absent.keras'} does not exist (run `realfake train` first)"
    ]
    assert not (tmp_path / "out").exists()


def test_shards_without_test_catalog_are_one_line_and_exit_2(tmp_path, capsys):
    shards = tmp_path / "shards"
    manifest = write_shard_set(shards, train_examples=8, test_examples=8)
    (shards / "test_catalog.parquet").unlink()
    save_model(tmp_path / "model.keras", manifest)
    status = main(
        ["evaluate", "--shards", str(shards), "--model", str(tmp_path / "model.keras"), "--out", str(tmp_path)]
    )
    assert status == 2
    line = _one_error_line(capsys)
    assert line.startswith("realfake evaluate: error: ")
    assert "test_catalog.parquet is missing" in line


def test_a_shard_set_of_another_format_version_is_refused(tmp_path, capsys):
    shards = tmp_path / "shards"
    manifest = write_shard_set(shards, train_examples=8, test_examples=8)
    save_model(tmp_path / "model.keras", manifest)
    path = shards / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format_version": 99}))
    status = main(["evaluate", "--shards", str(shards), "--model", str(tmp_path / "model.keras"), "--out",
                   str(tmp_path / "out")])  # fmt: skip
    assert status == 2
    assert _one_error_line(capsys) == (
        f"realfake evaluate: error: {path}: format_version 99, but this realfake reads shard sets of format 2 only: "
        "make the shard set again with this realfake (`realfake shards`)"
    )
    assert not (tmp_path / "out").exists()


def test_pixels_clipped_to_float16_are_told_in_the_metrics():
    clipped = storage_record({"storage": {"dtype": "float16", "scales": {}, "clipped_pixels": 3}})
    assert clipped["dtype"] == "float16" and clipped["clipped"] == 3
    assert clipped["sentence"].startswith("3 pixel(s) of the shard set were beyond float16's range")
    assert "the CNN saw those stamps clipped" in clipped["sentence"]
    assert storage_record({"storage": {"dtype": "float16", "clipped_pixels": 0}})["sentence"] is None
    assert storage_record({}) == {"dtype": "float32", "clipped": 0, "sentence": None}


def test_the_verdict_and_baselines_count_the_test_bricks():
    rng = np.random.default_rng(23)
    train, test = _baseline_tables(rng, size_factor=2.0)
    test["brickname"] = np.repeat([f"{number:04d}p000" for number in range(30)], len(test) // 30)
    test["p_fake"] = rng.uniform(size=len(test))
    result = evaluate_predictions(test, SETTINGS, train=train)
    assert result["verdict"]["bricks"] == 30 and result["verdict"]["auc_interval_method"] == "cluster"
    assert {record["bricks"] for record in result["baselines"]} == {30}
    assert {record["auc_interval_method"] for record in result["baselines"]} == {"cluster"}
    assert "auc_p_value_independent" in result["verdict"]

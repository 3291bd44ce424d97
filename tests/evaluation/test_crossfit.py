"""Cross-fitting by brick through predict and evaluate (realfake.crossfit): each fold's model scores its own fold's
examples and no other's, and the evaluation tests every example, each scored by the model that never saw its
brick, with the baselines cross-fitted the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.synthetic_shards import save_model, write_shard_set

from realfake.cli import main
from realfake.crossfit import model_view_of
from realfake.errors import RealfakeError
from realfake.formats.predictions import read_pooled_predictions
from realfake.formats.shardset import open_shard_set, short_identity

FOLDS = 3
TRAIN, VALIDATION = 48, 16  # per fold


@pytest.fixture(scope="module")
def crossfit(tmp_path_factory) -> Path:
    """A shard set in 3 folds, each fold's model (trained, as its identity records, on that fold's view), and each
    fold's predictions, fold 1's in two parts."""
    root = tmp_path_factory.mktemp("crossfit")
    manifest = write_shard_set(
        root / "shards", train_examples=TRAIN, validation_examples=VALIDATION, shard_size=16, folds=FOLDS
    )
    for fold in range(FOLDS):
        save_model(root / f"fold{fold}.keras", manifest, shard_set=f"{manifest['identity']}-fold{fold}")
        parts = ("1-of-2", "2-of-2") if fold == 1 else ("1-of-1",)
        for part in parts:
            out = root / f"fold{fold}-{part}.parquet"
            assert main(["predict", *shards(root), "--model", str(root / f"fold{fold}.keras"), "--fold", str(fold),
                         "--part", part, "--out", str(out)]) == 0  # fmt: skip
    return root


def shards(root: Path) -> list[str]:
    return ["--shards", str(root / "shards")]


def predictions_files(root: Path) -> list[Path]:
    return sorted(root.glob("fold*-*.parquet"))


def error_line(capsys) -> str:
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_each_fold_view_has_its_own_identity_and_the_pooled_view_the_sets():
    identity = "ab" * 32
    assert short_identity(f"{identity}-fold2") == "abababababab-fold2"
    assert short_identity(identity) == "abababababab"


def test_a_model_must_name_its_fold_and_only_a_fold_of_the_set(crossfit):
    shard_set = open_shard_set(crossfit / "shards")
    assert model_view_of(shard_set, 2).identity == f"{shard_set.identity}-fold2"
    with pytest.raises(RealfakeError, match=r"cross-fitted in 3 folds \(made with --folds 3\): name the model's fold"):
        model_view_of(shard_set, None)
    with pytest.raises(RealfakeError, match=r"--fold 3: the shard set in .* has folds 0 to 2"):
        model_view_of(shard_set, 3)


def test_predict_refuses_another_folds_model_and_a_missing_fold(crossfit, tmp_path, capsys):
    out = str(tmp_path / "p.parquet")
    model = str(crossfit / "fold1.keras")
    assert main(["predict", *shards(crossfit), "--model", model, "--fold", "0", "--out", out]) == 2
    line = error_line(capsys)
    identity = open_shard_set(crossfit / "shards").identity[:12]
    assert f"was trained on shard set {identity}-fold1, but" in line and f"is shard set {identity}-fold0" in line
    assert main(["predict", *shards(crossfit), "--model", model, "--out", out]) == 2
    assert "name the model's fold with --fold, 0 to 2" in error_line(capsys)
    assert not (tmp_path / "p.parquet").exists()


def test_each_folds_predictions_are_its_own_examples_and_pooled_cover_every_example_once(crossfit):
    shard_set = open_shard_set(crossfit / "shards")
    pooled = read_pooled_predictions(predictions_files(crossfit), shard_set, view="full")
    assert len(pooled) == FOLDS * (TRAIN + VALIDATION) == shard_set.examples("test")
    assert np.array_equal(pooled["fold"].to_numpy(), shard_set.test_folds())
    assert np.array_equal(pooled["label"].to_numpy(), shard_set.catalog("test")["label"].to_numpy())
    # A fold's examples are its own bricks' only: no brick is scored by two models.
    assert pooled.groupby("brickname")["fold"].nunique().max() == 1
    models = {provenance["model_sha256"] for provenance in pooled.attrs["realfake"]["folds"]}
    assert len(models) == FOLDS


def test_evaluate_needs_every_folds_predictions(crossfit, tmp_path, capsys):
    files = [str(path) for path in predictions_files(crossfit) if not path.name.startswith("fold2")]
    status = main(["evaluate", *shards(crossfit), "--predictions", *files, "--out", str(tmp_path / "evaluation")])
    assert status == 2
    assert "hold no predictions of fold(s) 2 of the shard set" in error_line(capsys)
    assert not (tmp_path / "evaluation").exists()


def test_evaluate_with_another_folds_model_is_refused(crossfit, tmp_path, capsys):
    files = [str(path) for path in predictions_files(crossfit)]
    status = main(["evaluate", *shards(crossfit), "--predictions", *files, "--model", str(crossfit / "fold1.keras"),
                   "--out", str(tmp_path / "evaluation")])  # fmt: skip
    assert status == 2
    assert "-fold1, but" in error_line(capsys)


def test_the_cross_fitted_evaluation_tests_every_example_within_folds(crossfit, tmp_path):
    out = tmp_path / "evaluation"
    files = [str(path) for path in predictions_files(crossfit)]
    assert main(["evaluate", *shards(crossfit), "--predictions", *files, "--model", str(crossfit / "fold0.keras"),
                 "--out", str(out)]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    verdict = metrics["verdict"]
    assert verdict["examples"] == FOLDS * (TRAIN + VALIDATION) and verdict["folds"] == FOLDS
    assert [fold["examples"] for fold in metrics["folds"]["folds"]] == [TRAIN + VALIDATION] * FOLDS
    predictions = pd.read_parquet(out / "predictions.parquet")
    assert predictions["fold"].tolist() == open_shard_set(crossfit / "shards").test_folds().tolist()
    # The baselines: one per fold, each trained on its fold model's training split (the other folds but the next
    # fold's validation part, which the CNN validates on).
    per_fold = [record["of"] for record in metrics["baseline_training"]["per_fold"]]
    assert per_fold == [(FOLDS - 1) * TRAIN + (FOLDS - 2) * VALIDATION] * FOLDS
    assert metrics["baselines"] and all(record["folds"] == FOLDS for record in metrics["baselines"])
    # The kernel test draws from every example.
    assert metrics["mmd"]["examples_available"] == FOLDS * (TRAIN + VALIDATION)
    # fold 0's attribution maps, of the examples fold 0's model scored.
    assert (out / "attribution.npz").is_file()


def test_the_reports_roc_compares_the_folds_models_by_their_within_fold_ranks():
    from realfake.report import within_fold_quantiles

    folds = np.repeat([0, 1], 4)
    scores = np.array([0.1, 0.4, 0.2, 0.3, 0.91, 0.99, 0.93, 0.95])  # fold 1's model scores everything high
    np.testing.assert_allclose(within_fold_quantiles(scores, folds), [0.25, 1.0, 0.5, 0.75] * 2)

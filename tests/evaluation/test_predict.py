"""realfake predict and its files (realfake.formats.predictions, realfake.formats.model): predictions identify
their model by content, and scattered parts must cover the test split once, from one model (issue 20, items 3-5)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fixtures.synthetic_shards import save_model, write_shard_set

from realfake.cli import main
from realfake.formats.model import model_digest, read_model
from realfake.formats.model import save_model as save_model_file
from realfake.formats.predictions import read_predictions
from realfake.formats.shardset import open_shard_set


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> Path:
    """A shard set of 3 test shards and two different models of it, A and B."""
    root = tmp_path_factory.mktemp("predict")
    manifest = write_shard_set(root / "shards", train_examples=64, test_examples=96, shard_size=32)
    save_model(root / "a.keras", manifest)
    save_model(root / "b.keras", manifest)
    assert weights_sha256(root / "a.keras") != weights_sha256(root / "b.keras")
    return root


def weights_sha256(path: Path) -> str:
    """A model file's :func:`realfake.formats.model.model_digest` (its weights' SHA-256)."""
    return model_digest(read_model(path))


def predict(root: Path, model: Path, part: str, out: Path) -> None:
    assert main(["predict", "--shards", str(root / "shards"), "--model", str(model), "--part", part,
                 "--out", str(out)]) == 0  # fmt: skip


def error_line(capsys) -> str:
    """The one error line of what the command wrote to stderr (progress lines aside); no traceback."""
    stderr = capsys.readouterr().err
    lines = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_parts_from_a_model_replaced_at_the_same_path_are_refused(two_models, tmp_path, capsys):
    # train re-running between two scattered predict jobs: model.keras is another model for the second part.
    model = tmp_path / "model.keras"
    shutil.copy(two_models / "a.keras", model)
    predict(two_models, model, "1-of-2", tmp_path / "1.parquet")
    shutil.copy(two_models / "b.keras", model)
    predict(two_models, model, "2-of-2", tmp_path / "2.parquet")
    shards = str(two_models / "shards")
    status = main(["evaluate", "--shards", shards, "--predictions", str(tmp_path / "1.parquet"),
                   str(tmp_path / "2.parquet"), "--out", str(tmp_path / "evaluation")])  # fmt: skip
    assert status == 2
    line = error_line(capsys)
    a, b = weights_sha256(two_models / "a.keras")[:12], weights_sha256(two_models / "b.keras")[:12]
    assert line == (
        f"realfake evaluate: error: the predictions files come from different models ({tmp_path / '1.parquet'} "
        f"from model sha256 {a}; {tmp_path / '2.parquet'} from model sha256 {b}): predict every part with one "
        f"model (a train run between predict jobs replaces the model file)"
    )
    assert not (tmp_path / "evaluation").exists()


def test_one_model_reached_by_two_paths_is_one_model(two_models, tmp_path, capsys):
    (tmp_path / "link").symlink_to(two_models)
    predict(two_models, two_models / "a.keras", "1-of-2", tmp_path / "1.parquet")
    predict(two_models, tmp_path / "link" / "." / "a.keras", "2-of-2", tmp_path / "2.parquet")
    shard_set = open_shard_set(two_models / "shards")
    predictions = read_predictions([tmp_path / "2.parquet", tmp_path / "1.parquet"], shard_set, view="full")
    assert len(predictions) == 96
    assert predictions.attrs["realfake"]["model_sha256"] == weights_sha256(two_models / "a.keras")
    # And evaluate takes the model by its other spelling beside them.
    status = main(["evaluate", "--shards", str(two_models / "shards"), "--predictions", str(tmp_path / "1.parquet"),
                   str(tmp_path / "2.parquet"), "--model", str(tmp_path / "link" / "a.keras"), "--out",
                   str(tmp_path / "evaluation"), "--bootstrap", "20"])  # fmt: skip
    assert status == 0, capsys.readouterr().err


def test_one_model_saved_twice_is_one_model(two_models, tmp_path):
    # A .keras file records when it was saved: two saves of one model differ in bytes, not in weights.
    save_model_file(read_model(two_models / "a.keras"), tmp_path / "again.keras")
    assert (tmp_path / "again.keras").read_bytes() != (two_models / "a.keras").read_bytes()
    predict(two_models, two_models / "a.keras", "1-of-2", tmp_path / "1.parquet")
    predict(two_models, tmp_path / "again.keras", "2-of-2", tmp_path / "2.parquet")
    shard_set = open_shard_set(two_models / "shards")
    assert len(read_predictions([tmp_path / "1.parquet", tmp_path / "2.parquet"], shard_set)) == 96


def test_predictions_of_model_a_with_model_b_are_refused(two_models, tmp_path, capsys):
    predict(two_models, two_models / "a.keras", "1-of-1", tmp_path / "a.parquet")
    status = main(["evaluate", "--shards", str(two_models / "shards"), "--predictions", str(tmp_path / "a.parquet"),
                   "--model", str(two_models / "b.keras"), "--out", str(tmp_path / "evaluation")])  # fmt: skip
    assert status == 2
    a, b = weights_sha256(two_models / "a.keras")[:12], weights_sha256(two_models / "b.keras")[:12]
    assert error_line(capsys) == (
        f"realfake evaluate: error: the predictions {tmp_path / 'a.parquet'} come from model sha256 {a}, but "
        f"--model {two_models / 'b.keras'} is model sha256 {b}: give the model that made them, or predict again "
        f"with this one"
    )
    assert not (tmp_path / "evaluation").exists()


def test_repeated_and_missing_parts_are_named_with_their_files(two_models, tmp_path, capsys):
    # 3 test shards: 1-of-3 is shard 0, 1-of-2 shard 0, 2-of-2 shards 1-2, 3-of-3 shard 2.
    model = two_models / "a.keras"
    for part in ("1-of-3", "3-of-3", "1-of-2", "2-of-2"):
        predict(two_models, model, part, tmp_path / f"{part}.parquet")
    shard_set = open_shard_set(two_models / "shards")
    files = {part: tmp_path / f"{part}.parquet" for part in ("1-of-3", "3-of-3", "1-of-2", "2-of-2")}
    from realfake.errors import RealfakeError

    with pytest.raises(RealfakeError) as error:
        read_predictions([files["1-of-3"], files["1-of-2"], files["2-of-2"]], shard_set)
    assert str(error.value).endswith(
        f"(3 shards, numbered from 0): test shard 0 is in each of {files['1-of-3']}, {files['1-of-2']}"
    )
    with pytest.raises(RealfakeError) as error:
        read_predictions([files["3-of-3"], files["1-of-3"]], shard_set)
    assert str(error.value).endswith("test shard 1 is in none of them (predict those parts)")
    with pytest.raises(RealfakeError) as error:
        read_predictions([files["2-of-2"], files["3-of-3"]], shard_set)
    assert str(error.value).endswith(
        f"test shard 2 is in each of {files['2-of-2']}, {files['3-of-3']}; test shard 0 is in none of them "
        f"(predict those parts)"
    )
    # The old message said "shards 2 to -1"; the paths in the message may hold "-1" (pytest-109), so not them.
    assert "-1" not in str(error.value).replace(str(tmp_path.parent), "")

"""The fault catalogue: bad input, damaged state and interruptions, stage by stage.

Each case asserts the one-line message (naming the file, brick or key), the
exit status (2: a problem with the user's input or state) and that nothing a
later run would trust is left behind. Cases tested in other modules are listed
with their test.

| stage | fault | what happens |
| --- | --- | --- |
| cutouts | a coadd, tractor catalog, simcat or brick table missing, truncated or corrupt | one line naming it |
| cutouts | a band or a column missing; no rs dirs | one line naming the file, exit 2, no output |
| cutouts | a brick not in the brick table | one line naming the brick and the table |
| cutouts | a selection that cuts on a band the bands leave out | refused before anything is read |
| cutouts | a full disk | one line naming the output, exit 2, nothing left |
| cutouts | a temporary left by a killed writer | removed by the next writer (this host, dead process); others kept |
| shards | a cutouts file truncated under its final name | one line saying to delete it (its job then makes it again) |
| shards | a cutouts file left from a run on another tree | refused naming both trees (test_shards.py) |
| shards | a full disk | one line, the staging removed |
| shards | the staging a killed run left | removed by the next run, which says so |
| train | a shard deleted or truncated | one line naming the file |
| train | a NaN pixel | one line naming the file and row |
| train | the checkpoint pointer missing, garbage or naming nothing | resumes from the newest complete one, says so |
| train | no complete checkpoint and no pointer | one line naming the directory, nothing overwritten |
| train | a truncated checkpoint data file | one line, exit 2, nothing overwritten |
| train | checkpoints of another shard set | starts afresh, the old run moved to superseded/, one line saying so |
| train | the same shard set elsewhere | resumes |
| train | multi-worker peers that never start; SIGTERM | test_training_startup.py |
| evaluate | a NaN pixel in the test shards | one line naming the file and row, no outputs |
| evaluate | a model of another shard set | refused naming both shard sets |
| evaluate | a model with other channels | refused naming the channels |
| evaluate | a test shard deleted or truncated | one line naming the file |
| report | an evaluation or training history of another shard set | refused naming both (test_report.py) |
| workflow | bands, selection and matching that do not fit | config error naming the keys (test_workflow.py) |
| workflow | --dag, --rulegraph without --cores | they work (test_workflow.py) |
| workflow | another mismatch in a finished directory | the new verdict, from a new model (test_controls.py) |
| end to end | SIGKILL mid-cutouts and mid-shards, then a re-run | sha256-identical shards and metrics |
| evaluate | every test example one score (42, 400, 4000) | inconclusive, "did not rank" (test_verdict.py) |
| evaluate | a test split of 2-6 examples perfectly split | inconclusive, never against its test (test_verdict.py) |
| shards | fewer than 4 test examples of a class | refused with the number it needs (test_shards.py) |
| shards | 3 bricks and any test fraction | says the share it got and why (test_shards.py) |
| predict | parts from a model replaced at one path | refused naming each model's sha256 (test_predict.py) |
| predict | one model reached by two paths | accepted: one model (test_predict.py) |
| evaluate | --predictions of model A with --model B | refused naming both (test_predict.py) |
| evaluate | parts overlapping or missing | repeated and missing shards named with files (test_predict.py) |
| workflow | NaN or infinite floats; strengths out of range | refused at planning naming the key (test_workflow.py) |
| workflow | a strength with none; mock.size 100 | refused at planning naming the key (test_workflow.py) |
| workflow | shards.match on a text column | refused at planning; the job names the file (test_shards.py) |
| workflow | trees and bricks file under a path with a space | each path one word in every command (test_workflow.py) |
| all stages | a read-only output location | one line naming it, exit 2, nothing left |
| report | bad sensitivity table, metrics or arrays | one line naming file, key, column, row (test_report.py) |
| report | a missing input; a re-run into an old report | nothing written; replaced whole (test_report.py) |
| evaluate | a manifest of another format_version | refused naming both (test_evaluate.py) |
| evaluate | float16 pixels clipped | told in metrics.json and the report (test_evaluate.py) |
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures.cutouts_files import write_fixture
from fixtures.synthetic_shards import save_model, write_shard_set
from fixtures.tinysurvey import BRICK, OTHER_BRICK, TinySurvey, cutouts_cli
from fixtures.training_runs import CLUSTER_VARIABLES, child_environment
from fixtures.training_shards import write_shard_set as write_training_shards

from realfake import atomic, paths
from realfake.cli import main

# A small training run: 2 shards of 64 training stamps, batch 16: 8 steps per epoch, checkpoints every 4.
TRAIN = ["--epochs", "2", "--batch-size", "16", "--seed", "3", "--checkpoint-every", "4", "--keep-checkpoints", "20",
         "--profile-steps", "none", "--model", "compact"]  # fmt: skip


def realfake(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``realfake <arguments>`` in a subprocess (stderr and stdout captured)."""
    return subprocess.run(
        [sys.executable, "-m", "realfake.cli", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=child_environment(),
        timeout=600,
    )


def error_lines(stderr: str, stage: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"realfake {stage}: error:")]


def one_error_line(capsys, stage: str) -> str:
    stderr = capsys.readouterr().err
    lines = error_lines(stderr, stage)
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def digests(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory``, by relative path."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path(directory).rglob("*"))
        if path.is_file()
    }


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def dead_process_id() -> int:
    """The id of a process that has just exited (not running now)."""
    process = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    return int(process.stdout)


@pytest.fixture
def tiny(tmp_path: Path) -> TinySurvey:
    return TinySurvey(tmp_path / "survey")


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 64 KiB file system (tmpfs), to fill. Mounting needs root or passwordless sudo, as the SLURM tests do."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)]
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    mounted = subprocess.run([*prefix, *command], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the full-disk tests (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run([*prefix, "umount", str(mount_point)], check=True)


# -- cutouts ------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt(path: Path) -> None:
    path.write_bytes(b"this is not a FITS file\n" * 300)


def _dr5_coadd(tiny: TinySurvey, kind: str, band: str) -> Path:
    return Path(tiny.dr5_coadd_dir()) / paths.coadd_name(BRICK, kind, band)


def _remove_band(tiny: TinySurvey, band: str) -> None:
    for kind in paths.COADD_KINDS:
        _dr5_coadd(tiny, kind, band).unlink()


# (kind, problem, how to cause it in an intact tiny survey, text the one-line error must contain)
BAD_INPUTS = [
    ("real", "missing coadd image", lambda tiny: _dr5_coadd(tiny, "image", "r").unlink(), "1238p245-image-r.fits.fz"),
    ("real", "truncated coadd", lambda tiny: _truncate(_dr5_coadd(tiny, "invvar", "z")), "1238p245-invvar-z.fits.fz"),
    ("real", "corrupt coadd", lambda tiny: _corrupt(_dr5_coadd(tiny, "image", "g")), "1238p245-image-g.fits.fz"),
    ("real", "missing band", lambda tiny: _remove_band(tiny, "g"), "1238p245-image-g.fits.fz"),
    ("real", "missing tractor", lambda tiny: tiny.tractor_path().unlink(), "tractor-1238p245.fits"),
    ("real", "corrupt tractor", lambda tiny: _corrupt(tiny.tractor_path()), "tractor-1238p245.fits"),
    ("real", "tractor without a column", lambda tiny: tiny.write_tractor([64.0], [64.0], drop=("flux_z",)),
     "column(s): flux_z"),
    ("real", "corrupt brick table", lambda tiny: _corrupt(tiny.dr5 / "survey-bricks.fits"), "survey-bricks.fits"),
    ("sim", "missing rs dir coadd",
     lambda tiny: (Path(tiny.rsdir_coadd_dir("rs0")) / paths.coadd_name(BRICK, "invvar", "g")).unlink(),
     "rs0/legacysurvey-1238p245-invvar-g"),
    ("sim", "truncated simcat", lambda tiny: _truncate(tiny.simcat_path("rs0")), "simcat-elg-1238p245.fits"),
    ("sim", "simcat without a column", lambda tiny: tiny.write_simcat("rs0", [64.0], [64.0], drop=("ra",)),
     "column(s) ra;"),
    ("sim", "no rs dirs", lambda tiny: tiny.simcat_path("rs0").unlink(), "brick 1238p245 has no obiwan rs dir"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "problem", "break_input", "named"), BAD_INPUTS, ids=[case[1] for case in BAD_INPUTS])
def test_cutouts_bad_input_is_one_line_naming_it_exit_2_and_no_file(
    tiny, tmp_path, capsys, kind, problem, break_input, named
):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    tiny.write_coadd(tiny.rsdir_coadd_dir("rs0"), tiny.constant_planes())
    tiny.write_tractor([64.0], [64.0])
    tiny.write_simcat("rs0", [64.0], [64.0])
    out = tmp_path / "out" / "out.h5"
    assert cutouts_cli(tiny.arguments(kind, out, "--selection", "all_primary"), capsys)[0] == 0  # intact: works
    out.unlink()

    break_input(tiny)
    status, stderr = cutouts_cli(tiny.arguments(kind, out, "--selection", "all_primary"), capsys)
    assert status == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("realfake cutouts: error: ")
    assert named in stderr
    assert list(out.parent.iterdir()) == []  # no output, no temporary left behind


def test_cutouts_of_a_brick_not_in_the_brick_table_are_refused(tiny, tmp_path, capsys):
    out = tmp_path / "out.h5"
    arguments = tiny.arguments("real", out)
    arguments[arguments.index("--brick") + 1] = OTHER_BRICK
    status, stderr = cutouts_cli(arguments, capsys)
    assert status == 2 and len(stderr.strip().splitlines()) == 1
    assert f"brick {OTHER_BRICK} is not in the survey brick table {tiny.dr5 / 'survey-bricks.fits'}" in stderr
    assert not out.exists()


def test_cutouts_refuse_a_selection_that_cuts_on_a_band_left_out(tiny, tmp_path, capsys):
    out = tmp_path / "out.h5"
    status, stderr = cutouts_cli(tiny.arguments("real", out, "--bands", "gr"), capsys)
    assert status == 2
    assert stderr.strip() == (
        "realfake cutouts: error: selection elg_padded cuts on bands g, r, z, but the bands are g, r: "
        "add z to the bands or choose another selection"
    )
    assert not out.exists()


def test_cutouts_on_a_full_disk_are_one_line_and_leave_nothing(tiny, small_disk, capsys):
    tiny.write_coadd(tiny.dr5_coadd_dir(), tiny.constant_planes())
    tiny.write_tractor([64.0], [64.0])  # one stamp of 64 x 64 x 6 float32: 96 KiB, more than the disk holds
    out = small_disk / "123" / f"{BRICK}.h5"
    status, stderr = cutouts_cli(tiny.arguments("real", out, "--selection", "all_primary"), capsys)
    assert status == 2
    assert stderr.strip() == (
        f"realfake cutouts: error: cannot write {out}: No space left on device; nothing was left under that name"
    )
    assert list(out.parent.iterdir()) == []


def test_temporaries_of_killed_writers_are_removed_and_others_kept(tmp_path):
    target = tmp_path / f"{BRICK}.h5"
    host, dead, alive = atomic._host(), dead_process_id(), os.getppid()
    stale = [tmp_path / f".{target.name}.tmp-{host}-{dead}", tmp_path / f".{target.name}.tmp-{dead}"]
    kept = [tmp_path / f".{target.name}.tmp-{host}-{alive}", tmp_path / f".{target.name}.tmp-elsewhere-{dead}",
            tmp_path / f".other.h5.tmp-{host}-{dead}"]  # fmt: skip
    for path in [*stale, *kept]:
        path.write_bytes(b"half written")
    with atomic.atomic_output(target) as temporary:
        assert temporary.name == f".{target.name}.tmp-{host}-{os.getpid()}"
        temporary.write_bytes(b"complete")
    assert sorted(tmp_path.iterdir()) == sorted([target, *kept])
    assert target.read_bytes() == b"complete"


# -- shards -------------------------------------------------------------------------------------


@pytest.fixture
def cutouts(tmp_path: Path) -> Path:
    write_fixture(tmp_path / "cutouts", {"real": [40, 30], "sim": [30, 40]})
    return tmp_path / "cutouts"


def shards_arguments(cutouts: Path, out: Path) -> list[str]:
    # Two bricks: too few for a split by brick (three at least), so by example.
    return ["shards", "--real", str(cutouts / "real"), "--sim", str(cutouts / "sim"), "--out", str(out),
            "--shard-size", "16", "--split", "example"]  # fmt: skip


def test_shards_name_a_cutouts_file_truncated_under_its_final_name_and_say_to_delete_it(cutouts, tmp_path, capsys):
    broken = cutouts / "sim" / "124" / "1241p245.h5"
    truncate(broken)
    out = tmp_path / "shards"
    assert main(shards_arguments(cutouts, out)) == 2
    line = one_error_line(capsys, "shards")
    assert line.startswith(f"realfake shards: error: cannot read cutouts file {broken} (")
    assert line.endswith(
        "); it is truncated or corrupt: delete it, and its cutouts job (or `realfake cutouts`) makes it again"
    )
    assert not out.exists() and not list(tmp_path.glob(".shards.*"))


def test_shards_on_a_full_disk_are_one_line_and_leave_nothing(cutouts, small_disk, capsys):
    out = small_disk / "shards"
    assert main(shards_arguments(cutouts, out)) == 2
    assert one_error_line(capsys, "shards") == (
        f"realfake shards: error: cannot write {out}: No space left on device; nothing was left under that name"
    )
    assert list(small_disk.iterdir()) == []


def test_shards_remove_the_staging_a_killed_run_left(cutouts, tmp_path, capsys):
    out = tmp_path / "shards"
    leftover = tmp_path / f".shards.tmp-{atomic._host()}-{dead_process_id()}"
    (leftover / ".train_buckets").mkdir(parents=True)
    (leftover / "xtrain_0.npy").write_bytes(b"\x93NUMPY half written")
    running = tmp_path / f".shards.tmp-{atomic._host()}-{os.getppid()}"
    running.mkdir()
    assert main(shards_arguments(cutouts, out)) == 0
    assert f"shards: removed the staging left by a killed run: {leftover}" in capsys.readouterr().err
    assert not leftover.exists() and running.exists()
    assert (out / "manifest.json").is_file()


# -- train --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def training_shards(tmp_path_factory) -> Path:
    return write_training_shards(tmp_path_factory.mktemp("faults") / "shards", train_shards=2, test_shards=1)


@pytest.fixture(scope="module")
def finished_run(training_shards, tmp_path_factory) -> Path:
    """A finished 2-epoch run (16 steps): checkpoints ckpt-4, -8, -12, -16, model, history."""
    out = tmp_path_factory.mktemp("finished") / "train"
    result = realfake("train", "--shards", str(training_shards), "--out", str(out), *TRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture
def no_cluster(monkeypatch):
    for name in CLUSTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def copy_of(finished_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = shutil.copytree(finished_run, tmp_path / "train")
    return out, out / "ckpts"


def train(shards: Path, out: Path, *arguments: str) -> subprocess.CompletedProcess:
    return realfake("train", "--shards", str(shards), "--out", str(out), *arguments)


def test_train_names_a_deleted_or_truncated_shard(training_shards, tmp_path, capsys):
    shards = shutil.copytree(training_shards, tmp_path / "shards")
    (shards / "xtrain_1.npy").unlink()
    assert main(["train", "--shards", str(shards), "--out", str(tmp_path / "out")]) == 2
    assert one_error_line(capsys, "train") == (
        f"realfake train: error: {shards / 'xtrain_1.npy'} is missing "
        f"(listed in {shards / 'manifest.json'} as splits.train.shards[1])"
    )
    shutil.copy(training_shards / "xtrain_1.npy", shards / "xtrain_1.npy")
    truncate(shards / "ytest_0.npy")
    assert main(["train", "--shards", str(shards), "--out", str(tmp_path / "out")]) == 2
    assert one_error_line(capsys, "train").startswith(
        f"realfake train: error: {shards / 'ytest_0.npy'}: not a readable .npy file ("
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_train_stops_at_a_nan_pixel_naming_the_file_and_row(training_shards, tmp_path, capsys, no_cluster):
    shards = shutil.copytree(training_shards, tmp_path / "shards")
    stamps = np.load(shards / "xtrain_1.npy")
    stamps[17, 30, 30, 1] = np.nan
    np.save(shards / "xtrain_1.npy", stamps)
    # --no-deterministic: in this process, leave op determinism (process-wide) off for the tests that follow.
    arguments = ["--epochs", "1", "--batch-size", "64", "--profile-steps", "none", "--shuffle-shards", "1",
                 "--no-deterministic"]  # fmt: skip
    assert main(["train", "--shards", str(shards), "--out", str(tmp_path / "out"), *arguments]) == 2
    assert one_error_line(capsys, "train") == (
        f"realfake train: error: non-finite pixels in {shards / 'xtrain_1.npy'} row 17"
    )
    assert not (tmp_path / "out" / "model.keras").exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "garbage", "naming nothing"])
def test_a_lost_checkpoint_pointer_resumes_from_the_newest_complete_checkpoint(
    damage, training_shards, finished_run, tmp_path
):
    out, ckpts = copy_of(finished_run, tmp_path)
    pointer = ckpts / "checkpoint"
    if damage == "missing":
        pointer.unlink()
    else:
        pointer.write_text(
            "not a checkpoint state {\n" if damage == "garbage" else 'model_checkpoint_path: "ckpt-99"\n'
        )
    # A later save cut short by a kill: newer, but not complete.
    (ckpts / "ckpt-20.index").write_bytes((ckpts / "ckpt-16.index").read_bytes())
    data = (ckpts / "ckpt-16.data-00000-of-00001").read_bytes()
    (ckpts / "ckpt-20.data-00000-of-00001").write_bytes(data[: len(data) // 2])
    kept = digests(ckpts)
    result = train(training_shards, out, *[value if value != "2" else "3" for value in TRAIN])
    assert result.returncode == 0, result.stderr[-3000:]
    problem = "is missing" if damage == "missing" else "names no readable checkpoint"
    assert (
        f"{pointer} {problem}: {ckpts / 'ckpt-16'} is the newest complete checkpoint in {ckpts}; "
        f"resuming from {ckpts / 'ckpt-16'} at epoch 3 step 0 (global step 16)"
    ) in result.stderr
    history = json.loads((out / "history.json").read_text())
    assert [epoch["global_step"] for epoch in history["epochs"]] == [8, 16, 24]
    for name in ("ckpt-4.index", "ckpt-16.index", "ckpt-16.data-00000-of-00001"):
        assert digests(ckpts)[name] == kept[name]  # resumed from, never overwritten


@pytest.mark.slow
def test_no_complete_checkpoint_and_no_pointer_stop_naming_the_directory(training_shards, finished_run, tmp_path):
    out, ckpts = copy_of(finished_run, tmp_path)
    (ckpts / "checkpoint").unlink()
    for data in ckpts.glob("ckpt-*.data-*"):
        truncate(data)
    before = digests(out)
    result = train(training_shards, out, *TRAIN)
    assert result.returncode == 2
    assert error_lines(result.stderr, "train") == [
        f"realfake train: error: {ckpts / 'checkpoint'} is missing and no checkpoint in {ckpts} reads back "
        f"(ckpt-4, ckpt-8, ckpt-12, ckpt-16); move {ckpts} away to start from scratch"
    ]
    assert "Traceback" not in result.stderr
    assert digests(out) == before


@pytest.mark.slow
def test_a_truncated_checkpoint_data_file_is_one_line_and_exit_2(training_shards, finished_run, tmp_path):
    out, ckpts = copy_of(finished_run, tmp_path)
    truncate(ckpts / "ckpt-16.data-00000-of-00001")
    before = digests(out)
    result = train(training_shards, out, *TRAIN)
    assert result.returncode == 2
    lines = error_lines(result.stderr, "train")
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert re.fullmatch(
        rf"realfake train: error: {re.escape(str(ckpts / 'ckpt-16'))}: cannot (read|restore) this checkpoint "
        rf"\(.+\); move {re.escape(str(ckpts))} away to start from scratch",
        lines[0],
    ), lines[0]
    assert digests(out) == before


@pytest.mark.slow
def test_checkpoints_of_another_shard_set_are_set_aside_and_training_starts_afresh(finished_run, tmp_path):
    from realfake.formats.model import model_shard_set, read_model

    out, ckpts = copy_of(finished_run, tmp_path)
    old = json.loads((out / "history.json").read_text())["shard_set"]
    other = write_training_shards(tmp_path / "other", train_shards=2, test_shards=1, seed=9)
    new = json.loads((other / "manifest.json").read_text())["identity"]
    assert new != old
    result = train(other, out, *TRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    superseded = out / "superseded" / old[:12]
    assert (
        f"{ckpts / 'ckpt-16'} was trained on shard set {old[:12]}, but {other} is shard set {new[:12]}: the previous "
        f"run's checkpoints, logs, profile, best weights, model and history are moved to {superseded} (kept, not "
        f"deleted); starting from scratch"
    ) in result.stderr
    assert sorted(path.name for path in superseded.iterdir()) == [
        "best",
        "ckpts",
        "history.json",
        "logs",
        "model.keras",
    ]
    assert digests(superseded / "ckpts") == digests(finished_run / "ckpts")
    assert json.loads((superseded / "history.json").read_text())["shard_set"] == old
    history = json.loads((out / "history.json").read_text())
    assert history["shard_set"] == new
    assert [epoch["global_step"] for epoch in history["epochs"]] == [8, 16]  # trained from step 0
    assert model_shard_set(read_model(out / "model.keras")) == new


@pytest.mark.slow
def test_the_same_shard_set_elsewhere_resumes(training_shards, finished_run, tmp_path):
    out, ckpts = copy_of(finished_run, tmp_path)
    moved = shutil.copytree(training_shards, tmp_path / "moved-shards")
    result = train(moved, out, *TRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{ckpts / 'ckpt-16'} has finished 2 epochs: nothing to train" in result.stderr
    assert not (out / "superseded").exists()


# -- evaluate -----------------------------------------------------------------------------------


@pytest.fixture
def evaluation_inputs(tmp_path: Path) -> tuple[Path, Path, dict]:
    shards = tmp_path / "shards"
    manifest = write_shard_set(shards, train_examples=16, test_examples=24, shard_size=8)
    save_model(tmp_path / "model.keras", manifest)
    return shards, tmp_path / "model.keras", manifest


def evaluate(shards: Path, model: Path, out: Path) -> int:
    return main(["evaluate", "--shards", str(shards), "--model", str(model), "--out", str(out), "--bootstrap", "10"])


def test_evaluate_refuses_nan_pixels_in_the_test_shards(evaluation_inputs, tmp_path, capsys):
    shards, model, _ = evaluation_inputs
    stamps = np.load(shards / "xtest_1.npy")
    stamps[5, 10, 20, 3] = np.nan
    np.save(shards / "xtest_1.npy", stamps)
    assert evaluate(shards, model, tmp_path / "out") == 2
    assert one_error_line(capsys, "evaluate") == (
        f"realfake evaluate: error: non-finite pixels in {shards / 'xtest_1.npy'} row 5; "
        f"the shard set is damaged: make it again"
    )
    assert not (tmp_path / "out").exists()


def test_evaluate_refuses_a_model_of_another_shard_set(evaluation_inputs, tmp_path, capsys):
    shards, _, manifest = evaluation_inputs
    other = tmp_path / "other.keras"
    save_model(other, manifest, shard_set="fedcba9876543210" * 4)
    assert evaluate(shards, other, tmp_path / "out") == 2
    assert one_error_line(capsys, "evaluate") == (
        f"realfake evaluate: error: model {other} was trained on shard set fedcba987654, but {shards} is "
        f"shard set {manifest['identity'][:12]}: train it on these shards first (`realfake train`)"
    )
    assert not (tmp_path / "out").exists()


def test_evaluate_names_a_deleted_or_truncated_test_shard(evaluation_inputs, tmp_path, capsys):
    shards, model, _ = evaluation_inputs
    saved = (shards / "xtest_2.npy").read_bytes()
    (shards / "xtest_2.npy").unlink()
    assert evaluate(shards, model, tmp_path / "out") == 2
    assert one_error_line(capsys, "evaluate") == (
        f"realfake evaluate: error: {shards / 'xtest_2.npy'} is missing "
        f"(listed in {shards / 'manifest.json'} as splits.test.shards[2])"
    )
    (shards / "xtest_2.npy").write_bytes(saved[: len(saved) // 2])
    assert evaluate(shards, model, tmp_path / "out") == 2
    assert one_error_line(capsys, "evaluate").startswith(
        f"realfake evaluate: error: {shards / 'xtest_2.npy'}: not a readable .npy file ("
    )
    assert not (tmp_path / "out").exists()


def test_evaluate_refuses_a_model_with_other_channels(tmp_path, capsys):
    shards = tmp_path / "shards"
    manifest = write_shard_set(shards, train_examples=8, test_examples=8)
    save_model(tmp_path / "three.keras", manifest, channels=3)
    status = main(
        ["evaluate", "--shards", str(shards), "--model", str(tmp_path / "three.keras"), "--out", str(tmp_path / "o")]
    )
    assert status == 2
    line = one_error_line(capsys, "evaluate")
    assert "three.keras" in line and "6 channels (g, r, z, ivar_g, ivar_r, ivar_z)" in line
    assert not (tmp_path / "o").exists()


# -- end to end: killed mid-cutouts and mid-shards ----------------------------------------------

MOCK = ["--bricks", "2", "--size", "520", "--fakes-per-rsdir", "40", "--seed", "4"]
TREES = ["--dr5-dir", "mock/dr5", "--obiwan-dir", "mock/obiwan"]


@pytest.fixture(scope="module")
def small_mock(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mock")
    result = realfake("mock-survey", "--out", "mock", *MOCK, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "mock"


def kill_when(command: list[str], cwd: Path, ready) -> bool:
    """Start ``command``; SIGKILL it as soon as ``ready()`` is true. False if it finished first."""
    process = subprocess.Popen(command, cwd=cwd, env=child_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    while process.poll() is None:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.001)
    return False


def cutouts_command(kind: str) -> list[str]:
    return [sys.executable, "-m", "realfake.cli", "cutouts", "--kind", kind, "--bricks", "mock/bricks.txt",
            "--out-dir", f"cutouts/{kind}", *TREES]  # fmt: skip


def shards_command() -> list[str]:
    return [sys.executable, "-m", "realfake.cli", "shards", "--real", "cutouts/real", "--sim", "cutouts/sim",
            "--out", "shards", "--bricks", "mock/bricks.txt", "--shard-size", "64", "--split", "example",
            *TREES]  # fmt: skip


def run_stages(root: Path, interrupt: bool) -> dict[str, str]:
    """Cutouts, shards, train and evaluate in ``root`` (relative paths, so runs in two roots can be compared);
    with ``interrupt``, the real cutouts batch is killed while it writes a file and the shards while they write
    their staging, and each is re-run. Returns the sha256 of every shard and of metrics.json."""
    if interrupt:
        for attempt in range(20):
            caught = kill_when(cutouts_command("real"), root, lambda: list(root.glob("cutouts/real/*/.*.tmp-*")))
            if caught:
                break
            shutil.rmtree(root / "cutouts" / "real")
        assert caught, "the real cutouts finished before a kill could catch a file being written"
        assert list(root.glob("cutouts/real/*/.*.tmp-*")), "the kill left a temporary behind"
    for kind in ("real", "sim"):
        result = subprocess.run(
            cutouts_command(kind), cwd=root, env=child_environment(), capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-3000:]
    assert not list(root.glob("cutouts/*/*/.*.tmp-*"))
    if interrupt:
        assert kill_when(shards_command(), root, lambda: list(root.glob(".shards.tmp-*/xtest_0.npy")))
        assert list(root.glob(".shards.tmp-*")) and not (root / "shards").exists()
    result = subprocess.run(shards_command(), cwd=root, env=child_environment(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(root.glob(".shards.tmp-*"))
    for arguments in (
        ["train", "--shards", "shards", "--out", "train", "--epochs", "1", "--batch-size", "16", "--deterministic",
         "--model", "compact", "--profile-steps", "none"],
        ["evaluate", "--shards", "shards", "--model", "train/model.keras", "--out", "evaluate", "--bootstrap", "100"],
    ):  # fmt: skip
        result = realfake(*arguments, cwd=root)
        assert result.returncode == 0, result.stderr[-3000:]
    return {**digests(root / "shards"), "metrics.json": digests(root / "evaluate")["metrics.json"]}


@pytest.mark.slow
def test_killed_cutouts_and_shards_rerun_to_identical_shards_and_metrics(small_mock, tmp_path):
    results = {}
    for name, interrupt in (("uninterrupted", False), ("killed", True)):
        root = tmp_path / name
        root.mkdir()
        (root / "mock").symlink_to(small_mock)
        results[name] = run_stages(root, interrupt)
    assert len(results["killed"]) > 5
    assert results["killed"] == results["uninterrupted"]


# -- read-only output locations -------------------------------------------------------------------


@pytest.fixture
def read_only_disk(tmp_path: Path):
    """A read-only file system (tmpfs remounted read-only) holding one empty directory, ``existing``: root can
    write wherever chmod forbids it, but not here. Mounting needs root or passwordless sudo."""
    mount_point = tmp_path / "read-only"
    mount_point.mkdir()
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    mounted = subprocess.run(
        [*prefix, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the read-only tests (needs root): {mounted.stderr.strip()}")
    try:
        subprocess.run([*prefix, "mkdir", str(mount_point / "existing")], check=True)
        subprocess.run([*prefix, "mount", "-o", "remount,ro", str(mount_point)], check=True)
        yield mount_point
    finally:
        subprocess.run([*prefix, "umount", str(mount_point)], check=True)


def read_only_line(stage: str, path: Path) -> str:
    return f"realfake {stage}: error: cannot write {path}: Read-only file system; nothing was left under that name"


def test_shards_to_a_read_only_location_are_one_line_and_exit_2(cutouts, read_only_disk, capsys):
    out = read_only_disk / "shards"
    assert main(shards_arguments(cutouts, out)) == 2
    assert one_error_line(capsys, "shards") == read_only_line("shards", out)
    assert [path.name for path in read_only_disk.iterdir()] == ["existing"]


def test_predict_to_a_read_only_directory_is_one_line_and_exit_2(evaluation_inputs, read_only_disk, capsys):
    shards, model, _ = evaluation_inputs
    out = read_only_disk / "existing" / "predictions.parquet"  # the directory exists: the file's write fails
    assert main(["predict", "--shards", str(shards), "--model", str(model), "--out", str(out)]) == 2
    assert one_error_line(capsys, "predict") == read_only_line("predict", out)
    assert list(out.parent.iterdir()) == []


def test_evaluate_to_a_read_only_location_is_one_line_and_exit_2(evaluation_inputs, read_only_disk, capsys):
    shards, model, _ = evaluation_inputs
    out = read_only_disk / "evaluate" / "full"  # the directories' mkdir fails
    assert evaluate(shards, model, out) == 2
    assert one_error_line(capsys, "evaluate") == read_only_line("evaluate", out)
    assert [path.name for path in read_only_disk.iterdir()] == ["existing"]


def test_report_to_a_read_only_location_is_one_line_and_exit_2(evaluation_inputs, read_only_disk, tmp_path, capsys):
    shards, model, manifest = evaluation_inputs
    assert evaluate(shards, model, tmp_path / "evaluate") == 0
    (tmp_path / "train").mkdir()
    epochs = [{"epoch": 1, "train_loss": 0.7, "train_accuracy": 0.5, "validation_loss": 0.7}]
    (tmp_path / "train" / "history.json").write_text(json.dumps({"shard_set": manifest["identity"], "epochs": epochs}))
    capsys.readouterr()
    for out in (read_only_disk / "report", read_only_disk / "existing"):  # a new report, and one replacing a directory
        arguments = ["report", "--evaluate", str(tmp_path / "evaluate"), "--shards", str(shards), "--train",
                     str(tmp_path / "train"), "--out", str(out)]  # fmt: skip
        assert main(arguments) == 2
        assert one_error_line(capsys, "report") == read_only_line("report", out)
    assert [path.name for path in read_only_disk.iterdir()] == ["existing"]
    assert list((read_only_disk / "existing").iterdir()) == []

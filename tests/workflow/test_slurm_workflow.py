"""The workflow under the NERSC SLURM profile, run on the local SLURM cluster.

The whole workflow runs twice on the same small mock survey (2 bricks of 512 x 512
pixels, 1 rs dir, 2 training epochs), each in its own copy of the repository:

- with profiles/local (one process per job, one cutouts job per brick and kind, one
  training worker): the reference;
- with profiles/nersc, through SLURM (scripts/slurm_local.sh): every job but the local
  rules is an sbatch job, the cutouts run as one MPI job per kind over a batch of both
  bricks (srun, 2 ranks), and training runs as 2 srun tasks, the two workers of a
  multi-worker training whose cluster each reads from SLURM's environment.

The NERSC profile is used as it is, except for what this one 2-CPU node cannot give
(TEST_PROFILE_CHANGES): no account, a partition that exists here, short time limits,
one node, two tasks of one CPU, and one batch per kind. The results must match: the
same shards byte for byte, and the trained weights within the tolerance of two workers
against one (tests/training/test_training.py: rtol 1e-4, atol 1e-5; measured here: max
|difference| 1.4e-6).

A dry run with the profile for a 2000-brick list (real files: a synthetic tree of empty
files, from scripts/bench_dryrun.py, which times the same for 100k bricks) checks the
batch plan and the number of SLURM submissions; it needs no cluster.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from fixtures import REPOSITORY

from realfake.mock.layout import mock_brick_names

BIN = Path(sys.executable).parent
WORKFLOW_PARTS = ["Snakefile", "workflow", "config", "profiles", "environment.yml"]
RUN_TIMEOUT_S = 600

# The survey and stage settings of both runs: small, so that the two runs take a few
# minutes, yet with several training steps (62 training examples, 3 steps of 16 per epoch, 2 epochs
# so that the profiler's default global steps 3 to 6 are reached; no validation split, so the last
# epoch's weights are the model's).
CONFIG = {
    "mock": {"bricks": 2, "size": 512, "rsdirs": 1, "fakes_per_rsdir": 40},
    # Two bricks: split by example (a brick split would leave one brick to train on).
    "shards": {"validation_fraction": 0.0, "split": "example"},
    # lenet: the comparison checks the data-parallel machinery, and Adam turns the last-bit
    # differences of the compact model's gradients into whole steps (tests/training/test_training.py).
    "train": {"model": "lenet", "epochs": 2, "batch_size": 16, "checkpoint_every": 2, "log_every": 1, "select": "last"},
    "evaluate": {"bootstrap": 50},
}
BRICKS = mock_brick_names(2)

# What the NERSC profile asks for that this machine's one 2-CPU node cannot give.
TEST_PROFILE_CHANGES = {
    # No account here (none is needed without an accounting database); the partition
    # exists here (NERSC selects by QOS and constraint, with no partition).
    "default-resources": {"slurm_account": None, "slurm_partition": "debug", "runtime": 10},
    "set-resources": {
        "cutouts": {"runtime": 10},
        # One node, 2 ranks of one CPU each (NERSC: 2 nodes, 64 ranks of 2 CPUs).
        "cutouts_batch": {
            "nodes": 1,
            "tasks": 2,
            "cpus_per_task": 1,
            "mpi": "srun --cpus-per-task=1 --cpu-bind=cores",
            "runtime": 10,
        },
        # One CPU per part of the prediction (NERSC: a KNL node each).
        "predict": {"cpus_per_task": 1, "runtime": 10},
        # One node, 2 workers of one CPU each (NERSC: 2 KNL nodes, one worker each).
        "train": {
            "nodes": 1,
            "tasks": 2,
            "cpus_per_task": 1,
            "mpi": "srun --cpus-per-task=1 --cpu-bind=cores",
            "runtime": 10,
        },
    },  # fmt: skip
    "set-threads": {"train": 1},
    # Both bricks in one batch per kind, so each of the 2 ranks has a brick to cut; the
    # prediction in 2 parts (NERSC: 16).
    "set-scatter": {"cutouts": 1, "predict": 2},
    "latency-wait": 5,
}
# Command-line options of the SLURM runs (snakemake-executor-plugin-slurm 2.8).
SLURM_OPTIONS = [
    # Accepted, but read by no code of plugin 2.8.0: without slurm_account the plugin
    # tries to guess one with sacct, finds none and submits without -A.
    "--slurm-no-account",
    # No accounting database here: job states come from squeue (MinJobAge=3600).
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "1",
    # Each finished job is seen at the next round of status checks (Snakemake's default: every 10 s); on this
    # one-node cluster a round every 2 s saves the jobs' wait in series.
    "--seconds-between-status-checks", "2",
    "--slurm-keep-successful-logs",
]  # fmt: skip
# The rules whose jobs run where Snakemake runs, never submitted.
LOCAL_RULES = {"all", "cutouts_batch_bricks"}
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S+/slurm_logs/rule_(\w+?)/")
# Two workers against one, after the same steps: tests/training/test_training.py's tolerance.
MULTI_WORKER_RTOL, MULTI_WORKER_ATOL = 1e-4, 1e-5


def merged(base: dict, changes: dict) -> dict:
    """base with changes merged in, key by key; a change to None removes the key."""
    result = dict(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def repository_copy(directory: Path) -> Path:
    """A copy of the workflow in directory, with the test config (test-config.yaml) and
    the test's variant of the NERSC profile (profiles/nersc-test)."""
    directory.mkdir(parents=True)
    for part in WORKFLOW_PARTS:
        source = REPOSITORY / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, directory / part)
    (directory / "test-config.yaml").write_text(yaml.safe_dump(CONFIG))
    nersc = yaml.safe_load((REPOSITORY / "profiles" / "nersc" / "config.v8+.yaml").read_text())
    test_profile = directory / "profiles" / "nersc-test"
    test_profile.mkdir()
    (test_profile / "config.v8+.yaml").write_text(yaml.safe_dump(merged(nersc, TEST_PROFILE_CHANGES)))
    return directory


def snakemake(directory: Path, *arguments: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """The project's snakemake in directory, outside any cluster or TF_CONFIG of the
    caller (a training cluster can then only come from the jobs' own srun)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "SBATCH_", "SRUN_")) and key != "TF_CONFIG"
    }
    environment["PATH"] = os.pathsep.join([str(BIN), environment.get("PATH", "")])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY / "src"), environment.get("PYTHONPATH")]))
    command = [str(BIN / "snakemake"), *arguments]
    process = subprocess.Popen(
        command, cwd=directory, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: Snakemake then cancels the SLURM jobs it submitted.
        process.terminate()
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"snakemake {' '.join(arguments)} ran over {timeout} s:\n{output[-6000:]}")
    return subprocess.CompletedProcess(command, process.returncode, output)


def submitted_jobs(output: str) -> list[tuple[str, str]]:
    """(SLURM job id, rule) of every job a run submitted."""
    return SUBMITTED.findall(output)


def queue_records(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """What squeue (finished jobs included) says of each job: state, partition, CPUs,
    nodes, features and the plugin's comment (rule_<rule>...)."""
    fields = ["state", "partition", "cpus", "nodes", "features", "comment"]
    result = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--jobs", ",".join(job_ids), "--format=%i|%T|%P|%C|%D|%f|%k"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    records = {}
    for line in result.stdout.splitlines():
        job_id, *values = line.strip().split("|")
        records[job_id] = dict(zip(fields, values))
    return records


def shard_files(run: Path) -> dict[str, bytes]:
    shards = run / "results" / "shards"
    return {path.name: path.read_bytes() for path in sorted(shards.iterdir())}


def stamps(path: Path) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as cutouts:
        return cutouts["stamps"][...]


def model_weights(path: Path) -> list[np.ndarray]:
    import keras

    import realfake.model.network  # noqa: F401  (registers the model's custom layers)

    return [np.asarray(weight) for weight in keras.saving.load_model(path, compile=False).weights]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    """The whole workflow with the local profile: the reference."""
    run = repository_copy(tmp_path_factory.mktemp("local") / "repository")
    result = snakemake(run, "--profile", "profiles/local", "--configfile", "test-config.yaml")
    assert result.returncode == 0, result.stdout[-6000:]
    return run


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory) -> tuple[Path, str]:
    """The whole workflow with the NERSC profile through SLURM; its directory and output."""
    run = repository_copy(tmp_path_factory.mktemp("slurm") / "repository")
    result = snakemake(run, "--profile", "profiles/nersc-test", "--configfile", "test-config.yaml", *SLURM_OPTIONS)
    assert result.returncode == 0, result.stdout[-6000:]
    return run, result.stdout


@pytest.mark.slurm
def test_every_job_but_the_local_ones_went_through_slurm(slurm_run):
    run, output = slurm_run
    jobs = submitted_jobs(output)
    rules = sorted(rule for _, rule in jobs)
    assert rules == sorted(
        ["mock_brick_table", "mock_brick", "mock_brick", "cutouts_batch", "cutouts_batch"]
        + ["shards", "train", "predict", "predict", "evaluate", "report"]
    )
    assert not LOCAL_RULES & set(rules)
    records = queue_records([job_id for job_id, _ in jobs])
    assert sorted(records) == sorted(job_id for job_id, _ in jobs)
    for job_id, rule in jobs:
        record = records[job_id]
        assert record["state"] == "COMPLETED", (rule, record)
        assert record["comment"].startswith(f"rule_{rule}"), (rule, record)
        assert record["partition"] == "debug", (rule, record)
        # The profile's constraints: KNL in quad/cache mode for training and prediction, Haswell for the rest.
        expected_features = "knl&quad&cache" if rule in ("train", "predict") else "haswell"
        assert record["features"] == expected_features, (rule, record)
        # Two tasks of one CPU for the MPI jobs; one for the others.
        assert record["cpus"] == ("2" if rule in ("cutouts_batch", "train") else "1"), (rule, record)
        assert (run / ".snakemake" / "slurm_logs" / f"rule_{rule}").is_dir()


@pytest.mark.slurm
def test_each_cutouts_batch_ran_as_two_mpi_ranks_under_srun(slurm_run):
    run, output = slurm_run
    for kind in ("real", "sim"):
        # The command the batch's SLURM job ran (its log, written inside the job): srun
        # with the profile's options and the original obiwan code's environment for each rank.
        (job_log,) = (run / ".snakemake" / "slurm_logs" / "rule_cutouts_batch" / f"{kind}_1-of-1").glob("*.log")
        assert re.search(
            r"^Shell command: srun --cpus-per-task=1 --cpu-bind=cores -n 2 env KMP_AFFINITY=disabled"
            r" MPICH_GNI_FORK_MODE=FULLCOPY MKL_NUM_THREADS=1 OMP_NUM_THREADS=1"
            rf" realfake cutouts --kind {kind} --bricks results/cutouts/batches/{kind}/1-of-1.txt"
            rf" --out-dir results/cutouts/{kind} ",
            job_log.read_text(),
            flags=re.MULTILINE,
        ), job_log.read_text()[-3000:]
        listed = (run / "results" / "cutouts" / "batches" / kind / "1-of-1.txt").read_text().split()
        assert listed == BRICKS
        assert (run / "results" / "cutouts" / "batches" / kind / "1-of-1.done").is_file()
        log = (run / "logs" / "cutouts" / "batches" / kind / "1-of-1.log").read_text()
        # One COMM_WORLD of 2 ranks: rank r cut brick r of the list.
        ranks = re.findall(rf"^cutouts {kind} \[rank (\d)/(\d)\]: brick (\w+) \(1/1\): \d+ stamps", log, re.M)
        assert sorted(ranks) == [("0", "2", BRICKS[0]), ("1", "2", BRICKS[1])], log
        for brick in BRICKS:
            assert (run / "results" / "cutouts" / kind / brick[:3] / f"{brick}.h5").is_file()
    # No per-brick job: the batches made every file.
    assert "rule cutouts:" not in output and "localrule cutouts:" not in output


@pytest.mark.slurm
def test_training_ran_as_two_workers_clustered_from_slurm(slurm_run):
    run, _ = slurm_run
    # The command the training's SLURM job ran: 2 srun tasks with the original obiwan code's KNL environment.
    (job_log,) = (run / ".snakemake" / "slurm_logs" / "rule_train").rglob("*.log")
    assert re.search(
        r"^Shell command: srun --cpus-per-task=1 --cpu-bind=cores -n 2 env OMP_NUM_THREADS=68"
        r" KMP_AFFINITY=granularity=fine,verbose,compact,1,0 KMP_SETTINGS=1 KMP_BLOCKTIME=1"
        r" realfake train --shards results/shards --out \$\(dirname results/train/full/model.keras\) --view full"
        r" --intra-op-threads 1 ",
        job_log.read_text(),
        flags=re.MULTILINE,
    ), job_log.read_text()[-3000:]
    log = (run / "logs" / "train" / "full.log").read_text()
    # Snakemake ran without TF_CONFIG (see snakemake()), so the two workers' cluster can
    # only have come from the SLURM variables srun gave each task.
    assert re.search(
        r"^train: 62 training examples in 1 shards, 0 validation .* "
        r"2 worker\(s\) from SLURM; this is worker 0 of (\S+):28780, \1:28781;"
        r" threads intra-op 1,",
        log,
        re.M,
    ), log
    # Both tasks joined TensorFlow's multi-worker coordination.
    assert "/job:worker/replica:0/task:1" in log
    history = json.loads((run / "results" / "train" / "full" / "history.json").read_text())
    assert history["workers"] == 2
    # Only the chief writes: one TensorBoard event file per split.
    assert len(list((run / "results" / "train" / "full" / "logs" / "train").glob("events.out.tfevents.*"))) == 1
    assert (run / "results" / "train" / "full" / "prof" / "trace.json.gz").is_file()


@pytest.mark.slurm
def test_slurm_results_match_the_local_run(slurm_run, local_run):
    run, _ = slurm_run
    local = shard_files(local_run)
    assert {name for name in local if name.endswith(".npy")} == {
        "xtrain_0.npy", "ytrain_0.npy", "xtest_0.npy", "ytest_0.npy"
    }  # fmt: skip
    assert shard_files(run) == local
    for kind in ("real", "sim"):
        for brick in BRICKS:
            path = Path("results") / "cutouts" / kind / brick[:3] / f"{brick}.h5"
            assert (run / path).is_file() and (local_run / path).is_file()

    one_worker = json.loads((local_run / "results" / "train" / "full" / "history.json").read_text())
    two_workers = json.loads((run / "results" / "train" / "full" / "history.json").read_text())
    assert one_worker["workers"] == 1 and two_workers["workers"] == 2
    assert two_workers["steps_per_epoch"] == one_worker["steps_per_epoch"] == 3
    np.testing.assert_allclose(
        two_workers["epochs"][0]["train_loss"], one_worker["epochs"][0]["train_loss"], rtol=MULTI_WORKER_RTOL
    )
    assert two_workers["epochs"][0]["validation_loss"] is one_worker["epochs"][0]["validation_loss"] is None
    weights = model_weights(run / "results" / "train" / "full" / "model.keras")
    reference = model_weights(local_run / "results" / "train" / "full" / "model.keras")
    assert [weight.shape for weight in weights] == [weight.shape for weight in reference]
    for weight, expected in zip(weights, reference):
        np.testing.assert_allclose(weight, expected, rtol=MULTI_WORKER_RTOL, atol=MULTI_WORKER_ATOL)
    # The same verdict: the same predicted classes, probabilities within the tolerance.
    verdicts = [json.loads((path / "results" / "evaluate" / "metrics.json").read_text())["verdict"]
                for path in (run, local_run)]  # fmt: skip
    for key in ("correct", "examples", "significant", "sentence"):
        assert verdicts[0][key] == verdicts[1][key], key
    np.testing.assert_allclose(verdicts[0]["log_loss"], verdicts[1]["log_loss"], rtol=MULTI_WORKER_RTOL)


@pytest.mark.slurm
def test_one_brick_reruns_on_its_own_as_one_slurm_job(slurm_run):
    run, _ = slurm_run
    brick = BRICKS[1]
    target = f"results/cutouts/real/{brick[:3]}/{brick}.h5"
    stamps_before = stamps(run / target)
    (run / target).unlink()
    result = snakemake(
        run, target, "--profile", "profiles/nersc-test", "--configfile", "test-config.yaml", *SLURM_OPTIONS
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert [rule for _, rule in submitted_jobs(result.stdout)] == ["cutouts"]
    command = rf"^Shell command: realfake cutouts --kind real --brick {brick} --out {target} "
    assert re.search(command, result.stdout, re.M), result.stdout[-6000:]
    np.testing.assert_array_equal(stamps(run / target), stamps_before)
    # The batches and the later stages are left as they were (they wait for the batches'
    # completion markers, not for each brick's file: see docs/nersc.md).
    dry = snakemake(run, "-n", "--profile", "profiles/nersc-test", "--configfile", "test-config.yaml")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout, dry.stdout[-3000:]


# --------------------------------------------------------------------------- planning at survey scale (no cluster)


def bench_dryrun():
    """scripts/bench_dryrun.py as a module: its synthetic trees and job counting."""
    spec = importlib.util.spec_from_file_location("bench_dryrun", REPOSITORY / "scripts" / "bench_dryrun.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def survey_trees(tmp_path_factory) -> tuple[Path, list[str]]:
    """Synthetic DR5 and obiwan trees (empty files) of 2000 bricks; their root and bricks."""
    root = tmp_path_factory.mktemp("survey")
    bricks_file = bench_dryrun().make_survey_tree(root, 2000)
    return root, bricks_file.read_text().split()


def files_config(run: Path, root: Path, brick_names: list[str]) -> str:
    """A config file in run reading the synthetic trees for these bricks."""
    bricks_file = run / "bricks.txt"
    bricks_file.write_text("".join(f"{brick}\n" for brick in brick_names))
    inputs = {"source": "files", "dr5_dir": str(root / "dr5"), "obiwan_dir": str(root / "obiwan")}
    (run / "files-config.yaml").write_text(yaml.safe_dump({"input": {**inputs, "bricks_file": str(bricks_file)}}))
    return "files-config.yaml"


def test_a_dry_run_for_2000_bricks_plans_200_batch_jobs_not_4000_brick_jobs(survey_trees, tmp_path):
    root, brick_names = survey_trees
    run = repository_copy(tmp_path / "repository")
    config = files_config(run, root, brick_names)
    result = snakemake(run, "-n", "--quiet", "rules", "--profile", "profiles/nersc", "--configfile", config)
    assert result.returncode == 0, result.stdout[-6000:]
    bench = bench_dryrun()
    counts = bench.job_counts(result.stdout)
    # 100 batches (the profile's set-scatter cutouts: 100) of 20 bricks, per kind.
    assert counts == {
        "cutouts_batch_bricks": 200, "cutouts_batch": 200, "shards": 1, "train": 1, "predict": 16, "evaluate": 1,
        "report": 1, "all": 1,
    }  # fmt: skip
    # What a real run submits: the batch jobs, the 16 parts of the prediction and the four other later
    # jobs (100k bricks: the same).
    assert bench.submissions(counts) == 220


def test_batches_are_consecutive_runs_of_the_brick_list_and_one_brick_is_one_job(survey_trees, tmp_path):
    root, brick_names = survey_trees
    run = repository_copy(tmp_path / "repository")
    five = brick_names[:5]
    config = files_config(run, root, five)
    result = snakemake(
        run, "-n", "-p", "--profile", "profiles/nersc", "--configfile", config, "--set-scatter", "cutouts=2"
    )
    assert result.returncode == 0, result.stdout[-6000:]
    listed = re.findall(r"printf '%s\\n' ([\w ]+) > results/cutouts/batches/(\w+/\d+-of-\d+)\.txt", result.stdout)
    lists = {batch: names.split() for names, batch in listed}
    assert lists == {f"{kind}/{batch}": names for kind in ("real", "sim")
                     for batch, names in (("1-of-2", five[:2]), ("2-of-2", five[2:]))}  # fmt: skip
    # A batch's list is rewritten only when its bricks, their files or the settings change;
    # then its earlier cutouts files are removed, so that the batch job makes them again.
    assert f"rm -f results/cutouts/sim/{five[2][:3]}/{five[2]}.h5 results/cutouts/sim/{five[3][:3]}/{five[3]}.h5" in (
        result.stdout
    )

    # More batches asked for than there are bricks: one brick per batch.
    result = snakemake(run, "-n", "--quiet", "rules", "--profile", "profiles/nersc", "--configfile", config,
                       "--set-scatter", "cutouts=100")  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    assert bench_dryrun().job_counts(result.stdout)["cutouts_batch"] == 2 * 5

    # One brick's file as the target: its own job, with the profile's batching on.
    target = f"results/cutouts/sim/{five[4][:3]}/{five[4]}.h5"
    result = snakemake(run, target, "-n", "-p", "--profile", "profiles/nersc", "--configfile", config)
    assert result.returncode == 0, result.stdout[-6000:]
    assert bench_dryrun().job_counts(result.stdout) == {"cutouts": 1}
    command = rf"^Shell command: realfake cutouts --kind sim --brick {five[4]} --out {target} "
    assert re.search(command, result.stdout, re.M), result.stdout[-6000:]

"""realfake.training: input pipeline, exact resume, TensorBoard logs, profile trace, multi-worker, bad input.

The end-to-end tests (marked slow) run ``realfake train`` in subprocesses on a
small synthetic shard set (3 training shards of 64 stamps, 1 test shard, batch
16: 12 steps per epoch), as a user would, so that SIGKILL and TF_CONFIG act on
real processes.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from fixtures.training_runs import CLUSTER_VARIABLES, child_environment, free_ports, train_command, train_subprocess
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from realfake.cli import main
from realfake.errors import RealfakeError
from realfake.formats.history import HISTORY_NAME, read_history, read_training_record, write_history
from realfake.formats.model import MODEL_NAME, model_shard_set, read_model
from realfake.formats.shardset import Shard, open_shard_set
from realfake.training import TrainSettings
from realfake.training.checkpoints import Progress, progress_variables
from realfake.training.cluster import (
    cluster_from_environment,
    cluster_from_slurm,
    expand_nodelist,
    expand_tasks_per_node,
)
from realfake.training.logs import last_logged_step
from realfake.training.pipeline import (
    ShardReader,
    apply_symmetries,
    epoch_order,
    epoch_symmetries,
    training_dataset,
    validation_dataset,
)
from realfake.training.trace import xspace_to_trace_events

# Settings shared by the reference run, the killed-and-resumed run and the two-worker run: the
# workflow config's model and augmentation (the two-worker run overrides the model).
COMMON = [
    "--epochs", "3", "--batch-size", "16", "--seed", "7", "--checkpoint-every", "3", "--log-every", "2",
    "--keep-checkpoints", "20", "--profile-steps", "2,5", "--deterministic", "--model", "compact", "--augment",
    "--learning-rate", "1e-3",
]  # fmt: skip
STEPS_PER_EPOCH = 12
# Two workers vs one, lenet after one epoch (12 Adam steps): measured max |difference| 1.4e-6. The
# default model (compact: max pooling, six ReLU layers) agrees as closely after one step, but Adam
# turns rounding in its near-zero gradient components into whole steps: ~1e-3 after three steps.
# The comparison checks the data-parallel machinery, so it uses lenet.
MULTI_WORKER_MODEL = ["--model", "lenet"]
MULTI_WORKER_RTOL, MULTI_WORKER_ATOL = 1e-4, 1e-5


def scalar_events(directory: Path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in the event files, files in creation order (TF's own reader)."""
    events = []
    for path in sorted(Path(directory).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    events.append((value.tag, event.step, float(tf.make_ndarray(value.tensor))))
    return events


def checkpoint_values(prefix: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(prefix))
    values = {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(prefix))}
    return {name: value for name, value in values.items() if isinstance(value, np.ndarray) and value.dtype.kind == "f"}


def last_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("realfake train: error:")]
    assert len(lines) == 1
    return lines[0]


@pytest.fixture()
def no_cluster(monkeypatch):
    for name in CLUSTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# -- the input pipeline ---------------------------------------------------------------------


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    sizes = [64, 64, 50]
    order = epoch_order(sizes, seed=7, epoch=1, shuffle_shards=8)
    assert np.array_equal(order, epoch_order(sizes, seed=7, epoch=1, shuffle_shards=8))
    every_example = {(shard, row) for shard, size in enumerate(sizes) for row in range(size)}
    assert len(order) == sum(sizes) and {tuple(pair) for pair in order} == every_example
    assert not np.array_equal(order, epoch_order(sizes, seed=7, epoch=2, shuffle_shards=8))
    assert not np.array_equal(order, epoch_order(sizes, seed=8, epoch=1, shuffle_shards=8))


def test_shards_are_shuffled_in_groups():
    sizes = [10, 10, 10, 10]
    order = epoch_order(sizes, seed=0, epoch=0, shuffle_shards=2)
    for start in (0, 20):
        group = set(order[start : start + 20, 0])
        assert len(group) == 2  # two whole shards, mixed
    assert len(set(order[:20, 0]) | set(order[20:, 0])) == 4


def test_batches_come_from_the_shards_in_epoch_order(shard_directory):
    shards = open_shard_set(shard_directory).train
    reader = ShardReader(shards)
    order = epoch_order(reader.shard_sizes, seed=7, epoch=0, shuffle_shards=8)
    batches = list(training_dataset(reader, order, batch_size=16, start_batch=0))
    assert len(batches) == STEPS_PER_EPOCH
    stamps, labels = batches[3]
    files = [np.load(shard.x) for shard in shards]
    label_files = [np.load(shard.y) for shard in shards]
    expected = np.stack([files[shard][row] for shard, row in order[48:64]])
    np.testing.assert_array_equal(stamps.numpy(), expected)
    np.testing.assert_array_equal(labels.numpy(), [label_files[shard][row] for shard, row in order[48:64]])


def test_a_resumed_epoch_yields_the_remaining_batches(shard_directory):
    reader = ShardReader(open_shard_set(shard_directory).train)
    order = epoch_order(reader.shard_sizes, seed=7, epoch=1, shuffle_shards=8)
    full = [stamps.numpy() for stamps, _ in training_dataset(reader, order, 16, start_batch=0)]
    resumed = [stamps.numpy() for stamps, _ in training_dataset(reader, order, 16, start_batch=5)]
    assert len(resumed) == STEPS_PER_EPOCH - 5
    for kept, again in zip(full[5:], resumed):
        np.testing.assert_array_equal(kept, again)


def test_workers_read_disjoint_halves_of_each_global_batch(shard_directory):
    reader = ShardReader(open_shard_set(shard_directory).train)
    order = epoch_order(reader.shard_sizes, seed=7, epoch=0, shuffle_shards=8)
    single = [stamps.numpy() for stamps, _ in training_dataset(reader, order, 16, 0)]
    per_worker = [
        [
            stamps.numpy()
            for stamps, _ in training_dataset(
                reader,
                order,
                16,
                0,
                tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2),
            )
        ]
        for worker in (0, 1)
    ]
    for step, batch in enumerate(single):
        first, second = per_worker[0][step], per_worker[1][step]
        assert first.shape == second.shape == (8, 64, 64, 6)
        np.testing.assert_array_equal(np.concatenate([first, second]), batch)


def test_symmetries_are_the_eight_rotations_and_reflections_about_the_centre():
    size = 8
    stamp = np.random.default_rng(3).normal(size=(1, size, size, 2)).astype(np.float32)
    images = apply_symmetries(np.repeat(stamp, 8, axis=0), np.arange(8))
    assert len({image.tobytes() for image in images}) == 8
    np.testing.assert_array_equal(images[0], stamp[0])
    # Every symmetry keeps the centre pixel (S/2, S/2), where the source is, and the channels together.
    np.testing.assert_array_equal(images[:, size // 2, size // 2], np.repeat(stamp[:, size // 2, size // 2], 8, 0))
    # A pixel one step right of the centre visits the four neighbours of the centre.
    marked = np.zeros((8, size, size, 1), dtype=np.float32)
    marked[:, size // 2, size // 2 + 1] = 1
    moved = {tuple(np.argwhere(image[..., 0] == 1)[0]) for image in apply_symmetries(marked, np.arange(8))}
    c = size // 2
    assert moved == {(c, c + 1), (c, c - 1), (c + 1, c), (c - 1, c)}
    # The rotation by 90 degrees is one of them, taken about the centre.
    rows, columns = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    rotated = stamp[0][columns, (2 * c - rows) % size]  # (y, x) -> (x, -y) about (c, c)
    assert any(np.array_equal(image, rotated) for image in images)


def test_epoch_symmetries_are_a_pure_function_of_seed_and_epoch():
    symmetries = epoch_symmetries(1000, seed=7, epoch=1)
    assert symmetries.shape == (1000,) and set(symmetries.tolist()) == set(range(8))
    assert np.array_equal(symmetries, epoch_symmetries(1000, seed=7, epoch=1))
    assert not np.array_equal(symmetries, epoch_symmetries(1000, seed=7, epoch=2))
    assert not np.array_equal(symmetries, epoch_symmetries(1000, seed=8, epoch=1))


def test_augmented_batches_are_the_stamps_of_the_epoch_order_transformed(shard_directory):
    reader = ShardReader(open_shard_set(shard_directory).train)
    order = epoch_order(reader.shard_sizes, seed=7, epoch=0, shuffle_shards=8)
    symmetries = epoch_symmetries(len(order), seed=7, epoch=0)
    plain = list(training_dataset(reader, order, 16, start_batch=0))
    augmented = list(training_dataset(reader, order, 16, start_batch=0, symmetries=symmetries))
    resumed = list(training_dataset(reader, order, 16, start_batch=5, symmetries=symmetries))
    assert len(augmented) == STEPS_PER_EPOCH
    for step, ((stamps, labels), (plain_stamps, plain_labels)) in enumerate(zip(augmented, plain)):
        expected = apply_symmetries(plain_stamps.numpy(), symmetries[16 * step : 16 * step + 16])
        np.testing.assert_array_equal(stamps.numpy(), expected)
        np.testing.assert_array_equal(labels.numpy(), plain_labels.numpy())
    for (stamps, _), (again, _) in zip(augmented[5:], resumed, strict=True):
        np.testing.assert_array_equal(stamps.numpy(), again.numpy())


def test_validation_reads_every_test_example_once_in_file_order(shard_directory):
    shard_set = open_shard_set(shard_directory)
    reader = ShardReader(shard_set.test)
    expected = np.load(shard_set.test[0].y)
    contexts = [tf.distribute.InputContext(2, worker, 2) for worker in (0, 1)]
    per_worker = [[labels.numpy() for _, labels in validation_dataset(reader, 24, context)] for context in contexts]
    assert [len(labels) for labels in per_worker[0]] == [12, 12, 8]
    combined = np.concatenate([np.concatenate([first, second]) for first, second in zip(*per_worker)])
    np.testing.assert_array_equal(combined, expected)


def test_a_non_finite_pixel_is_reported_with_its_file_and_row(tmp_path):
    stamps = np.zeros((4, 2, 2, 1), dtype=np.float32)
    stamps[2, 1, 0, 0] = np.nan
    np.save(tmp_path / "xtrain_0.npy", stamps)
    np.save(tmp_path / "ytrain_0.npy", np.zeros(4, dtype=np.int32))
    reader = ShardReader([Shard(tmp_path / "xtrain_0.npy", tmp_path / "ytrain_0.npy", 4)])
    reader.read(np.array([[0, 0], [0, 3]]))
    with pytest.raises(ValueError, match=f"non-finite pixels in {tmp_path / 'xtrain_0.npy'} row 2"):
        reader.read(np.array([[0, 0], [0, 2]]))


def test_only_a_bounded_number_of_shards_stay_mapped(shard_directory):
    shards = open_shard_set(shard_directory).train
    reader = ShardReader(shards, max_open=2)
    order = epoch_order(reader.shard_sizes, seed=1, epoch=0, shuffle_shards=8)
    stamps, _ = reader.read(order[:100])
    assert len(reader._mapped) == 2
    files = [np.load(shard.x) for shard in shards]
    np.testing.assert_array_equal(stamps, np.stack([files[shard][row] for shard, row in order[:100]]))


# -- the cluster -----------------------------------------------------------------------------


def test_slurm_node_lists_expand_in_order():
    assert expand_nodelist("nid[0010-0012,0020],login1") == ["nid0010", "nid0011", "nid0012", "nid0020", "login1"]
    assert expand_nodelist("r[1-2]n[08-09]") == ["r1n08", "r1n09", "r2n08", "r2n09"]
    assert expand_nodelist("cn7") == ["cn7"]
    assert expand_tasks_per_node("2(x3),1") == [2, 2, 2, 1]


def test_slurm_environment_gives_one_worker_per_task():
    environment = {
        "SLURM_PROCID": "3",
        "SLURM_NTASKS": "4",
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_STEP_NODELIST": "nid[001-002]",
        "SLURM_JOB_NODELIST": "nid[001-009]",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2)",
    }
    cluster = cluster_from_environment(environment, port=30000)
    assert cluster.spec == {"worker": ["nid001:30000", "nid001:30001", "nid002:30000", "nid002:30001"]}
    assert cluster.task_id == 3 and not cluster.is_chief and cluster.num_workers == 4
    assert cluster.source == "SLURM"
    assert cluster.describe() == (
        "4 worker(s) from SLURM; this is worker 3 of nid001:30000, nid001:30001, nid002:30000, nid002:30001"
    )
    chief = cluster_from_slurm({**environment, "SLURM_PROCID": "0"}, port=30000)
    assert chief.is_chief
    # Without the step's variables (sbatch's own environment), the job's are used.
    job = {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "a,b", "SLURM_TASKS_PER_NODE": "1(x2)"}
    assert cluster_from_environment(job, port=5000).spec == {"worker": ["a:5000", "b:5000"]}


def test_tf_config_wins_and_single_tasks_train_alone():
    tf_config = json.dumps({"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 0}})
    cluster = cluster_from_environment({"TF_CONFIG": tf_config, "SLURM_NTASKS": "4", "SLURM_PROCID": "2"}, 1)
    assert cluster.spec == {"worker": ["h:1", "h:2"]} and cluster.is_chief and cluster.source == "TF_CONFIG"
    assert cluster_from_environment({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, 1).spec is None
    assert cluster_from_environment({}, 1).num_workers == 1
    assert cluster_from_environment({}, 1).describe() == "1 worker (single process)"
    with pytest.raises(RealfakeError, match="TF_CONFIG"):
        cluster_from_environment({"TF_CONFIG": '{"cluster": {}}'}, 1)
    with pytest.raises(RealfakeError, match="SLURM"):
        cluster_from_slurm({"SLURM_PROCID": "0", "SLURM_NTASKS": "3", "SLURM_JOB_NODELIST": "a,b",
                            "SLURM_TASKS_PER_NODE": "1(x2)"}, 1)  # fmt: skip


# -- trace conversion, event files, settings -----------------------------------------------------


def test_xspace_events_become_trace_events_in_microseconds():
    xspace = xplane_pb2.XSpace()
    plane = xspace.planes.add(id=1, name="/host:CPU")
    plane.event_metadata[5].id = 5
    plane.event_metadata[5].name = "model/block1_conv1/Relu:_MklNativeFusedConv2D"
    line = plane.lines.add(id=9, name="tf_Compute", timestamp_ns=1000)
    line.events.add(metadata_id=5, offset_ps=2_500_000, duration_ps=1_000_000)
    events = xspace_to_trace_events(xspace)
    complete = [event for event in events if event["ph"] == "X"]
    assert complete == [
        {"name": "model/block1_conv1/Relu:_MklNativeFusedConv2D", "ph": "X", "ts": 3.5, "dur": 1.0, "pid": 0, "tid": 0}
    ]
    assert {"name": "thread_name", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "tf_Compute"}} in events


def test_last_logged_step_survives_a_file_cut_short(tmp_path):
    from tensorflow.core.framework import summary_pb2

    writer = tf.summary.create_file_writer(str(tmp_path))
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with writer.as_default():
        for step in (2, 4, 6):
            tf.summary.write("loss", tf.constant(0.5), step=step, metadata=metadata)
    writer.close()
    path = next(tmp_path.glob("events.out.tfevents.*"))
    with open(path, "ab") as stream:
        stream.write(b"\x10\x00\x00\x00\x00\x00\x00\x00\x01\x02")  # a record header with no body: a kill mid-write
    assert last_logged_step(tmp_path) == 6
    assert last_logged_step(tmp_path / "missing") == -1


def test_settings_are_checked_and_name_the_key():
    with pytest.raises(RealfakeError, match="batch_size"):
        TrainSettings(shards=Path("s"), out=Path("o"), batch_size=0)
    with pytest.raises(RealfakeError, match="profile_steps"):
        TrainSettings(shards=Path("s"), out=Path("o"), profile_steps=(5, 3))


def test_the_resume_record_names_the_settings_that_fix_the_weights():
    settings = TrainSettings(shards=Path("s"), out=Path("o"))
    assert set(settings.resume_record()) == {
        "batch_size",
        "model",
        "seed",
        "learning_rate",
        "shuffle_shards",
        "augment",
        "view",
        "steps_per_epoch",
    }


def test_steps_per_epoch_caps_each_epoch_at_the_start_of_its_order(shard_directory, tmp_path, no_cluster):
    """12 whole batches of 16 per epoch in the fixture; capped at 5, two epochs make 10 steps, and each epoch's
    batches are the first 5 of its order."""
    out = tmp_path / "out"
    arguments = ["--epochs", "2", "--batch-size", "16", "--steps-per-epoch", "5", "--profile-steps", "none",
                 "--select", "last", "--model", "lenet"]  # fmt: skip
    assert main(["train", "--shards", str(shard_directory), "--out", str(out), *arguments]) == 0
    history = read_training_record(out / HISTORY_NAME)
    assert history["steps_per_epoch"] == 5 and len(history["epochs"]) == 2
    assert int(tf.train.latest_checkpoint(str(out / "ckpts")).rsplit("-", 1)[1]) == 10
    with pytest.raises(RealfakeError, match="steps_per_epoch"):
        TrainSettings(shards=Path("s"), out=Path("o"), steps_per_epoch=-1)


def test_a_fold_model_trains_on_the_other_folds_and_never_resumes_another_folds_run(tmp_path, no_cluster):
    """Cross-fitting (realfake.crossfit): the model of fold 1 of 3 trains on folds 0 and 2 but fold 2's validation
    part, validates on that part, and records fold 1's view; fold 2's run in the same directory sets
    fold 1's checkpoints aside rather than resuming them."""
    from fixtures.synthetic_shards import write_shard_set

    manifest = write_shard_set(tmp_path / "shards", train_examples=32, validation_examples=16, shard_size=16, folds=3)
    out = tmp_path / "out"
    arguments = ["--epochs", "1", "--batch-size", "16", "--profile-steps", "none", "--model", "lenet"]
    for fold in (1, 2):
        command = ["train", "--shards", str(tmp_path / "shards"), "--out", str(out), "--fold", str(fold)]
        assert main([*command, *arguments]) == 0
        history = read_training_record(out / HISTORY_NAME)
        assert history["shard_set"] == f"{manifest['identity']}-fold{fold}"
        assert (history["train_examples"], history["validation_examples"]) == (2 * 32 + 16, 16)
        assert model_shard_set(read_model(out / MODEL_NAME)) == history["shard_set"]
        assert history["settings"]["fold"] == fold
    assert [path.name for path in (out / "superseded").iterdir()] == [f"{manifest['identity'][:12]}-fold1"]
    # A single split's history records no fold: it is what it was before folds existed.
    assert "fold" not in TrainSettings(shards=Path("s"), out=Path("o")).as_record()
    assert main(["train", "--shards", str(tmp_path / "shards"), "--out", str(out), *arguments]) == 2


# -- the checkpointed running means, the history file ------------------------------------------


def test_running_means_add_as_python_floats_and_come_back_from_a_checkpoint(tmp_path):
    """The means are metric objects whose float64 sums are bitwise those kept in Python floats, and whose own
    variables the checkpoint holds, under the names it has always used."""
    progress = Progress()
    steps = [(0.6931471805599453 * 16, 9.0, 16), (0.1 * 16, 13.0, 16), (0.7 * 16, 16.0, 16)]
    for step in steps:
        progress.record_step(*step)
    loss_sum, correct = sum(loss for loss, _, _ in steps), sum(right for _, right, _ in steps)
    assert progress.epoch_means.result() == {"loss": loss_sum / 48, "accuracy": correct / 48}
    assert progress.step_in_epoch == progress.global_step == 3
    checkpoint = tf.train.Checkpoint(**progress_variables(progress))
    path = checkpoint.save(tmp_path / "ckpt")
    saved = progress.window_means.result()
    progress.window_means.reset_state()
    assert progress.window_means.result() == {"loss": 0.0, "accuracy": 0.0}
    checkpoint.restore(path).assert_existing_objects_matched()
    assert progress.window_means.result() == saved
    assert tf.train.load_checkpoint(path).get_tensor("window_examples/.ATTRIBUTES/VARIABLE_VALUE") == 48
    progress.end_epoch({"epoch": 1})
    assert progress.epoch_means.result() == {"loss": 0.0, "accuracy": 0.0} and progress.window_means.result() == saved


def test_the_history_written_is_the_history_read(tmp_path):
    path = tmp_path / HISTORY_NAME
    epoch = {"epoch": 1, "global_step": 12, "train_loss": 0.5, "train_accuracy": 0.75}
    record = {"select": "last", "shard_set": "0123", "epochs": [{**epoch, "validation_loss": None}]}
    write_history(path, record)
    assert read_training_record(path) == record
    history = read_history(path)
    assert history["train_loss"].tolist() == [0.5] and np.isnan(history["validation_loss"][0])
    with pytest.raises(RealfakeError, match=r"other\.json: not a `realfake train` history"):
        write_history(tmp_path / "other.json", {"epochs": {"epoch": 1}})
    assert not (tmp_path / "other.json").exists()


# -- bad input: one line, exit status 2 -------------------------------------------------------


def test_missing_or_empty_shard_directory(tmp_path, capsys):
    assert main(["train", "--shards", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert last_error_line(capsys) == f"realfake train: error: shard directory {tmp_path / 'nowhere'} does not exist"
    (tmp_path / "empty").mkdir()
    assert main(["train", "--shards", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert last_error_line(capsys).endswith(f"shard directory {tmp_path / 'empty'} is empty")
    assert not (tmp_path / "out").exists()


def test_missing_manifest(shard_directory, tmp_path, capsys):
    shards = shutil.copytree(shard_directory, tmp_path / "shards")
    (shards / "manifest.json").unlink()
    assert main(["train", "--shards", str(shards), "--out", str(tmp_path / "out")]) == 2
    assert f"{shards / 'manifest.json'} is missing" in last_error_line(capsys)


def test_shard_shape_that_disagrees_with_the_manifest(shard_directory, tmp_path, capsys):
    shards = shutil.copytree(shard_directory, tmp_path / "shards")
    np.save(shards / "xtrain_1.npy", np.zeros((64, 64, 64, 5), dtype=np.float32))
    assert main(["train", "--shards", str(shards), "--out", str(tmp_path / "out")]) == 2
    line = last_error_line(capsys)
    assert f"{shards / 'xtrain_1.npy'}: shape (64, 64, 64, 5) float32 disagrees with" in line
    assert "(64, 64, 64, 6)" in line


def test_a_diverging_loss_stops_without_checkpointing_it(shard_directory, tmp_path, capsys, no_cluster):
    out = tmp_path / "out"
    arguments = ["--epochs", "1", "--batch-size", "16", "--learning-rate", "1e30", "--checkpoint-every", "1",
                 "--no-deterministic"]  # fmt: skip
    assert (
        main(["train", "--shards", str(shard_directory), "--out", str(out), *arguments, "--profile-steps", "none"]) == 2
    )
    match = re.fullmatch(
        r"realfake train: error: the loss is (nan|inf) at epoch 1, step (\d+) \(global step (\d+)\); "
        r"stopped without checkpointing this state \(last checkpoint: (\S+)\); try a lower learning rate",
        last_error_line(capsys),
    )
    assert match, "the error line names the step and the last checkpoint"
    failed_step = int(match[3])
    latest = tf.train.latest_checkpoint(str(out / "ckpts"))
    assert latest == match[4] and int(latest.rsplit("-", 1)[1]) == failed_step - 1
    assert all(np.isfinite(value).all() for value in checkpoint_values(Path(latest)).values())
    assert not (out / "model.keras").exists()


# -- end to end (subprocesses) -----------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_run(shard_directory, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "out"
    result = train_subprocess(shard_directory, out, *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def resumed_run(shard_directory, tmp_path_factory):
    """The reference command killed with SIGKILL in epoch 2 after a mid-epoch checkpoint, then re-run."""
    out = tmp_path_factory.mktemp("resumed") / "out"
    process = subprocess.Popen(
        train_command(shard_directory, out, *COMMON), stderr=subprocess.PIPE, text=True, env=child_environment()
    )
    killed_after = None
    for line in process.stderr:
        if re.search(r"checkpoint saved: .* \(epoch 2 step \d+", line):
            process.send_signal(signal.SIGKILL)
            killed_after = line
            break
    process.wait(timeout=60)
    assert killed_after is not None and process.returncode == -signal.SIGKILL
    assert not (out / "model.keras").exists()
    # As if a later save had been killed half-way: files that the checkpoint pointer never names.
    (out / "ckpts" / "ckpt-99.index").write_bytes(b"\x00 half written")
    (out / "ckpts" / "ckpt-99.data-00000-of-00001").write_bytes(b"")
    (out / "ckpts" / "ckpt-99_temp").mkdir()
    result = train_subprocess(shard_directory, out, *COMMON)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stderr


@pytest.mark.slow
def test_training_learns_and_records_its_history(reference_run):
    history = read_training_record(reference_run / HISTORY_NAME)
    epochs = history["epochs"]
    assert [record["global_step"] for record in epochs] == [12, 24, 36]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["validation_loss"] < epochs[0]["validation_loss"]
    assert epochs[-1]["validation_accuracy"] > 0.8
    assert history["settings"]["batch_size"] == 16 and history["settings"]["model"]["name"] == "compact"
    assert history["settings"]["augment"] is True
    assert history["validation_examples"] == 64 and history["workers"] == 1


@pytest.mark.slow
def test_saved_model_takes_raw_shard_pixels_and_is_the_best_validation_epoch(reference_run, shard_directory):
    model = keras.saving.load_model(reference_run / "model.keras")
    stamps, labels = np.load(shard_directory / "xvalidation_0.npy"), np.load(shard_directory / "yvalidation_0.npy")
    loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, model.predict(stamps, verbose=0))))
    history = read_training_record(reference_run / HISTORY_NAME)
    losses = [record["validation_loss"] for record in history["epochs"]]
    best = int(np.argmin(losses)) + 1
    assert history["select"] == "best_validation" and history["selected_epoch"] == best
    assert history["best_validation_loss"] == min(losses)
    assert sorted(path.name for path in (reference_run / "best").iterdir()) == [f"epoch-{best}.weights.h5"]
    # abs: near-certain predictions (loss ~1e-5) carry float32 rounding of 1 - p, ~1e-8 absolute.
    assert loss == pytest.approx(losses[best - 1], rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_select_last_writes_the_last_epochs_weights_without_retraining(reference_run, shard_directory, tmp_path):
    out = shutil.copytree(reference_run, tmp_path / "out")
    result = train_subprocess(shard_directory, out, *COMMON, "--select", "last")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "has finished 3 epochs: nothing to train" in result.stderr
    assert "(the weights of the last epoch, 3)" in result.stderr
    history = read_training_record(out / HISTORY_NAME)
    assert history["select"] == "last" and history["selected_epoch"] == 3
    model = keras.saving.load_model(out / "model.keras")
    stamps, labels = np.load(shard_directory / "xvalidation_0.npy"), np.load(shard_directory / "yvalidation_0.npy")
    loss = float(np.mean(keras.losses.sparse_categorical_crossentropy(labels, model.predict(stamps, verbose=0))))
    assert loss == pytest.approx(history["epochs"][-1]["validation_loss"], rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_profile_trace_opens_as_trace_events_with_convolutions(reference_run):
    assert list((reference_run / "prof" / "plugins" / "profile").glob("*/*.xplane.pb"))
    with gzip.open(reference_run / "prof" / "trace.json.gz", "rt") as stream:
        trace = json.load(stream)
    complete = [event for event in trace["traceEvents"] if event["ph"] == "X"]
    assert all(
        event["dur"] >= 0 and isinstance(event["pid"], int) and isinstance(event["tid"], int) for event in complete
    )
    convolutions = [event for event in complete if "Conv2D" in event["name"]]
    assert any("block1_conv1" in event["name"] for event in convolutions)
    assert any("Conv2DBackpropFilter" in event["name"] for event in convolutions)


@pytest.mark.slow
def test_tensorboard_logs_hold_train_and_validation_curves_and_the_graph(reference_run):
    train = scalar_events(reference_run / "logs" / "train")
    assert {tag for tag, _, _ in train} == {"loss", "accuracy", "learning_rate"}
    assert [step for tag, step, _ in train if tag == "loss"] == list(range(2, 37, 2))
    validation = scalar_events(reference_run / "logs" / "validation")
    history = read_training_record(reference_run / HISTORY_NAME)["epochs"]
    assert [(step, value) for tag, step, value in validation if tag == "accuracy"] == [
        (record["global_step"], pytest.approx(record["validation_accuracy"])) for record in history
    ]
    graphs = [
        value.tag
        for path in (reference_run / "logs" / "train").glob("events.out.tfevents.*")
        for event in tf.compat.v1.train.summary_iterator(str(path))
        for value in event.summary.value
        if value.metadata.plugin_data.plugin_name.startswith("graph")
    ]
    assert graphs == ["train_step"]


@pytest.mark.slow
def test_a_killed_run_resumes_at_the_same_batch_and_ends_bitwise_identical(reference_run, resumed_run):
    out, stderr = resumed_run
    match = re.search(r"resuming from \S+ckpt-(\d+) at epoch 2 step (\d+) \(global step (\d+)\)", stderr)
    assert match and 0 < int(match[2]) < STEPS_PER_EPOCH, "resumed in the middle of epoch 2"
    reference = keras.saving.load_model(reference_run / "model.keras")
    resumed = keras.saving.load_model(out / "model.keras")
    for expected, actual in zip(reference.weights, resumed.weights, strict=True):
        assert np.array_equal(expected.numpy(), actual.numpy()), expected.path
    # Optimizer state and bookkeeping too: the final checkpoints are the same numbers.
    expected_checkpoint = checkpoint_values(reference_run / "ckpts" / "ckpt-36")
    actual_checkpoint = checkpoint_values(out / "ckpts" / "ckpt-36")
    assert expected_checkpoint.keys() == actual_checkpoint.keys()
    for name, value in expected_checkpoint.items():
        assert np.array_equal(value, actual_checkpoint[name]), name
    reference_history = json.loads((reference_run / "history.json").read_text())["epochs"]
    assert json.loads((out / "history.json").read_text())["epochs"] == reference_history


@pytest.mark.slow
def test_tensorboard_steps_continue_across_the_restart(reference_run, resumed_run):
    out, _ = resumed_run
    assert len(list((out / "logs" / "train").glob("events.out.tfevents.*"))) == 2, "one event file per run"
    for kind in ("train", "validation"):
        resumed = scalar_events(out / "logs" / kind)
        reference = scalar_events(reference_run / "logs" / kind)
        for tag in {tag for tag, _, _ in reference}:
            steps = [step for name, step, _ in resumed if name == tag]
            assert steps == sorted(set(steps)), f"{kind}/{tag} steps repeat or go backwards: {steps}"
            assert steps == [step for name, step, _ in reference if name == tag]
            values = [value for name, _, value in resumed if name == tag]
            assert values == [value for name, _, value in reference if name == tag]


@pytest.mark.slow
def test_resuming_with_other_settings_is_refused(resumed_run, shard_directory, tmp_path, capsys, no_cluster):
    out, _ = resumed_run
    copy = tmp_path / "out"
    shutil.copytree(out / "ckpts", copy / "ckpts")
    # In this process: leave op determinism (process-wide) off for the tests that follow.
    changed = [argument if argument != "16" else "32" for argument in COMMON if argument != "--deterministic"]
    changed.append("--no-deterministic")
    assert main(["train", "--shards", str(shard_directory), "--out", str(copy), *changed]) == 2
    line = last_error_line(capsys)
    assert "was written with other settings (batch_size 16 -> 32)" in line


@pytest.mark.slow
def test_two_workers_match_one_worker_with_the_same_global_batch(shard_directory, tmp_path):
    out = tmp_path / "out"
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    assert COMMON[:2] == ["--epochs", "3"]
    arguments = ["--epochs", "1", *COMMON[2:], *MULTI_WORKER_MODEL]
    single = train_subprocess(shard_directory, tmp_path / "one", *arguments)
    assert single.returncode == 0, single.stderr[-3000:]
    arguments += ["--intra-op-threads", "1", "--inter-op-threads", "2"]
    processes = [
        subprocess.Popen(
            train_command(shard_directory, out, *arguments),
            stderr=subprocess.PIPE,
            text=True,
            env=child_environment(
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            ),
        )
        for index in (0, 1)
    ]
    try:
        outputs = [process.communicate(timeout=300)[1] for process in processes]
    finally:
        for process in processes:  # a worker whose peer died waits for it forever
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [process.returncode for process in processes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert re.search(
        r"2 worker\(s\) from TF_CONFIG; this is worker 0 of localhost:\d+, localhost:\d+; "
        r"threads intra-op 1, inter-op 2",
        outputs[0],
    )
    assert "checkpoint saved" in outputs[0] and "checkpoint saved" not in outputs[1], "only the chief saves"
    assert len(list((out / "logs" / "train").glob("events.out.tfevents.*"))) == 1
    assert read_training_record(out / HISTORY_NAME)["workers"] == 2
    one_worker = checkpoint_values(tmp_path / "one" / "ckpts" / f"ckpt-{STEPS_PER_EPOCH}")
    two_workers = checkpoint_values(out / "ckpts" / f"ckpt-{STEPS_PER_EPOCH}")
    assert one_worker.keys() == two_workers.keys()
    for name, value in one_worker.items():
        np.testing.assert_allclose(
            two_workers[name], value, rtol=MULTI_WORKER_RTOL, atol=MULTI_WORKER_ATOL, err_msg=name
        )


@pytest.mark.slow
def test_tensorboard_reads_the_logs_back(reference_run):
    """TensorBoard's own reader (what `tensorboard --logdir` uses) finds the curves and the graph."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train = EventAccumulator(str(reference_run / "logs" / "train"), size_guidance={"tensors": 0})
    train.Reload()
    tags = train.Tags()
    assert {"loss", "accuracy", "learning_rate"} <= set(tags["tensors"])
    # The graph dashboard reads the traced training step from this plugin.
    assert "train_step" in train.PluginTagToContent("graph_run_metadata_graph")
    loss_steps = [event.step for event in train.Tensors("loss")]
    assert loss_steps == sorted(loss_steps) and len(loss_steps) > 1
    validation = EventAccumulator(str(reference_run / "logs" / "validation"), size_guidance={"tensors": 0})
    validation.Reload()
    history = read_training_record(reference_run / HISTORY_NAME)["epochs"]
    accuracy = [float(tf.make_ndarray(event.tensor_proto)) for event in validation.Tensors("accuracy")]
    assert accuracy == pytest.approx([record["validation_accuracy"] for record in history])

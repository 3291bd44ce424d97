"""The training loop: restore, train with checkpoints and logs, validate, write the outputs.

Exact resume. The checkpoint (``tf.train.Checkpoint``, ``ckpts/ckpt-<global
step>``) holds the model, the optimizer (Adam's moments and iteration count),
the completed epochs, the batches done in the current epoch, the global step,
the running sums behind the epoch and log-window means, the per-epoch history
and the settings that fix the weight sequence. Because an epoch's batch order
is a pure function of (seed, epoch) (``pipeline.epoch_order``), and so is
its augmentation (``pipeline.epoch_symmetries``), a resumed run rebuilds the
same order and starts at the saved batch; with deterministic ops
the weights are then bitwise those of an uninterrupted run. (Keras'
``BackupAndRestore`` restarts the epoch from batch 0, hence the custom loop.)

Checkpoint atomicity. ``CheckpointManager.save`` writes ``ckpt-N.index`` and
``ckpt-N.data-*`` in full (TensorFlow writes the shards under ``ckpt-N_temp/``
and then merges them into those files), and only then rewrites the
``ckpts/checkpoint`` pointer with an atomic write-and-rename. A restart reads that pointer, so
a kill during a save leaves the previous checkpoint in use; the next save of
that number overwrites the leftovers. If the pointer is missing or names no
readable checkpoint while checkpoint files exist, the newest one whose every
tensor reads back is resumed (and the pointer rewritten); when none does,
training stops with an error naming the directory rather than overwrite them.
A non-finite loss stops training before any save, so a checkpoint never holds
the diverged state.

Provenance. Each checkpoint records the identity of the shard set it was
trained on (the manifest's ``identity``, :mod:`realfake.shards`), and so do
``model.keras`` (in its normalisation layer) and ``history.json``. A
checkpoint of another shard set is never resumed: the run starts from scratch
and moves the previous run's ``ckpts/``, ``logs/``, ``prof/``, ``model.keras``
and ``history.json`` to ``superseded/<old identity>/`` (kept, not deleted: the
old TensorBoard curves stay viewable, and nothing is lost to a mistaken
config; delete the folder when it is not needed). Other settings that change
the weight sequence (``RESUME_KEYS``) must match, or training stops naming
them.

TensorBoard. ``logs/train`` (``loss``, ``accuracy`` as means over the last
``log_every`` steps, ``learning_rate``, and the traced graph of the training
step) and ``logs/validation`` (``loss``, ``accuracy`` each epoch), all at
step = global step. A resumed run first reads the existing event files and
writes only steps above the last one logged, so steps never repeat or go
backwards (a killed run may have logged past its last checkpoint). The
``tensorboard`` package is not a dependency (tensorflow-cpu does not pull it
in, and ``tf.summary.scalar`` needs it), so scalars are written with
``tf.summary.write`` and the scalars plugin's metadata: the same records.
View them with any TensorBoard (``tensorboard --logdir OUT/logs``).

Multi-worker. ``tf.distribute.MultiWorkerMirroredStrategy`` (synchronous
all-reduce of gradients; the cluster from ``training.cluster``). Each replica
computes ``sum(loss over its slice) / global batch``; the all-reduced sum of
gradients is then the single-worker gradient of the mean loss; it agrees with
one worker up to the order of floating-point sums (measured on the test
fixture: weights within 1.4e-6 after 12 Adam steps; Adam's normalised steps
let such differences grow as training proceeds). MWMS works with Keras 3 in
this custom loop (``strategy.run`` around the Keras model and optimizer,
which all-reduces the gradients itself). Only the chief
writes checkpoints (other workers save to a temporary directory they delete,
as TensorFlow's documentation recommends), logs, the profile, ``model.keras``
and ``history.json``, and prints progress. Before the strategy is made every
worker waits, at most ``startup_timeout`` seconds, for all its peers to answer
at their addresses, and otherwise stops naming those that have not
(``training.startup``). SIGTERM (SLURM's time limit) stops any run at once with
status 143; the last checkpoint is kept, and re-running resumes from it.

Threads. ``intra_op_threads`` / ``inter_op_threads`` set TensorFlow's pools
(before TensorFlow starts). On Intel builds with OpenMP (KNL at NERSC) set the
environment before launching, as the seed did: ``OMP_NUM_THREADS`` = cores
per task, ``KMP_AFFINITY=granularity=fine,compact,1,0``, ``KMP_BLOCKTIME=1``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2
from tensorflow.core.util import event_pb2

from realfake.atomic import atomic_output, remove_stale_temporaries, temporary_path
from realfake.errors import RealfakeError
from realfake.model import build_model, normalization_from_manifest
from realfake.training.cluster import ClusterInfo, cluster_from_environment
from realfake.training.pipeline import (
    NON_FINITE_INPUT,
    ShardReader,
    epoch_order,
    epoch_symmetries,
    training_dataset,
    validation_dataset,
)
from realfake.training.settings import TrainSettings
from realfake.training.shardset import ShardSet, open_shard_set, short_identity
from realfake.training.startup import SigtermStop, exit_if_stuck, wait_for_peers
from realfake.training.trace import latest_xplane_files, write_trace_json

CHECKPOINT_PREFIX = "ckpt"
CHECKPOINT_POINTER = "checkpoint"
TRACE_NAME = "trace.json.gz"
SUPERSEDED_DIRECTORY = "superseded"
# The checkpoint key of the recorded resume settings (the Checkpoint's "resume_record" variable).
RESUME_RECORD_KEY = "resume_record/.ATTRIBUTES/VARIABLE_VALUE"


@dataclass
class _Progress:
    """Where training stands: everything a checkpoint must hold besides the model and the optimizer.

    Each field is one checkpointed variable of the same name (:func:`_progress_variables`):
    ints as int64, floats as float64, the history as JSON text.
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    epoch_loss_sum: float = 0.0
    epoch_correct: float = 0.0
    epoch_examples: int = 0
    window_loss_sum: float = 0.0
    window_correct: float = 0.0
    window_examples: int = 0
    # The epoch (1-based; 0: none yet) with the lowest validation loss, whose weights are in best/.
    best_epoch: int = 0
    best_validation_loss: float = math.inf
    history: list = field(default_factory=list)

    def record_step(self, loss_sum: float, correct: float, examples: int) -> None:
        """Count one training step: summed loss and correct predictions over its examples."""
        self.step_in_epoch += 1
        self.global_step += 1
        self.epoch_loss_sum += loss_sum
        self.window_loss_sum += loss_sum
        self.epoch_correct += correct
        self.window_correct += correct
        self.epoch_examples += examples
        self.window_examples += examples


def _progress_variables() -> dict[str, tf.Variable]:
    """One tf.Variable per :class:`_Progress` field, typed by the field's default."""
    variables = {}
    for item in dataclasses.fields(_Progress):
        if item.name == "history":
            variables[item.name] = tf.Variable("[]", dtype=tf.string)
        elif item.type == "int":
            variables[item.name] = tf.Variable(0, dtype=tf.int64)
        else:
            variables[item.name] = tf.Variable(0.0, dtype=tf.float64)
    return variables


def _store_progress(progress: _Progress, variables: dict[str, tf.Variable]) -> None:
    for item in dataclasses.fields(_Progress):
        value = getattr(progress, item.name)
        variables[item.name].assign(json.dumps(value) if item.name == "history" else value)


def _load_progress(variables: dict[str, tf.Variable]) -> _Progress:
    values = {}
    for item in dataclasses.fields(_Progress):
        value = variables[item.name].numpy()
        if item.name == "history":
            values[item.name] = json.loads(value.decode())
        else:
            values[item.name] = int(value) if item.type == "int" else float(value)
    return _Progress(**values)


def train(settings: TrainSettings) -> dict:
    """Train (or resume training) and write ``settings.out``; returns the history record.

    Outputs: ``ckpts/``, ``logs/``, ``prof/`` (``*.xplane.pb`` and
    ``trace.json.gz``), ``model.keras`` and ``history.json`` (per-epoch train
    and validation loss and accuracy). Raises RealfakeError for bad input, a
    settings mismatch with an existing checkpoint, a non-finite loss, or other
    workers that have not started after ``settings.startup_timeout`` seconds.
    Meanwhile SIGTERM ends the process at once with status 143
    (``training.startup``); a re-run resumes from the last checkpoint.
    """
    shard_set = open_shard_set(settings.shards)
    normalization = normalization_from_manifest(shard_set.manifest, str(shard_set.manifest_path))
    cluster = cluster_from_environment(os.environ, settings.cluster_port)
    # Thread pools and the multi-worker runtime must be set before TensorFlow starts.
    _configure_threads(settings)
    with SigtermStop(settings.out) as sigterm_stop:
        strategy = _make_strategy(cluster, settings.startup_timeout)
        # MultiWorkerMirroredStrategy put TensorFlow's SIGTERM handler in place, which only logs the signal.
        sigterm_stop.install()
        if settings.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(settings.seed)
        trainer = _Trainer(settings, shard_set, normalization, cluster, strategy)
        return trainer.run()


def make_train_step(
    model, optimizer, strategy: tf.distribute.Strategy, global_batch_size: int, jit_compile: bool = False
):
    """A tf.function ``step(inputs) -> (mean loss over the global batch, correct predictions)``.

    ``inputs`` = (stamps, labels) per replica, from a distributed dataset. Each
    replica's loss is its sum of per-example cross-entropies over the global
    batch size, so the all-reduced (summed) gradients are those of the global
    mean loss. ``jit_compile`` XLA-compiles the forward and backward pass.
    """
    global_batch = float(global_batch_size)

    def gradients_of(stamps, labels):
        with tf.GradientTape() as tape:
            probabilities = model(stamps, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, probabilities)
            loss = tf.reduce_sum(per_example) / global_batch
        gradients = tape.gradient(loss, model.trainable_variables)
        return loss, _count_correct(labels, probabilities), gradients

    if jit_compile:
        gradients_of = tf.function(gradients_of, jit_compile=True)

    def replica_step(stamps, labels):
        loss, correct, gradients = gradients_of(stamps, labels)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss, correct

    @tf.function
    def train_step(inputs):
        loss, correct = strategy.run(replica_step, args=inputs)
        return (
            strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None),
        )

    return train_step


def _configure_threads(settings: TrainSettings) -> None:
    try:
        if settings.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(settings.intra_op_threads)
        if settings.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(settings.inter_op_threads)
    except RuntimeError as error:
        raise RealfakeError(f"thread counts must be set before TensorFlow starts ({error})") from None


def _make_strategy(cluster: ClusterInfo, startup_timeout: float) -> tf.distribute.Strategy:
    """The default strategy for one process; for a cluster, MultiWorkerMirroredStrategy once every task is up.

    The waiting happens in ``startup.wait_for_peers`` (see ``training.startup``
    for why not inside TensorFlow), which raises RealfakeError naming the tasks
    missing after ``startup_timeout`` seconds.
    """
    if cluster.spec is None:
        return tf.distribute.get_strategy()
    wait_for_peers(cluster, startup_timeout)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster.spec), task_type=cluster.task_type, task_id=cluster.task_id, rpc_layer="grpc"
    )
    with exit_if_stuck(startup_timeout):
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
        except (RuntimeError, ValueError) as error:
            raise RealfakeError(f"cannot start multi-worker training for cluster {cluster.spec}: {error}") from None

        @tf.function
        def count_workers():
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)

        # A first all-reduce returns only once every worker's collectives answer.
        count_workers()
    return strategy


class _Trainer:
    def __init__(self, settings, shard_set: ShardSet, normalization, cluster: ClusterInfo, strategy):
        self.settings = settings
        self.shard_set = shard_set
        self.cluster = cluster
        self.strategy = strategy
        self.chief = cluster.is_chief
        out = Path(settings.out)
        self.checkpoint_directory = out / "ckpts"
        self.log_directories = {"train": out / "logs" / "train", "validation": out / "logs" / "validation"}
        self.profile_directory = out / "prof"
        self.best_directory = out / "best"
        self.model_path = out / "model.keras"
        self.history_path = out / "history.json"

        self.batch_size = settings.batch_size
        replicas = strategy.num_replicas_in_sync
        if self.batch_size % replicas:
            raise RealfakeError(f"batch_size {self.batch_size} does not divide among {replicas} replicas")
        self.train_examples = shard_set.examples("train")
        self.validation_examples = shard_set.examples("validation")
        if settings.select == "best_validation" and self.validation_examples == 0:
            raise RealfakeError(
                f"select best_validation needs a validation split, but the shard set in {shard_set.directory} has "
                f"none (made with validation fraction 0): make it with one, or train with select last"
            )
        self.steps_per_epoch = self.train_examples // self.batch_size
        if self.steps_per_epoch == 0:
            raise RealfakeError(
                f"batch_size {self.batch_size} is larger than the {self.train_examples} training examples "
                f"in {shard_set.directory}"
            )
        self.train_reader = ShardReader(shard_set.train)
        self.validation_reader = ShardReader(shard_set.validation)

        with strategy.scope():
            self.model = build_model(shard_set.stamp_shape, settings.model, normalization)
            self.optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
            self.optimizer.build(self.model.trainable_variables)
        self.progress = _Progress()
        self.variables = _progress_variables()
        self.resume_record = tf.Variable(json.dumps(self._resume_record()), dtype=tf.string)
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, resume_record=self.resume_record, **self.variables
        )
        # Made after the restore, which may repair the pointer file or move old checkpoints aside.
        self.manager = None
        self.start_note = ""
        self.train_step = make_train_step(
            self.model, self.optimizer, strategy, self.batch_size, jit_compile=settings.jit_compile
        )
        self.validation_step = self._make_validation_step()
        self.writers = {}
        self.logged_until = {}
        self.graph_written = False
        self.profile_window = None
        self.profiling = False

    # -- setup -------------------------------------------------------------------------------

    def _resume_record(self) -> dict:
        record = self.settings.resume_record()
        record["train_examples"] = self.train_examples
        record["channel_names"] = list(self.shard_set.channel_names)
        record["shard_set"] = self.shard_set.identity
        return json.loads(json.dumps(record))

    def _make_manager(self) -> None:
        if self.chief:
            self.manager = tf.train.CheckpointManager(
                self.checkpoint,
                str(self.checkpoint_directory),
                max_to_keep=self.settings.keep_checkpoints,
                checkpoint_name=CHECKPOINT_PREFIX,
            )

    def _restore(self) -> str | None:
        """Restore the checkpoint to resume from, if any; None to start from scratch (see the module docstring)."""
        latest = tf.train.latest_checkpoint(str(self.checkpoint_directory))
        if latest is None:
            latest = self._newest_complete_checkpoint()
            if latest is None:
                return None
        stored = _stored_resume_record(latest)
        if stored.get("shard_set") != self.shard_set.identity:
            self._set_aside(latest, stored.get("shard_set"))
            return None
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except Exception as error:  # a damaged file raises OpError, ValueError, IndexError, ...
            raise RealfakeError(
                f"{latest}: cannot restore this checkpoint ({_first_line(error)}); "
                f"move {self.checkpoint_directory} away to start from scratch"
            ) from None
        current = self._resume_record()
        differences = [
            f"{key} {stored.get(key)!r} -> {current[key]!r}" for key in current if stored.get(key) != current[key]
        ]
        if differences:
            raise RealfakeError(
                f"{latest} was written with other settings ({'; '.join(differences)}); "
                f"resume with the same settings or choose another --out"
            )
        self.progress = _load_progress(self.variables)
        return latest

    def _newest_complete_checkpoint(self) -> str | None:
        """With the pointer file missing or unreadable: the newest checkpoint in the directory whose
        every tensor reads back (the pointer is rewritten to name it); None when there are no
        checkpoint files; RealfakeError when there are some but none is complete."""
        directory = self.checkpoint_directory
        numbered = []
        for index_file in directory.glob(f"{CHECKPOINT_PREFIX}-*.index"):
            number = index_file.name[len(CHECKPOINT_PREFIX) + 1 : -len(".index")]
            if number.isdigit():
                numbered.append((int(number), str(directory / f"{CHECKPOINT_PREFIX}-{number}")))
        if not numbered:
            return None
        numbered.sort()
        pointer = directory / CHECKPOINT_POINTER
        problem = "is missing" if not pointer.exists() else "names no readable checkpoint"
        for position in range(len(numbered) - 1, -1, -1):
            path = numbered[position][1]
            if _checkpoint_reads_back(path):
                if self.chief:
                    tf.compat.v1.train.update_checkpoint_state(
                        str(directory), path, all_model_checkpoint_paths=[older for _, older in numbered[: position + 1]]
                    )
                self.start_note = f"{pointer} {problem}: {path} is the newest complete checkpoint in {directory}"
                return path
        names = ", ".join(Path(path).name for _, path in numbered)
        raise RealfakeError(
            f"{pointer} {problem} and no checkpoint in {directory} reads back ({names}); "
            f"move {directory} away to start from scratch"
        )

    def _set_aside(self, latest: str, trained_on: str | None) -> None:
        """Move the previous run's checkpoints and outputs (of shard set ``trained_on``) aside."""
        out = Path(self.settings.out)
        old = short_identity(trained_on)
        target = out / SUPERSEDED_DIRECTORY / old
        number = 1
        while target.exists():
            number += 1
            target = out / SUPERSEDED_DIRECTORY / f"{old}-{number}"
        previous = [
            self.checkpoint_directory,
            self.log_directories["train"].parent,
            self.profile_directory,
            self.best_directory,
            self.model_path,
            self.history_path,
        ]
        if self.chief:
            target.mkdir(parents=True)
            for path in previous:
                if path.exists():
                    os.replace(path, target / path.name)
        self.start_note = (
            f"{latest} was trained on shard set {old}, but {self.shard_set.directory} is shard set "
            f"{short_identity(self.shard_set.identity)}: the previous run's checkpoints, logs, profile, best "
            f"weights, model and history are moved to {target} (kept, not deleted)"
        )

    def _open_logs(self) -> None:
        if not self.chief:
            return
        for kind, directory in self.log_directories.items():
            self.logged_until[kind] = last_logged_step(directory)
            self.writers[kind] = tf.summary.create_file_writer(str(directory))
        trace_exists = (self.profile_directory / TRACE_NAME).exists()
        if self.settings.profile_steps is not None and not trace_exists:
            start, stop = self.settings.profile_steps
            first = self.progress.global_step
            if first > start:
                # Resumed past the window before a trace was written: trace the same number of
                # steps, starting one step in so the tracing of the step function is left out.
                start, stop = first + 1, first + 1 + (stop - start)
            self.profile_window = (start, stop)

    # -- steps -------------------------------------------------------------------------------

    def _make_validation_step(self):
        model, strategy = self.model, self.strategy

        def replica_step(stamps, labels):
            probabilities = model(stamps, training=False)
            loss_sum = tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(labels, probabilities))
            return loss_sum, _count_correct(labels, probabilities)

        @tf.function(reduce_retracing=True)
        def validation_step(inputs):
            loss_sum, correct = strategy.run(replica_step, args=inputs)
            return (
                strategy.reduce(tf.distribute.ReduceOp.SUM, loss_sum, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None),
            )

        return validation_step

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        resumed_from = self._restore()
        self._make_manager()
        if self.progress.epoch < self.settings.epochs:
            self._open_logs()
        self._say(self._start_line(resumed_from))
        try:
            while self.progress.epoch < self.settings.epochs:
                self._train_epoch()
                self._end_epoch()
        finally:
            self._stop_profiler()
            for writer in self.writers.values():
                writer.close()
        selected = self._select_weights() if self.chief else self.progress.epoch
        record = self._history_record(selected)
        if self.chief:
            self._write_outputs(record)
        return record

    def _start_line(self, resumed_from: str | None) -> str:
        progress = self.progress
        if resumed_from is None:
            where = "starting from scratch"
        elif progress.epoch >= self.settings.epochs:
            where = f"{resumed_from} has finished {progress.epoch} epochs: nothing to train, writing the outputs again"
        else:
            where = (
                f"resuming from {resumed_from} at epoch {progress.epoch + 1} step {progress.step_in_epoch}"
                f" (global step {progress.global_step})"
            )
        if self.start_note:
            # Why training starts where it does: a repaired pointer, or checkpoints of another shard set.
            where = f"{self.start_note}; {where}"
        return (
            f"train: {self.train_examples} training examples in {len(self.shard_set.train)} shards, "
            f"{self.validation_examples} validation (shard set {short_identity(self.shard_set.identity)}); "
            f"{self.steps_per_epoch} steps of {self.batch_size} per epoch; "
            f"model {self.settings.model.name} ({self.model.count_params()} parameters); "
            f"{self.cluster.describe()}; threads intra-op "
            f"{tf.config.threading.get_intra_op_parallelism_threads()}, inter-op "
            f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = TensorFlow's default); {where}"
        )

    def _train_epoch(self) -> None:
        progress = self.progress
        order = epoch_order(
            self.train_reader.shard_sizes, self.settings.seed, progress.epoch, self.settings.shuffle_shards
        )
        symmetries = (
            epoch_symmetries(len(order), self.settings.seed, progress.epoch) if self.settings.augment else None
        )
        start_batch = progress.step_in_epoch
        dataset = self.strategy.distribute_datasets_from_function(
            lambda context: training_dataset(
                self.train_reader, order, self.batch_size, start_batch, context, symmetries=symmetries
            )
        )
        window_start = time.perf_counter()
        window_steps = 0
        try:
            for inputs in dataset:
                self._maybe_start_profiler()
                loss, correct = self._run_train_step(inputs)
                loss = float(loss)
                if not math.isfinite(loss):
                    raise RealfakeError(
                        f"the loss is {loss} at epoch {progress.epoch + 1}, step {progress.step_in_epoch + 1} "
                        f"(global step {progress.global_step + 1}); stopped without checkpointing this state "
                        f"(last checkpoint: {tf.train.latest_checkpoint(str(self.checkpoint_directory)) or 'none'}); "
                        f"try a lower learning rate"
                    )
                progress.record_step(loss * self.batch_size, float(correct), self.batch_size)
                window_steps += 1
                self._maybe_stop_profiler()
                end_of_epoch = progress.step_in_epoch == self.steps_per_epoch
                if progress.global_step % self.settings.log_every == 0 or end_of_epoch:
                    rate = window_steps * self.batch_size / (time.perf_counter() - window_start)
                    self._log_window(rate)
                    window_start, window_steps = time.perf_counter(), 0
                if not end_of_epoch and progress.global_step % self.settings.checkpoint_every == 0:
                    self._save_checkpoint()
        except tf.errors.OpError as error:
            raise _input_error(error) from None

    def _run_train_step(self, inputs):
        if not self.chief or self.graph_written:
            return self.train_step(inputs)
        tf.summary.trace_on(graph=True, profiler=False)
        result = self.train_step(inputs)
        with self.writers["train"].as_default():
            tf.summary.trace_export(name="train_step", step=self.progress.global_step + 1)
        self.graph_written = True
        return result

    def _end_epoch(self) -> None:
        progress = self.progress
        epoch_start = time.perf_counter()
        validation_loss, validation_accuracy = self._validate()
        record = {
            "epoch": progress.epoch + 1,
            "global_step": progress.global_step,
            "train_loss": progress.epoch_loss_sum / max(progress.epoch_examples, 1),
            "train_accuracy": progress.epoch_correct / max(progress.epoch_examples, 1),
            "validation_loss": validation_loss,
            "validation_accuracy": validation_accuracy,
        }
        improved = validation_loss is not None and validation_loss < progress.best_validation_loss
        if improved:
            # Written before the checkpoint that names it, so a resumed run always finds its best weights.
            self._write_best_weights(record["epoch"])
            progress.best_epoch, progress.best_validation_loss = record["epoch"], validation_loss
        progress.history.append(record)
        progress.epoch += 1
        progress.step_in_epoch = 0
        progress.epoch_loss_sum = progress.epoch_correct = 0.0
        progress.epoch_examples = 0
        self._save_checkpoint()
        if improved:
            self._remove_other_best_weights(record["epoch"])
        if validation_loss is not None:
            self._scalars(
                "validation", progress.global_step, {"loss": validation_loss, "accuracy": validation_accuracy}
            )
        self._say(
            f"epoch {record['epoch']}/{self.settings.epochs} done (global step {progress.global_step}): "
            f"train loss {record['train_loss']:.4f} accuracy {record['train_accuracy']:.3f}; "
            + (
                f"validation loss {validation_loss:.4f} accuracy {validation_accuracy:.3f}"
                if validation_loss is not None
                else "no validation examples"
            )
            + f" ({time.perf_counter() - epoch_start:.1f} s validation)"
            + (f"; the best so far, kept in {self._best_weights_path(record['epoch'])}" if improved else "")
        )

    def _best_weights_path(self, epoch: int) -> Path:
        return self.best_directory / f"epoch-{epoch}.weights.h5"

    def _write_best_weights(self, epoch: int) -> None:
        if not self.chief:
            return
        path = self._best_weights_path(epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path, suffix=".weights.h5")
        temporary = temporary_path(path, suffix=".weights.h5")
        try:
            self.model.save_weights(temporary)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    def _remove_other_best_weights(self, epoch: int) -> None:
        if not self.chief:
            return
        for path in self.best_directory.glob("epoch-*.weights.h5"):
            if path != self._best_weights_path(epoch):
                path.unlink(missing_ok=True)

    def _select_weights(self) -> int:
        """Load the weights ``settings.select`` names into the model; return their epoch."""
        progress = self.progress
        if self.settings.select == "last" or progress.best_epoch == 0:
            return progress.epoch
        path = self._best_weights_path(progress.best_epoch)
        if not path.is_file():
            raise RealfakeError(
                f"{path} is missing: the weights of epoch {progress.best_epoch}, the best validation loss, are "
                f"gone; train again from scratch (move {self.checkpoint_directory} away) or use select last"
            )
        self.model.load_weights(path)
        return progress.best_epoch

    def _validate(self) -> tuple[float | None, float | None]:
        if self.validation_examples == 0:
            return None, None
        dataset = self.strategy.distribute_datasets_from_function(
            lambda context: validation_dataset(self.validation_reader, self.batch_size, context)
        )
        loss_sum = correct = 0.0
        try:
            for inputs in dataset:
                batch_loss, batch_correct = self.validation_step(inputs)
                loss_sum += float(batch_loss)
                correct += float(batch_correct)
        except tf.errors.OpError as error:
            raise _input_error(error) from None
        loss = loss_sum / self.validation_examples
        if not math.isfinite(loss):
            raise RealfakeError(
                f"the validation loss is {loss} after epoch {self.progress.epoch + 1}; "
                f"the training loss was finite, so check the test shards in {self.shard_set.directory}"
            )
        return loss, correct / self.validation_examples

    # -- logging, checkpoints, profile, outputs -----------------------------------------------

    def _log_window(self, examples_per_second: float) -> None:
        progress = self.progress
        loss = progress.window_loss_sum / progress.window_examples
        accuracy = progress.window_correct / progress.window_examples
        learning_rate = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
        self._scalars(
            "train", progress.global_step, {"loss": loss, "accuracy": accuracy, "learning_rate": learning_rate}
        )
        self._say(
            f"epoch {progress.epoch + 1}/{self.settings.epochs} step {progress.step_in_epoch}/{self.steps_per_epoch} "
            f"(global step {progress.global_step}): loss {loss:.4f} accuracy {accuracy:.3f} "
            f"learning rate {learning_rate:.2e}; {examples_per_second:.1f} examples/s"
        )
        progress.window_loss_sum = progress.window_correct = 0.0
        progress.window_examples = 0

    def _scalars(self, kind: str, step: int, values: dict) -> None:
        writer = self.writers.get(kind)
        if writer is None or step <= self.logged_until[kind]:
            return
        # tf.summary.scalar lives in the tensorboard package (not a dependency); this writes
        # the same record: a float32 scalar tensor tagged for TensorBoard's scalars plugin.
        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        with writer.as_default(step=step):
            for tag, value in values.items():
                tf.summary.write(tag, tf.constant(value, dtype=tf.float32), metadata=metadata)

    def _save_checkpoint(self) -> None:
        progress = self.progress
        _store_progress(progress, self.variables)
        if self.chief:
            path = self.manager.save(checkpoint_number=progress.global_step)
            for writer in self.writers.values():
                writer.flush()
            where = (
                f"end of epoch {progress.epoch}"
                if progress.step_in_epoch == 0
                else f"epoch {progress.epoch + 1} step {progress.step_in_epoch}"
            )
            self._say(f"checkpoint saved: {path} ({where}, global step {progress.global_step})")
        else:
            # Every worker takes part in a save; only the chief's is kept.
            scratch = tempfile.mkdtemp(prefix=f"realfake-worker{self.cluster.task_id}-")
            try:
                self.checkpoint.write(os.path.join(scratch, CHECKPOINT_PREFIX))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

    def _maybe_start_profiler(self) -> None:
        if self.profile_window is None or self.profiling or self.progress.global_step != self.profile_window[0]:
            return
        self.profile_directory.mkdir(parents=True, exist_ok=True)
        tf.profiler.experimental.start(str(self.profile_directory))
        self.profiling = True

    def _maybe_stop_profiler(self) -> None:
        if self.profiling and self.progress.global_step >= self.profile_window[1]:
            self._stop_profiler()

    def _stop_profiler(self) -> None:
        if not self.profiling:
            return
        tf.profiler.experimental.stop()
        self.profiling = False
        self.profile_window = None
        files = latest_xplane_files(self.profile_directory)
        if files:
            events = write_trace_json(files, self.profile_directory / TRACE_NAME)
            self._say(f"profile: {len(files)} xplane file(s), {events} events in {self.profile_directory / TRACE_NAME}")

    def _history_record(self, selected_epoch: int) -> dict:
        return {
            "select": self.settings.select,
            "selected_epoch": selected_epoch,
            "best_validation_loss": self.progress.best_validation_loss if self.progress.best_epoch else None,
            "settings": self.settings.as_record(),
            "shards": str(self.shard_set.directory),
            "shard_set": self.shard_set.identity,
            "channel_names": list(self.shard_set.channel_names),
            "train_examples": self.train_examples,
            "validation_examples": self.validation_examples,
            "steps_per_epoch": self.steps_per_epoch,
            "workers": self.cluster.num_workers,
            "parameters": int(self.model.count_params()),
            "epochs": self.progress.history,
        }

    def _write_outputs(self, record: dict) -> None:
        # Keras insists on the .keras suffix, so the temporary name keeps it.
        self.model_path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.model_path, suffix=".keras")
        temporary = temporary_path(self.model_path, suffix=".keras")
        try:
            self.model.save(temporary)
            os.replace(temporary, self.model_path)
        finally:
            temporary.unlink(missing_ok=True)
        with atomic_output(self.history_path) as temporary_history:
            temporary_history.write_text(json.dumps(record, indent=2) + "\n")
        how = (
            f"the weights of epoch {record['selected_epoch']}, the lowest validation loss"
            if self.settings.select == "best_validation" and self.progress.best_epoch
            else f"the weights of the last epoch, {record['selected_epoch']}"
        )
        self._say(f"wrote {self.model_path} ({how}) and {self.history_path}")

    def _say(self, line: str) -> None:
        if self.chief:
            print(line, file=sys.stderr, flush=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _stored_resume_record(path: str) -> dict:
    """The resume settings recorded in checkpoint ``path``, read without restoring it ({} if it has none)."""
    try:
        reader = tf.train.load_checkpoint(path)
        if RESUME_RECORD_KEY not in reader.get_variable_to_shape_map():
            return {}
        return json.loads(reader.get_tensor(RESUME_RECORD_KEY).decode())
    except Exception as error:  # a damaged index or data file raises many types
        raise RealfakeError(
            f"{path}: cannot read this checkpoint ({_first_line(error)}); move {Path(path).parent} away "
            f"to start from scratch"
        ) from None


def _checkpoint_reads_back(path: str) -> bool:
    """Whether every tensor of checkpoint ``path`` can be read (a complete, undamaged checkpoint)."""
    try:
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except Exception:  # any failure means "not complete"
        return False
    return True


def _count_correct(labels, probabilities):
    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32))


def _input_error(error: tf.errors.OpError) -> Exception:
    """A data-reading failure as one RealfakeError line; anything else stays a TensorFlow error."""
    match = re.search(rf"{NON_FINITE_INPUT} in \S+ row \d+", str(error))
    if match:
        return RealfakeError(f"{match.group(0)}")
    return error


def last_logged_step(directory: Path) -> int:
    """The largest step of any scalar summary in ``directory``'s event files; -1 when there is none.

    A file cut short by a kill is read up to its last complete record.
    """
    last = -1
    for path in sorted(Path(directory).glob("events.out.tfevents.*")):
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                event = event_pb2.Event.FromString(record.numpy())
                if any(value.metadata.plugin_data.plugin_name == "scalars" for value in event.summary.value):
                    last = max(last, int(event.step))
        except tf.errors.DataLossError:
            continue
    return last

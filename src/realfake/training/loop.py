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
trained on (the manifest's ``identity``, :mod:`realfake.shards.build`), and so do
``model.keras`` (in its normalisation layer) and ``history.json``. A
checkpoint of another shard set is never resumed: the run starts from scratch
and moves the previous run's ``ckpts/``, ``logs/``, ``prof/``, ``model.keras``
and ``history.json`` to ``superseded/<old identity>/`` (kept, not deleted: the
old TensorBoard curves stay viewable, and nothing is lost to a mistaken
config; delete the folder when it is not needed). Other settings that change
the weight sequence (``RESUME_KEYS``) must match, or training stops naming
them.

TensorBoard (``training.logs``): ``logs/train`` and ``logs/validation`` at step
= global step, never repeating a step across restarts. Profile
(``training.trace``): ``tf.profiler`` over ``profile_steps``, then a
``trace.json.gz``.

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
environment before launching, as the original obiwan code did: ``OMP_NUM_THREADS`` = cores
per task, ``KMP_AFFINITY=granularity=fine,compact,1,0``, ``KMP_BLOCKTIME=1``.

The checkpointed state, TensorBoard logs and profiler window are
:mod:`~realfake.training.checkpoints`, :mod:`~realfake.training.logs` and
:mod:`~realfake.training.trace`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

from realfake.atomic import atomic_output, remove_stale_temporaries, temporary_path
from realfake.errors import RealfakeError
from realfake.formats.shardset import ShardSet, short_identity
from realfake.model.network import build_model, normalization_from_manifest
from realfake.progress import say
from realfake.training.checkpoints import (
    CHECKPOINT_PREFIX,
    Progress,
    first_line,
    load_progress,
    newest_complete_checkpoint,
    progress_variables,
    set_aside,
    store_progress,
    stored_resume_record,
)
from realfake.training.cluster import ClusterInfo, cluster_from_environment
from realfake.training.logs import TrainingLogs
from realfake.training.pipeline import (
    NON_FINITE_INPUT,
    ShardReader,
    epoch_order,
    epoch_symmetries,
    training_dataset,
    validation_dataset,
)
from realfake.training.settings import TrainSettings
from realfake.training.startup import SigtermStop, exit_if_stuck, wait_for_peers
from realfake.training.trace import Profiler


def run_train(settings: TrainSettings, shard_set: ShardSet) -> dict:
    """Train (or resume training) on ``shard_set`` (opened from ``settings.shards``) and write
    ``settings.out``; returns the history record.

    Outputs: ``ckpts/``, ``logs/``, ``prof/`` (``*.xplane.pb`` and
    ``trace.json.gz``), ``model.keras`` and ``history.json`` (per-epoch train
    and validation loss and accuracy). Raises RealfakeError for bad input, a
    settings mismatch with an existing checkpoint, a non-finite loss, or other
    workers that have not started after ``settings.startup_timeout`` seconds.
    Meanwhile SIGTERM ends the process at once with status 143
    (``training.startup``); a re-run resumes from the last checkpoint.
    """
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
        self.logs = TrainingLogs(out / "logs", enabled=self.chief)
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
        if settings.steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, settings.steps_per_epoch)
        if self.steps_per_epoch == 0:
            raise RealfakeError(
                f"batch_size {self.batch_size} is larger than the {self.train_examples} training examples "
                f"in {shard_set.directory}"
            )
        self.train_reader = ShardReader(shard_set.train)
        self.validation_reader = ShardReader(shard_set.validation)

        with strategy.scope():
            self.model = build_model(shard_set.stamp_shape, settings.model, normalization, view=settings.view)
            self.optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
            self.optimizer.build(self.model.trainable_variables)
        self.progress = Progress()
        self.variables = progress_variables()
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
        self.profiler = None

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
            latest, self.start_note = newest_complete_checkpoint(self.checkpoint_directory, repair_pointer=self.chief)
            if latest is None:
                return None
        stored = stored_resume_record(latest)
        if stored.get("shard_set") != self.shard_set.identity:
            self._set_aside(latest, stored.get("shard_set"))
            return None
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except Exception as error:  # a damaged file raises OpError, ValueError, IndexError, ...
            raise RealfakeError(
                f"{latest}: cannot restore this checkpoint ({first_line(error)}); "
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
        self.progress = load_progress(self.variables)
        return latest

    def _set_aside(self, latest: str, trained_on: str | None) -> None:
        """Move the previous run's checkpoints and outputs (of shard set ``trained_on``) aside."""
        previous = [
            self.checkpoint_directory,
            self.logs.directories["train"].parent,
            self.profile_directory,
            self.best_directory,
            self.model_path,
            self.history_path,
        ]
        target = set_aside(Path(self.settings.out), previous, short_identity(trained_on), move=self.chief)
        self.start_note = (
            f"{latest} was trained on shard set {short_identity(trained_on)}, but {self.shard_set.directory} is "
            f"shard set {short_identity(self.shard_set.identity)}: the previous run's checkpoints, logs, profile, "
            f"best weights, model and history are moved to {target} (kept, not deleted)"
        )

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
            self.logs.open()
            self.profiler = Profiler(
                self.profile_directory, self.settings.profile_steps, self.progress.global_step, enabled=self.chief
            )
        self._say(self._start_line(resumed_from))
        try:
            while self.progress.epoch < self.settings.epochs:
                self._train_epoch()
                self._end_epoch()
        finally:
            if self.profiler is not None:
                self._say_if(self.profiler.stop())
            self.logs.close()
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
            f"{self.train_examples} training examples in {len(self.shard_set.train)} shards, "
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
        symmetries = epoch_symmetries(len(order), self.settings.seed, progress.epoch) if self.settings.augment else None
        # The epoch's batches: the first steps_per_epoch of its order (all of them unless capped).
        order = order[: self.steps_per_epoch * self.batch_size]
        symmetries = symmetries[: len(order)] if symmetries is not None else None
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
                self.profiler.before_step(progress.global_step)
                loss, correct = self.logs.run_tracing_graph(self.train_step, inputs, progress.global_step + 1)
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
                self._say_if(self.profiler.after_step(progress.global_step))
                end_of_epoch = progress.step_in_epoch == self.steps_per_epoch
                if progress.global_step % self.settings.log_every == 0 or end_of_epoch:
                    rate = window_steps * self.batch_size / (time.perf_counter() - window_start)
                    self._log_window(rate)
                    window_start, window_steps = time.perf_counter(), 0
                if not end_of_epoch and progress.global_step % self.settings.checkpoint_every == 0:
                    self._save_checkpoint()
        except tf.errors.OpError as error:
            raise _input_error(error) from None

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
            self.logs.scalars(
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
        self.logs.scalars(
            "train", progress.global_step, {"loss": loss, "accuracy": accuracy, "learning_rate": learning_rate}
        )
        self._say(
            f"epoch {progress.epoch + 1}/{self.settings.epochs} step {progress.step_in_epoch}/{self.steps_per_epoch} "
            f"(global step {progress.global_step}): loss {loss:.4f} accuracy {accuracy:.3f} "
            f"learning rate {learning_rate:.2e}; {examples_per_second:.1f} examples/s"
        )
        progress.window_loss_sum = progress.window_correct = 0.0
        progress.window_examples = 0

    def _save_checkpoint(self) -> None:
        progress = self.progress
        store_progress(progress, self.variables)
        if self.chief:
            path = self.manager.save(checkpoint_number=progress.global_step)
            self.logs.flush()
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

    def _history_record(self, selected_epoch: int) -> dict:
        return {
            "select": self.settings.select,
            "view": self.settings.view,
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
            say("train", line)

    def _say_if(self, line: str | None) -> None:
        if line:
            self._say(line)


def _count_correct(labels, probabilities):
    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32))


def _input_error(error: tf.errors.OpError) -> Exception:
    """A data-reading failure as one RealfakeError line; anything else stays a TensorFlow error."""
    match = re.search(rf"{NON_FINITE_INPUT} in \S+ row \d+", str(error))
    if match:
        return RealfakeError(f"{match.group(0)}")
    return error

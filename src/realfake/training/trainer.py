"""The trainer of one run: restore, the epochs with checkpoints and logs, validation, selection, the outputs.

:func:`realfake.training.loop.run_train` makes the strategy and runs a :class:`Trainer`; the docstring of
:mod:`realfake.training.loop` says how exact resume, checkpoint atomicity and provenance work.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import tensorflow as tf

from realfake.errors import RealfakeError
from realfake.formats.history import HISTORY_NAME, write_history
from realfake.formats.model import MODEL_NAME, save_model
from realfake.formats.shardset import ShardSet, short_identity
from realfake.model.network import build_model
from realfake.progress import say
from realfake.training.checkpoints import (
    CHECKPOINT_PREFIX,
    Progress,
    load_progress,
    newest_complete_checkpoint,
    progress_variables,
    restore_checkpoint,
    set_aside,
    store_progress,
    stored_resume_record,
    write_and_discard,
)
from realfake.training.cluster import ClusterInfo
from realfake.training.logs import TrainingLogs
from realfake.training.pipeline import (
    ShardReader,
    epoch_order,
    epoch_symmetries,
    input_error,
    training_dataset,
    validation_dataset,
)
from realfake.training.selection import BestWeights
from realfake.training.settings import TrainSettings
from realfake.training.steps import make_train_step, make_validation_step
from realfake.training.trace import Profiler


def checked_steps_per_epoch(settings: TrainSettings, shard_set: ShardSet, replicas: int) -> int:
    """Training steps per epoch: the whole global batches of the training split, at most
    ``settings.steps_per_epoch`` when that is set; RealfakeError when the batch does not divide among the
    ``replicas``, when ``select best_validation`` has no validation split, or when not one batch fits."""
    batch_size = settings.batch_size
    if batch_size % replicas:
        raise RealfakeError(f"batch_size {batch_size} does not divide among {replicas} replicas")
    if settings.select == "best_validation" and shard_set.examples("validation") == 0:
        raise RealfakeError(
            f"select best_validation needs a validation split, but the shard set in {shard_set.directory} has "
            f"none (made with validation fraction 0): make it with one, or train with select last"
        )
    train_examples = shard_set.examples("train")
    steps = train_examples // batch_size
    if settings.steps_per_epoch:
        steps = min(steps, settings.steps_per_epoch)
    if steps == 0:
        raise RealfakeError(
            f"batch_size {batch_size} is larger than the {train_examples} training examples in {shard_set.directory}"
        )
    return steps


class Trainer:
    """One run of ``settings`` on ``shard_set``: the model, optimizer, checkpoint and progress; :meth:`run`."""

    def __init__(self, settings: TrainSettings, shard_set: ShardSet, normalization, cluster: ClusterInfo, strategy):
        self.settings = settings
        self.shard_set = shard_set
        self.cluster = cluster
        self.strategy = strategy
        self.chief = cluster.is_chief
        out = Path(settings.out)
        self.checkpoint_directory = out / "ckpts"
        self.logs = TrainingLogs(out / "logs", enabled=self.chief)
        self.profile_directory = out / "prof"
        self.best = BestWeights(out / "best", enabled=self.chief)
        self.model_path = out / MODEL_NAME
        self.history_path = out / HISTORY_NAME

        self.batch_size = settings.batch_size
        self.steps_per_epoch = checked_steps_per_epoch(settings, shard_set, strategy.num_replicas_in_sync)
        self.train_examples = shard_set.examples("train")
        self.validation_examples = shard_set.examples("validation")
        self.train_reader = ShardReader(shard_set.train)
        self.validation_reader = ShardReader(shard_set.validation)

        with strategy.scope():
            self.model = build_model(shard_set.stamp_shape, settings.model, normalization, view=settings.view)
            self.optimizer = keras.optimizers.Adam(learning_rate=settings.learning_rate)
            self.optimizer.build(self.model.trainable_variables)
        self.progress = Progress()
        self.variables = progress_variables(self.progress)
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
        self.validation_step = make_validation_step(self.model, strategy)
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
        restore_checkpoint(self.checkpoint, latest, self.checkpoint_directory, stored, self._resume_record())
        load_progress(self.progress, self.variables)
        return latest

    def _set_aside(self, latest: str, trained_on: str | None) -> None:
        """Move the previous run's checkpoints and outputs (of shard set ``trained_on``) aside."""
        previous = [
            self.checkpoint_directory,
            self.logs.directories["train"].parent,
            self.profile_directory,
            self.best.directory,
            self.model_path,
            self.history_path,
        ]
        target = set_aside(Path(self.settings.out), previous, short_identity(trained_on), move=self.chief)
        self.start_note = (
            f"{latest} was trained on shard set {short_identity(trained_on)}, but {self.shard_set.directory} is "
            f"shard set {short_identity(self.shard_set.identity)}: the previous run's checkpoints, logs, profile, "
            f"best weights, model and history are moved to {target} (kept, not deleted)"
        )

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> dict:
        """Train the epochs left, select the weights and (the chief) write the outputs; return the history record."""
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

    def _epoch_dataset(self):
        """The distributed dataset of the current epoch's batches, from the batch where it stands."""
        progress = self.progress
        order = epoch_order(
            self.train_reader.shard_sizes, self.settings.seed, progress.epoch, self.settings.shuffle_shards
        )
        symmetries = epoch_symmetries(len(order), self.settings.seed, progress.epoch) if self.settings.augment else None
        # The epoch's batches: the first steps_per_epoch of its order (all of them unless capped).
        order = order[: self.steps_per_epoch * self.batch_size]
        symmetries = symmetries[: len(order)] if symmetries is not None else None
        start_batch = progress.step_in_epoch
        return self.strategy.distribute_datasets_from_function(
            lambda context: training_dataset(
                self.train_reader, order, self.batch_size, start_batch, context, symmetries=symmetries
            )
        )

    def _train_epoch(self) -> None:
        progress = self.progress
        dataset = self._epoch_dataset()
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
            raise input_error(error) from None

    def _end_epoch(self) -> None:
        progress = self.progress
        epoch_start = time.perf_counter()
        validation_loss, validation_accuracy = self._validate()
        train = progress.epoch_means.result()
        record = {
            "epoch": progress.epoch + 1,
            "global_step": progress.global_step,
            "train_loss": train["loss"],
            "train_accuracy": train["accuracy"],
            "validation_loss": validation_loss,
            "validation_accuracy": validation_accuracy,
        }
        improved = validation_loss is not None and validation_loss < progress.best_validation_loss
        if improved:
            # Written before the checkpoint that names it, so a resumed run always finds its best weights.
            self.best.write(self.model, record["epoch"])
            progress.best_epoch, progress.best_validation_loss = record["epoch"], validation_loss
        progress.end_epoch(record)
        self._save_checkpoint()
        if improved:
            self.best.remove_others(record["epoch"])
        if validation_loss is not None:
            self.logs.scalars(
                "validation", progress.global_step, {"loss": validation_loss, "accuracy": validation_accuracy}
            )
        self._say(self._epoch_line(record, time.perf_counter() - epoch_start, improved))

    def _epoch_line(self, record: dict, validation_seconds: float, improved: bool) -> str:
        validation_loss = record["validation_loss"]
        return (
            f"epoch {record['epoch']}/{self.settings.epochs} done (global step {record['global_step']}): "
            f"train loss {record['train_loss']:.4f} accuracy {record['train_accuracy']:.3f}; "
            + (
                f"validation loss {validation_loss:.4f} accuracy {record['validation_accuracy']:.3f}"
                if validation_loss is not None
                else "no validation examples"
            )
            + f" ({validation_seconds:.1f} s validation)"
            + (f"; the best so far, kept in {self.best.path(record['epoch'])}" if improved else "")
        )

    def _select_weights(self) -> int:
        """Load the weights ``settings.select`` names into the model; return their epoch."""
        progress = self.progress
        if self.settings.select == "last" or progress.best_epoch == 0:
            return progress.epoch
        self.best.load(self.model, progress.best_epoch, self.checkpoint_directory)
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
            raise input_error(error) from None
        loss = loss_sum / self.validation_examples
        if not math.isfinite(loss):
            raise RealfakeError(
                f"the validation loss is {loss} after epoch {self.progress.epoch + 1}; "
                f"the training loss was finite, so check the test shards in {self.shard_set.directory}"
            )
        return loss, correct / self.validation_examples

    # -- logging, checkpoints, outputs --------------------------------------------------------

    def _log_window(self, examples_per_second: float) -> None:
        progress = self.progress
        window = progress.window_means.result()
        loss, accuracy = window["loss"], window["accuracy"]
        learning_rate = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
        self.logs.scalars(
            "train", progress.global_step, {"loss": loss, "accuracy": accuracy, "learning_rate": learning_rate}
        )
        self._say(
            f"epoch {progress.epoch + 1}/{self.settings.epochs} step {progress.step_in_epoch}/{self.steps_per_epoch} "
            f"(global step {progress.global_step}): loss {loss:.4f} accuracy {accuracy:.3f} "
            f"learning rate {learning_rate:.2e}; {examples_per_second:.1f} examples/s"
        )
        progress.window_means.reset_state()

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
            write_and_discard(self.checkpoint, self.cluster.task_id)

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
        save_model(self.model, self.model_path)
        write_history(self.history_path, record)
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

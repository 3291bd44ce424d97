"""Checkpoints: the training state they hold, finding the one to resume, and moving a stale run aside.

See :mod:`realfake.training.loop` for how a checkpoint is written atomically and
when one is resumed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from realfake.errors import RealfakeError

CHECKPOINT_PREFIX = "ckpt"
CHECKPOINT_POINTER = "checkpoint"
SUPERSEDED_DIRECTORY = "superseded"
# The checkpoint key of the recorded resume settings (the Checkpoint's "resume_record" variable).
RESUME_RECORD_KEY = "resume_record/.ATTRIBUTES/VARIABLE_VALUE"


class StepMeans(keras.metrics.Metric):
    """The mean training loss and accuracy over the steps since the last ``reset_state``: of an epoch, or of a
    TensorBoard log window.

    ``update_state`` takes one global step's values as the step function summed them across replicas
    (:mod:`realfake.training.steps`), once per global step on every worker, so all workers hold the same sums. The
    sums are float64 and the example count int64, the types the checkpoint holds them in (``<name>_loss_sum``,
    ``<name>_correct``, ``<name>_examples``, :meth:`checkpointed`), so a resumed run goes on adding to bitwise the
    same sums.
    """

    def __init__(self, name: str):
        super().__init__(name=name, dtype="float64")
        self.loss_sum = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="loss_sum")
        self.correct = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="correct")
        self.examples = self.add_variable(shape=(), initializer="zeros", dtype="int64", name="examples")

    def update_state(self, loss_sum: float, correct: float, examples: int) -> None:
        """Count one step: its loss summed over its examples, its correct predictions and its number of examples."""
        self.loss_sum.assign_add(loss_sum)
        self.correct.assign_add(correct)
        self.examples.assign_add(examples)

    def result(self) -> dict[str, float]:
        """``{"loss": mean loss per example, "accuracy": fraction predicted right}``; 0 and 0 before any step."""
        examples = max(int(self.examples.numpy()), 1)
        return {"loss": float(self.loss_sum.numpy()) / examples, "accuracy": float(self.correct.numpy()) / examples}

    def checkpointed(self) -> dict:
        """The variables a checkpoint holds, by their names in it."""
        return {
            f"{self.name}_loss_sum": self.loss_sum,
            f"{self.name}_correct": self.correct,
            f"{self.name}_examples": self.examples,
        }


@dataclass
class Progress:
    """Where training stands: everything a checkpoint must hold besides the model and the optimizer.

    The running means, of the epoch and of the log window, are metric objects whose own variables the checkpoint
    holds (:meth:`StepMeans.checkpointed`). Each other field is one checkpointed variable of the same name
    (:func:`progress_variables`): ints as int64, floats as float64, the history as JSON text; it is copied there
    before a save (:func:`store_progress`) and back after a restore (:func:`load_progress`).
    """

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    # The epoch (1-based; 0: none yet) with the lowest validation loss, whose weights are in best/.
    best_epoch: int = 0
    best_validation_loss: float = math.inf
    history: list = field(default_factory=list)
    epoch_means: StepMeans = field(default_factory=lambda: StepMeans("epoch"))
    window_means: StepMeans = field(default_factory=lambda: StepMeans("window"))

    def record_step(self, loss_sum: float, correct: float, examples: int) -> None:
        """Count one training step: summed loss and correct predictions over its examples."""
        self.step_in_epoch += 1
        self.global_step += 1
        self.epoch_means.update_state(loss_sum, correct, examples)
        self.window_means.update_state(loss_sum, correct, examples)

    def end_epoch(self, record: dict) -> None:
        """Close the epoch whose history ``record`` this is; the next one starts at its step 0 with fresh means."""
        self.history.append(record)
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_means.reset_state()


def _copied_fields() -> list[dataclasses.Field]:
    """The :class:`Progress` fields copied to and from a variable of their own (all but the running means)."""
    return [item for item in dataclasses.fields(Progress) if item.type != "StepMeans"]


def progress_variables(progress: Progress) -> dict:
    """The checkpointed variables of ``progress`` by name: one new tf.Variable per copied field, typed by the
    field's default, and the variables of its running means."""
    variables = {}
    for item in _copied_fields():
        if item.name == "history":
            variables[item.name] = tf.Variable("[]", dtype=tf.string)
        elif item.type == "int":
            variables[item.name] = tf.Variable(0, dtype=tf.int64)
        else:
            variables[item.name] = tf.Variable(0.0, dtype=tf.float64)
    return {**variables, **progress.epoch_means.checkpointed(), **progress.window_means.checkpointed()}


def store_progress(progress: Progress, variables: dict) -> None:
    for item in _copied_fields():
        value = getattr(progress, item.name)
        variables[item.name].assign(json.dumps(value) if item.name == "history" else value)


def load_progress(progress: Progress, variables: dict) -> None:
    """Set the copied fields of ``progress`` from ``variables`` (restored; its running means are restored with
    their own variables)."""
    for item in _copied_fields():
        value = variables[item.name].numpy()
        if item.name == "history":
            value = json.loads(value.decode())
        else:
            value = int(value) if item.type == "int" else float(value)
        setattr(progress, item.name, value)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def stored_resume_record(path: str) -> dict:
    """The resume settings recorded in checkpoint ``path``, read without restoring it ({} if it has none)."""
    try:
        reader = tf.train.load_checkpoint(path)
        if RESUME_RECORD_KEY not in reader.get_variable_to_shape_map():
            return {}
        return json.loads(reader.get_tensor(RESUME_RECORD_KEY).decode())
    except Exception as error:  # a damaged index or data file raises many types
        raise RealfakeError(
            f"{path}: cannot read this checkpoint ({first_line(error)}); move {Path(path).parent} away "
            f"to start from scratch"
        ) from None


def restore_checkpoint(
    checkpoint: tf.train.Checkpoint, path: str, directory: Path, stored: dict, current: dict
) -> None:
    """Restore ``checkpoint`` from ``path`` in ``directory``, whose resume record is ``stored``
    (:func:`stored_resume_record`); RealfakeError when it cannot be read or when it differs from ``current``,
    naming the settings that do."""
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except Exception as error:  # a damaged file raises OpError, ValueError, IndexError, ...
        raise RealfakeError(
            f"{path}: cannot restore this checkpoint ({first_line(error)}); move {directory} away to start from scratch"
        ) from None
    differences = [
        f"{key} {stored.get(key)!r} -> {current[key]!r}" for key in current if stored.get(key) != current[key]
    ]
    if differences:
        raise RealfakeError(
            f"{path} was written with other settings ({'; '.join(differences)}); "
            f"resume with the same settings or choose another --out"
        )


def write_and_discard(checkpoint: tf.train.Checkpoint, task_id: int) -> None:
    """A save on a worker that is not the chief: every worker takes part in a save (the variables' collectives),
    but only the chief's is kept, so this one goes to a temporary directory that is then deleted (as TensorFlow's
    documentation recommends)."""
    scratch = tempfile.mkdtemp(prefix=f"realfake-worker{task_id}-")
    try:
        checkpoint.write(os.path.join(scratch, CHECKPOINT_PREFIX))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def checkpoint_reads_back(path: str) -> bool:
    """Whether every tensor of checkpoint ``path`` can be read (a complete, undamaged checkpoint)."""
    try:
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except Exception:  # any failure means "not complete"
        return False
    return True


def newest_complete_checkpoint(directory: Path, repair_pointer: bool) -> tuple[str | None, str]:
    """With the pointer file missing or unreadable: (the newest checkpoint in ``directory`` whose every tensor
    reads back, a note saying so); (None, "") when there are no checkpoint files; RealfakeError when there are
    some but none is complete. With ``repair_pointer`` the pointer is rewritten to name it."""
    directory = Path(directory)
    numbered = []
    for index_file in directory.glob(f"{CHECKPOINT_PREFIX}-*.index"):
        number = index_file.name[len(CHECKPOINT_PREFIX) + 1 : -len(".index")]
        if number.isdigit():
            numbered.append((int(number), str(directory / f"{CHECKPOINT_PREFIX}-{number}")))
    if not numbered:
        return None, ""
    numbered.sort()
    pointer = directory / CHECKPOINT_POINTER
    problem = "is missing" if not pointer.exists() else "names no readable checkpoint"
    for position in range(len(numbered) - 1, -1, -1):
        path = numbered[position][1]
        if checkpoint_reads_back(path):
            if repair_pointer:
                tf.compat.v1.train.update_checkpoint_state(
                    str(directory), path, all_model_checkpoint_paths=[older for _, older in numbered[: position + 1]]
                )
            return path, f"{pointer} {problem}: {path} is the newest complete checkpoint in {directory}"
    names = ", ".join(Path(path).name for _, path in numbered)
    raise RealfakeError(
        f"{pointer} {problem} and no checkpoint in {directory} reads back ({names}); "
        f"move {directory} away to start from scratch"
    )


def set_aside(out: Path, previous: list[Path], name: str, move: bool) -> Path:
    """Move the ``previous`` run's files and directories (those that exist) into
    ``out/superseded/<name>`` (``<name>-2``, ... when taken); return that folder. Only when ``move``
    (the chief); other workers only learn its name."""
    target = Path(out) / SUPERSEDED_DIRECTORY / name
    number = 1
    while target.exists():
        number += 1
        target = Path(out) / SUPERSEDED_DIRECTORY / f"{name}-{number}"
    if move:
        target.mkdir(parents=True)
        for path in previous:
            if path.exists():
                os.replace(path, target / path.name)
    return target

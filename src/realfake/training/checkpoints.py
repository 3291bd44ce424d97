"""Checkpoints: the training state they hold, finding the one to resume, and moving a stale run aside.

See :mod:`realfake.training.loop` for how a checkpoint is written atomically and
when one is resumed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import tensorflow as tf

from realfake.errors import RealfakeError

CHECKPOINT_PREFIX = "ckpt"
CHECKPOINT_POINTER = "checkpoint"
SUPERSEDED_DIRECTORY = "superseded"
# The checkpoint key of the recorded resume settings (the Checkpoint's "resume_record" variable).
RESUME_RECORD_KEY = "resume_record/.ATTRIBUTES/VARIABLE_VALUE"


@dataclass
class Progress:
    """Where training stands: everything a checkpoint must hold besides the model and the optimizer.

    Each field is one checkpointed variable of the same name (:func:`progress_variables`):
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


def progress_variables() -> dict[str, tf.Variable]:
    """One tf.Variable per :class:`Progress` field, typed by the field's default."""
    variables = {}
    for item in dataclasses.fields(Progress):
        if item.name == "history":
            variables[item.name] = tf.Variable("[]", dtype=tf.string)
        elif item.type == "int":
            variables[item.name] = tf.Variable(0, dtype=tf.int64)
        else:
            variables[item.name] = tf.Variable(0.0, dtype=tf.float64)
    return variables


def store_progress(progress: Progress, variables: dict[str, tf.Variable]) -> None:
    for item in dataclasses.fields(Progress):
        value = getattr(progress, item.name)
        variables[item.name].assign(json.dumps(value) if item.name == "history" else value)


def load_progress(variables: dict[str, tf.Variable]) -> Progress:
    values = {}
    for item in dataclasses.fields(Progress):
        value = variables[item.name].numpy()
        if item.name == "history":
            values[item.name] = json.loads(value.decode())
        else:
            values[item.name] = int(value) if item.type == "int" else float(value)
    return Progress(**values)


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

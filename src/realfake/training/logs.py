"""TensorBoard logs of a training run: ``logs/train`` and ``logs/validation``, steps never repeated.

``logs/train`` holds ``loss``, ``accuracy`` (means over the last ``log_every``
steps), ``learning_rate`` and the traced graph of the training step;
``logs/validation`` holds ``loss`` and ``accuracy`` each epoch; all at step =
global step. A resumed run first reads the existing event files and writes
only steps above the last one logged, so steps never repeat or go backwards (a
killed run may have logged past its last checkpoint). View them with
``tensorboard --logdir OUT/logs``.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from tensorflow.core.util import event_pb2

KINDS = ("train", "validation")


class TrainingLogs:
    """The event-file writers of one run; a no-op when not ``enabled`` (the workers that are not the chief)."""

    def __init__(self, directory: Path, enabled: bool):
        self.directories = {kind: Path(directory) / kind for kind in KINDS}
        self.enabled = enabled
        self.writers: dict[str, object] = {}
        self.logged_until: dict[str, int] = {}
        self.graph_written = not enabled

    def open(self) -> None:
        if not self.enabled:
            return
        for kind, directory in self.directories.items():
            self.logged_until[kind] = last_logged_step(directory)
            self.writers[kind] = tf.summary.create_file_writer(str(directory))

    def scalars(self, kind: str, step: int, values: dict[str, float]) -> None:
        """Scalars of ``kind`` at ``step``, unless a previous run already logged that step."""
        writer = self.writers.get(kind)
        if writer is None or step <= self.logged_until[kind]:
            return
        with writer.as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value)

    def run_tracing_graph(self, step_function, inputs, step: int):
        """``step_function(inputs)``, tracing its graph into ``logs/train`` the first time."""
        if self.graph_written or "train" not in self.writers:
            return step_function(inputs)
        tf.summary.trace_on(graph=True, profiler=False)
        result = step_function(inputs)
        with self.writers["train"].as_default():
            tf.summary.trace_export(name="train_step", step=step)
        self.graph_written = True
        return result

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


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
